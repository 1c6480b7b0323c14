"""Helpers of the job, lock, incremental and logging tests: the CLI run in this process."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from sdpipe.cli.main import cli
from sdpipe.cli.errors import run_with_exit_codes

SAMPLE_CSV = Path(__file__).resolve().parents[2] / "data" / "sample" / "csv"
MONTHS = ("2017-01", "2017-02", "2017-03")


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def run_cli(capsys):
    """Return a function that runs ``sdpipe ARGS`` in this process and returns its exit code and output."""

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = run_with_exit_codes(cli, [str(arg) for arg in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def trips_dir(tmp_path) -> Path:
    """A folder with copies of the sample's January and February trip files (March is added by tests)."""
    folder = tmp_path / "trips"
    folder.mkdir()
    for month in MONTHS[:2]:
        shutil.copy2(SAMPLE_CSV / f"yellow_tripdata_{month}.csv", folder)
    return folder


def add_month(folder: Path, month: str) -> Path:
    target = folder / f"yellow_tripdata_{month}.csv"
    shutil.copy2(SAMPLE_CSV / target.name, target)
    return target
