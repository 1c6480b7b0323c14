"""map_trips over several slices of MAP_CHUNK_ROWS equals one pass computed with pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sdpipe.pipelines.taxi_speed import compute
from sdpipe.pipelines.taxi_speed.compute import SpeedParams, map_trips

US_PER_HOUR = 3_600_000_000
ROWS = 5_000


def _trips() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    pickup = np.datetime64("2017-03-01", "us").astype(np.int64) + rng.integers(0, 20 * 24 * US_PER_HOUR, ROWS)
    minutes = rng.uniform(-5, 40 * 60, ROWS)  # some negative, some longer than a day
    dropoff = pickup + (minutes * 60e6).astype(np.int64)
    distance = rng.uniform(-1, 30, ROWS)
    missing = rng.random(ROWS) < 0.02
    return {"pickup": pickup, "dropoff": dropoff, "distance": distance, "missing": missing}


def _expected(trips: dict[str, np.ndarray]) -> tuple[pd.DataFrame, np.ndarray]:
    frame = pd.DataFrame(trips)
    hours = (frame["dropoff"] - frame["pickup"]) / US_PER_HOUR
    speed = frame["distance"] / hours
    valid = ~frame["missing"] & (frame["distance"] > 0) & (hours > 0) & (hours <= 24) & (speed <= 100)
    rejected = np.array(
        [
            frame["missing"].sum(),
            0,
            0,
            (~frame["missing"] & ~(frame["distance"] > 0)).sum(),
            (~frame["missing"] & (frame["distance"] > 0) & ~(hours > 0)).sum(),
            (~frame["missing"] & (frame["distance"] > 0) & (hours > 24)).sum(),
            (~frame["missing"] & (frame["distance"] > 0) & (hours > 0) & (hours <= 24) & (speed > 100)).sum(),
        ]
    )
    day = frame["pickup"][valid] // (24 * US_PER_HOUR)
    table = pd.DataFrame({"day": day, "speed": speed[valid], "miles": frame["distance"][valid], "hours": hours[valid]})
    grouped = table.groupby("day").agg(
        trips=("speed", "size"), speed_sum=("speed", "sum"), miles_sum=("miles", "sum"), hours_sum=("hours", "sum")
    )
    return grouped, rejected


@pytest.mark.parametrize("chunk_rows", [1_000, 1_000_000], ids=["five-slices", "one-slice"])
def test_map_trips_slices_match_pandas(monkeypatch, chunk_rows):
    monkeypatch.setattr(compute, "MAP_CHUNK_ROWS", chunk_rows)
    trips = _trips()
    expected, rejected = _expected(trips)

    partial, reason = map_trips(
        "f.csv", trips["pickup"], trips["dropoff"], trips["distance"], trips["missing"], SpeedParams(), extra_unparseable=3
    )

    assert len(reason) == ROWS
    tally = partial.files["f.csv"]
    assert tally.read == ROWS + 3
    np.testing.assert_array_equal(tally.rejected, rejected + np.array([3, 0, 0, 0, 0, 0, 0]))
    np.testing.assert_array_equal(partial.keys, expected.index.to_numpy())
    np.testing.assert_array_equal(partial.trips, expected["trips"].to_numpy())
    for name in ("speed_sum", "miles_sum", "hours_sum"):
        np.testing.assert_allclose(getattr(partial, name), expected[name].to_numpy(), rtol=1e-12)


def test_map_trips_slices_keep_compat_sums(monkeypatch):
    monkeypatch.setattr(compute, "MAP_CHUNK_ROWS", 700)
    trips = _trips()
    hours = (trips["dropoff"] - trips["pickup"]) / US_PER_HOUR
    with np.errstate(divide="ignore", invalid="ignore"):
        speed = trips["distance"] / hours
    usable = ~trips["missing"] & (trips["distance"] > 0) & np.isfinite(speed)
    weekday = (trips["pickup"][usable] // (24 * US_PER_HOUR) + 4) % 7  # 1970-01-01 was a Thursday

    partial, _ = map_trips(
        "f.csv", trips["pickup"], trips["dropoff"], trips["distance"], trips["missing"],
        SpeedParams(group_by="weekday", compat="azure-sample"),
    )

    tally = partial.files["f.csv"]
    np.testing.assert_array_equal(tally.compat_count, np.bincount(weekday, minlength=7))
    np.testing.assert_allclose(tally.compat_sum, np.bincount(weekday, weights=speed[usable], minlength=7), rtol=1e-12)
