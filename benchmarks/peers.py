"""The taxi-speed aggregation written directly in DuckDB and in Polars, for the benchmark.

Run as a script so that each engine starts in a fresh process and its
start-up counts:

    python benchmarks/peers.py duckdb parquet '/tmp/trips/parquet/*.parquet' /tmp/out/result.parquet

Both follow taxi-speed's definition with its default options: per trip,
duration_h = (dropoff - pickup) in hours and speed_mph = trip_distance /
duration_h; a trip is valid when all three values are present, distance > 0,
0 < duration_h <= 24 and speed_mph <= 100.  Per pickup date the result holds
trips, mean_speed_mph (mean of trip speeds) and distance_weighted_speed_mph
(total miles / total hours).  Values that do not parse become null, so those
trips drop out as taxi-speed's unparseable ones do; distance is cast from
text where a file stores it as text.
"""

from __future__ import annotations

import sys

PICKUP = "tpep_pickup_datetime"
DROPOFF = "tpep_dropoff_datetime"
DISTANCE = "trip_distance"
US_PER_HOUR = 3_600_000_000
MAX_HOURS = 24.0
MAX_MPH = 100.0
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

DUCKDB_QUERY = f"""
COPY (
    WITH trips AS (
        SELECT
            CAST({PICKUP} AS DATE) AS date,
            TRY_CAST({DISTANCE} AS DOUBLE) AS distance,
            (epoch_us({DROPOFF}) - epoch_us({PICKUP})) / {US_PER_HOUR}.0 AS duration_h
        FROM {{source}}
        WHERE {PICKUP} IS NOT NULL AND {DROPOFF} IS NOT NULL AND isfinite(distance)
    )
    SELECT
        date,
        count(*) AS trips,
        avg(distance / duration_h) AS mean_speed_mph,
        sum(distance) / sum(duration_h) AS distance_weighted_speed_mph
    FROM trips
    WHERE distance > 0 AND duration_h > 0 AND duration_h <= {MAX_HOURS}
        AND distance / duration_h <= {MAX_MPH}
    GROUP BY date
    ORDER BY date
) TO '{{output}}' (FORMAT parquet)
"""


def run_duckdb(file_format: str, pattern: str, output: str) -> None:
    import duckdb

    if file_format == "parquet":
        source = f"read_parquet('{pattern}')"
    else:
        types = f"{{'{PICKUP}': 'TIMESTAMP', '{DROPOFF}': 'TIMESTAMP', '{DISTANCE}': 'DOUBLE'}}"
        source = (
            f"read_csv('{pattern}', header = true, types = {types}, "
            f"timestampformat = '{TIME_FORMAT}', ignore_errors = true, null_padding = true)"
        )
    connection = duckdb.connect()
    connection.execute(DUCKDB_QUERY.format(source=source, output=output))


def run_polars(file_format: str, pattern: str, output: str) -> None:
    import polars as pl

    if file_format == "parquet":
        frame = pl.scan_parquet(pattern)
    else:
        # Parsing the times with an explicit format is several times faster than
        # declaring them Datetime in schema_overrides (measured with Polars 2.1).
        frame = pl.scan_csv(pattern, schema_overrides={DISTANCE: pl.Float64}, ignore_errors=True)
        frame = frame.with_columns(
            pl.col(name).str.to_datetime(TIME_FORMAT, time_unit="us", strict=False) for name in (PICKUP, DROPOFF)
        )

    duration_h = (pl.col(DROPOFF) - pl.col(PICKUP)).dt.total_microseconds() / US_PER_HOUR
    speed = pl.col(DISTANCE) / pl.col("duration_h")
    valid = (
        (pl.col(DISTANCE) > 0)
        & (pl.col("duration_h") > 0)
        & (pl.col("duration_h") <= MAX_HOURS)
        & (pl.col("speed") <= MAX_MPH)
    )
    result = (
        frame.select(
            pl.col(PICKUP).dt.date().alias("date"),
            pl.col(DISTANCE).cast(pl.Float64, strict=False),
            duration_h.alias("duration_h"),
        )
        .drop_nulls()
        .with_columns(speed.alias("speed"))
        .filter(valid)
        .group_by("date")
        .agg(
            pl.len().cast(pl.Int64).alias("trips"),
            pl.col("speed").mean().alias("mean_speed_mph"),
            (pl.col(DISTANCE).sum() / pl.col("duration_h").sum()).alias("distance_weighted_speed_mph"),
        )
        .sort("date")
    )
    result.collect().write_parquet(output)


ENGINES = {"duckdb": run_duckdb, "polars": run_polars}


def main(argv: list[str]) -> int:
    if len(argv) != 4 or argv[0] not in ENGINES or argv[1] not in ("csv", "parquet"):
        print(f"usage: peers.py {{{','.join(ENGINES)}}} {{csv,parquet}} PATTERN OUTPUT", file=sys.stderr)
        return 2
    engine, file_format, pattern, output = argv
    ENGINES[engine](file_format, pattern, output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
