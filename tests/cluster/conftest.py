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
