"""The reports of batch-validation: per batch (JSON and text) and per run."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sdpipe.pipelines.batch_validation.batches import Batch
from sdpipe.pipelines.batch_validation.checks import FileCheck


RESULT_COLUMNS = [
    "batch", "customer", "batch_time", "status", "attempt", "previous_attempts", "files", "missing_types",
    "newest_modified", "age_seconds", "error_count", "errors", "file_checks", "destination", "routed",
    "routing_error",
]


def iso_time(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, tz=dt.timezone.utc).isoformat(timespec="seconds")


def batch_entry(batch: Batch, status: str, checks: list[FileCheck] | None = None) -> dict[str, Any]:
    """Return one batch's entry of ``result``; ``errors`` concatenates the listed errors of its files."""
    checks = checks or []
    return {
        "batch": batch.batch,
        "customer": batch.customer,
        "batch_time": batch.batch_time,
        "status": status,
        "attempt": batch.attempt if status in ("valid", "invalid", "error") else None,
        "previous_attempts": batch.previous_attempts,
        "files": [batch.files[t].name for t in sorted(batch.files, key=_type_order(batch))],
        "missing_types": list(batch.missing_types),
        "newest_modified": iso_time(batch.newest_modified),
        "age_seconds": round(batch.age_seconds, 3),
        "error_count": sum(c.error_count for c in checks),
        "errors": [error for c in checks for error in c.errors],
        "file_checks": [c.describe() for c in checks],
        "destination": None,
        "routed": False,
        "routing_error": None,
    }


def _type_order(batch: Batch):
    names = list(batch.files)
    return lambda t: names.index(t)


def batch_text(entry: dict[str, Any]) -> str:
    """Return the readable report of one checked batch."""
    lines = [
        f"Batch {entry['batch']} (customer {entry['customer']}, time {entry['batch_time']}), "
        f"attempt {entry['attempt']}: {entry['status'].upper()}",
        "",
        "Files:",
    ]
    for check in entry["file_checks"]:
        line = f"  {check['file']}: {check['status']}, {check['records']} records, {check['size']} bytes"
        if check["error_count"]:
            line += f", {check['error_count']} problems"
        if check["read_error"]:
            line += f" ({check['read_error']})"
        lines.append(line)
    if entry["errors"]:
        lines += ["", "Problems:"]
        for error in entry["errors"]:
            lines.append("  " + error_line(error))
    hidden = sum(c["errors_not_listed"] for c in entry["file_checks"])
    if hidden:
        lines.append(f"  ... and {hidden} more problems not listed (see errors_by_rule in the JSON report)")
    return "\n".join(lines) + "\n"


def error_line(error: dict[str, Any]) -> str:
    """Return one problem as ``file record R field F [rule]: message (value 'v')``."""
    where = [error["file"]]
    if error.get("record") is not None:
        where.append(f"record {error['record']}")
    if error.get("field") is not None:
        where.append(f"field {error['field']}")
    text = f"{' '.join(where)} [{error['rule']}]: {error['message']}"
    if error.get("value") is not None:
        text += f" (value {error['value']!r})"
    return text


def summary_lines(result: list[dict[str, Any]], unmatched: list[dict[str, Any]], resumed: list[str],
                  dry_run: bool, inbound: str) -> list[str]:
    """Return the readable run summary: one line per batch, then unmatched files."""
    counts: dict[str, int] = {}
    for entry in result:
        counts[entry["status"]] = counts.get(entry["status"], 0) + 1
    tally = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no batch"
    lines = [f"batch-validation{' (dry run, nothing moved)' if dry_run else ''}: {inbound}: {tally}"]
    for folder in resumed:
        lines.append(f"  finished the interrupted routing of {folder}")
    for entry in result:
        line = f"  {entry['batch']:<32} {entry['status']:<10}"
        if entry["status"] in ("valid", "invalid", "error"):
            count = len(entry["files"])
            line += f" attempt {entry['attempt']}, {count} file{'s' if count != 1 else ''}"
            if entry["error_count"]:
                line += f", {entry['error_count']} problem{'s' if entry['error_count'] != 1 else ''}"
            if entry["destination"]:
                line += f" -> {entry['destination']}"
            if entry["routing_error"]:
                line += f"; NOT ROUTED: {entry['routing_error']}"
        else:
            line += f" missing {', '.join(entry['missing_types'])}; newest file {_age(entry['age_seconds'])} old"
        lines.append(line)
        for error in entry["errors"][:5]:
            lines.append("      " + error_line(error))
        if len(entry["errors"]) > 5 or entry["error_count"] > 5:
            lines.append(f"      ... {entry['error_count'] - min(5, len(entry['errors']))} more in the batch report")
    for item in unmatched:
        lines.append(f"  unmatched: {item['file']}: {item['reason']}")
    return lines


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
