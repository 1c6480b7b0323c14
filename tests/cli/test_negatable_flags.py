"""Boolean options that a job file sets can be turned off on the command line with --no-..."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RECORDS = REPO / "data" / "sample" / "messages" / "records.jsonl"


@pytest.fixture
def drop(tmp_path) -> Path:
    folder = tmp_path / "drop"
    shutil.copytree(REPO / "data" / "sample" / "batches" / "inbound", folder / "inbound")
    return folder


def write_job(path: Path, pipeline: str, options: str) -> Path:
    path.write_text(f'pipeline = "{pipeline}"\n[options]\n{options}\n')
    return path


def test_no_dry_run_overrides_job(run_cli, drop, tmp_path):
    job = write_job(tmp_path / "job.toml", "batch-validation", f'input = "{drop / "inbound"}"\ndry-run = true')

    dry = run_cli("run", job, "-q")
    assert dry.exit_code == 0, dry.stderr
    assert not (drop / "valid").exists()

    moved = run_cli("run", job, "--no-dry-run", "-q")

    assert moved.exit_code == 0, moved.stderr
    assert (drop / "valid" / "acme_20240105_0900").is_dir()
    assert (drop / "invalid" / "acme_20240106_0900").is_dir()
    assert not list((drop / "inbound").glob("acme_*"))


def test_no_fail_on_invalid_overrides_job(run_cli, drop, tmp_path):
    options = f'input = "{drop / "inbound"}"\ndry-run = true\nfail-on-invalid = true'
    job = write_job(tmp_path / "job.toml", "batch-validation", options)

    assert run_cli("run", job, "-q").exit_code == 3
    assert run_cli("run", job, "-q", "--no-fail-on-invalid").exit_code == 0


def test_no_fail_on_loss_overrides_job(run_cli, tmp_path):
    options = f'input = ["{RECORDS}"]\noutput = "{tmp_path / "out"}"\nfail-on-loss = true'
    job = write_job(tmp_path / "job.toml", "message-timing", options)

    assert run_cli("run", job, "-q").exit_code == 3
    assert run_cli("run", job, "-q", "--no-fail-on-loss").exit_code == 0


def test_no_quiet_and_no_json_override_job(run_cli, trips_dir, tmp_path):
    options = f'input = ["{trips_dir}/*.csv"]\noutput = "{tmp_path / "out"}"\nquiet = true\njson = true'
    job = write_job(tmp_path / "job.toml", "taxi-speed", options)

    from_file = run_cli("run", job)
    overridden = run_cli("run", job, "--no-quiet", "--no-json", "--force")

    assert from_file.exit_code == 0, from_file.stderr
    assert json.loads(from_file.stdout)["pipeline"] == "taxi-speed"
    assert overridden.exit_code == 0, overridden.stderr
    assert overridden.stdout.startswith("taxi-speed: 2 input files")


def test_no_force_overrides_job(run_cli, trips_dir, tmp_path):
    options = f'input = ["{trips_dir}/*.csv"]\noutput = "{tmp_path / "out"}"\nforce = true'
    job = write_job(tmp_path / "job.toml", "taxi-speed", options)
    assert run_cli("run", job, "-q").exit_code == 0

    forced = run_cli("run", job, "--json")
    reused = run_cli("run", job, "--json", "--no-force")

    assert json.loads(forced.stdout)["status"] == "ok"
    assert json.loads(reused.stdout)["status"] == "up_to_date"
