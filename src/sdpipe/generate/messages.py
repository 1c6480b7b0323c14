"""Synthetic consumer timing records with known latencies, duplicates, losses, reordering and clock skew.

:func:`generate_records` returns the records as arrays (the ground truth that
tests compute expected metrics from) and the producer's list of what was sent;
:func:`write_jsonl`, :func:`write_flat` and :func:`write_producer_log` write
them in the shapes that :mod:`sdpipe.io.messages` reads.  The same seed always
gives the same records.

Per message ``i`` of a run: the client enqueue time advances at ``rate_per_s``;
queue latency is log-normal (``latency_median_ms``, ``latency_sigma``);
processing time is exponential (``processing_mean_ms``).  Within a session the
dequeue times are made FIFO first, then ``reorder_rate`` of the messages swap
their dequeue time with the next message of the session.  ``skew_ms`` moves
the clock of the consumer instances listed in ``skewed_instances`` back, which
makes latencies that are shorter than the skew negative.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

NS_PER_MS = 1_000_000
TICK_NS = 100  # .NET DateTime resolution: times carry seven fractional digits

TRIGGERS_WITH_SYSTEM_TIME = ("ServiceBus", "Queue")


@dataclass(frozen=True)
class RunSpec:
    """One synthetic test run.

    ``sessions > 0`` gives Service Bus ids ``"{session}/{n}"`` (``n`` from 1);
    ``producers > 0`` gives Event Hubs ids 1..m per producer, with a partition
    column only if ``with_partition``; otherwise ids are 0..messages-1.
    """

    test_run: str
    trigger: str = "Queue"
    messages: int = 1000
    sessions: int = 0
    producers: int = 0
    with_partition: bool = False
    start: str = "2024-05-01T10:00:00"
    rate_per_s: float = 500.0
    latency_median_ms: float = 40.0
    latency_sigma: float = 0.6
    processing_mean_ms: float = 5.0
    duplicate_rate: float = 0.0
    loss_rate: float = 0.0
    reorder_rate: float = 0.0
    skew_ms: float = 0.0
    instances: int = 4
    skewed_instances: int = 0
    unreadable_rate: float = 0.0


@dataclass
class GeneratedRecords:
    """Delivered records (one row per delivery) and the producer's sent list, as DataFrames.

    Record times are int64 nanoseconds since the epoch, UTC, multiples of
    100 ns.  ``unreadable_field`` names the time written as garbage in the
    files, or is empty.
    """

    records: pd.DataFrame
    sent: pd.DataFrame


def generate_records(runs: list[RunSpec], seed: int = 0) -> GeneratedRecords:
    """Generate the deliveries of every run, in the order a collector would log them."""
    rng = np.random.default_rng(seed)
    records, sent = [], []
    for spec in runs:
        run_records, run_sent = _generate_run(spec, rng)
        records.append(run_records)
        sent.append(run_sent)
    frame = pd.concat(records, ignore_index=True)
    frame = frame.iloc[np.argsort(frame["processed_ns"].to_numpy(), kind="stable")].reset_index(drop=True)
    return GeneratedRecords(frame, pd.concat(sent, ignore_index=True))


def _generate_run(spec: RunSpec, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    n = spec.messages
    session, seq, partition = _ids(spec, n)
    message_id = _message_ids(spec, session, seq)

    start_ns = pd.Timestamp(spec.start, tz="UTC").value
    enqueue = start_ns + (np.arange(n) / spec.rate_per_s * 1e9).astype(np.int64)
    enqueue = _ticks(enqueue + rng.integers(0, NS_PER_MS, n))
    system = _ticks(enqueue + rng.integers(0, 3 * NS_PER_MS, n))
    latency = rng.lognormal(np.log(spec.latency_median_ms), spec.latency_sigma, n) * NS_PER_MS
    dequeued = _ticks(enqueue + latency.astype(np.int64))
    if spec.sessions:
        dequeued = _fifo_within_sessions(session, seq, dequeued, spec.reorder_rate, rng)
    processed = _ticks(dequeued + (rng.exponential(spec.processing_mean_ms, n) * NS_PER_MS).astype(np.int64))
    instance = rng.integers(0, spec.instances, n)

    sent = pd.DataFrame({"test_run": spec.test_run, "trigger": spec.trigger, "message_id": message_id, "partition": partition})
    delivered = rng.random(n) >= spec.loss_rate
    frame = pd.DataFrame(
        {
            "test_run": spec.test_run,
            "trigger": spec.trigger,
            "partition": partition if spec.with_partition else None,
            "message_id": message_id,
            "session": session,
            "seq": seq,
            "instance": instance,
            "client_enqueue_ns": enqueue,
            "system_enqueued_ns": system if spec.trigger in TRIGGERS_WITH_SYSTEM_TIME else np.iinfo(np.int64).min,
            "dequeued_ns": dequeued,
            "processed_ns": processed,
        }
    )[delivered]
    frame = _add_duplicates(frame, spec.duplicate_rate, rng)
    frame = _skew_clocks(frame, spec)
    frame["unreadable_field"] = np.where(rng.random(len(frame)) < spec.unreadable_rate, "dequeued_time", "")
    return frame.reset_index(drop=True), sent


def _ids(spec: RunSpec, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    index = np.arange(n)
    if spec.sessions:
        groups = index % spec.sessions
        session = np.array([f"{spec.test_run}-s{g:04d}" for g in range(spec.sessions)], dtype=object)[groups]
        return session, index // spec.sessions + 1, np.full(n, None, dtype=object)
    if spec.producers:
        groups = index % spec.producers
        partition = np.array([str(g) for g in range(spec.producers)], dtype=object)[groups]
        return np.full(n, None, dtype=object), index // spec.producers + 1, partition
    return np.full(n, None, dtype=object), index, np.full(n, None, dtype=object)


def _message_ids(spec: RunSpec, session: np.ndarray, seq: np.ndarray) -> np.ndarray:
    if spec.sessions:
        return np.array([f"{s}/{q}" for s, q in zip(session, seq)], dtype=object)
    return np.array([str(q) for q in seq], dtype=object)


def _ticks(nanos: np.ndarray) -> np.ndarray:
    return (np.asarray(nanos, dtype=np.int64) // TICK_NS) * TICK_NS


def _fifo_within_sessions(session, seq, dequeued, reorder_rate, rng) -> np.ndarray:
    """Make dequeue times rise with ``seq`` in each session, then swap some neighbours."""
    order = np.lexsort((seq, session.astype(str)))
    times = pd.Series(dequeued[order]).groupby(session[order]).cummax().to_numpy().copy()
    same_session_next = np.r_[session[order][1:] == session[order][:-1], False]
    swap = (rng.random(len(order)) < reorder_rate) & same_session_next
    swap &= ~np.r_[False, swap[:-1]]  # a message takes part in one swap at most
    for i in np.flatnonzero(swap):
        times[i], times[i + 1] = times[i + 1], times[i] + TICK_NS
    result = np.empty_like(dequeued)
    result[order] = times
    return result


def _add_duplicates(frame: pd.DataFrame, rate: float, rng: np.random.Generator) -> pd.DataFrame:
    if rate <= 0 or frame.empty:
        return frame
    again = frame[rng.random(len(frame)) < rate].copy()
    delay = _ticks(rng.uniform(200, 5000, len(again)) * NS_PER_MS)
    again["dequeued_ns"] += delay
    again["processed_ns"] += delay
    return pd.concat([frame, again], ignore_index=True)


def _skew_clocks(frame: pd.DataFrame, spec: RunSpec) -> pd.DataFrame:
    if spec.skewed_instances <= 0 or spec.skew_ms == 0:
        return frame
    shift = int(spec.skew_ms * NS_PER_MS) // TICK_NS * TICK_NS
    skewed = frame["instance"].to_numpy() < spec.skewed_instances
    frame.loc[skewed, "dequeued_ns"] -= shift
    frame.loc[skewed, "processed_ns"] -= shift
    return frame


def format_times(nanos: np.ndarray) -> np.ndarray:
    """Format UTC nanoseconds as .NET does: seven fractional digits and ``Z``; NaT gives None."""
    nanos = np.asarray(nanos, dtype=np.int64)
    text = np.datetime_as_string(nanos.astype("datetime64[ns]"), unit="ns").astype(object)
    result = np.array([value[:-2] + "Z" for value in text], dtype=object)
    result[nanos == np.iinfo(np.int64).min] = None
    return result


def _time_columns(records: pd.DataFrame) -> dict[str, np.ndarray]:
    columns = {
        "message_processed_time": format_times(records["processed_ns"].to_numpy()),
        "client_enqueue_time_utc": format_times(records["client_enqueue_ns"].to_numpy()),
        "system_enqueued_time": format_times(records["system_enqueued_ns"].to_numpy()),
        "dequeued_time": format_times(records["dequeued_ns"].to_numpy()),
    }
    garbled = records["unreadable_field"].to_numpy() == "dequeued_time"
    columns["dequeued_time"][garbled] = "not a time"
    return columns


def write_jsonl(records: pd.DataFrame, path: str | Path) -> Path:
    """Write records as JSON lines in the sample's nested shape; integer ids as JSON numbers."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    times = _time_columns(records)
    with path.open("w", encoding="utf-8") as handle:
        for i, row in enumerate(records.itertuples(index=False)):
            properties = {
                "InstanceId": f"instance-{row.instance}",
                "ExecutionId": f"execution-{i}",
                "ElapsedTimeMs": (row.dequeued_ns - row.client_enqueue_ns) / NS_PER_MS,
                "ClientEnqueueTimeUtc": times["client_enqueue_time_utc"][i],
                "MessageId": row.message_id if row.session is not None else int(row.message_id),
                "DequeuedTime": times["dequeued_time"][i],
                "Language": "csharp",
            }
            if times["system_enqueued_time"][i] is not None:
                properties["SystemEnqueuedTime"] = times["system_enqueued_time"][i]
            if row.partition is not None:
                properties["Partition"] = row.partition
            record = {
                "MessageProcessedTime": times["message_processed_time"][i],
                "CloudProvider": "Azure",
                "TestRun": row.test_run,
                "Trigger": row.trigger,
                "Properties": properties,
            }
            handle.write(json.dumps(record, separators=(",", ":")) + "\n")
    return path


def flat_frame(records: pd.DataFrame) -> pd.DataFrame:
    """Return the records in the flat snake_case layout of CSV and parquet files."""
    times = _time_columns(records)
    return pd.DataFrame(
        {
            "message_processed_time": times["message_processed_time"],
            "cloud_provider": "Azure",
            "test_run": records["test_run"].to_numpy(),
            "trigger": records["trigger"].to_numpy(),
            "instance_id": [f"instance-{i}" for i in records["instance"]],
            "elapsed_time_ms": (records["dequeued_ns"] - records["client_enqueue_ns"]).to_numpy() / NS_PER_MS,
            "client_enqueue_time_utc": times["client_enqueue_time_utc"],
            "system_enqueued_time": times["system_enqueued_time"],
            "message_id": records["message_id"].to_numpy(),
            "dequeued_time": times["dequeued_time"],
            "language": "csharp",
            "partition": records["partition"].to_numpy(),
        }
    )


def write_flat(records: pd.DataFrame, path: str | Path) -> Path:
    """Write records flat, as CSV or parquet after the file's suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = flat_frame(records)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def write_producer_log(sent: pd.DataFrame, path: str | Path) -> Path:
    """Write the producer's list of sent messages as CSV: test_run, trigger, message_id, partition."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sent.to_csv(path, index=False)
    return path
