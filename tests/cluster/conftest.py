"""Trip files made for the cluster tests, and their expected result computed with pandas."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def write_trips(path: Path, rows: int, seed: int) -> pd.DataFrame:
    """Write a TLC-like trip CSV file with some invalid trips; return its values."""
    rng = np.random.default_rng(seed)
    pickup = np.datetime64("2017-01-01T00:00:00") + rng.integers(0, 31 * 86400, rows).astype("timedelta64[s]")
    seconds = rng.integers(60, 3600, rows)
    seconds[rng.random(rows) < 0.02] = 0  # non-positive duration
    seconds[rng.random(rows) < 0.01] = 30 * 3600  # longer than 24 hours
    distance = np.round(rng.uniform(0.1, 20.0, rows), 2)
    distance[rng.random(rows) < 0.02] = 0.0
    fast = rng.random(rows) < 0.01
    distance[fast] = 90.0
    seconds[fast] = 600  # 540 mph
    frame = pd.DataFrame(
        {
            "tpep_pickup_datetime": pickup,
            "tpep_dropoff_datetime": pickup + seconds.astype("timedelta64[s]"),
            "passenger_count": rng.integers(1, 5, rows),
            "trip_distance": distance,
        }
    )
    frame.to_csv(path, index=False, date_format="%Y-%m-%d %H:%M:%S")
    return frame


def expected_by_date(frame: pd.DataFrame) -> pd.DataFrame:
    """Average speeds per pickup date, from the definition: valid trips only."""
    hours = (frame["tpep_dropoff_datetime"] - frame["tpep_pickup_datetime"]).dt.total_seconds() / 3600
    distance = frame["trip_distance"]
    speed = distance / hours.where(hours > 0)
    valid = (distance > 0) & (hours > 0) & (hours <= 24) & (speed <= 100)
    trips = pd.DataFrame(
        {"date": frame["tpep_pickup_datetime"].dt.date, "speed": speed, "miles": distance, "hours": hours}
    )[valid]
    grouped = trips.groupby("date")
    expected = pd.DataFrame(
        {
            "trips": grouped.size(),
            "mean_speed_mph": grouped["speed"].mean(),
            "distance_weighted_speed_mph": grouped["miles"].sum() / grouped["hours"].sum(),
        }
    )
    return expected.reset_index()


def assert_same_speeds(result: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Check a taxi-speed result against the pandas computation: counts exact, speeds to rounding."""
    assert list(result["date"]) == list(expected["date"])
    assert list(result["trips"]) == list(expected["trips"])
    np.testing.assert_allclose(result["mean_speed_mph"], expected["mean_speed_mph"], rtol=1e-9)
    np.testing.assert_allclose(
        result["distance_weighted_speed_mph"], expected["distance_weighted_speed_mph"], rtol=1e-9
    )


@pytest.fixture(scope="session")
def small_trips(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """Two files of 20,000 trips together."""
    folder = tmp_path_factory.mktemp("small-trips")
    frames = [write_trips(folder / f"trips_{i}.csv", 10_000, seed=i) for i in range(2)]
    return folder, pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="session")
def many_task_trips(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """One file of 300,000 trips (about 14 MB): 217 map tasks with a 64 KiB blocksize."""
    folder = tmp_path_factory.mktemp("many-task-trips")
    return folder, write_trips(folder / "trips.csv", 300_000, seed=7)
