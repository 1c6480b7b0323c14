"""A run killed (SIGKILL) in the middle of routing loses nothing, and the next run finishes it."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sdpipe.pipelines.batch_validation.api import run_batch_validation

VERDICTS = {"cust1_20171010_1112": "invalid", "cust1_20171011_1112": "valid"}

# The child replaces the routing checkpoint with one that kills the process at the k-th step.
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from sdpipe.pipelines.batch_validation import routing
    from sdpipe.pipelines.batch_validation.api import run_batch_validation

    kill_at = int(sys.argv[2])
    seen = []

    def checkpoint(event, path):
        seen.append(event)
        print(len(seen), event, path, flush=True)
        if len(seen) == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    routing.checkpoint = checkpoint
    run_batch_validation(sys.argv[1], scheduler="sync")
    """
)

# Step numbers: 1 journal written, then per file copied / verified / source deleted (9 files), then
# report written and journal removed: 30 steps per batch.  The points cover each kind of step.
KILL_POINTS = [1, 2, 3, 4, 16, 28, 29, 30, 31, 45, 59]


def place_of(name: str, inbound: Path) -> Path:
    batch = name.rsplit("_", 1)[0]
    return inbound.parent / VERDICTS[batch] / batch / "attempt-1" / name


@pytest.mark.realdata
@pytest.mark.parametrize("kill_at", KILL_POINTS, ids=[f"step{k}" for k in KILL_POINTS])
def test_killed_routing_is_finished_by_next_run(real_data: Path, tmp_path: Path, kill_at: int):
    inbound = tmp_path / "drop" / "inbound"
    shutil.copytree(real_data / "file-validation-sample", inbound)
    for path in inbound.iterdir():
        path.chmod(0o644)
    inbound.chmod(0o755)
    originals = {p.name: p.read_bytes() for p in inbound.iterdir()}

    child = subprocess.run([sys.executable, "-c", CHILD, str(inbound), str(kill_at)],
                           capture_output=True, text=True, timeout=120)

    assert child.returncode == -signal.SIGKILL, child.stderr
    assert child.stdout.splitlines()[-1].startswith(f"{kill_at} ")
    for name, data in originals.items():
        source, target = inbound / name, place_of(name, inbound)
        in_inbound = source.exists() and source.read_bytes() == data
        in_place = target.exists() and target.read_bytes() == data
        assert in_inbound or in_place, f"{name} is neither in the inbound folder nor complete in {target}"

    report = run_batch_validation(str(inbound), scheduler="sync")

    assert report.exit_code == 0
    assert list(inbound.iterdir()) == []
    for name, data in originals.items():
        assert place_of(name, inbound).read_bytes() == data
    for batch, area in VERDICTS.items():
        folder = inbound.parent / area / batch / "attempt-1"
        assert (folder / "_report.json").is_file()
        assert not (folder / "_routing.json").exists()
        assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []
    assert not (inbound.parent / "valid" / "cust1_20171011_1112" / "attempt-2").exists()
    assert not (inbound.parent / "invalid" / "cust1_20171010_1112" / "attempt-2").exists()
