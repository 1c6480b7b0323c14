"""``sdpipe run message-timing`` and ``sdpipe generate messages`` as a user runs them."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from sdpipe.cli.errors import run_with_exit_codes
from sdpipe.cli.main import cli
from sdpipe.generate.messages import RunSpec, generate_records, write_jsonl, write_producer_log

REQUIRED_FIELDS = (
    "test_run", "trigger", "messages", "duplicates", "missing", "latency_ms_mean", "latency_ms_p50", "latency_ms_p90",
    "latency_ms_p99", "latency_ms_p999", "latency_ms_max", "negative_latencies", "fifo_violations", "total_runtime_s",
    "throughput_per_s", "avg_individual_process_time_ms",
)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    generated = generate_records([RunSpec("lossy", "Queue", 400, loss_rate=0.05), RunSpec("clean", "Queue", 300, start="2024-05-01T11:00:00")], seed=5)
    return {
        "records": str(write_jsonl(generated.records, folder / "records.jsonl")),
        "sent": str(write_producer_log(generated.sent, folder / "sent.csv")),
        "generated": generated,
    }


def invoke(args: list[str]) -> tuple[int, str, str]:
    """Run ``sdpipe ARGS`` in this process; return exit code, stdout and stderr."""
    with CliRunner().isolation() as (stdout, stderr, _):
        code = run_with_exit_codes(cli, args)
        return code, stdout.getvalue().decode(), stderr.getvalue().decode()


def test_json_document_has_required_fields(files, tmp_path):
    code, stdout, _ = invoke(["run", "message-timing", "-i", files["records"], "-o", str(tmp_path / "out"), "--json", "--scheduler", "synchronous"])
    assert code == 0
    document = json.loads(stdout)
    assert document["pipeline"] == "message-timing"
    assert {row["test_run"] for row in document["result"]} == {"lossy", "clean"}
    for row in document["result"]:
        assert set(REQUIRED_FIELDS) <= set(row)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        ["_SUCCESS", "manifest.json", "result.csv", "result.parquet", "timeseries.parquet", "timeseries.png"]
    )
    table = pd.read_parquet(tmp_path / "out" / "result.parquet")
    assert list(table["test_run"]) == ["clean", "lossy"]


def test_fail_on_loss_exits_3(files, tmp_path):
    args = ["run", "message-timing", "-i", files["records"], "--producer-log", files["sent"], "-o", str(tmp_path / "out"), "--fail-on-loss"]
    code, stdout, _ = invoke(args)
    sent = files["generated"].sent
    lost = len(set(sent[sent.test_run == "lossy"].message_id) - set(files["generated"].records.message_id[files["generated"].records.test_run == "lossy"]))
    assert lost > 0
    assert code == 3
    assert f"threshold exceeded: test run 'lossy' (Queue): {lost} messages missing" in stdout
    assert "'clean'" not in stdout.split("threshold exceeded")[1]


def test_max_p99_exits_3(files, tmp_path):
    code, stdout, _ = invoke(["run", "message-timing", "-i", files["records"], "-o", str(tmp_path / "out"), "--max-p99-ms", "0.5"])
    assert code == 3
    assert "is above --max-p99-ms 0.5" in stdout


def test_generous_threshold_exits_0(files, tmp_path):
    code, _, _ = invoke(["run", "message-timing", "-i", files["records"], "-o", str(tmp_path / "out"), "--max-p99-ms", "100000", "-q"])
    assert code == 0


def test_missing_input_error(tmp_path):
    code, _, stderr = invoke(["run", "message-timing", "-i", str(tmp_path / "none-*.jsonl"), "-o", str(tmp_path / "out")])
    assert code == 1
    assert stderr.startswith(f"Error: no input file matches {str(tmp_path / 'none-*.jsonl')!r}")


def test_help_lists_options():
    code, stdout, _ = invoke(["run", "message-timing", "--help"])
    assert code == 0
    for option in ("--producer-log", "--enqueue-time", "--by", "--max-p99-ms", "--fail-on-loss", "--percentiles"):
        assert option in stdout


def test_generate_command_writes_readable_runs(tmp_path):
    code, stdout, _ = invoke(["generate", "messages", "--runs", "3", "--messages", "300", "--output", str(tmp_path)])
    assert code == 0
    assert stdout.split() == [str(tmp_path / "records.jsonl"), str(tmp_path / "producer-log.csv")]
    code, stdout, _ = invoke(["run", "message-timing", "-i", str(tmp_path / "records.jsonl"), "-o", str(tmp_path / "out"), "--json", "-q"])
    rows = json.loads(stdout)["result"]
    assert [row["trigger"] for row in rows] == ["ServiceBus", "Queue", "EventHub"]
    sent = pd.read_csv(tmp_path / "producer-log.csv")
    assert len(sent) == 900


def test_python_api_returns_frame(files):
    import sdpipe

    frame = sdpipe.message_timing(files["records"], scheduler="synchronous")
    assert list(frame["test_run"]) == ["clean", "lossy"]
    assert frame.attrs["counts"]["records"] == len(files["generated"].records)
