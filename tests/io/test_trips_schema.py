"""The pandera model of the normalised trip table, against the reader's output."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from sdpipe.errors import InputError
from sdpipe.io.files import expand_inputs
from sdpipe.io.trips import inspect_file, plan_partitions, read_partition
from sdpipe.schemas.trips import validate_trips


def trip_table(**overrides) -> pa.Table:
    columns = {
        "pickup": pa.array([dt.datetime(2017, 3, 5, 10), None], pa.timestamp("us")),
        "dropoff": pa.array([dt.datetime(2017, 3, 5, 11), None], pa.timestamp("us")),
        "distance": pa.array([5.0, None]),
    }
    columns.update(overrides)
    return pa.table(columns)


def test_valid_table_with_nulls_passes():
    validate_trips(trip_table(), "t.csv")
    validate_trips(trip_table(color=pa.array(["yellow", None])), "t.csv")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"distance": pa.array([5.0, np.inf])}, "check 'a distance must be a finite number or null'"),
        ({"pickup": pa.array(["2017-03-05", None])}, "column 'pickup' check \"dtype('datetime64"),
        ({"pickup": pa.array([1, 2], pa.timestamp("ns"))}, "check 'pickup and dropoff must be datetime64[us]'"),
        ({"fare": pa.array([1.0, 2.0])}, "check 'column_in_schema' value 'fare'"),
    ],
    ids=["infinite-distance", "text-time", "nanoseconds", "extra-column"],
)
def test_invalid_table_names_column(overrides, message):
    with pytest.raises(InputError) as caught:
        validate_trips(trip_table(**overrides), "t.csv")

    assert str(caught.value).startswith("t.csv: the trip table does not match the TripTable model: ")
    assert message in str(caught.value)


def test_reader_turns_infinite_distance_into_null(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("tpep_pickup_datetime,tpep_dropoff_datetime,trip_distance\n"
                    "2017-03-05 10:00:00,2017-03-05 11:00:00,inf\n2017-03-05 10:00:00,2017-03-05 11:00:00,-inf\n")
    (file,) = expand_inputs(str(path))
    (partition,) = plan_partitions(inspect_file(file))

    table = read_partition(partition).table

    assert table.column("distance").to_pylist() == [None, None]
    validate_trips(table, str(path))


@pytest.mark.realdata
def test_every_real_trip_file_matches_model(real_data):
    patterns = ["bhuvankumar007_taxi_demand/*.csv", "elliotgunn_nyc_taxi_trips/*.csv", "google_ada_automatidata/*.csv",
                "great_expectations_taxi_samples/*.csv", "josephinezhou716_socrata_export/*.csv",
                "seaborn_data/*taxis.csv", "rockthejvm_spark_essentials/*.parquet", "nju_wcj_tlc_file_heads/*.csv"]
    files = expand_inputs([str(real_data / pattern) for pattern in patterns])

    for file in files:
        for partition in plan_partitions(inspect_file(file), blocksize=256 * 1024):
            validate_trips(read_partition(partition).table, file.url)

    assert len(files) == 164


def test_debug_run_validates_each_partition(tmp_path, monkeypatch):
    import logging

    from sdpipe.pipelines.taxi_speed import api
    from sdpipe.schemas import trips as schema

    path = tmp_path / "t.csv"
    path.write_text("tpep_pickup_datetime,tpep_dropoff_datetime,trip_distance\n" +
                    "2017-03-05 10:00:00,2017-03-05 11:00:00,5\n" * 200)
    checked = []
    monkeypatch.setattr(schema, "validate_trips", lambda table, url: checked.append((table.num_rows, url)))
    logger = logging.getLogger("sdpipe.pipelines.taxi_speed.tasks")
    level = logger.level
    logger.setLevel(logging.DEBUG)  # setLevel, unlike assigning .level, clears the logger's cache
    try:
        api.run_taxi_speed(str(path), blocksize=1024, scheduler="synchronous")
    finally:
        logger.setLevel(level)

    assert sum(rows for rows, _ in checked) == 200
    assert len(checked) == -(-path.stat().st_size // 1024)
    assert {url for _, url in checked} == {str(path)}
