"""message-timing metrics against an independent computation on the generator's arrays.

The expected values are computed here from the metric definitions with plain
Python and numpy (dicts, loops, ``np.percentile``), on the records the
generator returns, never from sdpipe's output.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pandas as pd
import pytest

from sdpipe.generate.messages import RunSpec, generate_records, write_flat, write_jsonl, write_producer_log
from sdpipe.pipelines.message_timing.api import run_message_timing

NAT = np.iinfo(np.int64).min
RUNS = [
    RunSpec("sessions", "ServiceBus", 2400, sessions=6, duplicate_rate=0.03, loss_rate=0.02, reorder_rate=0.05,
            skew_ms=60, skewed_instances=1, unreadable_rate=0.01),
    RunSpec("queue", "Queue", 1500, duplicate_rate=0.02, loss_rate=0.03, start="2024-05-01T11:00:00",
            latency_median_ms=120, latency_sigma=1.0),
    RunSpec("grid", "EventGrid", 800, loss_rate=0.01, start="2024-05-01T11:30:00", skew_ms=500, skewed_instances=2),
    RunSpec("hub-partitioned", "EventHub", 900, producers=3, with_partition=True, duplicate_rate=0.02,
            loss_rate=0.02, start="2024-05-01T12:00:00"),
    RunSpec("hub-anonymous", "EventHub", 600, producers=2, duplicate_rate=0.02, start="2024-05-01T12:30:00"),
]
STATISTIC_NAMES = ("mean", "p50", "p90", "p99", "p999", "max")


@pytest.fixture(scope="module")
def generated():
    return generate_records(RUNS, seed=7)


@pytest.fixture(scope="module")
def record_file(generated, tmp_path_factory):
    return write_jsonl(generated.records, tmp_path_factory.mktemp("records") / "collector.jsonl")


@pytest.fixture(scope="module")
def result(record_file):
    report = run_message_timing(str(record_file), scheduler="synchronous", blocksize=64 * 1024)
    return report.result.set_index("test_run")


# ---- the independent computation ---------------------------------------------------------------


def readable(rows: pd.DataFrame, column: str) -> np.ndarray:
    values = rows[column].to_numpy().copy()
    if column == "dequeued_ns":
        values[rows["unreadable_field"].to_numpy() == "dequeued_time"] = NAT
    return values


def first_delivery_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Pick, per (partition, message id), the delivery with the earliest readable dequeue time."""
    dequeued = readable(rows, "dequeued_ns")
    best: dict[tuple, tuple] = {}
    for position, (partition, message_id, processed) in enumerate(
        zip(rows["partition"], rows["message_id"], rows["processed_ns"])
    ):
        when = dequeued[position] if dequeued[position] != NAT else np.iinfo(np.int64).max
        candidate = (when, processed, position)
        key = (partition, message_id)
        if key not in best or candidate < best[key]:
            best[key] = candidate
    positions = sorted(value[2] for value in best.values())
    return rows.iloc[positions]


def durations(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    keep = (start != NAT) & (end != NAT)
    return (end[keep] - start[keep]) / 1e6


def statistics(values: np.ndarray) -> dict[str, float]:
    kept = values[values >= 0]
    p50, p90, p99, p999 = np.percentile(kept, [50, 90, 99, 99.9])
    return {"mean": kept.mean(), "p50": p50, "p90": p90, "p99": p99, "p999": p999, "max": kept.max()}


def gaps(first: pd.DataFrame) -> int:
    numbers = defaultdict(set)
    for partition, session, seq in zip(first["partition"], first["session"], first["seq"]):
        numbers[(partition, session)].add(int(seq))
    return sum(max(found) - min(found) + 1 - len(found) for found in numbers.values())


def fifo_violations(first: pd.DataFrame) -> int:
    dequeued = readable(first, "dequeued_ns")
    by_session = defaultdict(list)
    for session, seq, when in zip(first["session"], first["seq"], dequeued):
        if when != NAT:
            by_session[session].append((int(seq), int(when)))
    count = 0
    for messages in by_session.values():
        for seq, when in messages:
            if any(other_seq < seq and other_when > when for other_seq, other_when in messages):
                count += 1
    return count


def expected_row(rows: pd.DataFrame, enqueue: str = "client") -> dict:
    first = first_delivery_rows(rows)
    processed = rows["processed_ns"].to_numpy()
    client = rows["client_enqueue_ns"].to_numpy()
    runtime = (processed.max() - client.min()) / 1e9
    enqueue_times = first["client_enqueue_ns" if enqueue == "client" else "system_enqueued_ns"].to_numpy()
    latency = durations(enqueue_times, readable(first, "dequeued_ns"))
    processing = durations(readable(first, "dequeued_ns"), first["processed_ns"].to_numpy())
    per_second = Counter(first["processed_ns"].to_numpy() // 1_000_000_000)
    return {
        "records": len(rows),
        "messages": len(first),
        "duplicates": len(rows) - len(first),
        "avg_individual_process_time_ms": ((processed - client) / 1e6).mean(),
        "total_runtime_s": runtime,
        "latency": statistics(latency),
        "negative_latencies": int((latency < 0).sum()),
        "processing": statistics(processing),
        "negative_processing_times": int((processing < 0).sum()),
        "throughput_per_s": len(first) / runtime,
        "peak_rate_per_s": max(per_second.values()),
        "first": first,
    }


def run_rows(generated, name: str) -> pd.DataFrame:
    return generated.records[generated.records["test_run"] == name]


# ---- the tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sessions", "queue", "grid", "hub-partitioned"])
def test_counts_match_definition(generated, result, name):
    expected = expected_row(run_rows(generated, name))
    row = result.loc[name]
    assert row["records"] == expected["records"]
    assert row["messages"] == expected["messages"]
    assert row["duplicates"] == expected["duplicates"]
    assert row["missing"] == gaps(expected["first"])
    assert row["missing_method"] == "gaps"


@pytest.mark.parametrize("name", ["sessions", "queue", "grid", "hub-partitioned"])
def test_latency_statistics_match_numpy(generated, result, name):
    expected = expected_row(run_rows(generated, name))
    row = result.loc[name]
    for statistic in STATISTIC_NAMES:
        assert row[f"latency_ms_{statistic}"] == pytest.approx(expected["latency"][statistic], rel=1e-12), statistic
        assert row[f"processing_ms_{statistic}"] == pytest.approx(expected["processing"][statistic], rel=1e-12), statistic
    assert row["negative_latencies"] == expected["negative_latencies"]
    assert row["negative_processing_times"] == expected["negative_processing_times"]


@pytest.mark.parametrize("name", ["sessions", "queue", "grid", "hub-partitioned", "hub-anonymous"])
def test_sample_query_reproduced(generated, result, name):
    expected = expected_row(run_rows(generated, name))
    row = result.loc[name]
    assert row["avg_individual_process_time_ms"] == pytest.approx(expected["avg_individual_process_time_ms"], rel=1e-12)
    assert row["total_runtime_s"] == pytest.approx(expected["total_runtime_s"], rel=1e-12)


@pytest.mark.parametrize("name", ["sessions", "queue", "grid", "hub-partitioned"])
def test_throughput_and_peak_rate(generated, result, name):
    expected = expected_row(run_rows(generated, name))
    row = result.loc[name]
    assert row["throughput_per_s"] == pytest.approx(expected["throughput_per_s"], rel=1e-12)
    assert row["peak_rate_per_s"] == expected["peak_rate_per_s"]


def test_planted_anomalies_are_present(generated, result):
    # The expectations above only prove something if every anomaly kind really occurs.
    sessions = expected_row(run_rows(generated, "sessions"))
    assert sessions["duplicates"] > 0
    assert gaps(sessions["first"]) > 0
    assert sessions["negative_latencies"] > 0
    assert fifo_violations(sessions["first"]) > 0
    assert result.loc["grid", "negative_latencies"] > 0
    assert result.loc["sessions", "unreadable_times"] == (run_rows(generated, "sessions")["unreadable_field"] != "").sum()


def test_fifo_violations_match_definition(generated, result):
    expected = expected_row(run_rows(generated, "sessions"))
    assert result.loc["sessions", "fifo_violations"] == fifo_violations(expected["first"])


@pytest.mark.parametrize("name", ["queue", "grid", "hub-partitioned", "hub-anonymous"])
def test_fifo_null_without_sessions(result, name):
    assert pd.isna(result.loc[name, "fifo_violations"])


def test_event_hubs_without_partition_unknown(generated, result):
    row = result.loc["hub-anonymous"]
    assert not row["ids_distinguishable"]
    assert pd.isna(row["messages"])
    assert pd.isna(row["duplicates"])
    assert pd.isna(row["missing"])
    rows = run_rows(generated, "hub-anonymous")
    latency = durations(rows["client_enqueue_ns"].to_numpy(), readable(rows, "dequeued_ns"))
    assert row["latency_ms_p50"] == pytest.approx(np.percentile(latency[latency >= 0], 50), rel=1e-12)


def test_producer_log_counts_lost_exactly(generated, tmp_path):
    records = write_jsonl(generated.records, tmp_path / "records.jsonl")
    log = write_producer_log(generated.sent, tmp_path / "sent.csv")
    report = run_message_timing(str(records), producer_log=str(log), scheduler="synchronous")
    result = report.result.set_index("test_run")
    for name in ("sessions", "queue", "grid", "hub-partitioned"):
        sent = generated.sent[generated.sent["test_run"] == name]
        rows = run_rows(generated, name)
        use_partition = rows["partition"].notna().any()
        expected_ids = set(zip(sent["partition"] if use_partition else [None] * len(sent), sent["message_id"]))
        received = set(zip(rows["partition"], rows["message_id"]))
        assert result.loc[name, "missing"] == len(expected_ids - received), name
        assert result.loc[name, "missing_method"] == "producer_log"
    assert pd.isna(result.loc["hub-anonymous", "missing"])


def test_system_enqueue_time(generated, record_file):
    report = run_message_timing(str(record_file), enqueue_time="system", scheduler="synchronous")
    result = report.result.set_index("test_run")
    expected = expected_row(run_rows(generated, "queue"), enqueue="system")
    for statistic in STATISTIC_NAMES:
        assert result.loc["queue", f"latency_ms_{statistic}"] == pytest.approx(expected["latency"][statistic], rel=1e-12)
    # Event Grid records carry no SystemEnqueuedTime: no latency at all, every message counted as without one.
    assert pd.isna(result.loc["grid", "latency_ms_p50"])
    assert result.loc["grid", "without_latency"] == result.loc["grid", "messages"]


def test_by_session_rows(generated, record_file):
    report = run_message_timing(str(record_file), by="session", scheduler="synchronous")
    rows = report.result[report.result["test_run"] == "sessions"].set_index("session")
    run = run_rows(generated, "sessions")
    assert sorted(rows.index) == sorted(run["session"].unique())
    for session, group in run.groupby("session"):
        expected = expected_row(group)
        assert rows.loc[session, "messages"] == expected["messages"]
        assert rows.loc[session, "duplicates"] == expected["duplicates"]
        assert rows.loc[session, "missing"] == gaps(expected["first"])
        assert rows.loc[session, "fifo_violations"] == fifo_violations(expected["first"])
        assert rows.loc[session, "latency_ms_p99"] == pytest.approx(expected["latency"]["p99"], rel=1e-12)


def test_by_partition_rows(generated, record_file):
    report = run_message_timing(str(record_file), by="partition", scheduler="synchronous")
    rows = report.result[report.result["test_run"] == "hub-partitioned"].set_index("partition")
    run = run_rows(generated, "hub-partitioned")
    for partition, group in run.groupby("partition"):
        expected = expected_row(group)
        assert rows.loc[partition, "messages"] == expected["messages"]
        assert rows.loc[partition, "missing"] == gaps(expected["first"])


@pytest.mark.parametrize("suffix", ["csv", "parquet"], ids=["csv", "parquet"])
def test_flat_files_give_same_result(generated, result, tmp_path, suffix):
    path = write_flat(generated.records, tmp_path / f"records.{suffix}")
    flat = run_message_timing(str(path), scheduler="synchronous").result.set_index("test_run")
    pd.testing.assert_frame_equal(flat.sort_index(), result.sort_index(), check_exact=False, rtol=1e-12)


def test_files_split_by_run_and_block(generated, result, tmp_path):
    # Every run spread over three files, read in small blocks: the same figures as one file.
    for part, rows in enumerate(np.array_split(np.arange(len(generated.records)), 3)):
        write_jsonl(generated.records.iloc[rows], tmp_path / f"part-{part}.jsonl")
    split = run_message_timing(str(tmp_path / "*.jsonl"), scheduler="threads", blocksize=4096).result.set_index("test_run")
    pd.testing.assert_frame_equal(split.sort_index(), result.sort_index(), check_exact=False, rtol=1e-12)


def test_per_second_series(generated, record_file, tmp_path):
    report = run_message_timing(str(record_file), output=str(tmp_path / "out"), scheduler="synchronous")
    series = pd.read_parquet(tmp_path / "out" / "timeseries.parquet")
    run = series[series["test_run"] == "queue"]
    first = first_delivery_rows(run_rows(generated, "queue"))
    seconds = first["processed_ns"].to_numpy() // 1_000_000_000
    counts = Counter(seconds)
    assert run["messages"].sum() == report.result.set_index("test_run").loc["queue", "messages"]
    for _, row in run.iterrows():
        second = row["second"].value // 1_000_000_000
        assert row["messages"] == counts[second]
        in_second = first[seconds == second]
        latency = durations(in_second["client_enqueue_ns"].to_numpy(), readable(in_second, "dequeued_ns"))
        latency = latency[latency >= 0]
        assert row["latency_ms_p50"] == pytest.approx(np.percentile(latency, 50), rel=1e-12)
        assert row["latency_ms_p99"] == pytest.approx(np.percentile(latency, 99), rel=1e-12)
    assert (tmp_path / "out" / "timeseries.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
