"""Running message-timing: input discovery, the two-stage Dask graph, thresholds, outputs and the report."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import pandas as pd

from sdpipe.cluster import ClusterConfig, compute
from sdpipe.errors import EXIT_VERDICT, ConfigError, NoInputError
from sdpipe.io.files import expand_inputs
from sdpipe.io.messages import DEFAULT_BLOCKSIZE, TIME_FIELDS, plan_blocks
from sdpipe.io.storage import resolve_for_urls
from sdpipe.pipeline import STATUS_VERDICT_FAILED, RunReport
from sdpipe.pipelines.message_timing.compute import BY_CHOICES, ENQUEUE_TIMES, PERCENTILE_MODES, TimingParams
from sdpipe.pipelines.message_timing.tasks import BlockIndex, RunKey, map_block, map_sent_block, summarise_key

logger = logging.getLogger(__name__)

PIPELINE_NAME = "message-timing"
DEFAULT_OUTPUT = "output/message-timing"
KEY_COLUMNS = ("test_run", "trigger")
# The columns every result row has, first, in this order; the others follow.
RESULT_COLUMNS = (
    "test_run", "trigger", "records", "messages", "duplicates", "missing", "missing_method",
    "latency_ms_mean", "latency_ms_p50", "latency_ms_p90", "latency_ms_p99", "latency_ms_p999", "latency_ms_max",
    "negative_latencies", "processing_ms_mean", "processing_ms_p50", "processing_ms_p90", "processing_ms_p99",
    "processing_ms_p999", "processing_ms_max", "negative_processing_times", "fifo_violations",
    "total_runtime_s", "throughput_per_s", "peak_rate_per_s", "avg_individual_process_time_ms",
    "ids_distinguishable", "records_without_id", "unreadable_times", "without_latency",
)


@dataclass(frozen=True)
class MessageTimingOptions:
    """Every option of one message-timing run, resolved and checked."""

    inputs: tuple[str, ...] = ()
    producer_log: tuple[str, ...] = ()
    output: str | None = DEFAULT_OUTPUT
    enqueue_time: str = "client"
    by: str | None = None
    percentiles: str = "exact"
    relative_accuracy: float = 0.01
    max_p99_ms: float | None = None
    fail_on_loss: bool = False
    storage_options: dict[str, Any] = field(default_factory=dict)
    blocksize: int = DEFAULT_BLOCKSIZE
    spill_dir: str | None = None

    def __post_init__(self) -> None:
        if self.enqueue_time not in ENQUEUE_TIMES:
            raise ConfigError(f"invalid enqueue_time {self.enqueue_time!r}; choose one of {', '.join(ENQUEUE_TIMES)}")
        if self.by is not None and self.by not in BY_CHOICES:
            raise ConfigError(f"invalid by {self.by!r}; choose one of {', '.join(BY_CHOICES)} or leave it out")
        if self.percentiles not in PERCENTILE_MODES:
            raise ConfigError(f"invalid percentiles {self.percentiles!r}; choose one of {', '.join(PERCENTILE_MODES)}")
        if not 0 < self.relative_accuracy < 1:
            raise ConfigError(f"invalid relative_accuracy {self.relative_accuracy!r}; give a fraction above 0 and below 1, e.g. 0.01")
        if self.max_p99_ms is not None and not self.max_p99_ms >= 0:
            raise ConfigError(f"invalid max_p99_ms {self.max_p99_ms!r}; give a number of milliseconds >= 0")
        if self.blocksize < 1024:
            raise ConfigError(f"invalid blocksize {self.blocksize!r}; give at least 1024 bytes")

    def params(self) -> TimingParams:
        return TimingParams(self.enqueue_time, self.by, self.percentiles, self.relative_accuracy)

    def describe(self) -> dict[str, Any]:
        """Return the parameters for the manifest, without storage options (they may hold secrets)."""
        described = asdict(self)
        described.pop("storage_options")
        return described


def run(options: MessageTimingOptions, cluster: ClusterConfig | None = None) -> RunReport:
    """Run message-timing and, when ``options.output`` is set, publish its outputs."""
    from sdpipe.pipelines.message_timing.outputs import write_outputs

    started = time.time()
    timings: dict[str, float] = {}
    if not options.inputs:
        raise NoInputError("no input given; pass --input PATH (a file, a glob pattern or a URL of record files)")

    urls = [*options.inputs, *(options.producer_log or ()), options.output]
    options = replace(options, storage_options=resolve_for_urls(urls, options.storage_options))

    files = expand_inputs(list(options.inputs), options.storage_options)
    blocks = plan_blocks(files, options.storage_options, options.blocksize)
    sent_files = expand_inputs(list(options.producer_log), options.storage_options) if options.producer_log else []
    sent_blocks = plan_blocks(sent_files, options.storage_options, options.blocksize)
    logger.info("message-timing: %d files, %d blocks", len(files), len(blocks))

    spill_url = options.spill_dir or tempfile.mkdtemp(prefix="sdpipe-message-timing-")
    try:
        tick = time.time()
        indices, sent_indices = _map(blocks, sent_blocks, spill_url, options, cluster)
        timings["read_s"] = time.time() - tick

        tick = time.time()
        result, series = _summarise(indices, sent_indices, spill_url, options, cluster)
        timings["summarise_s"] = time.time() - tick
    finally:
        if options.spill_dir is None:
            shutil.rmtree(spill_url, ignore_errors=True)

    report = build_report(options, files, indices, sent_indices, result)
    report.details["series"] = series
    if options.output:
        tick = time.time()
        report.output = write_outputs(report, options, series, timings, started)
        timings["write_s"] = time.time() - tick
    report.details.pop("series")
    report.details["timings"] = {k: round(v, 3) for k, v in timings.items()}
    return report


def _map(blocks, sent_blocks, spill_url: str, options: MessageTimingOptions, cluster: ClusterConfig | None):
    from dask import delayed

    tasks = [
        delayed(map_block, pure=True)(b, f"b{i}", spill_url, options.storage_options, dask_key_name=f"read-{i}")
        for i, b in enumerate(blocks)
    ]
    sent_tasks = [
        delayed(map_sent_block, pure=True)(b, f"s{i}", spill_url, options.storage_options, dask_key_name=f"read-sent-{i}")
        for i, b in enumerate(sent_blocks)
    ]
    indices, sent_indices = compute(tasks, sent_tasks, cluster=cluster)
    return list(indices), list(sent_indices)


def _summarise(indices: list[BlockIndex], sent_indices: list[BlockIndex], spill_url: str, options, cluster):
    from dask import delayed

    pieces: dict[RunKey, list[str]] = defaultdict(list)
    for index in indices:
        for key, (path, _) in index.pieces.items():
            pieces[key].append(path)
    sent_pieces: dict[str | None, list[str]] = defaultdict(list)
    for index in sent_indices:
        for (test_run, _), (path, _) in index.pieces.items():
            sent_pieces[test_run].append(path)

    sent_keys = set().union(*(index.sent_keys for index in sent_indices))
    keys = sorted([*pieces, *unreceived_keys(set(pieces), sent_keys)], key=lambda k: tuple("" if v is None else v for v in k))
    params = options.params()
    tasks = [
        delayed(summarise_key, pure=True)(key, pieces[key], sent_pieces.get(key[0], []), spill_url, params, dask_key_name=f"summarise-{i}")
        for i, key in enumerate(keys)
    ]
    (outcomes,) = compute(tasks, cluster=cluster) if tasks else ([],)
    rows = [row for run_rows, _ in outcomes for row in run_rows]
    series = [s for _, s in outcomes if len(s)]
    return result_frame(rows, options.by), pd.concat(series, ignore_index=True) if series else empty_series()


def unreceived_keys(received: set[RunKey], sent: set[RunKey]) -> list[RunKey]:
    """Return the (test run, trigger) pairs of the producer log that no record has.

    A producer-log row without a trigger belongs to every trigger of its run,
    so it adds a pair of its own only when its run has no other trigger.
    """
    runs_with_trigger = {test_run for test_run, trigger in received | sent if trigger is not None}
    runs_received = {test_run for test_run, _ in received}
    unreceived = []
    for test_run, trigger in sent - received:
        if trigger is None and (test_run in runs_with_trigger or test_run in runs_received):
            continue
        unreceived.append((test_run, trigger))
    return unreceived


def result_frame(rows: list[dict[str, Any]], by: str | None) -> pd.DataFrame:
    """Return the result rows as a table with the documented columns first."""
    leading = list(KEY_COLUMNS) + ([by] if by else [])
    columns = leading + [c for c in RESULT_COLUMNS if c not in leading]
    frame = pd.DataFrame(rows, columns=columns)
    for column in ("messages", "duplicates", "missing", "fifo_violations", "peak_rate_per_s"):
        frame[column] = frame[column].astype("Int64")
    return frame


def empty_series() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "test_run": pd.Series(dtype=object),
            "trigger": pd.Series(dtype=object),
            "second": pd.Series(dtype="datetime64[ns, UTC]"),
            "messages": pd.Series(dtype="int64"),
            "latency_ms_p50": pd.Series(dtype="float64"),
            "latency_ms_p99": pd.Series(dtype="float64"),
        }
    )


def check_thresholds(result: pd.DataFrame, options: MessageTimingOptions) -> list[str]:
    """Return one line per result row that breaks a threshold the user set."""
    breaches = []
    for row in result.to_dict(orient="records"):
        test_run = "without TestRun" if pd.isna(row["test_run"]) else repr(row["test_run"])
        trigger = "no trigger" if pd.isna(row["trigger"]) else row["trigger"]
        name = f"test run {test_run} ({trigger})"
        if options.by:
            name += f" {options.by} {row.get(options.by)!r}"
        p99 = row.get("latency_ms_p99")
        if options.max_p99_ms is not None and p99 is not None and not pd.isna(p99) and p99 > options.max_p99_ms:
            breaches.append(f"{name}: latency p99 {p99:.3f} ms is above --max-p99-ms {options.max_p99_ms:g}")
        missing = row.get("missing")
        if options.fail_on_loss and missing is not None and not pd.isna(missing) and missing > 0:
            breaches.append(f"{name}: {int(missing)} messages missing")
    return breaches


def build_report(options, files, indices: list[BlockIndex], sent_indices: list[BlockIndex], result: pd.DataFrame) -> RunReport:
    """Collect per-file accounting, counts, threshold breaches and the result into a :class:`RunReport`."""
    per_file: dict[str, dict[str, Any]] = {}
    for index in indices:
        entry = per_file.setdefault(index.url, {"records": 0, "malformed_lines": 0, "unreadable_times": dict.fromkeys(TIME_FIELDS, 0), "examples": []})
        entry["records"] += index.records
        entry["malformed_lines"] += index.malformed_lines
        for name, n in index.unreadable_times.items():
            entry["unreadable_times"][name] += n
        entry["examples"].extend(index.examples[: 5 - len(entry["examples"])])
    inputs = [{**f.describe(), **per_file.get(f.url, {})} for f in files]

    counts = {
        "files": len(files),
        "records": sum(i.records for i in indices),
        "malformed_lines": sum(i.malformed_lines for i in indices),
        "unreadable_times": {name: sum(i.unreadable_times.get(name, 0) for i in indices) for name in TIME_FIELDS},
        "records_without_test_run": sum(n for i in indices for (test_run, _), (_, n) in i.pieces.items() if test_run is None),
        "runs": int(result[list(KEY_COLUMNS)].drop_duplicates().shape[0]) if len(result) else 0,
        "runs_without_records": int((result.groupby(list(KEY_COLUMNS), dropna=False)["records"].sum() == 0).sum()),
        "producer_log_records": sum(i.records for i in sent_indices),
    }
    report = RunReport(pipeline=PIPELINE_NAME, inputs=inputs, counts=counts, result=result)
    report.details["parameters"] = options.describe()
    breaches = check_thresholds(result, options)
    report.details["threshold_breaches"] = breaches
    if breaches:
        # Every pipeline reports exit code 3 with this status.
        report.status = STATUS_VERDICT_FAILED
        report.exit_code = EXIT_VERDICT
    report.summary = summary_lines(report, breaches)
    return report


def summary_lines(report: RunReport, breaches: Sequence[str]) -> list[str]:
    """Return the readable summary printed at the end of a run."""
    counts = report.counts
    lines = [
        f"message-timing: {counts['files']} input file{'s' if counts['files'] != 1 else ''}, "
        f"{counts['records']:,} record{'s' if counts['records'] != 1 else ''}, "
        f"{counts['runs']} run{'s' if counts['runs'] != 1 else ''}",
    ]
    if counts["malformed_lines"]:
        lines.append(f"  malformed lines (not JSON): {counts['malformed_lines']:,}")
    if counts["records_without_test_run"]:
        lines.append(
            f"  records without TestRun: {counts['records_without_test_run']:,} "
            "(summarised as a run whose test_run is empty)"
        )
    if counts["runs_without_records"]:
        lines.append(
            f"  runs in the producer log with no record: {counts['runs_without_records']} "
            "(every message they sent counts as missing)"
        )
    unreadable = {k: v for k, v in counts["unreadable_times"].items() if v}
    if unreadable:
        lines.append("  unreadable times (kept, left out of the figures that need them): " + ", ".join(f"{k} {v:,}" for k, v in unreadable.items()))
    frame = report.result
    if frame is not None and len(frame):
        shown = ["test_run", "trigger"] + [c for c in ("session", "partition") if c in frame] + [
            "messages", "duplicates", "missing", "latency_ms_p50", "latency_ms_p99", "negative_latencies",
            "fifo_violations", "throughput_per_s",
        ]
        table = frame[shown] if len(frame) <= 20 else frame[shown].head(20)
        lines.append(f"  result: {len(frame)} rows" + (" (first 20)" if len(frame) > 20 else ""))
        lines.extend("    " + line for line in table.to_string(index=False, float_format=lambda v: f"{v:.3f}").splitlines())
    else:
        lines.append("  result: no records")
    lines.extend(f"  threshold exceeded: {line}" for line in breaches)
    return lines
