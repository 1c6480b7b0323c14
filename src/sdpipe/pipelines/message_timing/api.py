"""Python API of message-timing, for notebooks and scripts."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pandas as pd

from sdpipe.cluster import ClusterConfig
from sdpipe.io.messages import DEFAULT_BLOCKSIZE
from sdpipe.io.secrets import StorageOptions
from sdpipe.pipeline import RunReport, blocksize_bytes
from sdpipe.pipelines.message_timing.run import MessageTimingOptions, run

logger = logging.getLogger(__name__)


def run_message_timing(
    urlpath: str | Sequence[str],
    *,
    producer_log: str | Sequence[str] | None = None,
    output: str | None = None,
    enqueue_time: str = "client",
    by: str | None = None,
    percentiles: str = "exact",
    relative_accuracy: float = 0.01,
    max_p99_ms: float | None = None,
    fail_on_loss: bool = False,
    storage_options: dict[str, Any] | None = None,
    blocksize: int | str = DEFAULT_BLOCKSIZE,
    spill_dir: str | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    cluster: ClusterConfig | None = None,
) -> RunReport:
    """Run message-timing and return the whole :class:`~sdpipe.pipeline.RunReport`.

    ``urlpath`` and ``producer_log`` are one path, glob or URL, or a list of
    them.  Nothing is written unless ``output`` is given.  ``blocksize`` is
    bytes or a size such as ``"64MiB"``.  ``scheduler`` and ``workers``
    choose where tasks run, as the CLI flags do; pass a whole
    :class:`~sdpipe.cluster.ClusterConfig` as ``cluster`` for the other
    settings.  A threshold breach does not raise: the report's ``status``
    is ``"verdict_failed"`` and its ``exit_code`` 3.
    """
    options = MessageTimingOptions(
        inputs=_paths(urlpath),
        producer_log=_paths(producer_log),
        output=output,
        enqueue_time=enqueue_time,
        by=by,
        percentiles=percentiles,
        relative_accuracy=relative_accuracy,
        max_p99_ms=max_p99_ms,
        fail_on_loss=fail_on_loss,
        storage_options=StorageOptions(storage_options or {}),
        blocksize=blocksize_bytes(blocksize),
        spill_dir=spill_dir,
    )
    if cluster is None:
        cluster = ClusterConfig(scheduler=scheduler, workers=workers)
    return run(options, cluster)


def message_timing(urlpath: str | Sequence[str], **options: Any) -> pd.DataFrame:
    """Return the message-timing result rows (one per test run and trigger) as a DataFrame.

    Takes the same keyword arguments as :func:`run_message_timing`.
    ``frame.attrs`` contains the record and file counts (``"counts"``), the
    report's ``"status"`` and ``"exit_code"``, and the thresholds that rows
    exceeded (``"threshold_breaches"``, one line each); a breach is also
    logged as a warning.

    Example::

        rows = sdpipe.message_timing("logs/*.jsonl", by="session", max_p99_ms=500)
        if rows.attrs["threshold_breaches"]:
            ...
    """
    report = run_message_timing(urlpath, **options)
    breaches = report.details.get("threshold_breaches", [])
    for breach in breaches:
        logger.warning("threshold exceeded: %s", breach)

    frame = report.result.copy()
    frame.attrs["counts"] = report.counts
    frame.attrs["status"] = report.status
    frame.attrs["exit_code"] = report.exit_code
    frame.attrs["threshold_breaches"] = list(breaches)
    return frame


def _paths(value: str | Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)
