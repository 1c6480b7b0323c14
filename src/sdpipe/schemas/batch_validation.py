"""pandera column checks for the files of a customer batch.

A batch spec may give, per file type, checks on some columns (type, range,
allowed values, pattern, length, uniqueness).  :func:`check_records` turns
one chunk of CSV records into typed columns, runs the pandera schema built
from those rules with ``lazy=True`` and returns every failure with its
record number, so a chunk yields all its problems at once.

An empty field is a missing value (null) in every column type.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from sdpipe.pipelines.batch_validation.spec import ColumnRule

INTEGER = re.compile(r"\s*[+-]?\d+\s*")
TRUE_WORDS = {"true", "t", "yes", "y", "1"}
FALSE_WORDS = {"false", "f", "no", "n", "0"}


@dataclass(frozen=True)
class SchemaFailure:
    """One failed check: record number (1-based, ``None`` for a whole-column check), column, check, value."""

    record: int | None
    column: str
    check: str
    value: Any


def check_records(
    records: Sequence[Sequence[str]],
    record_numbers: Sequence[int],
    names: Sequence[str],
    rules: Sequence[ColumnRule],
) -> list[SchemaFailure]:
    """Validate one chunk of records against the column rules; return every failure.

    ``records`` are lists of field strings, already known to have
    ``len(names)`` fields; ``record_numbers`` are their 1-based numbers in the file.
    """
    import pandas as pd

    failures: list[SchemaFailure] = []
    positions = {name: i for i, name in enumerate(names)}
    columns: dict[str, pd.Series] = {}
    unconvertible: dict[str, set[int]] = {}
    index = pd.Index(list(record_numbers), dtype="int64")
    for rule in rules:
        raw = pd.Series([r[positions[rule.name]] for r in records], index=index, dtype=object)
        typed, bad = convert_column(raw, rule.dtype)
        for number in bad:
            failures.append(SchemaFailure(int(number), rule.name, f"dtype('{rule.dtype}')", raw[number]))
        columns[rule.name] = typed
        unconvertible[rule.name] = set(bad)

    frame = pd.DataFrame(columns, index=index)
    for failure in _run_pandera(frame, rules):
        # A value that failed conversion is null in the typed frame; it is already reported.
        if failure.check == "not_nullable" and failure.record in unconvertible.get(failure.column, ()):
            continue
        failures.append(failure)
    return failures


def convert_column(raw: pd.Series, dtype: str) -> tuple[pd.Series, list[int]]:
    """Return the column in ``dtype`` (empty fields null) and the index labels of values that do not convert."""
    import pandas as pd

    text = raw.where(raw.str.strip() != "", None)
    present = text.notna()
    if dtype == "str":
        return text, []
    if dtype == "int":
        ok = text.map(lambda v: v is None or bool(INTEGER.fullmatch(v)))
        typed = pd.array([int(v) if v is not None and good else None for v, good in zip(text, ok)], dtype="Int64")
        return pd.Series(typed, index=raw.index), list(raw.index[~ok])
    if dtype == "float":
        typed = pd.to_numeric(text, errors="coerce").astype("Float64")
    elif dtype == "bool":
        words = text.str.strip().str.lower()
        mapped = words.map(_parse_bool)
        typed = pd.Series(pd.array(list(mapped), dtype="boolean"), index=raw.index)
    elif dtype == "date":
        typed = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    elif dtype == "datetime":
        typed = pd.to_datetime(text, format="ISO8601", errors="coerce")
    else:
        raise ValueError(f"unknown dtype {dtype!r}")
    bad = present & typed.isna()
    return typed, list(raw.index[bad])


def _parse_bool(word: str | None) -> bool | None:
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None


def build_schema(rules: Sequence[ColumnRule]):
    """Return the pandera DataFrameSchema of the rules (types are converted before, so no coercion)."""
    import pandera.pandas as pa

    columns = {}
    for rule in rules:
        checks = []
        if rule.min is not None:
            checks.append(pa.Check.ge(_bound(rule.min, rule.dtype)))
        if rule.max is not None:
            checks.append(pa.Check.le(_bound(rule.max, rule.dtype)))
        if rule.isin is not None:
            checks.append(pa.Check.isin(list(rule.isin)))
        if rule.regex is not None:
            checks.append(pa.Check.str_matches(rule.regex))
        if rule.min_length is not None or rule.max_length is not None:
            checks.append(pa.Check.str_length(rule.min_length, rule.max_length))
        columns[rule.name] = pa.Column(checks=checks, nullable=rule.nullable, unique=rule.unique, coerce=False)
    return pa.DataFrameSchema(columns, strict=False)


def _bound(value: Any, dtype: str) -> Any:
    import pandas as pd

    if dtype in ("date", "datetime") and isinstance(value, (str, dt.date)):
        return pd.Timestamp(value)
    return value


def _run_pandera(frame: pd.DataFrame, rules: Sequence[ColumnRule]) -> list[SchemaFailure]:
    import pandera.pandas as pa

    try:
        build_schema(rules).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        found = []
        for row in cases.itertuples(index=False):
            record = None if row.index is None or row.index != row.index else int(row.index)
            found.append(SchemaFailure(record, str(row.column), str(row.check), row.failure_case))
        return found
    return []
