"""The benchmark harness's result check, and the peers' queries against taxi-speed's definition."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sdpipe.generate.taxi import write_taxi_files

REPO_ROOT = Path(__file__).resolve().parents[2]


def _load_harness():
    path = REPO_ROOT / "benchmarks" / "taxi_speed.py"
    spec = importlib.util.spec_from_file_location("taxi_speed_bench", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


harness = _load_harness()


def _result(trips=(10, 20), mean=(12.5, 13.25), weighted=(12.0, 13.0)) -> dict:
    return {
        "date": np.array([17167, 17168], dtype=np.int32),
        "trips": np.array(trips, dtype=np.int64),
        "mean_speed_mph": np.array(mean, dtype=np.float64),
        "distance_weighted_speed_mph": np.array(weighted, dtype=np.float64),
    }


def test_compare_results_accepts_rounding_noise():
    other = _result(mean=(12.5 * (1 + 1e-12), 13.25))
    assert harness.compare_results(_result(), other) == []


def test_compare_results_reports_trip_count():
    problems = harness.compare_results(_result(), _result(trips=(10, 21)))
    assert problems == ["trips differ on 1 dates, first day 17168: 21 != 20"]


def test_compare_results_reports_speed_beyond_tolerance():
    problems = harness.compare_results(_result(), _result(weighted=(12.0, 13.0 * (1 + 1e-6))))
    assert len(problems) == 1
    assert problems[0].startswith("distance_weighted_speed_mph differs on 1 dates, first day 17168")


def test_compare_results_reports_missing_day():
    short = {name: values[:1] for name, values in _result().items()}
    assert harness.compare_results(_result(), short) == ["1 result rows, expected 2"]


def _expected_by_day(folder: Path) -> pd.DataFrame:
    """Compute the per-day result from the parquet files with pandas, from the definition."""
    frames = [pd.read_parquet(p) for p in sorted((folder / "parquet").glob("*.parquet"))]
    trips = pd.concat(frames, ignore_index=True)
    distance = pd.to_numeric(trips["trip_distance"], errors="coerce")
    hours = (trips["tpep_dropoff_datetime"] - trips["tpep_pickup_datetime"]).dt.total_seconds() / 3600
    speed = distance / hours
    valid = distance.gt(0) & hours.gt(0) & hours.le(24) & speed.le(100) & trips["tpep_pickup_datetime"].notna()
    table = pd.DataFrame(
        {
            "day": trips["tpep_pickup_datetime"][valid].dt.floor("D"),
            "speed": speed[valid],
            "distance": distance[valid],
            "hours": hours[valid],
        }
    )
    grouped = table.groupby("day")
    return pd.DataFrame(
        {
            "trips": grouped.size(),
            "mean_speed_mph": grouped["speed"].mean(),
            "distance_weighted_speed_mph": grouped["distance"].sum() / grouped["hours"].sum(),
        }
    )


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_engines_agree_on_dirty_trips(tmp_path, file_format):
    pytest.importorskip("duckdb")
    pytest.importorskip("polars")
    folder = tmp_path / "trips"
    write_taxi_files(folder, rows=3000, months=2, dirty=True)
    expected = _expected_by_day(folder)
    python = sys.executable
    results = {}
    for engine in ("sdpipe", "duckdb", "polars"):
        output = tmp_path / f"{engine}-{file_format}"
        output.mkdir()
        command = harness.engine_command(engine, file_format, folder, output, python, workers=2)
        subprocess.run(command, check=True, capture_output=True)
        results[engine] = harness.load_result(output / "result.parquet")

    days = (expected.index.values.astype("datetime64[D]").astype(np.int64)).astype(np.int32)
    np.testing.assert_array_equal(results["sdpipe"]["date"], days)
    np.testing.assert_array_equal(results["sdpipe"]["trips"], expected["trips"].to_numpy())
    np.testing.assert_allclose(results["sdpipe"]["mean_speed_mph"], expected["mean_speed_mph"], rtol=1e-9)
    assert harness.compare_results(results["sdpipe"], results["duckdb"]) == []
    assert harness.compare_results(results["sdpipe"], results["polars"]) == []
