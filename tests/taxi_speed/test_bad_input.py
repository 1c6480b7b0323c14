"""Bad input: each case fails with a message that names the file and the fix, or is counted."""

from __future__ import annotations

import gzip
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

HEADER = "tpep_pickup_datetime,tpep_dropoff_datetime,trip_distance\n"
ROW = "2017-03-05 10:00:00,2017-03-05 10:30:00,5\n"


def test_missing_column_names_file_found_and_wanted(sdpipe, write_csv, tmp_path):
    path = write_csv("zones.csv", "LocationID,Borough,Zone,service_zone\n1,EWR,Newark Airport,EWR\n")

    run = sdpipe("run", "taxi-speed", "-i", path, "-o", tmp_path / "o")

    assert run.exit_code == 1
    assert run.stdout == ""
    assert run.stderr.startswith(f"Error: {path}: cannot find the pickup, dropoff, distance column(s). ")
    assert "Columns found: 'LocationID', 'Borough', 'Zone', 'service_zone'." in run.stderr
    assert "pickup: one of tpep_pickup_datetime, lpep_pickup_datetime, pickup_datetime" in run.stderr
    assert "distance: one of trip_distance, distance." in run.stderr
    assert "Traceback" not in run.stderr


def test_one_missing_column_named_alone(sdpipe, write_csv, tmp_path):
    path = write_csv("t.csv", "tpep_pickup_datetime,tpep_dropoff_datetime,fare\n")

    run = sdpipe("run", "taxi-speed", "-i", path, "-o", tmp_path / "o")

    assert run.exit_code == 1
    assert "cannot find the distance column(s)" in run.stderr
    assert "pickup: one of" not in run.stderr


def test_missing_column_in_parquet(tmp_path, sdpipe):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"pickup_time": [1], "trip_distance": [1.0]}), path)

    run = sdpipe("run", "taxi-speed", "-i", path, "-o", tmp_path / "o")

    assert run.exit_code == 1
    assert f"Error: {path}: cannot find the pickup, dropoff column(s)" in run.stderr
    assert "Columns found: 'pickup_time', 'trip_distance'." in run.stderr


def test_path_matching_nothing(sdpipe, tmp_path):
    run = sdpipe("run", "taxi-speed", "-i", tmp_path / "nowhere" / "*.csv", "-o", tmp_path / "o")

    assert run.exit_code == 1
    assert f"Error: no input file matches '{tmp_path / 'nowhere' / '*.csv'}'" in run.stderr
    assert "quote it so that the shell does not expand it" in run.stderr


def test_empty_file_counted_and_noted(sdpipe, write_csv, tmp_path):
    empty = write_csv("in/empty.csv", b"")
    write_csv("in/trips.csv", HEADER + ROW)

    run = sdpipe("run", "taxi-speed", "-i", tmp_path / "in", "-o", tmp_path / "o", "--json")

    assert run.exit_code == 0, run.stderr
    entry = next(e for e in run.json()["inputs"] if e["url"] == str(empty))
    assert entry["size"] == 0
    assert entry["note"] == "empty file: no header, no rows"
    assert entry["counts"]["read"] == 0
    assert run.json()["counts"]["read"] == 1
    assert f"note: {empty}: empty file: no header, no rows" in run.stderr


def test_only_an_empty_file_gives_no_result(sdpipe, write_csv, tmp_path):
    path = write_csv("empty.csv", b"")

    run = sdpipe("run", "taxi-speed", "-i", path, "-o", tmp_path / "o", "--json")

    assert run.exit_code == 0, run.stderr
    assert run.json()["result"] == []
    assert run.json()["counts"]["read"] == 0
    assert "result: no valid trip" in run.stderr


@pytest.mark.realdata
def test_zero_row_parquet(sdpipe, real_data, tmp_path):
    path = real_data / "rockthejvm_spark_essentials" / "yellow_taxi_jan_25_2018_part-00000_empty.snappy.parquet"

    run = sdpipe("run", "taxi-speed", "-i", path, "-o", tmp_path / "o", "--json")

    assert run.exit_code == 0, run.stderr
    (entry,) = run.json()["inputs"]
    assert entry["note"] == "parquet file with no rows"
    assert entry["counts"]["read"] == 0
    assert entry["header_version"].startswith("2016-07 to 2018 header")
    assert run.json()["result"] == []


def test_binary_file_with_nul_bytes(sdpipe, write_csv, tmp_path):
    path = write_csv("trips.csv", HEADER.encode("utf-16"))

    run = sdpipe("run", "taxi-speed", "-i", path, "-o", tmp_path / "o")

    assert run.exit_code == 1
    assert f"Error: {path}: the file contains NUL bytes, so it is not a text CSV file" in run.stderr
    assert "convert it to UTF-8 CSV or parquet" in run.stderr


def test_garbage_without_nul_bytes(sdpipe, write_csv, tmp_path):
    path = write_csv("trips.csv", bytes(range(1, 256)) * 8)

    run = sdpipe("run", "taxi-speed", "-i", path, "-o", tmp_path / "o")

    assert run.exit_code == 1
    assert f"Error: {path}: cannot find the pickup, dropoff, distance column(s)" in run.stderr


@pytest.mark.realdata
def test_pdf_given_as_input(sdpipe, real_data, tmp_path):
    path = real_data / "elliotgunn_nyc_taxi_trips" / "data_dictionary_trip_records_yellow.pdf"

    run = sdpipe("run", "taxi-speed", "-i", path, "-o", tmp_path / "o")

    assert run.exit_code == 1
    assert run.stderr.startswith(f"Error: {path}: ")
    assert "Traceback" not in run.stderr


def test_truncated_parquet(sdpipe, tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"tpep_pickup_datetime": [1], "tpep_dropoff_datetime": [2], "trip_distance": [1.0]}), path)
    path.write_bytes(path.read_bytes()[:-30])

    run = sdpipe("run", "taxi-speed", "-i", path, "-o", tmp_path / "o")

    assert run.exit_code == 1
    assert f"Error: {path}: not a readable parquet file" in run.stderr


def test_gz_file_that_is_not_gzip(sdpipe, write_csv, tmp_path):
    path = write_csv("trips.csv.gz", HEADER + ROW)

    run = sdpipe("run", "taxi-speed", "-i", path, "-o", tmp_path / "o")

    assert run.exit_code == 1
    assert f"Error: {path}: cannot read the file" in run.stderr


def test_gzip_file_read(sdpipe, tmp_path):
    path = tmp_path / "trips.csv.gz"
    path.write_bytes(gzip.compress((HEADER + ROW).encode()))

    run = sdpipe("run", "taxi-speed", "-i", path, "-o", tmp_path / "o", "--json")

    assert run.exit_code == 0, run.stderr
    assert run.json()["counts"]["valid"] == 1


def test_unreadable_file(sdpipe, write_csv, tmp_path, monkeypatch):
    """Permission bits do not stop root, so the filesystem is made to refuse the open."""
    import fsspec.implementations.local as local

    path = write_csv("trips.csv", HEADER + ROW)
    real_open = local.LocalFileSystem._open

    def deny_open(self, name, *args, **kwargs):
        if str(name).endswith("trips.csv"):
            raise PermissionError(13, "Permission denied", str(name))
        return real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(local.LocalFileSystem, "_open", deny_open)

    run = sdpipe("run", "taxi-speed", "-i", path, "-o", tmp_path / "o")

    assert run.exit_code == 1
    assert f"Error: {path}: cannot open the file ([Errno 13] Permission denied" in run.stderr
    assert "check that it exists and is readable" in run.stderr


@pytest.mark.parametrize(
    ("value", "column"),
    [("1.2.3", "distance"), ("NaN", "distance"), ("inf", "distance"), ("2017-03-05 25:00:00", "pickup"),
     ("31/03/2017 10:00", "dropoff"), ("", "pickup")],
)
def test_unreadable_value_counted(sdpipe, write_csv, tmp_path, value, column):
    """A value that cannot be read is one unparseable trip: no crash, no NaN in the result."""
    fields = {"pickup": "2017-03-05 10:00:00", "dropoff": "2017-03-05 10:30:00", "distance": "5"}
    fields[column] = value
    path = write_csv("t.csv", HEADER + ROW + ",".join(fields.values()) + "\n" + ROW)

    run = sdpipe("run", "taxi-speed", "-i", path, "-o", tmp_path / "o", "--json")

    assert run.exit_code == 0, run.stderr
    document = run.json()
    assert document["counts"]["rejected"]["unparseable"] == 1
    assert document["counts"]["valid"] == 2
    assert document["result"] == [
        {"date": "2017-03-05", "trips": 2, "mean_speed_mph": 10.0, "distance_weighted_speed_mph": 10.0}
    ]


def test_directory_with_hidden_files_skipped(sdpipe, write_csv, tmp_path):
    write_csv("in/trips.csv", HEADER + ROW)
    write_csv("in/.hidden.csv", "not,a,trip\n")
    shutil.copy(tmp_path / "in" / "trips.csv", tmp_path / "in" / "more.csv")

    run = sdpipe("run", "taxi-speed", "-i", tmp_path / "in", "-o", tmp_path / "o", "--json")

    assert run.exit_code == 0, run.stderr
    assert len(run.json()["inputs"]) == 2
