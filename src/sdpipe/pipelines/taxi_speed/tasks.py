"""The task functions of the taxi-speed graph: read and map one partition, merge results.

They run on Dask workers, so they take and return only picklable values.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sdpipe.io.trips import Partition, read_partition
from sdpipe.pipelines.taxi_speed.compute import REASONS, VALID, Partial, SpeedParams, combine, map_trips

logger = logging.getLogger(__name__)

MapResult = tuple[Partial, "pa.Table | None"]

# Columns of the rejected rows; raw_row contains the text of rows cut short, which have no values.
REJECTED_SCHEMA = pa.schema(
    [
        ("file", pa.string()),
        ("partition", pa.int32()),
        ("pickup", pa.timestamp("us")),
        ("dropoff", pa.timestamp("us")),
        ("distance", pa.float64()),
        ("reason", pa.string()),
        ("raw_row", pa.string()),
    ]
)


def map_partition(
    partition: Partition, params: SpeedParams, storage_options: dict[str, Any] | None, keep_rejected: bool
) -> MapResult:
    """Read one partition and reduce it to a partial; also return its rejected rows if asked."""
    data = read_partition(partition, storage_options)
    table = data.table
    if logger.isEnabledFor(logging.DEBUG):
        from sdpipe.schemas.trips import validate_trips

        validate_trips(table, partition.layout.file.url)
    missing = np.zeros(table.num_rows, dtype=bool)
    for name in ("pickup", "dropoff", "distance"):
        if table.column(name).null_count:
            missing |= _to_numpy(pc.is_null(table.column(name)))

    pickup = _as_int64(table.column("pickup"))
    dropoff = _as_int64(table.column("dropoff"))
    distance = _to_numpy(table.column("distance").fill_null(np.nan))
    color = None
    if "color" in table.column_names:
        color = pc.utf8_lower(pc.utf8_trim_whitespace(table.column("color").fill_null(""))).to_numpy(zero_copy_only=False)

    url = partition.layout.file.url
    partial, reason = map_trips(url, pickup, dropoff, distance, missing, params, color, len(data.short_rows))
    partial.files[url].timestamp_formats = dict(data.timestamp_formats)

    rejected = _rejected_rows(url, partition, table, reason, data.short_rows) if keep_rejected else None
    return partial, rejected


def _as_int64(column: pa.ChunkedArray) -> np.ndarray:
    """Return microseconds since the epoch, with 0 where the value is null (masked elsewhere)."""
    if column.null_count:
        column = column.fill_null(0)
    return _to_numpy(column.cast(pa.int64()))


def _to_numpy(column: pa.ChunkedArray) -> np.ndarray:
    """Return a column without nulls as one numpy array, copied only to join its chunks."""
    if column.num_chunks == 1:
        return column.chunk(0).to_numpy(zero_copy_only=False)
    return column.combine_chunks().to_numpy(zero_copy_only=False)


def _rejected_rows(url: str, partition: Partition, table: pa.Table, reason: np.ndarray, short_rows: list[str]) -> pa.Table:
    names = np.array(("valid",) + REASONS, dtype=object)
    mask = reason != VALID
    rows = table.filter(pa.array(mask))
    rows = rows.select(["pickup", "dropoff", "distance"])
    rejected = pa.table(
        {
            "file": pa.array([url] * rows.num_rows, pa.string()),
            "partition": pa.array([partition.index] * rows.num_rows, pa.int32()),
            "pickup": rows.column("pickup"),
            "dropoff": rows.column("dropoff"),
            "distance": rows.column("distance"),
            "reason": pa.array(names[reason[mask]].tolist(), pa.string()),
            "raw_row": pa.nulls(rows.num_rows, pa.string()),
        }
    )
    if short_rows:
        short = pa.table(
            {
                "file": pa.array([url] * len(short_rows), pa.string()),
                "partition": pa.array([partition.index] * len(short_rows), pa.int32()),
                "pickup": pa.nulls(len(short_rows), pa.timestamp("us")),
                "dropoff": pa.nulls(len(short_rows), pa.timestamp("us")),
                "distance": pa.nulls(len(short_rows), pa.float64()),
                "reason": pa.array(["unparseable"] * len(short_rows), pa.string()),
                "raw_row": pa.array(short_rows, pa.string()),
            }
        )
        rejected = pa.concat_tables([rejected, short])
    return rejected


def merge_results(results: list[MapResult]) -> MapResult:
    """Combine the partials, and concatenate the rejected rows, of several map results."""
    partial = combine([r[0] for r in results])
    tables = [r[1] for r in results if r[1] is not None]
    return partial, (pa.concat_tables(tables) if tables else None)
