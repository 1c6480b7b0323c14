"""Python API of batch-validation, for notebooks and scripts."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from sdpipe.cluster import ClusterConfig
from sdpipe.io.secrets import StorageOptions
from sdpipe.pipeline import STATUS_VERDICT_FAILED, RunReport
from sdpipe.pipelines.batch_validation.batches import parse_duration
from sdpipe.pipelines.batch_validation.run import BatchValidationOptions, run

logger = logging.getLogger(__name__)


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
    workers: int | None = None,
    cluster: ClusterConfig | None = None,
) -> RunReport:
    """Run batch-validation and return the whole :class:`~sdpipe.pipeline.RunReport`.

    ``stale_after`` is a duration such as ``"2d"`` or a number of seconds.
    Unless ``dry_run``, complete batches are moved out of ``inbound``.
    ``scheduler`` and ``workers`` choose where tasks run, as the CLI flags
    do; pass a whole :class:`~sdpipe.cluster.ClusterConfig` as ``cluster``
    for the other settings.  An invalid batch with ``fail_on_invalid`` does
    not raise: the report's ``status`` is ``"verdict_failed"`` and its
    ``exit_code`` 3.  The result's ``attempt`` column is nullable ``Int64``.
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
    if cluster is None:
        cluster = ClusterConfig(scheduler=scheduler, workers=workers)
    report = run(options, cluster)
    # Batches that were not checked have no attempt, which made the column float.
    report.result["attempt"] = report.result["attempt"].astype("Int64")
    return report


def batch_validation(inbound: str, **options: Any) -> pd.DataFrame:
    """Return one row per batch (status, missing types, errors) as a DataFrame.

    Takes the same keyword arguments as :func:`run_batch_validation`.
    ``frame.attrs`` contains the files that match no pattern (``"unmatched"``),
    the counts, the report's ``"status"`` and ``"exit_code"``, the names of
    the invalid batches (``"invalid_batches"``) and the routing errors
    (``"routing_errors"``).  With ``fail_on_invalid``, an invalid batch is
    also logged as a warning.

    Example::

        batches = sdpipe.batch_validation("drop/inbound", dry_run=True)
    """
    report = run_batch_validation(inbound, **options)
    frame = report.result.copy()
    invalid = frame.loc[frame["status"] == "invalid", "batch"].tolist()
    if report.status == STATUS_VERDICT_FAILED:
        logger.warning("%d of %d batches invalid: %s", len(invalid), len(frame), ", ".join(invalid))

    frame.attrs["unmatched"] = report.details["unmatched"]
    frame.attrs["counts"] = report.counts
    frame.attrs["status"] = report.status
    frame.attrs["exit_code"] = report.exit_code
    frame.attrs["invalid_batches"] = invalid
    frame.attrs["routing_errors"] = report.details["routing_errors"]
    return frame
