"""Acceptance: ``sdpipe run taxi-speed --json`` on every real trip file matches the reference computation.

The reference (``reference.py``) is plain pandas written from the job's
definition.  Result rows must agree to 1e-9 relative, counts per reason exactly.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest

from sdpipe.pipelines.taxi_speed.api import run_taxi_speed

pytestmark = pytest.mark.realdata

# Every trip file of the real-data folder, by folder and pattern.
TRIP_FILES = {
    "bhuvankumar007_taxi_demand": "*.csv",
    "elliotgunn_nyc_taxi_trips": "*.csv",
    "google_ada_automatidata": "*.csv",
    "great_expectations_taxi_samples": "*.csv",
    "josephinezhou716_socrata_export": "*.csv",
    "seaborn_data": "*taxis.csv",
    "rockthejvm_spark_essentials": "*.parquet",
}
HEADS = "nju_wcj_tlc_file_heads"


def trip_files(root: Path, folder: str, pattern: str) -> list[Path]:
    found = sorted((root / folder).glob(pattern))
    assert found, f"no file matches {folder}/{pattern} in {root}"
    return found


def single_file_cases(root: Path) -> list[Path]:
    return [path for folder, pattern in TRIP_FILES.items() for path in trip_files(root, folder, pattern)]


def assert_rows_match(got: list[dict], expected: list[dict], key: str, context: str) -> None:
    assert [row[key] for row in got] == [row[key] for row in expected], f"{context}: keys differ"
    for g, e in zip(got, expected):
        assert g["trips"] == e["trips"], f"{context} {key}={g[key]}: trips"
        for column in ("mean_speed_mph", "distance_weighted_speed_mph"):
            assert math.isclose(g[column], e[column], rel_tol=1e-9), f"{context} {key}={g[key]}: {column}"


def expected_for(reference, paths: list[Path], group_by: str = "date"):
    classified = {path: reference.classify(reference.read_trips(path)) for path in paths}
    combined = pd.concat(classified.values(), ignore_index=True)
    return classified, reference.counts(combined), reference.result(combined, group_by)


def test_every_single_file_matches_reference(real_data, reference, sdpipe, tmp_path):
    checked = 0
    for path in single_file_cases(real_data):
        classified, counts, rows = expected_for(reference, [path])

        run = sdpipe("run", "taxi-speed", "--input", path, "--output", tmp_path / path.stem, "--json", "--quiet")

        assert run.exit_code == 0, f"{path.name}: {run.stderr}"
        document = run.json()
        got_counts = {k: document["counts"][k] for k in ("read", "valid", "rejected")}
        assert got_counts == counts, path.name
        assert_rows_match(document["result"], rows, "date", path.name)
        checked += 1
    assert checked == 28


def test_file_heads_of_every_month_match_reference(real_data, reference, sdpipe, tmp_path):
    """The first KiB of TLC monthly files 2009-2020: one CLI run per year, every file checked."""
    by_year: dict[str, list[Path]] = defaultdict(list)
    for path in trip_files(real_data, HEADS, "*.csv"):
        by_year[path.name.split("_")[2][:4]].append(path)
    assert sorted(by_year) == [str(year) for year in range(2009, 2021)]

    for year, paths in sorted(by_year.items()):
        classified, counts, rows = expected_for(reference, paths)

        run = sdpipe("run", "taxi-speed", "--input", str(real_data / HEADS / f"*_{year}-*.csv"),
                     "--output", tmp_path / year, "--json", "--quiet")

        assert run.exit_code == 0, f"{year}: {run.stderr}"
        document = run.json()
        assert {k: document["counts"][k] for k in ("read", "valid", "rejected")} == counts, year
        assert_rows_match(document["result"], rows, "date", year)
        per_file = {Path(entry["url"]).name: entry["counts"] for entry in document["inputs"]}
        for path in paths:
            assert per_file[path.name] == reference.counts(classified[path]), path.name


def test_each_file_head_result_matches_reference(real_data, reference):
    """Per-file result rows of the 136 heads, through the Python API (no output written)."""
    for path in trip_files(real_data, HEADS, "*.csv"):
        classified, counts, rows = expected_for(reference, [path])

        report = run_taxi_speed(str(path))

        assert {k: report.counts[k] for k in ("read", "valid", "rejected")} == counts, path.name
        assert_rows_match(report.result_records(), rows, "date", path.name)


@pytest.mark.parametrize("group_by", ["date", "weekday", "hour", "month"])
def test_mixed_years_together_match_reference(real_data, reference, sdpipe, tmp_path, group_by):
    """Files of 2009 to 2021 in five header versions and four timestamp layouts, in one run."""
    paths = [
        real_data / HEADS / "yellow_tripdata_2009-05_first1KiB.csv",
        real_data / HEADS / "yellow_tripdata_2014-07_first1KiB.csv",
        real_data / "bhuvankumar007_taxi_demand" / "yellow_tripdata_2016-02_head.csv",
        real_data / "google_ada_automatidata" / "Yellow_Taxi_Trip_Data_excel_resaved.csv",
        real_data / "elliotgunn_nyc_taxi_trips" / "sample_2017.csv",
        real_data / "great_expectations_taxi_samples" / "yellow_tripdata_sample_10_trips_from_each_month.csv",
        real_data / "josephinezhou716_socrata_export" / "yellow_tripdata_2019-01_socrata.csv",
        real_data / "great_expectations_taxi_samples" / "yellow_tripdata_sample_2021.csv",
    ]
    classified, counts, rows = expected_for(reference, paths, group_by)
    arguments = [argument for path in paths for argument in ("--input", path)]

    run = sdpipe("run", "taxi-speed", *arguments, "--group-by", group_by, "--output", tmp_path / "out", "--json")

    assert run.exit_code == 0, run.stderr
    document = run.json()
    assert {k: document["counts"][k] for k in ("read", "valid", "rejected")} == counts
    assert_rows_match(document["result"], rows, group_by, group_by)
    assert len(document["inputs"]) == len(paths)
    by_name = {path.name: classified[path] for path in paths}
    for entry in document["inputs"]:
        assert entry["counts"] == reference.counts(by_name[Path(entry["url"]).name]), entry["url"]
