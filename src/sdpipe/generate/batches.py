"""Synthetic customer CSV drops for batch-validation, deterministic for a seed.

One call writes an inbound folder with four kinds of content, so that a
single run shows every outcome:

- ``acme_20240105_0900``: a valid batch of every required type plus the
  optional type6, UTF-8 with a byte-order mark on some files, and quoted
  fields that hold commas, doubled quotes and newlines;
- ``acme_20240106_0900``: an invalid batch whose type3 file has a record
  one field short, whose type4 file has an unquoted field and whose type7
  file contains a Latin-1 byte;
- ``globex_20240105_1430``: an incomplete batch without type9 and type10;
- ``globex_20240105_1430_type11.csv`` and ``README.txt``: files that match
  no type or no name pattern.

Column counts follow sdpipe's default batch spec.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# Columns per file type in the default batch spec; type6 is optional.
TYPE_COLUMNS = {
    "type1": 4,
    "type2": 4,
    "type3": 14,
    "type4": 3,
    "type5": 2,
    "type6": 15,
    "type7": 23,
    "type8": 21,
    "type9": 5,
    "type10": 3,
}
REQUIRED_TYPES = tuple(t for t in TYPE_COLUMNS if t != "type6")
WORDS = ("north", "south", "widget", "gadget", "blue", "green", "order", "refund", "Zürich", "São Paulo")

VALID_BATCH = "acme_20240105_0900"
INVALID_BATCH = "acme_20240106_0900"
INCOMPLETE_BATCH = "globex_20240105_1430"


def _field(rng: np.random.Generator, column: int) -> str:
    if column == 0:
        return str(int(rng.integers(1000, 99999)))
    if column % 3 == 1:
        return f"{rng.uniform(0, 5000):.2f}"
    return str(WORDS[int(rng.integers(len(WORDS)))])


def _quoted(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def make_file(rng: np.random.Generator, columns: int, records: int) -> list[list[str]]:
    """Return ``records`` rows of ``columns`` plain text values."""
    return [[_field(rng, c) for c in range(columns)] for _ in range(records)]


def render(rows: list[list[str]], *, bom: bool = False, unquoted: set[tuple[int, int]] = frozenset()) -> bytes:
    """Return rows as CSV with every field double-quoted except the ``(row, column)`` pairs in ``unquoted``."""
    lines = []
    for r, row in enumerate(rows):
        fields = [value if (r, c) in unquoted else _quoted(value) for c, value in enumerate(row)]
        lines.append(",".join(fields))
    data = "\r\n".join(lines).encode("utf-8")
    return (b"\xef\xbb\xbf" + data) if bom else data


def write_customer_batches(output: str | Path, *, seed: int = 2024, records: int = 6) -> list[str]:
    """Write the inbound folder described in the module docstring; return the paths written."""
    rng = np.random.default_rng(seed)
    inbound = Path(output)
    inbound.mkdir(parents=True, exist_ok=True)
    written: list[str] = []

    def put(name: str, data: bytes) -> None:
        path = inbound / name
        path.write_bytes(data)
        written.append(str(path))

    for n, file_type in enumerate(TYPE_COLUMNS):
        rows = make_file(rng, TYPE_COLUMNS[file_type], records)
        if file_type == "type2":
            rows[1][1] = 'says "hello", then leaves'
            rows[2][2] = "two\nlines"
        put(f"{VALID_BATCH}_{file_type}.csv", render(rows, bom=n % 2 == 0))

    for file_type in REQUIRED_TYPES:
        rows = make_file(rng, TYPE_COLUMNS[file_type], records)
        unquoted: set[tuple[int, int]] = set()
        if file_type == "type3":
            rows[3] = rows[3][:-1]
        if file_type == "type4":
            unquoted = {(2, 1)}
        data = render(rows, unquoted=unquoted)
        if file_type == "type7":
            data = data.replace(b"order", b"ord\xe9r", 1) if b"order" in data else data + b'\r\n"caf\xe9"'
        put(f"{INVALID_BATCH}_{file_type}.csv", data)

    for file_type in REQUIRED_TYPES[:-2]:
        put(f"{INCOMPLETE_BATCH}_{file_type}.csv", render(make_file(rng, TYPE_COLUMNS[file_type], records)))

    put(f"{INCOMPLETE_BATCH}_type11.csv", render(make_file(rng, 3, 2)))
    put("README.txt", b"Files for the bundled batch-validation sample.\n")
    return written
