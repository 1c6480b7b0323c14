"""Incremental reruns of taxi-speed: per-file partial aggregates kept with the output.

Each run with an output also publishes, in the same atomic publication as
the result, the partial aggregate of every input file (sums per group key
and the file's counts) under ``partials/``, with the file's size, etag and
modification time and the run's parameters.  The next run on that output:

- does nothing and reports "up to date" when the files and parameters are
  the same (unless ``force``);
- otherwise reads only the files that are new or changed, takes the
  partials of the unchanged ones from ``partials/``, and combines them.
  Files no longer among the inputs drop out of the result and of the new
  ``partials/``.

Sums are added in another order than in a run from scratch, so the mean
speeds can differ from it in the last bits of a float64 (relative 1e-15);
trip counts are equal.

NOTE: partials are reused only when the parameters (all of them but the
inputs and the output), the sdpipe version and the state format are equal,
and never when ``rejected_output`` is set, because the rejected rows of the
unchanged files are not kept.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sdpipe import __version__
from sdpipe.cluster import ClusterConfig, compute
from sdpipe.io.files import InputFile, filesystem_for
from sdpipe.io.publish import SUCCESS_MARKER
from sdpipe.io.trips import Partition, TripLayout
from sdpipe.locking import output_lock
from sdpipe.pipeline import STATUS_UP_TO_DATE, RunReport
from sdpipe.pipelines.taxi_speed.compute import FileTally, Partial, combine
from sdpipe.pipelines.taxi_speed.tasks import MapResult, map_partition, merge_results

logger = logging.getLogger(__name__)

STATE_FORMAT = 1
PARTIALS_DIR = "partials"
STATE_JSON = f"{PARTIALS_DIR}/state.json"
PARTIALS_PARQUET = f"{PARTIALS_DIR}/partials.parquet"
PARTIAL_COLUMNS = ("trips", "speed_sum", "miles_sum", "hours_sum")
REDUCE_FAN_IN = 8


def locked_output(run):
    """Decorate ``run(options, ...)`` so that it holds the lock on ``options.output`` throughout."""

    @functools.wraps(run)
    def wrapper(options, *args: Any, **kwargs: Any):
        with output_lock(options.output, options.storage_options):
            return run(options, *args, **kwargs)

    return wrapper


@dataclasses.dataclass
class CachedFile:
    """The previous run's entry for one input file: its version, layout and counts."""

    file: dict[str, Any]
    layout: dict[str, Any]
    tally: dict[str, Any]


class IncrementalRun:
    """The plan of one run against the partials that the previous run on the same output kept.

    Without an output every file is read and nothing is kept.
    """

    def __init__(self, options, files: Sequence[InputFile], *, force: bool = False):
        self.options = options
        self.files = list(files)
        self.force = force
        self.parameters = run_parameters(options)
        self.state = load_state(options.output, options.storage_options) if options.output else None
        self.cached: dict[str, CachedFile] = {}
        self.computed: dict[str, Partial] = {}

        unchanged = self._unchanged_files()
        self.up_to_date = (
            not force
            and len(unchanged) == len(self.files)
            and set(self.state["files"]) == {f.url for f in self.files}
        )
        if not force and options.rejected_output is None:
            self.cached = unchanged
        self.files_to_read = [f for f in self.files if f.url not in self.cached]
        if self.cached and not self.up_to_date:
            logger.info(
                "taxi-speed: %d of %d files unchanged since the last run, reading %d",
                len(self.cached), len(self.files), len(self.files_to_read),
            )

    def _unchanged_files(self) -> dict[str, CachedFile]:
        """Return the kept entries of the files whose version and parameters are those of the last run."""
        state = self.state
        if state is None or state.get("sdpipe_version") != __version__ or state.get("parameters") != self.parameters:
            return {}
        unchanged = {}
        try:
            for file in self.files:
                entry = state["files"].get(file.url)
                if entry is None or not same_version(file, entry["file"]):
                    continue
                cached = CachedFile(entry["file"], entry["layout"], entry["tally"])
                layout_from_state(file, cached.layout)
                tally_from_fields(cached.tally)
                unchanged[file.url] = cached
        except (KeyError, TypeError, ValueError) as exc:
            logger.warning("ignoring the partials in %s, which do not fit this version (%s)", self.options.output, exc)
            return {}
        return unchanged

    def up_to_date_report(self) -> RunReport:
        """Return the report of the published output, marked "up to date"; nothing is read or written."""
        fs, path = filesystem_for(self.options.output, self.options.storage_options)
        with fs.open(f"{path}/manifest.json", "rb") as handle:
            manifest = json.loads(handle.read())
        with fs.open(f"{path}/result.parquet", "rb") as handle:
            result = pq.read_table(handle).to_pandas()

        report = RunReport(
            pipeline=manifest.get("pipeline", "taxi-speed"),
            status=STATUS_UP_TO_DATE,
            inputs=manifest.get("inputs", []),
            counts=manifest.get("counts", {}),
            output=self.options.output,
            result=result,
        )
        report.details["parameters"] = manifest.get("parameters", {})
        report.details["previous_run_id"] = manifest.get("run_id")
        files = f"{len(self.files)} input file{'s' if len(self.files) != 1 else ''}"
        report.summary = [
            f"taxi-speed: up to date: the {files} and the parameters are those of "
            f"run {manifest.get('run_id')} ({manifest.get('finished')}); nothing was read.",
            "  Pass --force to compute again.",
        ]
        self.add_file_counts(report)
        logger.info("taxi-speed: %s is up to date", self.options.output)
        return report

    def add_file_counts(self, report: RunReport) -> None:
        """Add how many input files were read and how many were taken from the last run's partials.

        They go into ``counts`` (``files_read``, ``files_reused``) and, as
        two lines after the first, into the summary.  An up-to-date run reads
        none and reuses every file.
        """
        read = 0 if self.up_to_date else len(self.files_to_read)
        reused = len(self.files) if self.up_to_date else len(self.cached)
        report.counts["files_read"] = read
        report.counts["files_reused"] = reused
        report.summary[1:1] = [
            f"  files read     {read:>12,}",
            f"  files reused   {reused:>12,}  (partials of the last run on the output)",
        ]

    def compute(self, partitions: Sequence[Partition], cluster: ClusterConfig | None) -> MapResult:
        """Compute the partials of the files to read, one per file, and combine them with the kept ones."""
        per_file = compute_by_file(partitions, self.options, cluster)
        self.computed = {url: partial for url, (partial, _) in per_file.items()}
        rejected = [table for _, table in per_file.values() if table is not None]
        kept = [partial_from_state(url, self.state, cached) for url, cached in self.cached.items()]
        merged = combine(kept + list(self.computed.values()))
        return merged, (pa.concat_tables(rejected) if rejected else None)

    def all_layouts(self, read_layouts: Sequence[TripLayout]) -> list[TripLayout]:
        """Return the layouts of every input file, in input order: read ones as given, kept ones rebuilt."""
        by_url = {layout.file.url: layout for layout in read_layouts}
        layouts = []
        for file in self.files:
            if file.url in by_url:
                layouts.append(by_url[file.url])
            elif file.url in self.cached:
                layouts.append(layout_from_state(file, self.cached[file.url].layout))
        return layouts

    def state_files(self, layouts: Sequence[TripLayout]) -> dict[str, bytes]:
        """Return the ``partials/`` files to publish with the result."""
        partials = {url: partial_from_state(url, self.state, cached) for url, cached in self.cached.items()}
        partials.update(self.computed)
        entries = {}
        for layout in layouts:
            url = layout.file.url
            if url not in partials:
                continue
            entries[url] = {
                "file": layout.file.describe(),
                "layout": layout_fields(layout),
                "tally": tally_fields(partials[url].files.get(url, FileTally())),
            }
        state = {
            "format": STATE_FORMAT,
            "sdpipe_version": __version__,
            "parameters": self.parameters,
            "files": entries,
        }
        return {
            STATE_JSON: json.dumps(state, indent=2, default=_json_default).encode("utf-8"),
            PARTIALS_PARQUET: partials_parquet({url: partials[url] for url in entries}),
        }


def run_parameters(options) -> dict[str, Any]:
    """Return the parameters that decide a file's partial: all of them but the inputs and the output."""
    described = dict(options.describe())
    for name in ("inputs", "output"):
        described.pop(name, None)
    return json.loads(json.dumps(described, default=_json_default))


def same_version(file: InputFile, kept: dict[str, Any]) -> bool:
    """Return whether ``file`` is the version of the file that was read before.

    Sizes must match, then etags where both sides have one, else
    modification times.  A file with neither counts as changed.
    """
    if file.size != kept.get("size"):
        return False
    if file.etag and kept.get("etag"):
        return file.etag == kept["etag"]
    if file.modified and kept.get("modified"):
        return file.modified == kept["modified"]
    return False


def compute_by_file(
    partitions: Sequence[Partition], options, cluster: ClusterConfig | None
) -> dict[str, MapResult]:
    """Run the map step on every partition and reduce the results file by file, in one Dask graph."""
    from dask import delayed

    params = options.params()
    keep_rejected = options.rejected_output is not None
    by_file: dict[str, list] = {}
    for i, partition in enumerate(partitions):
        task = delayed(map_partition, pure=True)(
            partition, params, options.storage_options, keep_rejected, dask_key_name=f"map-{i}"
        )
        by_file.setdefault(partition.layout.file.url, []).append(task)

    roots = [_tree_reduce(tasks, f"reduce-{n}") for n, tasks in enumerate(by_file.values())]
    if not roots:
        return {}
    results = compute(*roots, cluster=cluster)
    return dict(zip(by_file, results))


def _tree_reduce(level: list, prefix: str):
    from dask import delayed

    depth = 0
    while len(level) > 1:
        depth += 1
        level = [
            delayed(merge_results, pure=True)(level[i : i + REDUCE_FAN_IN], dask_key_name=f"{prefix}-{depth}-{i}")
            for i in range(0, len(level), REDUCE_FAN_IN)
        ]
    if len(level) == 1 and depth == 0:
        # A file of one partition still goes through merge_results, so every root has one shape.
        return delayed(merge_results, pure=True)(level, dask_key_name=f"{prefix}-1-0")
    return level[0]


def load_state(output: str, storage_options: dict[str, Any]) -> dict[str, Any] | None:
    """Return the state the last run published under ``output``, or ``None`` when there is none to trust."""
    fs, path = filesystem_for(output, storage_options)
    try:
        if not fs.exists(f"{path}/{STATE_JSON}"):
            return None
        if not _is_local(fs) and not _published_with_marker(fs, path):
            logger.warning("ignoring the partials in %s: its last publication did not finish", output)
            return None
        with fs.open(f"{path}/{STATE_JSON}", "rb") as handle:
            state = json.loads(handle.read())
        with fs.open(f"{path}/{PARTIALS_PARQUET}", "rb") as handle:
            state["partials"] = pq.read_table(handle).to_pandas()
    except (OSError, ValueError) as exc:
        logger.warning("ignoring the partials in %s, which cannot be read (%s); reading every file", output, exc)
        return None
    if state.get("format") != STATE_FORMAT or not isinstance(state.get("files"), dict):
        logger.info("ignoring the partials in %s: written in another state format", output)
        return None
    return state


def _published_with_marker(fs, path: str) -> bool:
    """Return whether the ``_SUCCESS`` marker of an object-store output lists the state files."""
    try:
        with fs.open(f"{path}/{SUCCESS_MARKER}", "rb") as handle:
            listed = set(json.loads(handle.read()).get("files", []))
    except (FileNotFoundError, ValueError):
        return False
    return {STATE_JSON, PARTIALS_PARQUET} <= listed


def _is_local(fs) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    return bool({"file", "local"} & set(protocols))


def partials_parquet(partials: dict[str, Partial]) -> bytes:
    """Return the per-file sums per key as parquet: one row per file and key."""
    frames = [
        pd.DataFrame(
            {
                "file": url,
                "key": partial.keys.astype(np.int64),
                **{name: getattr(partial, name) for name in PARTIAL_COLUMNS},
            }
        )
        for url, partial in partials.items()
    ]
    columns = ["file", "key", *PARTIAL_COLUMNS]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    frame = frame.astype({"file": str, "key": np.int64, "trips": np.int64, **dict.fromkeys(PARTIAL_COLUMNS[1:], np.float64)})
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame[columns], preserve_index=False), buffer)
    return buffer.getvalue()


def partial_from_state(url: str, state: dict[str, Any] | None, cached: CachedFile) -> Partial:
    """Rebuild one file's partial from the kept sums and counts."""
    frame = state["partials"] if state is not None else pd.DataFrame()
    rows = frame[frame["file"] == url].sort_values("key")
    partial = Partial(
        keys=rows["key"].to_numpy(np.int64),
        trips=rows["trips"].to_numpy(np.int64),
        speed_sum=rows["speed_sum"].to_numpy(np.float64),
        miles_sum=rows["miles_sum"].to_numpy(np.float64),
        hours_sum=rows["hours_sum"].to_numpy(np.float64),
    )
    partial.files[url] = tally_from_fields(cached.tally)
    return partial


def tally_fields(tally: FileTally) -> dict[str, Any]:
    """Return a file's counts as JSON values; arrays keep their dtype."""
    fields = {}
    for field in dataclasses.fields(tally):
        value = getattr(tally, field.name)
        if isinstance(value, np.ndarray):
            value = {"array": value.tolist(), "dtype": str(value.dtype)}
        fields[field.name] = value
    return fields


def tally_from_fields(fields: dict[str, Any]) -> FileTally:
    values = {}
    for name, value in fields.items():
        if isinstance(value, dict) and set(value) == {"array", "dtype"}:
            value = np.array(value["array"], dtype=value["dtype"])
        values[name] = value
    return FileTally(**values)


def layout_fields(layout: TripLayout) -> dict[str, Any]:
    """Return what :func:`~sdpipe.io.trips.inspect_file` found of a file, without the file itself."""
    return {field.name: getattr(layout, field.name) for field in dataclasses.fields(layout) if field.name != "file"}


def layout_from_state(file: InputFile, fields: dict[str, Any]) -> TripLayout:
    values = {name: tuple(value) if isinstance(value, list) else value for name, value in fields.items()}
    return TripLayout(file=file, **values)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, set)):
        return list(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
