"""Exit code 3 always says why on stderr in one line, also with --quiet and JSON logs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
RECORDS = REPO / "data" / "sample" / "messages" / "records.jsonl"
THRESHOLD_MS = 150


def runs_above_p99(threshold_ms: float) -> set[str]:
    """Return the test runs whose p99 queue latency (dequeued - client enqueue, first deliveries) is above the threshold."""
    rows = [json.loads(line) for line in RECORDS.read_text().splitlines() if line.strip()]
    frame = pd.DataFrame(
        {
            "run": [row["TestRun"] for row in rows],
            "id": [row["Properties"]["MessageId"] for row in rows],
            "enqueued": pd.to_datetime([row["Properties"]["ClientEnqueueTimeUtc"] for row in rows]),
            "dequeued": pd.to_datetime([row["Properties"]["DequeuedTime"] for row in rows]),
        }
    )
    first = frame.sort_values("dequeued").drop_duplicates(["run", "id"])
    latency_ms = (first["dequeued"] - first["enqueued"]).dt.total_seconds() * 1000
    p99 = latency_ms.groupby(first["run"]).quantile(0.99)
    return {run for run, value in p99.items() if value > threshold_ms}


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_quiet_threshold_breach_says_why(run_cli, tmp_path, log_format):
    expected_runs = runs_above_p99(THRESHOLD_MS)
    assert expected_runs, "the sample must breach the threshold for this test to mean anything"

    result = run_cli(
        "run", "message-timing", "-i", RECORDS, "-o", tmp_path / "out",
        "--max-p99-ms", THRESHOLD_MS, "-q", "--log-format", log_format,
    )

    assert result.exit_code == 3
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    if log_format == "json":
        # The run-finished line that every json run logs comes after the reason.
        *lines, finished = lines
        assert json.loads(finished)["exit_code"] == 3
    assert len(lines) == 1
    line = json.loads(lines[0])["message"] if log_format == "json" else lines[0]
    assert line.startswith(f"Failed: {len(expected_runs)} thresholds exceeded: ")
    for run in expected_runs:
        assert f"test run {run!r}" in line
    assert f"--max-p99-ms {THRESHOLD_MS}" in line


def test_no_breach_prints_nothing(run_cli, tmp_path):
    result = run_cli("run", "message-timing", "-i", RECORDS, "-o", tmp_path / "out", "--max-p99-ms", "1e9", "-q")

    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""


def test_invalid_batch_says_why_when_quiet(run_cli, tmp_path):
    drop = tmp_path / "drop"
    shutil.copytree(REPO / "data" / "sample" / "batches" / "inbound", drop / "inbound")

    result = run_cli("run", "batch-validation", "-i", drop / "inbound", "--dry-run", "--fail-on-invalid", "-q")

    # The sample's README: acme_20240106_0900 is invalid, acme_20240105_0900 valid, globex incomplete.
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr.splitlines() == ["Failed: 1 of 3 batches invalid (--fail-on-invalid): acme_20240106_0900"]
