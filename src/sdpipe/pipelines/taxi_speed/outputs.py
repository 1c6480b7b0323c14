"""Output files of taxi-speed: result table, plot, manifest and rejected rows."""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sdpipe.io.publish import OutputFolder
from sdpipe.manifest import base_manifest
from sdpipe.pipeline import RunReport
from sdpipe.pipelines.taxi_speed.tasks import REJECTED_SCHEMA
from sdpipe.plotting import line_or_bar_chart
from sdpipe.runlog import current_run_id

RESULT_PARQUET = "result.parquet"
RESULT_CSV = "result.csv"
PLOT_PNG = "speed.png"
MANIFEST = "manifest.json"
REJECTED_PARQUET = "rejected.parquet"
WEEKDAY_LABELS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")  # weekday 0 = Sunday


def write_outputs(
    report: RunReport, options, rejected: pa.Table | None, timings: dict[str, float], started: float,
    extra_files: dict[str, bytes] | None = None,
) -> str:
    """Stage every output file, then publish them together; return the output URL.

    ``extra_files`` (name to content) are published with them: the partials
    that the next incremental run reuses.
    """
    run_id = current_run_id() or uuid.uuid4().hex[:12]
    frame = report.result if report.result is not None else pd.DataFrame()
    with OutputFolder(options.output, options.storage_options, run_id=run_id) as folder:
        folder.write_bytes(RESULT_PARQUET, _parquet_bytes(frame))
        folder.write_text(RESULT_CSV, frame.to_csv(index=False))
        folder.write_bytes(PLOT_PNG, _plot(frame, options))
        manifest = build_manifest(report, options, run_id, timings, started)
        for name, data in (extra_files or {}).items():
            folder.write_bytes(name, data)
        manifest["files"] += list(extra_files or {})
        folder.write_text(MANIFEST, json.dumps(manifest, indent=2, default=str))
        if options.rejected_output:
            write_rejected(rejected, options)
        return folder.publish()


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer)
    return buffer.getvalue()


def _plot(frame: pd.DataFrame, options) -> bytes:
    key = frame.columns[0] if len(frame.columns) else "date"
    if not len(frame):
        frame = pd.DataFrame({key: [], "mean_speed_mph": []})
    plotted = frame.copy()
    if key == "date":
        plotted[key] = pd.to_datetime(plotted[key])
    if key == "weekday":
        plotted[key] = [WEEKDAY_LABELS[int(day)] for day in plotted[key]]
    series = [("mean_speed_mph", "mean of trip speeds")]
    if "distance_weighted_speed_mph" in plotted:
        series.append(("distance_weighted_speed_mph", "total miles / total hours"))
    title = f"Average taxi speed by {key}" + (f" ({options.compat} arithmetic)" if options.compat else "")
    counts = "trips" if "trips" in plotted else None
    return line_or_bar_chart(plotted, key, series, title=title, ylabel="speed (mph)", count_column=counts)


def write_rejected(rejected: pa.Table | None, options) -> str:
    """Publish the rejected rows as ``rejected.parquet`` in ``options.rejected_output``; return its URL."""
    with OutputFolder(options.rejected_output, options.storage_options) as folder:
        buffer = io.BytesIO()
        pq.write_table(rejected if rejected is not None else REJECTED_SCHEMA.empty_table(), buffer)
        folder.write_bytes(REJECTED_PARQUET, buffer.getvalue())
        return folder.publish()


def build_manifest(report: RunReport, options, run_id: str, timings: dict[str, float], started: float) -> dict[str, Any]:
    """Return the taxi-speed manifest: the shared fields of :func:`~sdpipe.manifest.base_manifest`."""
    return base_manifest(report, options, run_id, timings, started, [RESULT_PARQUET, RESULT_CSV, PLOT_PNG, MANIFEST])
