"""The synthetic trip generator: deterministic output and planted rows as documented."""

from __future__ import annotations

import filecmp

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from sdpipe.cli.main import cli
from sdpipe.generate.taxi import COLUMNS_2017, DIRTY_KINDS, make_month, month_rows, write_taxi_files


def test_month_rows_split_evenly():
    assert month_rows(10, 3) == [4, 3, 3]
    assert sum(month_rows(20_000_001, 12)) == 20_000_001


def test_same_seed_same_bytes(tmp_path):
    first = write_taxi_files(tmp_path / "a", rows=3000, months=2, seed=7, dirty=True)
    second = write_taxi_files(tmp_path / "b", rows=3000, months=2, seed=7, dirty=True)
    for left, right in zip(first, second):
        assert filecmp.cmp(left, right, shallow=False), left


def test_other_seed_other_trips(tmp_path):
    first = write_taxi_files(tmp_path / "a", rows=500, months=1, seed=1, formats=["csv"])
    second = write_taxi_files(tmp_path / "b", rows=500, months=1, seed=2, formats=["csv"])
    assert not filecmp.cmp(first[0], second[0], shallow=False)


def test_bundled_sample_is_reproducible(tmp_path, repo_root):
    """data/sample must be exactly what `make sample` writes."""
    written = write_taxi_files(tmp_path, rows=6000, months=3, seed=2017, dirty=True)
    for path in written:
        relative = path[len(str(tmp_path)) + 1 :]
        assert filecmp.cmp(path, repo_root / "data" / "sample" / relative, shallow=False), relative


def test_csv_has_2017_header_and_plain_times(tmp_path):
    (path,) = write_taxi_files(tmp_path, rows=100, months=1, formats=["csv"])
    with open(path) as handle:
        header = handle.readline().rstrip("\n")
        first = handle.readline().split(",")
    assert header == ",".join(COLUMNS_2017)
    pd.Timestamp(first[1])  # parses
    assert len(first[1]) == len("2017-01-01 00:00:00")


def test_clean_trips_are_all_valid_by_definition():
    table, planted = make_month(2017, 5, 5000, seed=3, dirty=False)
    frame = table.to_pandas()
    hours = (frame.tpep_dropoff_datetime - frame.tpep_pickup_datetime).dt.total_seconds() / 3600
    speed = frame.trip_distance / hours
    assert planted == {}
    assert (frame.trip_distance > 0).all()
    assert ((hours > 0) & (hours <= 24)).all()
    assert (speed <= 100).all()
    assert frame.tpep_pickup_datetime.dt.month.eq(5).all()


@pytest.mark.parametrize("kind", DIRTY_KINDS)
def test_dirty_rows_break_one_rule_each(kind):
    table, planted = make_month(2017, 2, 4000, seed=11, dirty=True)
    frame = table.to_pandas()
    rows = frame.iloc[planted[kind]]
    assert len(rows) == int(4000 * 0.003)
    distance = pd.to_numeric(rows.trip_distance, errors="coerce")
    hours = (rows.tpep_dropoff_datetime - rows.tpep_pickup_datetime).dt.total_seconds() / 3600
    checks = {
        "missing_pickup": rows.tpep_pickup_datetime.isna(),
        "garbage_distance": rows.trip_distance.eq("n/a"),
        "other_month": rows.tpep_pickup_datetime.dt.month.ne(2),
        "zero_distance": distance.eq(0),
        "negative_duration": hours < 0,
        "too_long": hours > 24,
        "too_fast": (distance / hours) > 100,
    }
    assert checks[kind].all()


def test_last_dirty_csv_ends_in_a_cut_row(tmp_path):
    paths = write_taxi_files(tmp_path, rows=200, months=2, formats=["csv"], dirty=True)
    with open(paths[-1], "rb") as handle:
        data = handle.read()
    last = data.rsplit(b"\n", 1)[-1]
    assert not data.endswith(b"\n")
    assert len(last.split(b",")) < len(COLUMNS_2017)


def test_parquet_keeps_typed_times(tmp_path):
    (path,) = write_taxi_files(tmp_path, rows=50, months=1, formats=["parquet"])
    schema = pq.read_schema(path)
    assert str(schema.field("tpep_pickup_datetime").type) == "timestamp[us]"
    assert np.issubdtype(pq.read_table(path).column("trip_distance").to_numpy().dtype, np.floating)


def test_generate_command_lists_files(tmp_path):
    result = CliRunner().invoke(cli, ["generate", "taxi", "--rows", "30", "--months", "2", "--output", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert len(result.output.splitlines()) == 4
