"""Readable text of a pandera failure report, for error messages."""

from __future__ import annotations

from typing import Any

FAILURES_SHOWN = 10


def describe_failures(exc: Any, limit: int = FAILURES_SHOWN) -> str:
    """Return the first ``limit`` failure cases of a ``SchemaErrors`` as one line.

    Each case names the column, the check, the offending value and the row.
    """
    failures = exc.failure_cases.head(limit)
    return "; ".join(
        f"column {row.column!r} check {row.check!r} value {row.failure_case!r} at row {row.index}"
        for row in failures.itertuples()
    )
