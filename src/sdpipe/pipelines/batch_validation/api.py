"""Python API of batch-validation, for notebooks and scripts."""

from __future__ import annotations

from typing import Any

import pandas as pd

from sdpipe.cluster import ClusterConfig
from sdpipe.io.secrets import StorageOptions
from sdpipe.pipeline import RunReport
from sdpipe.pipelines.batch_validation.batches import parse_duration
from sdpipe.pipelines.batch_validation.run import BatchValidationOptions, run


def run_batch_validation(
    inbound: str,
    *,
    output: str | None = None,
    spec: str | None = None,
    dry_run: bool = False,
    stale_after: str | float | None = None,
    fail_on_invalid: bool = False,
    max_errors_per_file: int | None = None,
    storage_options: dict[str, Any] | None = None,
    scheduler: str | None = None,
) -> RunReport:
    """Run batch-validation and return the whole :class:`~sdpipe.pipeline.RunReport`.

    ``stale_after`` is a duration such as ``"2d"`` or a number of seconds.
    Unless ``dry_run``, complete batches are moved out of ``inbound``.
    """
    if isinstance(stale_after, str):
        stale_after = parse_duration(stale_after)
    options = BatchValidationOptions(
        inbound=inbound,
        output=output,
        spec=spec,
        dry_run=dry_run,
        stale_after=stale_after,
        fail_on_invalid=fail_on_invalid,
        max_errors_per_file=max_errors_per_file,
        storage_options=StorageOptions(storage_options or {}),
    )
    return run(options, ClusterConfig(scheduler=scheduler))


def batch_validation(inbound: str, **options: Any) -> pd.DataFrame:
    """Return one row per batch (status, missing types, errors) as a DataFrame.

    Takes the same keyword arguments as :func:`run_batch_validation`.  The
    files that match no pattern are in ``frame.attrs["unmatched"]``.

    Example::

        batches = sdpipe.batch_validation("drop/inbound", dry_run=True)
    """
    report = run_batch_validation(inbound, **options)
    frame = report.result.copy()
    frame.attrs["unmatched"] = report.details["unmatched"]
    frame.attrs["counts"] = report.counts
    return frame
