"""Pure metrics of message-timing: the records of one test run in, result rows and a per-second series out.

Definitions (all per test run and trigger, or per session or partition of it):

- ``avg_individual_process_time_ms`` and ``total_runtime_s`` reproduce the
  Azure sample's query: the mean over every record of ``processed -
  client enqueue``, and ``max(processed) - min(client enqueue)``.
- ``messages`` counts distinct message ids (with the partition where records
  name one); ``duplicates`` the records beyond the first for a message.
- ``missing`` is exact with a producer log (sent ids not received); otherwise
  it counts the numbers absent between the lowest and highest ``n`` seen in
  each session, or in the integer ids of a run without sessions (per partition).
- Latency (``dequeued - enqueue``) and processing time (``processed -
  dequeued``) use the first delivery of each message (earliest dequeue time);
  negative values are counted, not summarised.
- ``fifo_violations``: messages of a session dequeued before a lower-numbered
  message of the same session; null for runs without sessions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

NAT = np.iinfo(np.int64).min
NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
QUANTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p999", 99.9))
STATISTICS = ("mean", "p50", "p90", "p99", "p999", "max")
ENQUEUE_TIMES = ("client", "system")
BY_CHOICES = ("session", "partition")
PERCENTILE_MODES = ("exact", "approximate")
# Values below this many milliseconds fall in the approximate histogram's zero bucket.
APPROXIMATE_MIN_MS = 0.001


@dataclass(frozen=True)
class TimingParams:
    """The options of one message-timing run that the metrics depend on."""

    enqueue_time: str = "client"
    by: str | None = None
    percentiles: str = "exact"
    relative_accuracy: float = 0.01


@dataclass
class RunRecords:
    """The records of one run (or one session or partition of it) as arrays.

    Times are int64 nanoseconds since the epoch (UTC) with :data:`NAT` where
    missing or unreadable; ``seq`` is valid where ``has_seq``; object arrays
    hold ``None`` where a value is missing.
    """

    partition: np.ndarray
    message_id: np.ndarray
    session: np.ndarray
    seq: np.ndarray
    has_seq: np.ndarray
    processed: np.ndarray
    client_enqueue: np.ndarray
    system_enqueued: np.ndarray
    dequeued: np.ndarray
    time_errors: np.ndarray

    def __len__(self) -> int:
        return len(self.message_id)

    def take(self, rows: np.ndarray) -> RunRecords:
        return RunRecords(**{name: value[rows] for name, value in vars(self).items()})


@dataclass
class SentIds:
    """The producer's sent messages of one run: partition, message id, session as object arrays."""

    partition: np.ndarray
    message_id: np.ndarray
    session: np.ndarray

    def take(self, rows: np.ndarray) -> SentIds:
        return SentIds(self.partition[rows], self.message_id[rows], self.session[rows])


def is_event_hubs(trigger: str | None) -> bool:
    """Return whether a trigger name is Event Hubs', whose ids repeat across producers."""
    letters = "".join(ch for ch in (trigger or "").lower() if ch.isalnum())
    return letters.startswith("eventhub")


def summarise_run(
    records: RunRecords, trigger: str | None, params: TimingParams, sent: SentIds | None = None
) -> list[dict[str, Any]]:
    """Return the result rows of one run: one row, or one per session or partition with ``params.by``."""
    if params.by is None:
        return [summarise(records, trigger, params, sent)]

    values = records.session if params.by == "session" else records.partition
    labels = pd.Series(values, dtype=object).fillna("\x00")
    groups = labels.groupby(labels, sort=True).indices
    sent_labels = None
    if sent is not None:
        sent_values = sent.session if params.by == "session" else sent.partition
        sent_labels = pd.Series(sent_values, dtype=object).fillna("\x00").to_numpy()
        if _labels_comparable(records, sent, params.by):
            # A session or partition that lost every message still gets its row.
            all_labels = sorted({*groups, *sent_labels})
            groups = {label: groups.get(label, np.zeros(0, dtype=np.int64)) for label in all_labels}
    rows = []
    for label, index in groups.items():
        group_sent = None if sent_labels is None else sent.take(np.flatnonzero(sent_labels == label))
        row = summarise(records.take(np.asarray(index)), trigger, params, group_sent)
        rows.append({params.by: None if label == "\x00" else label, **row})
    return rows


def _labels_comparable(records: RunRecords, sent: SentIds, by: str) -> bool:
    """Return whether the producer log's sessions or partitions name the same groups as the records'.

    Partitions are compared only when both sides name them (as in
    :func:`count_missing`); a run without records takes the producer log's groups.
    """
    if len(records) == 0 or by == "session":
        return True
    return bool(np.any(records.partition != None)) and bool(np.any(sent.partition != None))  # noqa: E711


def summarise(records: RunRecords, trigger: str | None, params: TimingParams, sent: SentIds | None = None) -> dict[str, Any]:
    """Return every metric of one group of records as a flat dict (see the module docstring)."""
    row: dict[str, Any] = {"records": len(records)}
    row.update(sample_query(records))

    identified = np.flatnonzero(records.message_id != None)  # noqa: E711 - element-wise test for None
    row["records_without_id"] = len(records) - len(identified)
    row["unreadable_times"] = int(np.count_nonzero(records.time_errors))
    ambiguous = is_event_hubs(trigger) and bool(np.any(records.partition[identified] == None))  # noqa: E711
    row["ids_distinguishable"] = not ambiguous

    if ambiguous:
        first = identified
        row.update(messages=None, duplicates=None, missing=None, missing_method=None)
    else:
        first = first_deliveries(records.take(identified))
        first = identified[first]
        row["messages"] = len(first)
        row["duplicates"] = len(identified) - len(first)
        row["missing"], row["missing_method"] = count_missing(records.take(first), sent)

    delivered = records.take(first)
    enqueue = delivered.client_enqueue if params.enqueue_time == "client" else delivered.system_enqueued
    latency, negative_latencies = durations_ms(enqueue, delivered.dequeued)
    processing, negative_processing = durations_ms(delivered.dequeued, delivered.processed)
    row["negative_latencies"] = negative_latencies
    row["negative_processing_times"] = negative_processing
    row["without_latency"] = int(np.count_nonzero((enqueue == NAT) | (delivered.dequeued == NAT)))
    row.update(describe(latency, "latency_ms", params))
    row.update(describe(processing, "processing_ms", params))

    handled = len(first)
    runtime = row["total_runtime_s"]
    row["throughput_per_s"] = handled / runtime if runtime and runtime > 0 else None
    row["peak_rate_per_s"] = peak_rate(delivered.processed)
    row["fifo_violations"] = fifo_violations(delivered)
    return row


def sample_query(records: RunRecords) -> dict[str, Any]:
    """Reproduce the sample's query: mean of processed - client enqueue, and the total runtime."""
    both = (records.processed != NAT) & (records.client_enqueue != NAT)
    durations = (records.processed[both] - records.client_enqueue[both]) / NS_PER_MS
    processed = records.processed[records.processed != NAT]
    enqueued = records.client_enqueue[records.client_enqueue != NAT]
    runtime = (int(processed.max()) - int(enqueued.min())) / NS_PER_S if len(processed) and len(enqueued) else None
    return {
        "avg_individual_process_time_ms": float(durations.mean()) if len(durations) else None,
        "total_runtime_s": runtime,
    }


def first_deliveries(records: RunRecords) -> np.ndarray:
    """Return the row of each message's first delivery: earliest dequeue, then earliest processing.

    Messages are told apart by partition and message id; every row must have an id.
    """
    codes = identity_codes(records.partition, records.message_id)
    dequeued = np.where(records.dequeued == NAT, np.iinfo(np.int64).max, records.dequeued)
    processed = np.where(records.processed == NAT, np.iinfo(np.int64).max, records.processed)
    order = np.lexsort((np.arange(len(codes)), processed, dequeued, codes))
    sorted_codes = codes[order]
    starts = np.r_[True, sorted_codes[1:] != sorted_codes[:-1]] if len(order) else np.zeros(0, dtype=bool)
    return np.sort(order[starts])


def identity_codes(partition: np.ndarray, message_id: np.ndarray) -> np.ndarray:
    """Return one integer per distinct (partition, message id) pair."""
    partition_codes, partition_values = pd.factorize(pd.Series(partition, dtype=object), use_na_sentinel=True)
    id_codes, id_values = pd.factorize(pd.Series(message_id, dtype=object), use_na_sentinel=True)
    return (partition_codes.astype(np.int64) + 1) * (len(id_values) + 1) + id_codes.astype(np.int64)


def count_missing(delivered: RunRecords, sent: SentIds | None) -> tuple[int | None, str | None]:
    """Count lost messages: sent but never received with a producer log, else gaps in the numbers."""
    if sent is not None:
        if len(sent.message_id) == 0 and len(delivered):
            return None, None
        # Partitions are compared only where the records name them, or as the producer
        # log names them when there are no records.
        with_partition = len(delivered) == 0 or bool(np.any(delivered.partition != None))  # noqa: E711
        received = set(zip(delivered.partition.tolist(), delivered.message_id.tolist()))
        if with_partition:
            expected = set(zip(sent.partition.tolist(), sent.message_id.tolist()))
        else:
            expected = {(None, message_id) for message_id in sent.message_id.tolist()}
        return len(expected - received), "producer_log"

    if len(delivered) == 0:
        return 0, "gaps"
    if not delivered.has_seq.all():
        return None, None
    groups = pd.DataFrame(
        {"partition": delivered.partition, "session": delivered.session, "seq": delivered.seq}
    ).groupby(["partition", "session"], dropna=False)["seq"]
    span = groups.max() - groups.min() + 1
    return int((span - groups.nunique()).sum()), "gaps"


def durations_ms(start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, int]:
    """Return the non-negative ``end - start`` values in ms and the number of negative ones."""
    both = (start != NAT) & (end != NAT)
    values = (end[both] - start[both]) / NS_PER_MS
    negative = values < 0
    return values[~negative], int(np.count_nonzero(negative))


def describe(values: np.ndarray, prefix: str, params: TimingParams) -> dict[str, float | None]:
    """Return mean, p50, p90, p99, p99.9 and max of ``values`` under ``prefix_``."""
    if len(values) == 0:
        return {f"{prefix}_{name}": None for name in STATISTICS}
    if params.percentiles == "approximate":
        histogram = LogHistogram.from_values(values, params.relative_accuracy)
        quantiles = [histogram.percentile(q) for _, q in QUANTILES]
    else:
        quantiles = np.percentile(values, [q for _, q in QUANTILES]).tolist()
    result = {f"{prefix}_mean": float(values.mean())}
    result.update({f"{prefix}_{name}": float(v) for (name, _), v in zip(QUANTILES, quantiles)})
    result[f"{prefix}_max"] = float(values.max())
    return result


def peak_rate(processed: np.ndarray) -> int | None:
    """Return the most messages handled within one whole UTC second of processing time."""
    seconds = processed[processed != NAT] // NS_PER_S
    if len(seconds) == 0:
        return None
    _, counts = np.unique(seconds, return_counts=True)
    return int(counts.max())


def fifo_violations(delivered: RunRecords) -> int | None:
    """Count messages dequeued before a lower-numbered message of their session; None without sessions."""
    in_session = (delivered.session != None) & delivered.has_seq & (delivered.dequeued != NAT)  # noqa: E711
    if not np.any(delivered.session != None):  # noqa: E711
        return None
    session_codes, _ = pd.factorize(pd.Series(delivered.session[in_session], dtype=object))
    seq = delivered.seq[in_session]
    order = np.lexsort((seq, delivered.dequeued[in_session], session_codes))
    codes, numbers = session_codes[order][::-1], seq[order][::-1]
    # Walking backwards from the last dequeue, the minimum number seen so far in the session
    # is the lowest number dequeued later; a message above it was dequeued too early.
    later_min = pd.Series(numbers).groupby(codes).cummin().groupby(codes).shift(1)
    return int(np.count_nonzero(numbers > later_min.to_numpy(dtype=float, na_value=np.inf)))


def per_second_series(delivered: RunRecords, params: TimingParams) -> pd.DataFrame:
    """Return messages handled and latency p50/p99 per whole UTC second of processing time.

    Percentiles are exact (linear interpolation) in both percentile modes.
    """
    valid = delivered.processed != NAT
    enqueue = delivered.client_enqueue if params.enqueue_time == "client" else delivered.system_enqueued
    seconds = delivered.processed[valid] // NS_PER_S
    latency = np.where(
        (enqueue[valid] != NAT) & (delivered.dequeued[valid] != NAT),
        (delivered.dequeued[valid] - enqueue[valid]) / NS_PER_MS,
        np.nan,
    )
    latency[latency < 0] = np.nan
    keys, counts = np.unique(seconds, return_counts=True)
    p50, p99 = grouped_percentiles(seconds, latency, (50.0, 99.0), keys)
    return pd.DataFrame(
        {
            "second": pd.to_datetime(keys * NS_PER_S, utc=True),
            "messages": counts.astype(np.int64),
            "latency_ms_p50": p50,
            "latency_ms_p99": p99,
        }
    )


def grouped_percentiles(groups: np.ndarray, values: np.ndarray, percents, keys: np.ndarray) -> list[np.ndarray]:
    """Return, for each percent, the linear-interpolation percentile of ``values`` in each group of ``keys``.

    NaN values are left out; a group without values gets NaN.
    """
    keep = ~np.isnan(values)
    groups, values = groups[keep], values[keep]
    order = np.lexsort((values, groups))
    groups, values = groups[order], values[order]
    starts = np.searchsorted(groups, keys, side="left")
    ends = np.searchsorted(groups, keys, side="right")
    counts = ends - starts
    results = []
    for percent in percents:
        position = starts + (counts - 1) * percent / 100.0
        low = np.floor(position).astype(np.int64)
        high = np.ceil(position).astype(np.int64)
        fraction = position - low
        result = np.full(len(keys), np.nan)
        has = counts > 0
        low_values, high_values = values[low[has]], values[high[has]]
        result[has] = low_values + (high_values - low_values) * fraction[has]
        results.append(result)
    return results


class LogHistogram:
    """Counts of non-negative values in logarithmic buckets, for approximate percentiles.

    A value ``v >= APPROXIMATE_MIN_MS`` falls in bucket ``i = ceil(log_g(v))``
    with ``g = (1 + a) / (1 - a)`` and is represented by ``2 g**i / (g + 1)``,
    which is within a relative ``a`` of every value of the bucket.  Smaller
    values fall in a zero bucket represented by 0.  Percentiles interpolate
    between the representatives of the two order statistics numpy would use,
    so ``|approximate - exact| <= a * exact + APPROXIMATE_MIN_MS``.
    """

    def __init__(self, relative_accuracy: float, zero_count: int, offset: int, counts: np.ndarray) -> None:
        self.relative_accuracy = relative_accuracy
        self.gamma = (1 + relative_accuracy) / (1 - relative_accuracy)
        self.zero_count = zero_count
        self.offset = offset
        self.counts = counts

    @classmethod
    def from_values(cls, values: np.ndarray, relative_accuracy: float) -> LogHistogram:
        if not 0 < relative_accuracy < 1:
            raise ValueError(f"relative_accuracy must be between 0 and 1, not {relative_accuracy!r}")
        gamma = (1 + relative_accuracy) / (1 - relative_accuracy)
        small = values < APPROXIMATE_MIN_MS
        index = np.ceil(np.log(values[~small]) / math.log(gamma)).astype(np.int64)
        if len(index) == 0:
            return cls(relative_accuracy, int(small.sum()), 0, np.zeros(0, dtype=np.int64))
        offset = int(index.min())
        return cls(relative_accuracy, int(small.sum()), offset, np.bincount(index - offset))

    @property
    def count(self) -> int:
        return self.zero_count + int(self.counts.sum())

    def _value_at_rank(self, rank: int, cumulative: np.ndarray) -> float:
        if rank < self.zero_count:
            return 0.0
        bucket = int(np.searchsorted(cumulative, rank - self.zero_count, side="right"))
        return 2 * self.gamma ** (bucket + self.offset) / (self.gamma + 1)

    def percentile(self, percent: float) -> float:
        """Return the approximate ``percent`` percentile (0-100), interpolated as numpy's default."""
        if self.count == 0:
            return math.nan
        cumulative = np.cumsum(self.counts)
        position = (self.count - 1) * percent / 100.0
        low, high = math.floor(position), math.ceil(position)
        low_value = self._value_at_rank(low, cumulative)
        high_value = self._value_at_rank(high, cumulative)
        return low_value + (high_value - low_value) * (position - low)
