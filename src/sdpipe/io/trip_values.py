"""Strict, vectorised parsing of trip values written as text: timestamps and distances.

Every layout is a regular expression whose groups are checked against the
calendar (month 1-12, day within the month, hour 0-23 or 1-12 with AM/PM,
minute and second 0-59), so ``2/30/2019 0:46`` becomes null instead of
rolling over into March as ``strptime`` implementations do.  A value that
matches no layout becomes null; the job counts its row as unparseable.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

US_PER_SECOND = 1_000_000
US_PER_MINUTE = 60 * US_PER_SECOND
US_PER_HOUR = 60 * US_PER_MINUTE
US_PER_DAY = 24 * US_PER_HOUR

MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")

_TIME = r"(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,9}))?)?"
_AMPM = r" ?(?P<ampm>[AaPp][Mm])"

# (label with seconds, label without seconds, pattern), tried in this order.
TIMESTAMP_LAYOUTS: tuple[tuple[str, str, str], ...] = (
    (
        "YYYY-MM-DD hh:mm:ss",
        "YYYY-MM-DD hh:mm",
        r"^(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})(?:[ T]" + _TIME + r")?$",
    ),
    (
        "MM/DD/YYYY hh:mm:ss AM/PM",
        "MM/DD/YYYY hh:mm AM/PM",
        r"^(?P<month>\d{1,2})/(?P<day>\d{1,2})/(?P<year>\d{4}) " + _TIME + _AMPM + "$",
    ),
    (
        "M/D/YYYY H:MM:SS (24-hour, month first)",
        "M/D/YYYY H:MM (24-hour, month first)",
        r"^(?P<month>\d{1,2})/(?P<day>\d{1,2})/(?P<year>\d{4}) " + _TIME + "$",
    ),
    (
        "YYYY Mon DD hh:mm:ss AM/PM",
        "YYYY Mon DD hh:mm AM/PM",
        r"^(?P<year>\d{4}) (?P<month_name>[A-Za-z]{3}) (?P<day>\d{1,2}) " + _TIME + _AMPM + "$",
    ),
)
ISO_LABEL = "YYYY-MM-DD hh:mm[:ss] (ISO 8601, typed fast path)"

_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"


def parse_timestamps(values: pa.ChunkedArray | pa.Array) -> tuple[pa.Array, dict[str, int]]:
    """Parse text timestamps into ``timestamp[us]``; return them and a count of values per layout.

    Surrounding spaces are ignored.  A value that matches no layout, or
    matches one but names no real date or time, is null.
    """
    text = _combine(pc.utf8_trim_whitespace(_combine(values).cast(pa.string())))
    result = np.zeros(len(text), dtype=np.int64)
    parsed = np.zeros(len(text), dtype=bool)
    pending = pc.is_valid(text).to_numpy(zero_copy_only=False)
    counts: dict[str, int] = {}

    for label_seconds, label_minutes, pattern in TIMESTAMP_LAYOUTS:
        positions = np.flatnonzero(pending)
        if len(positions) == 0:
            break
        # Only values that no earlier layout read are matched against this one.
        subset = text if len(positions) == len(text) else text.take(pa.array(positions))
        micros, ok, has_seconds = _parse_layout(subset, pattern)
        if not ok.any():
            continue
        done = positions[ok]
        result[done] = micros[ok]
        parsed[done] = True
        pending[done] = False
        with_seconds = int((ok & has_seconds).sum())
        without_seconds = int(ok.sum()) - with_seconds
        if with_seconds:
            counts[label_seconds] = counts.get(label_seconds, 0) + with_seconds
        if without_seconds:
            counts[label_minutes] = counts.get(label_minutes, 0) + without_seconds

    array = pa.array(result, type=pa.int64(), mask=~parsed).cast(pa.timestamp("us"))
    return array, counts


def _combine(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _parse_layout(text: pa.Array, pattern: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return microseconds, a mask of values that match ``pattern`` and are valid, and a seconds mask."""
    # A match without captures is several times faster, so values that cannot match are skipped first.
    if not pc.any(pc.match_substring_regex(text, re.sub(r"\?P<\w+>", "", pattern))).as_py():
        empty = np.zeros(len(text), dtype=bool)
        return np.zeros(len(text), dtype=np.int64), empty, empty
    groups = pc.extract_regex(text, pattern)
    matched = pc.is_valid(groups).to_numpy(zero_copy_only=False)
    names = [groups.type.field(i).name for i in range(groups.type.num_fields)]

    def number(name: str, default: int = 0) -> np.ndarray:
        if name not in names:
            return np.full(len(text), default, dtype=np.int64)
        field = pc.struct_field(groups, name)
        digits = pc.if_else(pc.equal(field, ""), pa.scalar(None, pa.string()), field)
        return digits.cast(pa.int64()).fill_null(default).to_numpy(zero_copy_only=False)

    year = number("year")
    if "month_name" in names:
        lowered = pc.utf8_lower(pc.struct_field(groups, "month_name"))
        month = pc.index_in(lowered, value_set=pa.array(MONTH_NAMES)).fill_null(-1).to_numpy(zero_copy_only=False) + 1
    else:
        month = number("month")
    day = number("day")
    hour = number("hour")
    minute = number("minute")
    second = number("second")
    fraction = _fraction_micros(groups, names, len(text))
    has_seconds = _group_present(groups, names, "second")

    ok = matched & (month >= 1) & (month <= 12) & (minute <= 59) & (second <= 59)
    if "ampm" in names:
        pm = pc.equal(pc.utf8_lower(pc.struct_field(groups, "ampm")), "pm").fill_null(False).to_numpy(zero_copy_only=False)
        ok &= (hour >= 1) & (hour <= 12)
        hour = np.where(hour == 12, 0, hour) + np.where(pm, 12, 0)
    else:
        ok &= hour <= 23

    month_index = (year - 1970) * 12 + np.clip(month, 1, 12) - 1
    first_day = month_index.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    next_first_day = (month_index + 1).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    ok &= (day >= 1) & (day <= next_first_day - first_day)

    days = first_day + day - 1
    micros = days * US_PER_DAY + hour * US_PER_HOUR + minute * US_PER_MINUTE + second * US_PER_SECOND + fraction
    return micros, ok, has_seconds


def _group_present(groups: pa.StructArray, names: list[str], name: str) -> np.ndarray:
    if name not in names:
        return np.zeros(len(groups), dtype=bool)
    field = pc.struct_field(groups, name)
    return pc.not_equal(field, "").fill_null(False).to_numpy(zero_copy_only=False)


def _fraction_micros(groups: pa.StructArray, names: list[str], size: int) -> np.ndarray:
    """Return the fractional seconds as whole microseconds (digits past the sixth are dropped)."""
    if "fraction" not in names:
        return np.zeros(size, dtype=np.int64)
    digits = pc.struct_field(groups, "fraction")
    padded = pc.utf8_slice_codeunits(pc.utf8_rpad(digits, width=6, padding="0"), 0, 6)
    padded = pc.if_else(pc.equal(digits, ""), pa.scalar("0"), padded)
    return padded.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)


def parse_numbers(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Parse decimal numbers written as text (``.20``, ``1e3``, ``-2``) into ``float64``; others become null."""
    values = _combine(values)
    if pa.types.is_floating(values.type) or pa.types.is_integer(values.type) or pa.types.is_decimal(values.type):
        return values.cast(pa.float64())
    text = pc.utf8_trim_whitespace(values.cast(pa.string()))
    numeric = pc.match_substring_regex(text, _NUMBER)
    cleaned = pc.if_else(numeric, text, pa.scalar(None, pa.string()))
    return cleaned.cast(pa.float64())
