"""Python API of taxi-speed, for notebooks and scripts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pandas as pd

from sdpipe.cluster import ClusterConfig
from sdpipe.errors import ConfigError
from sdpipe.io.secrets import StorageOptions
from sdpipe.io.trips import DEFAULT_BLOCKSIZE
from sdpipe.pipeline import RunReport, blocksize_bytes
from sdpipe.pipelines.taxi_speed.run import TaxiSpeedOptions, run


def run_taxi_speed(
    urlpath: str | Sequence[str] | None = None,
    *,
    output: str | None = None,
    group_by: str = "date",
    start: str | dt.date | None = None,
    end: str | dt.date | None = None,
    max_hours: float = 24.0,
    max_mph: float = 100.0,
    taxi_type: str = "all",
    compat: str | None = None,
    rejected_output: str | None = None,
    storage_options: dict[str, Any] | None = None,
    blocksize: int | str = DEFAULT_BLOCKSIZE,
    scheduler: str | None = None,
    workers: int | None = None,
    cluster: ClusterConfig | None = None,
) -> RunReport:
    """Run taxi-speed and return the whole :class:`~sdpipe.pipeline.RunReport`.

    ``urlpath`` is one path, glob or URL, or a list of them; ``None`` takes
    the bundled sample, found relative to the working directory, so only
    from the repository root.  Nothing is written unless ``output`` is given.
    ``start`` and ``end`` are dates or ``YYYY-MM-DD`` strings; ``blocksize``
    is bytes or a size such as ``"64MiB"``.
    ``scheduler`` and ``workers`` choose where tasks run, as the CLI flags
    do; pass a whole :class:`~sdpipe.cluster.ClusterConfig` as ``cluster``
    for the other settings.
    """
    inputs = (urlpath,) if isinstance(urlpath, str) else tuple(urlpath or ())
    options = TaxiSpeedOptions(
        inputs=inputs,
        output=output,
        group_by=group_by,
        start=_date(start, "start"),
        end=_date(end, "end"),
        max_hours=max_hours,
        max_mph=max_mph,
        taxi_type=taxi_type,
        compat=compat,
        rejected_output=rejected_output,
        storage_options=StorageOptions(storage_options or {}),
        blocksize=blocksize_bytes(blocksize),
    )
    if cluster is None:
        cluster = ClusterConfig(scheduler=scheduler, workers=workers)
    return run(options, cluster)


def taxi_speed(urlpath: str | Sequence[str] | None = None, **options: Any) -> pd.DataFrame:
    """Return the average taxi speed per pickup date (or ``group_by`` key) as a DataFrame.

    Takes the same keyword arguments as :func:`run_taxi_speed`.  The counts
    of trips read, valid and rejected by reason are in ``frame.attrs["counts"]``.

    Example::

        daily = sdpipe.taxi_speed("data/sample/csv/*.csv", group_by="weekday")
    """
    report = run_taxi_speed(urlpath, **options)
    frame = report.result.copy()
    frame.attrs["counts"] = report.counts
    return frame


def _date(value: str | dt.date | None, name: str) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid {name} {value!r}: {exc}; give a date as YYYY-MM-DD") from exc
