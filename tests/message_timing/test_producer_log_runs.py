"""Runs, triggers and sessions that the producer log lists but no record names still get a row."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from sdpipe.cli.errors import run_with_exit_codes
from sdpipe.cli.main import cli
from sdpipe.pipelines.message_timing.api import run_message_timing

BASE = "2024-05-01T10:00:00"


def record(test_run: str | None, message_id, trigger: str = "Queue", offset_ms: int = 0) -> dict:
    """Return one consumer record: enqueued at BASE + offset, dequeued 100 ms later, processed 50 ms after that."""
    enqueue = pd.Timestamp(BASE, tz="UTC") + pd.Timedelta(milliseconds=offset_ms)
    line = {
        "MessageProcessedTime": (enqueue + pd.Timedelta(milliseconds=150)).isoformat(),
        "Trigger": trigger,
        "Properties": {
            "ClientEnqueueTimeUtc": enqueue.isoformat(),
            "MessageId": message_id,
            "DequeuedTime": (enqueue + pd.Timedelta(milliseconds=100)).isoformat(),
        },
    }
    if test_run is not None:
        line["TestRun"] = test_run
    return line


def write_records(path, records) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def write_sent(path, rows: list[tuple], header: str = "test_run,message_id") -> str:
    path.write_text(header + "\n" + "".join(",".join(str(v) for v in row) + "\n" for row in rows))
    return str(path)


@pytest.fixture
def lost_run_files(tmp_path):
    records = write_records(tmp_path / "records.jsonl", [record("r1", 1, offset_ms=0), record("r1", 2, offset_ms=10)])
    sent = write_sent(tmp_path / "sent.csv", [("r1", 1), ("r1", 2), ("lostrun", 1), ("lostrun", 2)])
    return records, sent


def test_unreceived_run_has_row(lost_run_files):
    records, sent = lost_run_files
    result = run_message_timing(records, producer_log=sent, scheduler="synchronous").result.set_index("test_run")

    assert sorted(result.index) == ["lostrun", "r1"]
    lost = result.loc["lostrun"]
    assert lost["records"] == 0
    assert lost["messages"] == 0
    assert lost["missing"] == 2  # both ids the producer log lists for lostrun
    assert lost["missing_method"] == "producer_log"
    for column in ("latency_ms_p50", "latency_ms_max", "processing_ms_mean", "total_runtime_s", "throughput_per_s"):
        assert pd.isna(lost[column]), column
    assert result.loc["r1", "missing"] == 0
    assert result.loc["r1", "latency_ms_p50"] == pytest.approx(100.0)


def test_unreceived_run_fails_on_loss(lost_run_files, tmp_path):
    records, sent = lost_run_files
    args = ["run", "message-timing", "-i", records, "--producer-log", sent, "-o", str(tmp_path / "out"),
            "--fail-on-loss", "--json", "--scheduler", "synchronous"]
    with CliRunner().isolation() as (stdout, _, _):
        code = run_with_exit_codes(cli, args)
        document = json.loads(stdout.getvalue().decode())

    assert code == 3
    assert document["status"] == "verdict_failed"
    assert document["threshold_breaches"] == ["test run 'lostrun' (no trigger): 2 messages missing"]
    assert document["counts"]["runs_without_records"] == 1


def test_unreceived_trigger_has_row(tmp_path):
    records = write_records(tmp_path / "records.jsonl", [record("r1", 0), record("r1", 1, offset_ms=5)])
    sent = write_sent(
        tmp_path / "sent.csv",
        [("r1", 0, "Queue"), ("r1", 1, "Queue"), ("r1", 0, "ServiceBus"), ("r1", 1, "ServiceBus"), ("r1", 2, "ServiceBus")],
        header="test_run,message_id,trigger",
    )
    result = run_message_timing(records, producer_log=sent, scheduler="synchronous").result

    rows = {row["trigger"]: row for row in result.to_dict(orient="records")}
    assert sorted(rows) == ["Queue", "ServiceBus"]
    assert (rows["Queue"]["messages"], rows["Queue"]["missing"]) == (2, 0)
    assert (rows["ServiceBus"]["messages"], rows["ServiceBus"]["missing"]) == (0, 3)


def test_lost_session_has_row(tmp_path):
    records = write_records(tmp_path / "records.jsonl", [record("r1", "s1/1", "ServiceBus"), record("r1", "s1/2", "ServiceBus", 5)])
    sent = write_sent(tmp_path / "sent.csv", [("r1", "s1/1"), ("r1", "s1/2"), ("r1", "s2/1"), ("r1", "s2/2")])
    result = run_message_timing(records, producer_log=sent, by="session", scheduler="synchronous").result

    rows = {row["session"]: row for row in result.to_dict(orient="records")}
    assert sorted(rows) == ["s1", "s2"]
    assert (rows["s1"]["messages"], rows["s1"]["missing"]) == (2, 0)
    assert (rows["s2"]["messages"], rows["s2"]["missing"]) == (0, 2)


def test_records_without_test_run_counted(tmp_path):
    records = write_records(tmp_path / "records.jsonl", [record("r1", 0), record(None, 1), record(None, 2)])
    report = run_message_timing(records, scheduler="synchronous")

    assert report.counts["records_without_test_run"] == 2
    assert "  records without TestRun: 2 (summarised as a run whose test_run is empty)" in report.summary
    assert json.loads(report.to_json())["counts"]["records_without_test_run"] == 2


def test_lost_session_not_counted_as_run(tmp_path):
    records = write_records(tmp_path / "records.jsonl", [record("r1", "s1/1", "ServiceBus")])
    sent = write_sent(tmp_path / "sent.csv", [("r1", "s1/1"), ("r1", "s2/1"), ("gone", "s9/1")])
    report = run_message_timing(records, producer_log=sent, by="session", scheduler="synchronous")

    assert report.counts["runs"] == 2
    assert report.counts["runs_without_records"] == 1  # "gone"; r1 lost only its session s2
