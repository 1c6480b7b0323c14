"""Output files of message-timing: result table, per-second series and its chart, manifest."""

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
from sdpipe.runlog import current_run_id

RESULT_PARQUET = "result.parquet"
RESULT_CSV = "result.csv"
SERIES_PARQUET = "timeseries.parquet"
SERIES_PNG = "timeseries.png"
MANIFEST = "manifest.json"
MAX_PLOTTED_RUNS = 10


def write_outputs(report: RunReport, options, series: pd.DataFrame, timings: dict[str, float], started: float) -> str:
    """Stage every output file, then publish them together; return the output URL."""
    run_id = current_run_id() or uuid.uuid4().hex[:12]
    frame = report.result if report.result is not None else pd.DataFrame()
    with OutputFolder(options.output, options.storage_options, run_id=run_id) as folder:
        folder.write_bytes(RESULT_PARQUET, _parquet_bytes(frame))
        folder.write_text(RESULT_CSV, frame.to_csv(index=False))
        folder.write_bytes(SERIES_PARQUET, _parquet_bytes(series))
        folder.write_bytes(SERIES_PNG, plot_series(series))
        manifest = build_manifest(report, options, run_id, timings, started)
        folder.write_text(MANIFEST, json.dumps(manifest, indent=2, default=str))
        return folder.publish()


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer)
    return buffer.getvalue()


def plot_series(series: pd.DataFrame) -> bytes:
    """Draw messages per second and latency p50/p99 against seconds since each run's first message."""
    # A bare Figure renders PNG without a GUI backend; matplotlib.use("Agg") here would also
    # switch the backend of a notebook that writes an output, which then shows no plot.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 6), dpi=100)
    rate_axes, latency_axes = figure.subplots(2, 1, sharex=True)
    groups = list(series.groupby(["test_run", "trigger"], dropna=False, sort=True)) if len(series) else []
    for (test_run, trigger), run in groups[:MAX_PLOTTED_RUNS]:
        elapsed = (run["second"] - run["second"].min()).dt.total_seconds()
        label = f"{test_run} ({trigger})"
        rate_axes.plot(elapsed, run["messages"], linewidth=1.0, label=label)
        line = latency_axes.plot(elapsed, run["latency_ms_p50"], linewidth=1.0, label=f"{label} p50")[0]
        latency_axes.plot(elapsed, run["latency_ms_p99"], linewidth=1.0, linestyle="--", color=line.get_color(), label=f"{label} p99")
    title = "Messages handled per second"
    if len(groups) > MAX_PLOTTED_RUNS:
        title += f" (first {MAX_PLOTTED_RUNS} of {len(groups)} runs)"
    rate_axes.set_title(title)
    rate_axes.set_ylabel("messages / s")
    latency_axes.set_title("Queue latency per second (dashed: p99)")
    latency_axes.set_ylabel("latency (ms)")
    latency_axes.set_xlabel("seconds since the run's first handled message")
    for axes in (rate_axes, latency_axes):
        axes.grid(True, alpha=0.3)
    if groups:
        rate_axes.legend(fontsize="small")
    figure.tight_layout()

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def build_manifest(report: RunReport, options, run_id: str, timings: dict[str, float], started: float) -> dict[str, Any]:
    """Return the message-timing manifest: the shared fields plus the verdict and threshold breaches."""
    files = [RESULT_PARQUET, RESULT_CSV, SERIES_PARQUET, SERIES_PNG, MANIFEST]
    manifest = base_manifest(report, options, run_id, timings, started, files)
    manifest["status"] = report.status
    manifest["threshold_breaches"] = report.details.get("threshold_breaches", [])
    return manifest
