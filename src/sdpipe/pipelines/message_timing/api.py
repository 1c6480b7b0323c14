"""Python API of message-timing, for notebooks and scripts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from sdpipe.cluster import ClusterConfig
from sdpipe.io.secrets import StorageOptions
from sdpipe.pipeline import RunReport
from sdpipe.pipelines.message_timing.run import MessageTimingOptions, run


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
    blocksize: int | None = None,
    spill_dir: str | None = None,
    scheduler: str | None = None,
) -> RunReport:
    """Run message-timing and return the whole :class:`~sdpipe.pipeline.RunReport`.

    ``urlpath`` and ``producer_log`` are one path, glob or URL, or a list of
    them.  Nothing is written unless ``output`` is given.
    """
    extra = {"blocksize": blocksize} if blocksize else {}
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
        spill_dir=spill_dir,
        **extra,
    )
    return run(options, ClusterConfig(scheduler=scheduler))


def message_timing(urlpath: str | Sequence[str], **options: Any) -> pd.DataFrame:
    """Return the message-timing result rows (one per test run and trigger) as a DataFrame.

    Takes the same keyword arguments as :func:`run_message_timing`; the
    record and file counts are in ``frame.attrs["counts"]``.

    Example::

        rows = sdpipe.message_timing("logs/*.jsonl", by="session")
    """
    report = run_message_timing(urlpath, **options)
    frame = report.result.copy()
    frame.attrs["counts"] = report.counts
    return frame


def _paths(value: str | Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)
