"""Grouping of inbound files into batches, and each batch's state: pure, no I/O.

A batch is complete when every required type is present.  A batch that
was routed before and is complete again is a resubmission (its next
attempt).  Files of a routed batch that is not complete again are late.  Age is measured from the newest file's modification time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sdpipe.errors import ConfigError
from sdpipe.pipelines.batch_validation.spec import BatchSpec, FileName

DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
BARE_NUMBER = re.compile(r"\d+(?:\.\d+)?")


@dataclass(frozen=True)
class Listing:
    """One file of the inbound folder: name, full path, size in bytes and modification time (epoch seconds)."""

    name: str
    path: str
    size: int
    modified: float


@dataclass
class Batch:
    """The files of one batch in the inbound folder, and what to do with them."""

    batch: str
    customer: str
    batch_time: str | None
    files: dict[str, Listing] = field(default_factory=dict)
    missing_types: list[str] = field(default_factory=list)
    status: str = "incomplete"  # complete (to validate), incomplete, stale or late
    attempt: int = 1
    previous_attempts: int = 0
    newest_modified: float = 0.0
    age_seconds: float = 0.0


def parse_duration(text: str | float) -> float:
    """Return seconds for a duration such as ``36h``, ``2d``, ``1h30m`` or ``90s``; a bare number is seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    compact = str(text).strip().lower().replace(" ", "")
    if BARE_NUMBER.fullmatch(compact):
        return float(compact)
    parts = DURATION_PART.findall(compact)
    if not compact or "".join(number + unit for number, unit in parts) != compact:
        raise ConfigError(
            f"invalid duration {text!r}; give seconds or a number and a unit s, m, h, d or w, e.g. 90, 36h, 2d or 1h30m"
        )
    return sum(float(number) * DURATION_UNITS[unit] for number, unit in parts)


def plan_batches(
    listings: list[Listing],
    spec: BatchSpec,
    previous_attempts: dict[str, int],
    now: float,
    stale_after: float | None = None,
) -> tuple[list[Batch], list[dict[str, Any]]]:
    """Group the inbound files into batches; return the batches and the unmatched files.

    ``previous_attempts`` maps a batch name to the number of attempts already
    routed.  A file whose name does not match the pattern, or whose type the
    spec does not know, is unmatched and stays where it is.
    """
    batches: dict[str, Batch] = {}
    unmatched: list[dict[str, Any]] = []
    for listing in sorted(listings, key=lambda item: item.name):
        parsed = spec.naming.parse(listing.name)
        if isinstance(parsed, str):
            unmatched.append(_unmatched(listing, parsed, now))
            continue
        if parsed.file_type not in spec.types:
            reason = f"unknown file type {parsed.file_type!r}; the spec knows {', '.join(spec.types)}"
            unmatched.append(_unmatched(listing, reason, now))
            continue
        batch = batches.get(parsed.batch) or batches.setdefault(parsed.batch, _new_batch(parsed))
        batch.files[parsed.file_type] = listing

    for batch in batches.values():
        _classify(batch, spec, previous_attempts.get(batch.batch, 0), now, stale_after)
    return sorted(batches.values(), key=lambda b: b.batch), unmatched


def _new_batch(parsed: FileName) -> Batch:
    return Batch(batch=parsed.batch, customer=parsed.customer, batch_time=parsed.batch_time)


def _classify(batch: Batch, spec: BatchSpec, routed: int, now: float, stale_after: float | None) -> None:
    batch.missing_types = [t for t in spec.required_types if t not in batch.files]
    batch.newest_modified = max(f.modified for f in batch.files.values())
    batch.age_seconds = max(0.0, now - batch.newest_modified)
    batch.previous_attempts = routed
    batch.attempt = routed + 1
    if not batch.missing_types:
        batch.status = "complete"
    elif routed:
        batch.status = "late"
    elif stale_after is not None and batch.age_seconds > stale_after:
        batch.status = "stale"
    else:
        batch.status = "incomplete"


def _unmatched(listing: Listing, reason: str, now: float) -> dict[str, Any]:
    return {
        "file": listing.name,
        "reason": reason,
        "size": listing.size,
        "age_seconds": round(max(0.0, now - listing.modified), 3),
    }
