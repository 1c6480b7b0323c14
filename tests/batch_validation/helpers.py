"""Builders of customer files and batches for the batch-validation tests."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

# Column counts of the default spec, written out here from the rules it reproduces.
DEFAULT_COLUMNS = {
    "type1": 4, "type2": 4, "type3": 14, "type4": 3, "type5": 2,
    "type6": 15, "type7": 23, "type8": 21, "type9": 5, "type10": 3,
}
REQUIRED = [t for t in DEFAULT_COLUMNS if t != "type6"]


def quoted_csv(rows: list[list[str]]) -> bytes:
    """Return rows as CSV with every field quoted and inner quotes doubled, LF line ends."""
    lines = [",".join('"' + value.replace('"', '""') + '"' for value in row) for row in rows]
    return ("\n".join(lines) + "\n").encode("utf-8")


def valid_file(file_type: str, rows: int = 2) -> bytes:
    return quoted_csv([[f"r{r}c{c}" for c in range(DEFAULT_COLUMNS[file_type])] for r in range(rows)])


def write_batch(inbound: Path, batch: str, types=None, overrides: dict[str, bytes] | None = None,
                mtime: float | None = None) -> dict[str, bytes]:
    """Write one file per type (valid unless overridden); return name -> bytes."""
    inbound.mkdir(parents=True, exist_ok=True)
    written = {}
    for file_type in types or REQUIRED:
        data = (overrides or {}).get(file_type, valid_file(file_type))
        name = f"{batch}_{file_type}.csv"
        (inbound / name).write_bytes(data)
        if mtime is not None:
            os.utime(inbound / name, (mtime, mtime))
        written[name] = data
    return written


def tree_digest(folder: Path) -> dict[str, str]:
    """Return relative path -> SHA-256 of every file under ``folder``."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*")) if path.is_file()
    }
