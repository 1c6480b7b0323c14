"""Pure checks of one customer CSV file: bytes in, a list of problems out.

:func:`check_blocks` takes the file as an iterable of byte blocks and reads
it once, so memory depends on the block size, the longest line and the
schema chunk, not on the file size.  Records are parsed by Python's
:mod:`csv` module (strict mode), so quoted fields may hold delimiters,
doubled quotes and newlines.  Physical lines end at CR LF, LF or CR.

Every problem names the record and field (both 1-based), the physical line
where the record starts, and the byte offset where one is meaningful.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sdpipe.pipelines.batch_validation.spec import TypeSpec

MAX_LINE_BYTES = 4 * 1024 * 1024
SCHEMA_CHUNK_RECORDS = 10_000
HEAD_BYTES = 4096
VALUE_WIDTH = 40

# Problem kinds, as written in reports under "rule".
RULES = (
    "empty_file",
    "wrong_encoding",
    "undecodable_bytes",
    "malformed_csv",
    "line_too_long",
    "blank_line",
    "column_count",
    "unquoted_field",
    "header_mismatch",
    "schema",
)

BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32 (little-endian)"),
    (codecs.BOM_UTF32_BE, "UTF-32 (big-endian)"),
    (codecs.BOM_UTF8, "UTF-8"),
    (codecs.BOM_UTF16_LE, "UTF-16 (little-endian)"),
    (codecs.BOM_UTF16_BE, "UTF-16 (big-endian)"),
)
LINE_END = re.compile(rb"\r\n|\r|\n")


@dataclass
class FileCheck:
    """The outcome of checking one file.

    ``errors`` lists at most the spec's cap of problems; ``error_count`` and
    ``errors_by_rule`` count all of them, and ``errors_not_listed`` counts the
    ones left out of ``errors``.
    """

    file: str
    file_type: str
    size: int = 0
    sha256: str = ""
    records: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    error_count: int = 0
    errors_by_rule: dict[str, int] = field(default_factory=dict)
    errors_not_listed: int = 0
    read_error: str | None = None
    cap: int = 100
    encoding: str = "utf-8"

    @property
    def valid(self) -> bool:
        return self.error_count == 0 and self.read_error is None

    def add(self, rule: str, message: str, *, record: int | None = None, field: int | None = None,
            line: int | None = None, byte_offset: int | None = None, value: Any = None) -> None:
        """Count a problem, and list it while the cap allows."""
        self.error_count += 1
        self.errors_by_rule[rule] = self.errors_by_rule.get(rule, 0) + 1
        if len(self.errors) >= self.cap:
            self.errors_not_listed += 1
            return
        self.errors.append(
            {
                "file": self.file,
                "record": record,
                "field": field,
                "line": line,
                "byte_offset": byte_offset,
                "rule": rule,
                "value": shorten(value),
                "message": message,
            }
        )

    def describe(self) -> dict[str, Any]:
        """Return the file's entry in the batch report."""
        return {
            "file": self.file,
            "type": self.file_type,
            "status": "valid" if self.valid else "invalid",
            "size": self.size,
            "sha256": self.sha256,
            "records": self.records,
            "error_count": self.error_count,
            "errors_by_rule": dict(sorted(self.errors_by_rule.items())),
            "errors_not_listed": self.errors_not_listed,
            "read_error": self.read_error,
        }


def shorten(value: Any, width: int = VALUE_WIDTH) -> Any:
    """Return ``value`` as text cut to ``width`` characters (with "..."), or ``None``."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= width else text[: width - 3] + "..."


class _Bytes:
    """The file's blocks, hashed and counted as they are consumed."""

    def __init__(self, blocks: Iterable[bytes]):
        self._blocks = iter(blocks)
        self.digest = hashlib.sha256()
        self.size = 0
        self.pending = b""

    def next_block(self) -> bytes | None:
        """Return the next unread block (the bytes kept by :meth:`head` first), or ``None`` at the end."""
        if self.pending:
            block, self.pending = self.pending, b""
            return block
        return self._read()

    def head(self, n: int) -> bytes:
        """Return up to ``n`` first bytes without consuming them."""
        while len(self.pending) < n:
            block = self._read()
            if block is None:
                break
            self.pending += block
        return self.pending[:n]

    def _read(self) -> bytes | None:
        for block in self._blocks:
            if block:
                self.digest.update(block)
                self.size += len(block)
                return bytes(block)
        return None

    def drain(self) -> None:
        self.pending = b""
        while self._read() is not None:
            pass


def split_lines(source: _Bytes, start: int) -> Iterator[tuple[int, bytes | None]]:
    """Yield ``(byte_offset, line)`` with the line ending kept; ``line`` is ``None`` for a line over the cap."""
    buffer = b""
    offset = start
    skipping = False
    while True:
        block = source.next_block()
        at_end = block is None
        buffer += block or b""
        position = 0
        while True:
            match = LINE_END.search(buffer, position)
            # A CR at the end of the buffer may be the first half of a CR LF.
            if match is None or (match.group() == b"\r" and match.end() == len(buffer) and not at_end):
                break
            if skipping:
                skipping = False
            elif match.end() - position > MAX_LINE_BYTES:
                yield offset + position, None
            else:
                yield offset + position, buffer[position : match.end()]
            position = match.end()
        buffer = buffer[position:]
        offset += position
        if len(buffer) > MAX_LINE_BYTES:
            if not skipping:
                yield offset, None
                skipping = True
            offset += len(buffer)
            buffer = b""
        if at_end:
            if buffer and not skipping:
                yield offset, buffer
            return


def detect_encoding_problem(head: bytes, spec: TypeSpec) -> tuple[str | None, int]:
    """Return ``(problem, bom_length)``: a wrong-encoding message or ``None``, and the BOM bytes to skip."""
    for bom, name in BOMS:
        if head.startswith(bom):
            if name == "UTF-8":
                if spec.encoding != "utf-8":
                    return f"the file starts with a UTF-8 byte-order mark, but {spec.name} files are {spec.encoding}", len(bom)
                if spec.bom == "forbidden":
                    return f"the file starts with a UTF-8 byte-order mark, which {spec.name} files must not have", len(bom)
                return None, len(bom)
            return f"the file is {name} (byte-order mark {bom.hex(' ')}); save it as {spec.encoding}", len(bom)

    odd_nuls = head[1::2].count(0)
    even_nuls = head[0::2].count(0)
    pairs = len(head) // 2
    if pairs and max(odd_nuls, even_nuls) >= 0.4 * pairs:
        endian = "little" if odd_nuls >= even_nuls else "big"
        return (
            f"the file looks like UTF-16 ({endian}-endian, no byte-order mark: "
            f"{odd_nuls + even_nuls} NUL bytes in the first {len(head)}); save it as {spec.encoding}",
            0,
        )
    if spec.encoding == "utf-8" and spec.bom == "required":
        return f"the file has no UTF-8 byte-order mark, which {spec.name} files must have", 0
    return None, 0


@dataclass
class _Record:
    """State of the record being read: its number, first line and decoding problems."""

    number: int = 1
    line: int = 1
    text: list[str] = field(default_factory=list)
    undecodable: list[tuple[int, int, bytes]] = field(default_factory=list)  # (char position, byte offset, bytes)


class _Lines:
    """Decoded lines for :mod:`csv`, remembering which ones make up the current record."""

    def __init__(self, lines: Iterator[tuple[int, bytes | None]], spec: TypeSpec, check: FileCheck):
        self.lines = lines
        self.spec = spec
        self.check = check
        self.line_number = 0
        self.record = _Record()

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        while True:
            offset, raw = next(self.lines)
            self.line_number += 1
            if not self.record.text:
                self.record.line = self.line_number
            if raw is not None:
                break
            self.check.add(
                "line_too_long",
                f"line {self.line_number} is longer than {MAX_LINE_BYTES} bytes; it was skipped",
                record=self.record.number, line=self.line_number, byte_offset=offset,
            )
        text = self._decode(raw, offset)
        self.record.text.append(text)
        return text

    def _decode(self, raw: bytes, offset: int) -> str:
        pieces = []
        position = 0
        chars_before = sum(len(t) for t in self.record.text)
        while True:
            try:
                pieces.append(raw[position:].decode(self.spec.encoding))
                return "".join(pieces)
            except UnicodeDecodeError as exc:
                pieces.append(raw[position : position + exc.start].decode(self.spec.encoding))
                char_position = chars_before + sum(len(p) for p in pieces)
                bad = raw[position + exc.start : position + exc.end]
                self.record.undecodable.append((char_position, offset + position + exc.start, bad))
                pieces.append("\ufffd")
                position += exc.end

    def next_record(self) -> None:
        self.record = _Record(number=self.record.number + 1, line=self.line_number + 1)


def check_blocks(blocks: Iterable[bytes], name: str, spec: TypeSpec, *, max_errors: int = 100,
                 chunk_records: int = SCHEMA_CHUNK_RECORDS) -> FileCheck:
    """Check one file, given as byte blocks, against the rules of its type."""
    check = FileCheck(file=name, file_type=spec.name, cap=max_errors, encoding=spec.encoding)
    source = _Bytes(blocks)

    head = source.head(HEAD_BYTES)
    if not head:
        check.add("empty_file", "the file is empty (0 bytes)", byte_offset=0)
        return _finish(check, source)
    problem, bom_length = detect_encoding_problem(head, spec)
    if problem:
        check.add("wrong_encoding", problem, byte_offset=0, value=head[:4].hex(" "))
        if bom_length == 0 or not head.startswith(codecs.BOM_UTF8):
            source.drain()
            return _finish(check, source)
    source.pending = source.pending[bom_length:]

    lines = _Lines(split_lines(source, bom_length), spec, check)
    _check_records(lines, spec, check, chunk_records)
    if check.records == 0 and not check.error_count:
        check.add("empty_file", "the file has no records" + (" (only a byte-order mark)" if bom_length else ""))
    elif spec.header and check.records == 1 and not check.error_count:
        check.add("empty_file", "the file has a header row but no data records", record=1, line=1)
    return _finish(check, source)


def _finish(check: FileCheck, source: _Bytes) -> FileCheck:
    check.size = source.size
    check.sha256 = source.digest.hexdigest()
    return check


def _check_records(lines: _Lines, spec: TypeSpec, check: FileCheck, chunk_records: int) -> None:
    reader = csv.reader(lines, delimiter=spec.delimiter, quotechar='"', strict=True)
    schema = _SchemaChunks(spec, check, chunk_records) if spec.schema else None
    names = spec.column_names()
    blank_lines = []

    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            record = lines.record
            _report_undecodable(check, record, None)
            check.add(
                "malformed_csv",
                f"record {record.number} is not valid CSV: {exc}; quote fields that contain quotes, "
                "delimiters or newlines and double the quotes inside them",
                record=record.number, line=record.line, value="".join(record.text).rstrip("\r\n"),
            )
            check.records += 1
            lines.next_record()
            continue

        record = lines.record
        check.records += 1
        if not fields:
            blank_lines.append(record)
        else:
            for pending in blank_lines:
                _report_blank(check, pending)
            blank_lines = []
            starts = _check_fields(fields, record, spec, check)
            _report_undecodable(check, record, starts)
            if spec.header and record.number == 1:
                names = _check_header(fields, spec, check, record) or names
            elif schema is not None and len(fields) == spec.columns:
                schema.add(record.number, fields, names)
        lines.next_record()

    # Blank lines at the very end are a trailing empty record or two; still report them.
    for pending in blank_lines:
        _report_blank(check, pending)
    if schema is not None:
        schema.flush()


def _report_blank(check: FileCheck, record: _Record) -> None:
    check.add("blank_line", f"record {record.number} (line {record.line}) is an empty line; remove it",
              record=record.number, line=record.line)


def _check_fields(fields: list[str], record: _Record, spec: TypeSpec, check: FileCheck) -> list[int]:
    """Check column count and quoting; return each field's start position in the record text."""
    text = "".join(record.text)
    if len(fields) != spec.columns:
        first_extra = spec.columns + 1 if len(fields) > spec.columns else None
        check.add(
            "column_count",
            f"record {record.number} has {len(fields)} fields; {spec.name} files have {spec.columns}",
            record=record.number, field=first_extra, line=record.line, value=text.rstrip("\r\n"),
        )

    starts = []
    position = 0
    for number, value in enumerate(fields, start=1):
        starts.append(position)
        quoted = text.startswith('"', position)
        if quoted:
            position += 2 + len(value) + value.count('"')
        else:
            position += len(value)
            if spec.quoting == "all":
                check.add(
                    "unquoted_field",
                    f"record {record.number} field {number} is not enclosed in double quotes",
                    record=record.number, field=number, line=record.line, value=value,
                )
        position += 1
    return starts


def _report_undecodable(check: FileCheck, record: _Record, starts: list[int] | None) -> None:
    for char_position, byte_offset, bad in record.undecodable:
        number = None
        if starts:
            number = sum(1 for start in starts if start <= char_position)
        check.add(
            "undecodable_bytes",
            f"bytes {bad.hex(' ')} at byte offset {byte_offset} are not valid {check.encoding}; "
            f"save the file as {check.encoding}",
            record=record.number, field=number, line=record.line, byte_offset=byte_offset, value=bad.hex(" "),
        )


def _check_header(fields: list[str], spec: TypeSpec, check: FileCheck, record: _Record) -> tuple[str, ...] | None:
    """Compare the header with the spec's names; return the names to use for schema columns."""
    if not spec.names:
        return tuple(fields) if len(fields) == spec.columns else None
    for number, (found, expected) in enumerate(zip(fields, spec.names), start=1):
        if found.strip() != expected:
            check.add(
                "header_mismatch",
                f"header field {number} is {found!r}; {spec.name} files name that column {expected!r}",
                record=record.number, field=number, line=record.line, value=found,
            )
    return None


class _SchemaChunks:
    """Records buffered for the pandera checks, validated a chunk at a time."""

    def __init__(self, spec: TypeSpec, check: FileCheck, chunk_records: int):
        self.spec = spec
        self.check = check
        self.chunk_records = chunk_records
        self.records: list[list[str]] = []
        self.numbers: list[int] = []
        self.names: tuple[str, ...] = spec.column_names()
        self.seen: dict[str, dict[str, int]] = {rule.name: {} for rule in spec.schema if rule.unique}

    def add(self, number: int, fields: list[str], names: tuple[str, ...]) -> None:
        self.names = names
        self.records.append(fields)
        self.numbers.append(number)
        if len(self.records) >= self.chunk_records:
            self.flush()

    def flush(self) -> None:
        if not self.records:
            return
        from sdpipe.schemas.batch_validation import check_records

        missing = [rule.name for rule in self.spec.schema if rule.name not in self.names]
        if missing:
            self.check.add(
                "schema",
                f"the schema checks column {missing[0]!r}, but the file has no column of that name",
                record=1 if self.spec.header else None, value=missing[0],
            )
            self.records, self.numbers = [], []
            return

        rules = self.spec.schema
        failures = check_records(self.records, self.numbers, self.names, rules)
        positions = {name: i for i, name in enumerate(self.names)}
        for failure in failures:
            self.check.add(
                "schema",
                f"record {failure.record} column {failure.column!r} failed the check {failure.check}",
                record=failure.record,
                field=positions[failure.column] + 1 if failure.column in positions else None,
                value=failure.value,
            )
        self._check_unique_across_chunks(positions)
        self.records, self.numbers = [], []

    def _check_unique_across_chunks(self, positions: dict[str, int]) -> None:
        # pandera checks one chunk at a time, so values of earlier chunks are kept here.
        # NOTE: memory grows with the distinct values of columns marked unique.
        for name, seen in self.seen.items():
            position = positions[name]
            for number, fields in zip(self.numbers, self.records):
                value = fields[position]
                if value.strip() == "":
                    continue
                first = seen.get(value)
                if first is not None and first < self.numbers[0]:
                    self.check.add(
                        "schema",
                        f"record {number} column {name!r} failed the check field_uniqueness "
                        f"(same value as record {first})",
                        record=number, field=position + 1, value=value,
                    )
                else:
                    seen.setdefault(value, number)
