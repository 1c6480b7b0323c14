"""pandera model of the normalised trip table that :mod:`sdpipe.io.trips` returns.

Every file layout, CSV or parquet, is read into these columns: ``pickup``
and ``dropoff`` as naive local ``datetime64[us]``, ``distance`` in miles as
``float64`` and, where the file has one, ``color`` as text.  Nulls are part
of the contract, because a value that cannot be read is null and the job
counts its trip as unparseable.  Run with ``--debug``, taxi-speed checks
every partition against the model; the tests check every real file.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from sdpipe.errors import InputError
from sdpipe.schemas.failures import describe_failures

NAIVE_US = np.dtype("datetime64[us]")


class TripTable(pa.DataFrameModel):
    """One row per trip record, as the reader returns it."""

    pickup: Series[NAIVE_US] = pa.Field(nullable=True)
    dropoff: Series[NAIVE_US] = pa.Field(nullable=True)
    distance: Series[np.float64] = pa.Field(nullable=True)
    color: Series[str] | None = pa.Field(nullable=True)

    class Config:
        strict = True
        coerce = False
        ordered = True

    @pa.dataframe_check(error="pickup and dropoff must be datetime64[us]")
    def times_in_microseconds(cls, frame: pd.DataFrame) -> bool:
        # pandera's DateTime type accepts every unit, so the unit is checked here.
        return frame["pickup"].dtype == NAIVE_US and frame["dropoff"].dtype == NAIVE_US

    @pa.check("distance", error="a distance must be a finite number or null")
    def distance_not_infinite(cls, distance: pd.Series) -> pd.Series:
        return ~np.isinf(distance)


def trips_frame(table) -> pd.DataFrame:
    """Convert a trip table (pyarrow) into the pandas frame the model checks."""
    return table.to_pandas()


def validate_trips(table, url: str) -> None:
    """Raise :class:`InputError` listing the first failures of the trip table read from ``url``."""
    try:
        TripTable.validate(trips_frame(table), lazy=True)
    except pa.errors.SchemaErrors as exc:
        details = describe_failures(exc)
        raise InputError(f"{url}: the trip table does not match the TripTable model: {details}") from exc
