"""An independent plain-pandas computation of taxi-speed, written from the job's definition.

It shares no code with sdpipe: rows are split by pandas, values parsed by
pandas, the rules applied with numpy.  The tests compare sdpipe's output
with it.

Definition: per trip ``duration_h = (dropoff - pickup)`` in hours and
``speed_mph = distance / duration_h``.  A trip counts under the first reason
that applies: unparseable (a needed value missing or unreadable, or the row
has fewer fields than the header), other_taxi_type, outside_period,
non_positive_distance, non_positive_duration, too_long, too_fast.
"""

from __future__ import annotations

import csv
import datetime as dt
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

REASONS = (
    "unparseable",
    "other_taxi_type",
    "outside_period",
    "non_positive_distance",
    "non_positive_duration",
    "too_long",
    "too_fast",
)
PICKUP_NAMES = ("tpep_pickup_datetime", "lpep_pickup_datetime", "pickup_datetime", "trip_pickup_datetime", "pickup")
DROPOFF_NAMES = ("tpep_dropoff_datetime", "lpep_dropoff_datetime", "dropoff_datetime", "trip_dropoff_datetime", "dropoff")
DISTANCE_NAMES = ("trip_distance", "distance")
# Layouts seen in TLC files and extracts, tried after pandas' ISO 8601 parser.
EXPLICIT_FORMATS = (
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%Y %b %d %I:%M:%S %p",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
)
MAX_EXTRA_FIELDS = 10


def _find(columns: list[str], names: tuple[str, ...]) -> str:
    lowered = {str(c).strip().strip('"').lower(): c for c in columns}
    for name in names:
        if name in lowered:
            return lowered[name]
    raise KeyError(f"none of {names} in {columns}")


def read_trips(path: Path) -> pd.DataFrame:
    """Return ``pickup``, ``dropoff`` (text or datetime), ``distance``, ``color`` and ``short`` per data row."""
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
        columns = list(frame.columns)
        out = pd.DataFrame(
            {
                "pickup": frame[_find(columns, PICKUP_NAMES)],
                "dropoff": frame[_find(columns, DROPOFF_NAMES)],
                "distance": frame[_find(columns, DISTANCE_NAMES)],
            }
        )
        out["short"] = False
        return out

    header = pd.read_csv(path, nrows=0, index_col=False, encoding_errors="replace").columns
    width = len(header)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pd.errors.ParserWarning)
        raw = pd.read_csv(
            path,
            header=None,
            skiprows=1,
            names=list(range(width + MAX_EXTRA_FIELDS)),
            dtype=str,
            na_filter=False,
            index_col=False,
            skip_blank_lines=True,
            encoding_errors="replace",
        )
    names = [str(h) for h in header]
    out = pd.DataFrame(
        {
            "pickup": raw[names.index(str(_find(names, PICKUP_NAMES)))],
            "dropoff": raw[names.index(str(_find(names, DROPOFF_NAMES)))],
            "distance": raw[names.index(str(_find(names, DISTANCE_NAMES)))],
        }
    )
    lowered = [n.strip().lower() for n in names]
    if "color" in lowered:
        out["color"] = raw[lowered.index("color")]
    # pandas fills absent trailing fields like empty ones, so the csv module counts the fields.
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        widths = [len(row) for row in csv.reader(handle) if row][1:]
    assert len(widths) == len(out), f"{path}: csv found {len(widths)} rows, pandas {len(out)}"
    out["short"] = np.array(widths, dtype=int) < width
    return out


def parse_times(values: pd.Series) -> pd.Series:
    """Parse with ISO 8601, then explicit layouts, then pandas' mixed parser, as naive datetimes."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.astype("datetime64[us]")
    text = values.astype("string").str.strip()
    result = pd.to_datetime(text, format="ISO8601", errors="coerce")
    for layout in EXPLICIT_FORMATS:
        pending = result.isna() & text.notna() & (text != "")
        if not pending.any():
            break
        result = result.where(~pending, pd.to_datetime(text.where(pending), format=layout, errors="coerce"))
    pending = result.isna() & text.notna() & (text != "")
    if pending.any():
        result = result.where(~pending, pd.to_datetime(text.where(pending), format="mixed", errors="coerce"))
    return result.astype("datetime64[us]")


def classify(frame: pd.DataFrame, *, start=None, end=None, max_hours=24.0, max_mph=100.0, taxi_type="all") -> pd.DataFrame:
    """Add ``hours``, ``speed`` and ``reason`` ("" for a valid trip) to a frame from :func:`read_trips`."""
    pickup = parse_times(frame["pickup"])
    dropoff = parse_times(frame["dropoff"])
    distance = pd.to_numeric(frame["distance"].astype("string").str.strip(), errors="coerce").astype(float)
    hours = (dropoff - pickup).dt.total_seconds() / 3600.0
    with np.errstate(divide="ignore", invalid="ignore"):
        speed = distance / hours

    unparseable = frame["short"].to_numpy() | pickup.isna().to_numpy() | dropoff.isna().to_numpy()
    unparseable |= ~np.isfinite(distance.to_numpy())
    other_type = np.zeros(len(frame), dtype=bool)
    if taxi_type != "all" and "color" in frame:
        other_type = (frame["color"].fillna("").str.strip().str.lower() != taxi_type).to_numpy()
    day = pickup.dt.date
    outside = np.zeros(len(frame), dtype=bool)
    if start is not None:
        outside |= (day < start).fillna(False).to_numpy(dtype=bool)
    if end is not None:
        outside |= (day > end).fillna(False).to_numpy(dtype=bool)
    conditions = [
        unparseable,
        other_type,
        outside,
        ~(distance.to_numpy() > 0),
        ~(hours.to_numpy() > 0),
        hours.to_numpy() > max_hours,
        speed.to_numpy() > max_mph,
    ]
    reason = np.select(conditions, REASONS, default="")
    return pd.DataFrame({"pickup": pickup, "distance": distance, "hours": hours, "speed": speed, "reason": reason})


def counts(classified: pd.DataFrame) -> dict:
    """Return ``{"read", "valid", "rejected": {reason: n}}``."""
    rejected = {reason: int((classified["reason"] == reason).sum()) for reason in REASONS}
    return {"read": len(classified), "valid": int((classified["reason"] == "").sum()), "rejected": rejected}


def group_key(pickup: pd.Series, group_by: str) -> pd.Series:
    if group_by == "date":
        return pickup.dt.strftime("%Y-%m-%d")
    if group_by == "weekday":
        return (pickup.dt.day_of_week + 1) % 7  # pandas counts Monday = 0; the job counts Sunday = 0
    if group_by == "hour":
        return pickup.dt.hour
    if group_by == "month":
        return pickup.dt.strftime("%Y-%m")
    raise ValueError(group_by)


def result(classified: pd.DataFrame, group_by: str = "date") -> list[dict]:
    """Return the result rows: one per key with a valid trip, sorted by key."""
    valid = classified[classified["reason"] == ""].copy()
    valid["key"] = group_key(valid["pickup"], group_by)
    rows = []
    for key, group in valid.groupby("key", sort=True):
        rows.append(
            {
                group_by: key.item() if hasattr(key, "item") else key,
                "trips": len(group),
                "mean_speed_mph": float(group["speed"].mean()),
                "distance_weighted_speed_mph": float(group["distance"].sum() / group["hours"].sum()),
            }
        )
    return rows


def compat_weekday_means(per_file: list[pd.DataFrame]) -> list[float]:
    """Return the Azure sample's seven numbers from each file's classified trips.

    Per file: the mean speed per weekday over readable trips with distance > 0
    and a finite speed (0 where a weekday has none); then the plain mean over files.
    """
    means = []
    for classified in per_file:
        usable = classified[
            ~classified["reason"].isin(["unparseable", "other_taxi_type", "outside_period"])
            & (classified["distance"] > 0)
            & np.isfinite(classified["speed"])
        ]
        weekday = group_key(usable["pickup"], "weekday")
        by_day = usable["speed"].groupby(weekday).mean()
        means.append([float(by_day.get(day, 0.0)) for day in range(7)])
    return list(np.mean(means, axis=0)) if means else [0.0] * 7


def as_date(value: str) -> dt.date:
    return dt.date.fromisoformat(value)
