"""Running taxi-speed: input discovery, the Dask graph, outputs and the report."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sdpipe.cluster import ClusterConfig
from sdpipe.errors import ConfigError, NoInputError
from sdpipe.io.files import expand_inputs
from sdpipe.io.storage import resolve_for_urls
from sdpipe.io.trips import DEFAULT_BLOCKSIZE, TripLayout, inspect_file, plan_partitions
from sdpipe.pipeline import RunReport
from sdpipe.pipelines.taxi_speed.compute import (
    GROUP_BY_CHOICES,
    REASONS,
    TAXI_TYPES,
    Partial,
    SpeedParams,
    compat_weekday_means,
)
from sdpipe.pipelines.taxi_speed.incremental import IncrementalRun, locked_output

logger = logging.getLogger(__name__)

PIPELINE_NAME = "taxi-speed"
SAMPLE_PATTERN = "data/sample/csv/*.csv"
DEFAULT_OUTPUT = "output/taxi-speed"
COMPAT_CHOICES = ("azure-sample",)
# The one-line result of the Azure "Serverless MapReduce" sample's reducer, labels as it spells them.
COMPAT_TEXT_FORMAT = "Sun: {0}, Mon: {1}, Tue : {2}, wed: {3}, Thu: {4}, Fri: {5}, Sat: {6}"


@dataclass(frozen=True)
class TaxiSpeedOptions:
    """Every option of one taxi-speed run, resolved and checked."""

    inputs: tuple[str, ...] = ()
    output: str | None = DEFAULT_OUTPUT
    group_by: str = "date"
    start: dt.date | None = None
    end: dt.date | None = None
    max_hours: float = 24.0
    max_mph: float = 100.0
    taxi_type: str = "all"
    compat: str | None = None
    rejected_output: str | None = None
    storage_options: dict[str, Any] = field(default_factory=dict)
    blocksize: int = DEFAULT_BLOCKSIZE

    def __post_init__(self) -> None:
        if self.group_by not in GROUP_BY_CHOICES:
            raise ConfigError(f"invalid group_by {self.group_by!r}; choose one of {', '.join(GROUP_BY_CHOICES)}")
        if self.taxi_type not in TAXI_TYPES:
            raise ConfigError(f"invalid taxi_type {self.taxi_type!r}; choose one of {', '.join(TAXI_TYPES)}")
        if self.compat is not None and self.compat not in COMPAT_CHOICES:
            raise ConfigError(f"invalid compat {self.compat!r}; choose one of {', '.join(COMPAT_CHOICES)}")
        if not self.max_hours > 0:
            raise ConfigError(f"invalid max_hours {self.max_hours!r}; give a number of hours above 0")
        if not self.max_mph > 0:
            raise ConfigError(f"invalid max_mph {self.max_mph!r}; give a speed in miles per hour above 0")
        if self.start and self.end and self.start > self.end:
            raise ConfigError(f"start {self.start} is after end {self.end}; give start <= end")
        if self.blocksize < 1024:
            raise ConfigError(f"invalid blocksize {self.blocksize!r}; give at least 1024 bytes")

    def params(self) -> SpeedParams:
        return SpeedParams(
            group_by="weekday" if self.compat else self.group_by,
            start_day=_days(self.start),
            end_day=_days(self.end),
            max_hours=self.max_hours,
            max_mph=self.max_mph,
            taxi_type=self.taxi_type,
            compat=self.compat,
        )

    def describe(self) -> dict[str, Any]:
        """Return the parameters for the manifest, without storage options (they may hold secrets)."""
        described = asdict(self)
        described.pop("storage_options")
        described["start"] = self.start.isoformat() if self.start else None
        described["end"] = self.end.isoformat() if self.end else None
        return described


def _days(day: dt.date | None) -> int | None:
    return None if day is None else (day - dt.date(1970, 1, 1)).days


def default_inputs() -> tuple[str, ...]:
    """Return the bundled sample's CSV files when run from the repository."""
    if list(Path().glob(SAMPLE_PATTERN)):
        return (SAMPLE_PATTERN,)
    raise NoInputError(
        f"no --input given and no bundled sample at ./{SAMPLE_PATTERN}; "
        "pass --input PATH or run from the sdpipe repository"
    )


@locked_output
def run(options: TaxiSpeedOptions, cluster: ClusterConfig | None = None, *, force: bool = False) -> RunReport:
    """Run taxi-speed and, when ``options.output`` is set, publish its outputs.

    With an output, files unchanged since the last run on it are not read
    again (see :mod:`~sdpipe.pipelines.taxi_speed.incremental`); ``force``
    reads every file.
    """
    from sdpipe.pipelines.taxi_speed.outputs import write_outputs, write_rejected

    started = time.time()
    timings: dict[str, float] = {}
    inputs = options.inputs or default_inputs()
    storage_options = resolve_for_urls([*inputs, options.output, options.rejected_output], options.storage_options)
    options = replace(options, inputs=tuple(inputs), storage_options=storage_options)

    files = expand_inputs(list(inputs), options.storage_options)
    rerun = IncrementalRun(options, files, force=force)
    if rerun.up_to_date:
        return rerun.up_to_date_report()
    layouts = [inspect_file(f, options.storage_options) for f in rerun.files_to_read]
    partitions = [p for layout in layouts for p in plan_partitions(layout, options.storage_options, options.blocksize)]
    timings["plan_s"] = time.time() - started
    logger.info("taxi-speed: %d files, %d partitions", len(files), len(partitions))

    tick = time.time()
    partial, rejected = rerun.compute(partitions, cluster)
    timings["compute_s"] = time.time() - tick

    layouts = rerun.all_layouts(layouts)
    result = finalize(partial, options)
    report = build_report(options, layouts, partial, result)
    rerun.add_file_counts(report)
    if options.output:
        tick = time.time()
        report.output = write_outputs(report, options, rejected, timings, started, rerun.state_files(layouts))
        timings["write_s"] = time.time() - tick
    elif options.rejected_output:
        write_rejected(rejected, options)
    report.details["timings"] = {k: round(v, 3) for k, v in timings.items()}
    return report


def finalize(partial: Partial, options: TaxiSpeedOptions) -> pd.DataFrame:
    """Turn the combined partial into the result table, one row per key, sorted by key."""
    if options.compat == "azure-sample":
        means = compat_weekday_means(partial)
        return pd.DataFrame({"weekday": np.arange(7, dtype=np.int64), "mean_speed_mph": means})

    with np.errstate(divide="ignore", invalid="ignore"):
        frame = pd.DataFrame(
            {
                options.group_by: _key_labels(partial.keys, options.group_by),
                "trips": partial.trips.astype(np.int64),
                "mean_speed_mph": partial.speed_sum / partial.trips,
                "distance_weighted_speed_mph": partial.miles_sum / partial.hours_sum,
            }
        )
    return frame.reset_index(drop=True)


def _key_labels(keys: np.ndarray, group_by: str) -> list | np.ndarray:
    if group_by == "date":
        return [dt.date(1970, 1, 1) + dt.timedelta(days=int(k)) for k in keys]
    if group_by == "month":
        return [f"{1970 + int(k) // 12:04d}-{int(k) % 12 + 1:02d}" for k in keys]
    return keys.astype(np.int64)


def build_report(options: TaxiSpeedOptions, layouts: list[TripLayout], partial: Partial, result: pd.DataFrame) -> RunReport:
    """Collect counts, per-file accounting and the result into a :class:`RunReport`."""
    rejected_total = np.zeros(len(REASONS), dtype=np.int64)
    inputs = []
    for layout in layouts:
        entry = layout.describe()
        tally = partial.files.get(layout.file.url)
        if tally is not None:
            rejected_total += tally.rejected
            entry["counts"] = {
                "read": int(tally.read),
                "valid": int(tally.read - tally.rejected.sum()),
                "rejected": dict(zip(REASONS, (int(n) for n in tally.rejected))),
            }
            entry["timestamp_formats"] = tally.timestamp_formats
        else:
            entry["counts"] = {"read": 0, "valid": 0, "rejected": dict.fromkeys(REASONS, 0)}
            entry["timestamp_formats"] = {}
        inputs.append(entry)

    read = sum(entry["counts"]["read"] for entry in inputs)
    counts = {
        "files": len(layouts),
        "read": int(read),
        "valid": int(read - rejected_total.sum()),
        "rejected": dict(zip(REASONS, (int(n) for n in rejected_total))),
    }
    report = RunReport(pipeline=PIPELINE_NAME, inputs=inputs, counts=counts, result=result)
    report.details["parameters"] = options.describe()
    if options.compat == "azure-sample":
        report.details["compat_text"] = compat_text(result)
    report.summary = summary_lines(report, options)
    return report


def compat_text(result: pd.DataFrame) -> str:
    """Return the Azure sample's one-line result, with its labels as the sample writes them.

    The sample's reducer formats ``"Sun: {0}, Mon: {1}, Tue : {2}, wed: {3}, Thu: {4},
    Fri: {5}, Sat: {6}"`` (sic), numbers in .NET's shortest round-trip form.
    """
    speeds = dict(zip(result["weekday"].astype(int), result["mean_speed_mph"]))
    values = [_dotnet_number(float(speeds.get(day, 0.0))) for day in range(7)]
    return COMPAT_TEXT_FORMAT.format(*values)


def _dotnet_number(value: float) -> str:
    """Format a float as .NET Core 3.0+ ``Double.ToString()`` does for ordinary magnitudes.

    Both print the shortest text that reads back as the same double; .NET
    omits ``.0`` on whole numbers and writes exponents as ``E+NN``.
    """
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        sign = "-" if exponent.startswith("-") else "+"
        text = f"{mantissa.removesuffix('.0')}E{sign}{int(exponent.lstrip('+-')):02d}"
    return text.removesuffix(".0")


def summary_lines(report: RunReport, options: TaxiSpeedOptions) -> list[str]:
    """Return the readable summary printed at the end of a run."""
    counts = report.counts
    size = sum(entry["size"] for entry in report.inputs)
    lines = [
        f"taxi-speed: {counts['files']} input file{'s' if counts['files'] != 1 else ''} ({_human_bytes(size)})",
        f"  trips read     {counts['read']:>12,}",
        f"  valid          {counts['valid']:>12,}",
    ]
    for reason, n in counts["rejected"].items():
        if n:
            lines.append(f"  rejected: {reason:<22} {n:>9,}")
    for entry in report.inputs:
        if entry.get("note"):
            lines.append(f"  note: {entry['url']}: {entry['note']}")
    if options.compat:
        lines.append(f"  {options.compat}: {report.details.get('compat_text', '')}")
    frame = report.result
    if frame is not None and len(frame):
        cut = len(frame) > 7
        shown = pd.concat([frame.head(3), frame.tail(3)]) if cut else frame
        lines.append(f"  result: {len(frame)} rows by {frame.columns[0]}" + (" (first and last 3)" if cut else ""))
        lines.extend("    " + line for line in shown.to_string(index=False, float_format=lambda v: f"{v:.3f}").splitlines())
    else:
        lines.append("  result: no valid trip")
    return lines


def _human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"

