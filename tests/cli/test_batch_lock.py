"""batch-validation locks the output it routes to, also when it is the default: the parent of --input."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sdpipe.locking import lock_url

REPO = Path(__file__).resolve().parents[2]
HOLD_LOCK = """
import sys
from sdpipe.locking import OutputLock
lock = OutputLock(sys.argv[1], run_id="holder")
lock.acquire()
print("locked", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def drop(tmp_path) -> Path:
    folder = tmp_path / "drop"
    shutil.copytree(REPO / "data" / "sample" / "batches" / "inbound", folder / "inbound")
    return folder


@pytest.fixture
def hold_lock():
    """Return a function that starts a process holding the lock on an output; the processes end with the test."""
    processes = []

    def start(output: Path) -> None:
        process = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(output)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        processes.append(process)
        assert process.stdout.readline().strip() == "locked"

    yield start
    for process in processes:
        process.kill()
        process.wait()


def test_second_run_without_output_exits_75(run_cli, drop, hold_lock):
    before = sorted(path.name for path in (drop / "inbound").iterdir())
    hold_lock(drop)

    result = run_cli("run", "batch-validation", "-i", drop / "inbound")

    assert result.exit_code == 75
    assert f"another run holds the lock on {str(drop)!r}" in result.stderr
    assert sorted(path.name for path in (drop / "inbound").iterdir()) == before
    assert not (drop / "valid").exists()


def test_relative_input_locks_absolute_parent(run_cli, drop, hold_lock, monkeypatch):
    hold_lock(drop)
    monkeypatch.chdir(drop)

    result = run_cli("run", "batch-validation", "-i", "inbound", "--dry-run")

    assert result.exit_code == 75


def test_lock_released_after_run(run_cli, drop):
    result = run_cli("run", "batch-validation", "-i", drop / "inbound", "-q")

    assert result.exit_code == 0, result.stderr
    assert (drop / "valid").is_dir()
    assert not Path(lock_url(str(drop))).exists()
