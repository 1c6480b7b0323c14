"""Synthetic NYC yellow-taxi trips in the 2017 TLC schema, deterministic for a seed.

Trips have realistic shapes (durations log-normal around 12 minutes,
speeds slower by day than by night, fares from distance and time), so that
results look like real ones, but every value is drawn from a seeded numpy
generator: the same arguments always give byte-identical files.  With
``dirty=True`` about 2 % of rows are planted to hit each rejection reason
of taxi-speed, including a CSV row cut short at the end of the last file.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

COLUMNS_2017 = (
    "VendorID",
    "tpep_pickup_datetime",
    "tpep_dropoff_datetime",
    "passenger_count",
    "trip_distance",
    "RatecodeID",
    "store_and_fwd_flag",
    "PULocationID",
    "DOLocationID",
    "payment_type",
    "fare_amount",
    "extra",
    "mta_tax",
    "tip_amount",
    "tolls_amount",
    "improvement_surcharge",
    "total_amount",
)

# Kinds of planted dirty rows, each a share of the rows of a month when dirty=True.
DIRTY_KINDS = (
    "missing_pickup",
    "garbage_distance",
    "other_month",
    "zero_distance",
    "negative_duration",
    "too_long",
    "too_fast",
)
DIRTY_SHARE = 0.003

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
US_PER_SECOND = 1_000_000


def month_rows(rows: int, months: int) -> list[int]:
    """Split ``rows`` over ``months`` as evenly as possible, the remainder going first."""
    base, extra = divmod(rows, months)
    return [base + (1 if m < extra else 0) for m in range(months)]


def make_month(year: int, month: int, rows: int, seed: int, dirty: bool = False) -> tuple[pa.Table, dict[str, np.ndarray]]:
    """Return one month of trips as an Arrow table, and the planted row indices by kind.

    Timestamps are ``timestamp[us]``; ``trip_distance`` is ``float64`` except
    when garbage distances are planted, where the column is text.
    """
    rng = np.random.default_rng([seed, year, month])
    days = calendar.monthrange(year, month)[1]
    month_start = np.datetime64(dt.datetime(year, month, 1), "us").astype(np.int64)

    pickup = month_start + rng.integers(0, days * 86_400, rows) * US_PER_SECOND
    minutes = np.clip(rng.lognormal(mean=np.log(12.0), sigma=0.6, size=rows), 1.0, 180.0)
    hour = (pickup // (3600 * US_PER_SECOND)) % 24
    base_speed = np.where((hour >= 7) & (hour < 20), 10.0, 16.0)
    speed = np.clip(rng.normal(base_speed, 3.0), 2.0, 45.0)
    distance = np.round(speed * minutes / 60.0, 2)
    distance = np.maximum(distance, 0.01)
    dropoff = pickup + np.round(minutes * 60).astype(np.int64) * US_PER_SECOND

    planted: dict[str, np.ndarray] = {}
    if dirty:
        per_kind = max(1, int(rows * DIRTY_SHARE))
        chosen = rng.choice(rows, size=min(rows, per_kind * len(DIRTY_KINDS)), replace=False)
        for n, kind in enumerate(DIRTY_KINDS):
            planted[kind] = np.sort(chosen[n * per_kind : (n + 1) * per_kind])
        pickup[planted["other_month"]] -= 40 * 86_400 * US_PER_SECOND
        dropoff[planted["other_month"]] -= 40 * 86_400 * US_PER_SECOND
        distance[planted["zero_distance"]] = 0.0
        dropoff[planted["negative_duration"]] = pickup[planted["negative_duration"]] - 60 * US_PER_SECOND
        dropoff[planted["too_long"]] = pickup[planted["too_long"]] + 30 * 3600 * US_PER_SECOND
        dropoff[planted["too_fast"]] = pickup[planted["too_fast"]] + 60 * US_PER_SECOND
        distance[planted["too_fast"]] = 5.0  # 5 miles in one minute: 300 mph

    fare = np.round(2.5 + 2.5 * distance + 0.4 * minutes, 2)
    tip = np.round(np.where(rng.random(rows) < 0.6, fare * 0.18, 0.0), 2)
    extra = np.where((hour >= 20) | (hour < 6), 0.5, 0.0)
    total = np.round(fare + tip + extra + 0.5 + 0.3, 2)

    pickup_array = pa.array(pickup, pa.int64()).cast(pa.timestamp("us"))
    if dirty:
        missing = np.zeros(rows, dtype=bool)
        missing[planted["missing_pickup"]] = True
        pickup_array = pc.if_else(pa.array(missing), pa.scalar(None, pa.timestamp("us")), pickup_array)
    distance_array: pa.Array = pa.array(distance, pa.float64())
    if dirty:
        text = pc.cast(distance_array, pa.string())
        garbage = np.zeros(rows, dtype=bool)
        garbage[planted["garbage_distance"]] = True
        distance_array = pc.if_else(pa.array(garbage), pa.scalar("n/a"), text)

    table = pa.table(
        {
            "VendorID": pa.array(rng.integers(1, 3, rows), pa.int64()),
            "tpep_pickup_datetime": pickup_array,
            "tpep_dropoff_datetime": pa.array(dropoff, pa.int64()).cast(pa.timestamp("us")),
            "passenger_count": pa.array(rng.integers(1, 7, rows), pa.int64()),
            "trip_distance": distance_array,
            "RatecodeID": pa.array(np.ones(rows, dtype=np.int64)),
            "store_and_fwd_flag": pa.array(np.where(rng.random(rows) < 0.01, "Y", "N")),
            "PULocationID": pa.array(rng.integers(1, 266, rows), pa.int64()),
            "DOLocationID": pa.array(rng.integers(1, 266, rows), pa.int64()),
            "payment_type": pa.array(rng.integers(1, 3, rows), pa.int64()),
            "fare_amount": pa.array(fare),
            "extra": pa.array(extra),
            "mta_tax": pa.array(np.full(rows, 0.5)),
            "tip_amount": pa.array(tip),
            "tolls_amount": pa.array(np.zeros(rows)),
            "improvement_surcharge": pa.array(np.full(rows, 0.3)),
            "total_amount": pa.array(total),
        }
    )
    return table, planted


def write_taxi_files(
    output: str | Path,
    *,
    rows: int,
    months: int = 12,
    year: int = 2017,
    seed: int = 2017,
    formats: Sequence[str] = ("csv", "parquet"),
    dirty: bool = False,
) -> list[str]:
    """Write ``rows`` trips as monthly files ``{fmt}/yellow_tripdata_{year}-{MM}.{fmt}``; return their paths.

    With ``dirty`` the last CSV file ends in a row cut short (no newline),
    as an interrupted download leaves it.
    """
    root = Path(output)
    written = []
    counts = month_rows(rows, months)
    for month, count in enumerate(counts, start=1):
        table, _ = make_month(year, month, count, seed, dirty)
        name = f"yellow_tripdata_{year}-{month:02d}"
        if "csv" in formats:
            path = root / "csv" / f"{name}.csv"
            cut_short = dirty and month == months
            _write_csv(table, path, cut_short)
            written.append(str(path))
        if "parquet" in formats:
            path = root / "parquet" / f"{name}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, path, row_group_size=1_000_000)
            written.append(str(path))
    return written


def _write_csv(table: pa.Table, path: Path, cut_short: bool) -> None:
    """Write the table as TLC-style CSV: times as 'YYYY-MM-DD HH:MM:SS', no quotes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = {}
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_timestamp(column.type):
            column = pc.strftime(column.cast(pa.timestamp("s")), format=TIME_FORMAT)
        columns[name] = column
    text_table = pa.table(columns)
    options = pa_csv.WriteOptions(quoting_style="none", include_header=False)
    tmp = path.with_suffix(".csv.tmp")
    with pa.OSFile(str(tmp), "wb") as sink:
        sink.write((",".join(table.column_names) + "\n").encode())
        pa_csv.write_csv(text_table, sink, write_options=options)
    if cut_short:
        first_pickup = text_table.column("tpep_pickup_datetime").drop_null()[0].as_py()
        with open(tmp, "ab") as handle:
            handle.write(f"2,{first_pickup},{first_pickup},1,1.2".encode())
    tmp.replace(path)
