"""Help text, date and size options, and plurals in summaries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sdpipe.cli.options import ByteSize

REPO = Path(__file__).resolve().parents[2]
RECORDS = REPO / "data" / "sample" / "messages" / "records.jsonl"


def test_date_metavar_reads_yyyy_mm_dd(run_cli):
    result = run_cli("run", "taxi-speed", "--help")

    assert "--start YYYY-MM-DD" in result.stdout
    assert "%Y" not in result.stdout


def test_invalid_date_is_named(run_cli):
    result = run_cli("run", "taxi-speed", "--start", "2017-13-01")

    assert result.exit_code == 2
    assert "'2017-13-01' is not a valid date (month must be in 1..12); give YYYY-MM-DD" in result.stderr


@pytest.mark.parametrize(
    ("text", "size"),
    [("64MiB", 64 * 2**20), ("128 MB", 128 * 10**6), ("1024", 1024), (4096, 4096)],
    ids=["mebibytes", "megabytes", "bytes-text", "bytes-int"],
)
def test_byte_size_parses(text, size):
    assert ByteSize(minimum=1024).convert(text, None, None) == size


def test_blocksize_flag_takes_a_size(run_cli, trips_dir, tmp_path):
    small = run_cli("run", "taxi-speed", "-i", f"{trips_dir}/*.csv", "--blocksize", "16KiB", "--json")
    default = run_cli("run", "taxi-speed", "-i", f"{trips_dir}/*.csv", "--json", "-o", tmp_path / "out")

    assert small.exit_code == 0, small.stderr
    assert json.loads(small.stdout)["parameters"]["blocksize"] == 16 * 1024
    assert json.loads(small.stdout)["counts"]["read"] == json.loads(default.stdout)["counts"]["read"]


@pytest.mark.parametrize("text", ["1KB", "lots"], ids=["below-minimum", "not-a-size"])
def test_bad_blocksize_is_usage_error(run_cli, text):
    result = run_cli("run", "taxi-speed", "--blocksize", text)

    assert result.exit_code == 2
    assert f"Invalid value for '--blocksize': {text!r}" in result.stderr


@pytest.mark.parametrize("pipeline", ["taxi-speed", "message-timing"])
def test_blocksize_default_shown_in_mib(run_cli, pipeline):
    result = run_cli("run", pipeline, "--help")

    assert "[default: 64 MiB]" in " ".join(result.stdout.split())


def test_workers_help_says_what_runs_without_it(run_cli):
    help_text = " ".join(run_cli("run", "taxi-speed", "--help").stdout.split())

    assert "as Dask splits the cores]" not in help_text
    assert "threads of this process by default" in help_text


def test_summary_with_one_file_and_run(run_cli, tmp_path):
    one_run = tmp_path / "records.jsonl"
    lines = [line for line in RECORDS.read_text().splitlines() if json.loads(line)["TestRun"] == "run-001"]
    one_run.write_text("\n".join(lines) + "\n")

    result = run_cli("run", "message-timing", "-i", one_run, "-o", tmp_path / "out")

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"message-timing: 1 input file, {len(lines):,} records, 1 run"
