"""Reader of consumer timing records of queued messages, in blocks, as one canonical table.

Accepted shapes
---------------

JSON lines (``.json``, ``.jsonl``, ``.ndjson``, optionally ``.gz``), one object per
line, in the shape of the Azure "durable-functions-producer-consumer" sample::

    {"MessageProcessedTime": "2024-05-01T10:00:00.1234567Z",
     "CloudProvider": "Azure", "TestRun": "run-1", "Trigger": "ServiceBus",
     "Properties": {"InstanceId": "...", "ExecutionId": "...",
                    "ElapsedTimeMs": 12.5,
                    "ClientEnqueueTimeUtc": "2024-05-01T10:00:00.0000000Z",
                    "SystemEnqueuedTime": "2024-05-01T10:00:00.0010000Z",
                    "MessageId": "3f2c.../7",
                    "DequeuedTime": "2024-05-01T10:00:00.1100000Z",
                    "Language": "csharp",
                    "Partition": "0"}}

``MessageId`` is either a JSON number (Storage queues and Event Grid: 0-based
per run; Event Hubs: 1-based per producer) or a string ``"{session}/{n}"``
(Service Bus sessions).  Both kinds may occur in the same file.
``SystemEnqueuedTime`` and ``Partition`` (also spelled ``PartitionId``, inside
``Properties`` or at the top level) are optional; other keys are ignored.

CSV (``.csv``, optionally ``.gz``) and parquet hold the same fields flat, in
snake_case: ``message_processed_time``, ``cloud_provider``, ``test_run``,
``trigger``, ``instance_id``, ``execution_id``, ``elapsed_time_ms``,
``client_enqueue_time_utc``, ``system_enqueued_time``, ``message_id``,
``dequeued_time``, ``language`` and optionally ``partition`` (or
``partition_id``).  ``test_run``, ``message_id``, ``message_processed_time``,
``client_enqueue_time_utc`` and ``dequeued_time`` are required.

Times are UTC in ISO 8601 (or RFC 3339) with a date and a time of day and up
to nine fractional digits (.NET writes seven).  They end in ``Z``, an offset
or no zone (read as UTC).  ``T`` and ``Z`` may be lowercase, and a space may
replace ``T``.  Parquet timestamp columns are taken as UTC.  A time that is present
but cannot be read becomes null and sets its bit in ``time_errors``; the
record stays in the table.  A date without a time of day, a number (such as
epoch seconds) and any other JSON value that is not a string count as
unreadable.

The canonical table (see :data:`RECORD_SCHEMA`) has one row per record:
``test_run``, ``trigger``, ``partition``, ``message_id`` (the id as text),
``session`` and ``seq`` (``"{session}/{n}"`` split; ``seq`` is the integer
``n``, or the id itself when it is an integer), the four times as
``timestamp[ns, UTC]`` and ``time_errors``.

NOTE: CSV and JSON-lines files are split into byte ranges at line ends, so a
CSV value with a quoted newline would be split wrongly.  The sample's records
never contain one.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from sdpipe.errors import InputError
from sdpipe.io.files import InputFile, filesystem_for

logger = logging.getLogger(__name__)

DEFAULT_BLOCKSIZE = 64 * 1024 * 1024
MAX_EXAMPLES = 5

# Time columns of the canonical table and their bit in ``time_errors``.
TIME_FIELDS = ("processed_time", "client_enqueue_time", "system_enqueued_time", "dequeued_time")
TIME_ERROR_BITS = {name: 1 << i for i, name in enumerate(TIME_FIELDS)}

UTC_NS = pa.timestamp("ns", tz="UTC")
RECORD_SCHEMA = pa.schema(
    [
        ("test_run", pa.string()),
        ("trigger", pa.string()),
        ("partition", pa.string()),
        ("message_id", pa.string()),
        ("session", pa.string()),
        ("seq", pa.int64()),
        ("processed_time", UTC_NS),
        ("client_enqueue_time", UTC_NS),
        ("system_enqueued_time", UTC_NS),
        ("dequeued_time", UTC_NS),
        ("time_errors", pa.int8()),
    ]
)

# Flat (CSV, parquet) column name -> canonical column; the first group is required.
FLAT_REQUIRED = {
    "test_run": "test_run",
    "message_id": "message_id",
    "message_processed_time": "processed_time",
    "client_enqueue_time_utc": "client_enqueue_time",
    "dequeued_time": "dequeued_time",
}
FLAT_OPTIONAL = {
    "trigger": "trigger",
    "system_enqueued_time": "system_enqueued_time",
    "partition": "partition",
    "partition_id": "partition",
}

# The nested JSON shape, read with declared types; MessageId numbers are quoted first.
_PROPERTIES = pa.struct(
    [
        ("ClientEnqueueTimeUtc", pa.string()),
        ("SystemEnqueuedTime", pa.string()),
        ("MessageId", pa.string()),
        ("DequeuedTime", pa.string()),
        ("Partition", pa.string()),
        ("PartitionId", pa.string()),
    ]
)
JSON_SCHEMA = pa.schema(
    [
        ("MessageProcessedTime", pa.string()),
        ("TestRun", pa.string()),
        ("Trigger", pa.string()),
        ("Partition", pa.string()),
        ("PartitionId", pa.string()),
        ("Properties", _PROPERTIES),
    ]
)
# A bare JSON number after one of these keys becomes a string, so that arrow reads
# one column type whatever the trigger wrote.  A number in a time field then
# fails the time parse and counts as unreadable.
_NUMBER_VALUE = re.compile(
    rb'("(?:MessageId|Partition|PartitionId|MessageProcessedTime|ClientEnqueueTimeUtc|SystemEnqueuedTime|DequeuedTime)"'
    rb'\s*:\s*)(-?[0-9][0-9.eE+-]*)'
)
# A calendar date followed by at least the hour: what a time of a timing record needs.
_DATE_AND_TIME = r"^[0-9]{4}-?[0-9]{2}-?[0-9]{2}[Tt ][0-9]{2}"

JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
CSV_SUFFIXES = (".csv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".parq", ".pq")
COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd"}


@dataclass(frozen=True)
class MessageBlock:
    """A piece of one input file: a byte range of a text file, or row groups of a parquet file."""

    file: InputFile
    format: str
    index: int = 0
    offset: int = 0
    length: int | None = None
    row_groups: tuple[int, ...] | None = None
    compression: str | None = None
    header: bytes = b""


@dataclass
class BlockData:
    """The reader's output for one block: the canonical table and the values it could not read."""

    table: pa.Table
    malformed_lines: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)


def file_format(url: str) -> tuple[str, str | None]:
    """Return ``(format, compression)`` of a file from its name: jsonl, csv or parquet."""
    lowered = url.lower()
    compression = None
    for suffix, name in COMPRESSIONS.items():
        if lowered.endswith(suffix):
            compression = name
            lowered = lowered[: -len(suffix)]
    if lowered.endswith(PARQUET_SUFFIXES):
        return "parquet", compression
    if lowered.endswith(CSV_SUFFIXES):
        return "csv", compression
    if lowered.endswith(JSON_SUFFIXES):
        return "jsonl", compression
    raise InputError(
        f"{url}: unknown file type; name record files *.jsonl, *.json, *.ndjson, *.csv or *.parquet "
        "(optionally .gz)"
    )


def plan_blocks(
    files: list[InputFile], storage_options: dict[str, Any] | None = None, blocksize: int = DEFAULT_BLOCKSIZE
) -> list[MessageBlock]:
    """Split files into blocks of about ``blocksize`` bytes (compressed files stay whole)."""
    blocks: list[MessageBlock] = []
    for file in files:
        kind, compression = file_format(file.url)
        if kind == "parquet":
            blocks.extend(_parquet_blocks(file, storage_options))
            continue
        header = _csv_header(file, storage_options, compression) if kind == "csv" else b""
        if compression or file.size <= blocksize:
            blocks.append(MessageBlock(file, kind, 0, 0, None, None, compression, header))
            continue
        for index, offset in enumerate(range(0, file.size, blocksize)):
            blocks.append(MessageBlock(file, kind, index, offset, blocksize, None, None, header))
    return blocks


def _parquet_blocks(file: InputFile, storage_options) -> list[MessageBlock]:
    fs, path = filesystem_for(file.url, storage_options)
    try:
        with fs.open(path, "rb") as handle:
            metadata = pq.ParquetFile(handle).metadata
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"{file.url}: not a readable parquet file ({exc})") from exc
    groups = max(metadata.num_row_groups, 1)
    return [MessageBlock(file, "parquet", i, row_groups=(i,)) for i in range(groups)]


def _csv_header(file: InputFile, storage_options, compression: str | None) -> bytes:
    fs, path = filesystem_for(file.url, storage_options)
    try:
        with fs.open(path, "rb", compression=compression) as handle:
            return handle.readline()
    except OSError as exc:
        raise InputError(f"{file.url}: cannot open the file ({exc}); check that it is readable") from exc


def read_block(block: MessageBlock, storage_options: dict[str, Any] | None = None) -> BlockData:
    """Read one block into the canonical table (see the module docstring)."""
    if block.format == "parquet":
        return _read_parquet(block, storage_options)
    data = _read_bytes(block, storage_options)
    if block.format == "csv":
        return _read_csv(block, data)
    return _read_jsonl(block, data)


def _read_bytes(block: MessageBlock, storage_options) -> bytes:
    fs, path = filesystem_for(block.file.url, storage_options)
    try:
        with fs.open(path, "rb", compression=block.compression) as handle:
            if block.length is None:
                return handle.read()
            return _byte_range(handle, block.offset, block.length)
    except OSError as exc:
        raise InputError(f"{block.file.url}: reading failed ({exc}); check that the file is readable") from exc


def _byte_range(handle, offset: int, length: int) -> bytes:
    """Return the lines that start within ``[offset, offset + length)``."""
    if offset > 0:
        handle.seek(offset - 1)
        if handle.read(1) != b"\n":
            handle.readline()  # the rest of a line that started in the previous block
    start = handle.tell()
    data = handle.read(offset + length - start) if offset + length > start else b""
    if data and not data.endswith(b"\n"):
        data += handle.readline()
    return data


def _read_jsonl(block: MessageBlock, data: bytes) -> BlockData:
    data = _NUMBER_VALUE.sub(rb'\1"\2"', data)
    options = pa_json.ParseOptions(explicit_schema=JSON_SCHEMA, unexpected_field_behavior="ignore")
    malformed = 0
    examples: list[dict[str, Any]] = []
    try:
        table = pa_json.read_json(io.BytesIO(data), parse_options=options) if data.strip() else JSON_SCHEMA.empty_table()
    except pa.ArrowInvalid:
        # One bad line, or one field whose JSON type differs from the declared one, fails
        # arrow's whole block: read it again line by line.
        table, malformed, examples = _read_jsonl_by_line(block, data, options)

    properties = table.column("Properties")
    nested = {name: pc.struct_field(properties, name) for name in _PROPERTIES.names}
    partition = _first_present(nested["Partition"], nested["PartitionId"], table.column("Partition"), table.column("PartitionId"))
    columns = {
        "test_run": table.column("TestRun"),
        "trigger": table.column("Trigger"),
        "partition": partition,
        "message_id": nested["MessageId"],
        "processed_time": table.column("MessageProcessedTime"),
        "client_enqueue_time": nested["ClientEnqueueTimeUtc"],
        "system_enqueued_time": nested["SystemEnqueuedTime"],
        "dequeued_time": nested["DequeuedTime"],
    }
    if table.num_rows and pc.all(pc.is_null(columns["test_run"])).as_py() and pc.all(pc.is_null(columns["message_id"])).as_py():
        raise InputError(
            f"{block.file.url}: no record has TestRun or Properties.MessageId; expected JSON lines like "
            '{"MessageProcessedTime": ..., "TestRun": ..., "Trigger": ..., "Properties": {"MessageId": ..., '
            '"ClientEnqueueTimeUtc": ..., "DequeuedTime": ...}}'
        )
    result = canonical_table(columns, block)
    result.malformed_lines = malformed
    result.examples = examples + result.examples
    return result


def _read_jsonl_by_line(block: MessageBlock, data: bytes, options) -> tuple[pa.Table, int, list[dict[str, Any]]]:
    """Read a block that arrow rejected: count the lines that are not JSON objects, keep the others."""
    good: list[bytes] = []
    objects: list[dict[str, Any]] = []
    malformed = 0
    examples: list[dict[str, Any]] = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            value, problem = None, str(exc)
        else:
            problem = "" if isinstance(value, dict) else "not a JSON object"
        if problem:
            malformed += 1
            if len(examples) < MAX_EXAMPLES:
                examples.append(
                    {"file": block.file.url, "block_offset": block.offset, "line_in_block": number,
                     "field": None, "value": line[:200].decode("utf-8", "replace"), "reason": f"malformed JSON: {problem}"}
                )
            continue
        good.append(line)
        objects.append(value)
    if not good:
        return JSON_SCHEMA.empty_table(), malformed, examples
    try:
        table = pa_json.read_json(io.BytesIO(b"\n".join(good)), parse_options=options)
    except pa.ArrowInvalid as exc:
        logger.debug("%s at byte offset %d: field types differ from the declared ones (%s); reading in Python",
                     block.file.url, block.offset, exc)
        table = _table_from_objects(objects)
    return table, malformed, examples


def _table_from_objects(objects: list[dict[str, Any]]) -> pa.Table:
    """Build a :data:`JSON_SCHEMA` table from parsed records whose fields may hold any JSON type.

    A field that contains something other than a string keeps its JSON text, so a
    time written as ``true`` or ``{...}`` becomes an unreadable time, and a
    ``Properties`` that is not an object leaves its fields null.
    """
    rows = []
    for value in objects:
        row: dict[str, Any] = {name: _json_text(value.get(name)) for name in JSON_SCHEMA.names if name != "Properties"}
        properties = value.get("Properties")
        properties = properties if isinstance(properties, dict) else {}
        row["Properties"] = {name: _json_text(properties.get(name)) for name in _PROPERTIES.names}
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=JSON_SCHEMA)


def _json_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def _first_present(*arrays: pa.ChunkedArray) -> pa.ChunkedArray:
    result = arrays[0]
    for other in arrays[1:]:
        result = pc.coalesce(result, other)
    return result


def _read_csv(block: MessageBlock, data: bytes) -> BlockData:
    header_line = block.header or data.split(b"\n", 1)[0]
    if block.offset > 0:
        data = block.header + data
    header_names = next(csv.reader([header_line.decode("utf-8-sig").strip()]), [])
    wanted = _match_flat(header_names, block.file.url)
    convert = pa_csv.ConvertOptions(
        column_types={name: pa.string() for name in wanted},
        include_columns=list(wanted),
        strings_can_be_null=True,
    )
    try:
        table = pa_csv.read_csv(io.BytesIO(data), convert_options=convert)
    except pa.ArrowInvalid as exc:
        raise InputError(f"{block.file.url}: CSV block at byte offset {block.offset} is malformed ({exc})") from exc
    columns = {canonical: table.column(name) for name, canonical in wanted.items()}
    return canonical_table(columns, block)


def _read_parquet(block: MessageBlock, storage_options) -> BlockData:
    fs, path = filesystem_for(block.file.url, storage_options)
    try:
        with fs.open(path, "rb") as handle:
            parquet = pq.ParquetFile(handle)
            wanted = _match_flat(parquet.schema_arrow.names, block.file.url)
            if parquet.metadata.num_row_groups == 0:
                table = parquet.schema_arrow.empty_table().select(list(wanted))
            else:
                table = parquet.read_row_groups(list(block.row_groups or (0,)), columns=list(wanted))
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"{block.file.url}: reading parquet row group {block.row_groups} failed ({exc})") from exc
    columns = {canonical: table.column(name) for name, canonical in wanted.items()}
    return canonical_table(columns, block)


def _match_flat(names: list[str], url: str) -> dict[str, str]:
    """Map the file's column names to canonical columns; raise naming any missing one."""
    by_lower = {name.strip().lower(): name for name in names}
    found: dict[str, str] = {}
    for flat, canonical in {**FLAT_REQUIRED, **FLAT_OPTIONAL}.items():
        if flat in by_lower and canonical not in found.values():
            found[by_lower[flat]] = canonical
    missing = [flat for flat, canonical in FLAT_REQUIRED.items() if canonical not in found.values()]
    if missing:
        raise InputError(
            f"{url}: missing column(s) {', '.join(missing)}. Columns found: "
            f"{', '.join(repr(n) for n in names) or '(none)'}. Flat record files need the snake_case "
            f"columns {', '.join(FLAT_REQUIRED)}; rename the columns or write JSON lines in the sample's shape."
        )
    return found


def canonical_table(columns: dict[str, pa.ChunkedArray | pa.Array], block: MessageBlock) -> BlockData:
    """Build the canonical table from columns named as in :data:`RECORD_SCHEMA`.

    Text ids are split into session and number; text times are parsed.  A
    missing optional column becomes nulls.
    """
    rows = len(next(iter(columns.values()))) if columns else 0
    examples: list[dict[str, Any]] = []
    out: dict[str, pa.Array] = {}
    for name in ("test_run", "trigger", "partition"):
        out[name] = _as_string(columns.get(name), rows)

    message_id = _as_string(columns.get("message_id"), rows)
    message_id = pc.if_else(pc.equal(pc.utf8_trim_whitespace(message_id), ""), pa.scalar(None, pa.string()), message_id)
    out["message_id"] = message_id
    out["session"], out["seq"] = split_message_ids(message_id)

    errors = np.zeros(rows, dtype=np.int8)
    for name in TIME_FIELDS:
        parsed, unreadable = parse_times(columns.get(name), rows)
        out[name] = parsed
        if unreadable.any():
            errors[unreadable] |= TIME_ERROR_BITS[name]
            examples.extend(_time_examples(block, name, columns[name], unreadable, MAX_EXAMPLES - len(examples)))
    out["time_errors"] = pa.array(errors, pa.int8())
    return BlockData(pa.table(out, schema=RECORD_SCHEMA), examples=examples)


def _as_string(values, rows: int) -> pa.Array:
    if values is None:
        return pa.nulls(rows, pa.string())
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_floating(values.type):
        # A parquet writer may store integer ids as floats when some are null.
        values = pc.cast(values, pa.int64(), safe=False)
    return pc.cast(values, pa.string())


def split_message_ids(message_id: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Split ``"{session}/{n}"`` ids into session and ``n``; an integer id gives ``(null, id)``.

    ``n`` is null where the part after the last ``/`` is not an integer.
    """
    trimmed = pc.utf8_trim_whitespace(message_id)
    parts = pc.extract_regex(trimmed, r"^(?:(?P<session>.*)/)?(?P<n>-?[0-9]{1,18})$")
    session = pc.struct_field(parts, "session")
    session = pc.if_else(pc.fill_null(pc.equal(session, ""), True), pa.scalar(None, pa.string()), session)
    digits = pc.struct_field(parts, "n")
    return session, pc.cast(digits, pa.int64())


def parse_times(values, rows: int) -> tuple[pa.Array, np.ndarray]:
    """Parse UTC times (ISO 8601 text or arrow timestamps); return them and a mask of unreadable ones.

    Text needs a date and a time of day.  Empty text and nulls are missing,
    not unreadable.
    """
    if values is None:
        return pa.nulls(rows, UTC_NS), np.zeros(rows, dtype=bool)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_timestamp(values.type):
        if values.type.tz is None:
            values = pc.assume_timezone(values, "UTC")
        return pc.cast(values, UTC_NS), np.zeros(rows, dtype=bool)

    text = pc.utf8_trim_whitespace(pc.cast(values, pa.string()))
    present = pc.fill_null(pc.not_equal(text, ""), False).to_numpy(zero_copy_only=False)
    # pandas reads a bare date as midnight and rejects RFC 3339's lowercase "t" and "z".
    with_time = pc.fill_null(pc.match_substring_regex(text, _DATE_AND_TIME), False).to_numpy(zero_copy_only=False)
    series = pd.Series(pc.utf8_upper(text).to_numpy(zero_copy_only=False), dtype=object)
    parsed = pd.to_datetime(series.where(with_time, None), format="ISO8601", utc=True, errors="coerce")
    unreadable = present & parsed.isna().to_numpy()
    nanos = parsed.to_numpy(dtype="datetime64[ns]").view(np.int64)
    mask = ~(present & ~unreadable)
    return pa.array(nanos, pa.int64(), mask=mask).cast(UTC_NS), unreadable


def _time_examples(block: MessageBlock, name: str, values, unreadable: np.ndarray, limit: int) -> list[dict[str, Any]]:
    """Return up to ``limit`` examples; ``record_in_block`` counts records (not lines) from 1."""
    if limit <= 0:
        return []
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    rows = np.flatnonzero(unreadable)[:limit]
    return [
        {"file": block.file.url, "block_offset": block.offset, "record_in_block": int(row) + 1,
         "field": name, "value": str(values[int(row)].as_py())[:200], "reason": "unreadable time"}
        for row in rows
    ]


SENT_SCHEMA = pa.schema(
    [("test_run", pa.string()), ("trigger", pa.string()), ("partition", pa.string()),
     ("message_id", pa.string()), ("session", pa.string())]
)
# Producer-log column names, compared lowered and without "_": canonical column -> accepted names.
SENT_COLUMNS = {
    "test_run": ("testrun", "testrunid"),
    "trigger": ("trigger",),
    "partition": ("partition", "partitionid"),
    "message_id": ("messageid",),
}


def read_sent_block(block: MessageBlock, storage_options: dict[str, Any] | None = None) -> pa.Table:
    """Read one block of a producer log: the messages sent, as :data:`SENT_SCHEMA`.

    A producer log is CSV, parquet or flat JSON lines with a test run and a
    message id column (``test_run``/``TestRun``, ``message_id``/``MessageId``)
    and optionally ``trigger`` and ``partition``.
    """
    if block.format == "parquet":
        fs, path = filesystem_for(block.file.url, storage_options)
        with fs.open(path, "rb") as handle:
            table = pq.read_table(handle)
    else:
        data = _read_bytes(block, storage_options)
        if block.offset > 0:
            data = block.header + data
        try:
            if block.format == "csv":
                header = next(csv.reader([(block.header or data.split(b"\n", 1)[0]).decode("utf-8-sig").strip()]), [])
                convert = pa_csv.ConvertOptions(column_types={name: pa.string() for name in header}, strings_can_be_null=True)
                table = pa_csv.read_csv(io.BytesIO(data), convert_options=convert)
            else:
                table = pa_json.read_json(io.BytesIO(_NUMBER_VALUE.sub(rb'\1"\2"', data)))
        except pa.ArrowInvalid as exc:
            raise InputError(f"{block.file.url}: the producer log is malformed at byte offset {block.offset} ({exc})") from exc

    by_name = {name.lower().replace("_", ""): name for name in table.column_names}
    columns: dict[str, pa.Array] = {}
    for canonical, accepted in SENT_COLUMNS.items():
        found = next((by_name[name] for name in accepted if name in by_name), None)
        columns[canonical] = _as_string(table.column(found) if found else None, table.num_rows)
    for required in ("test_run", "message_id"):
        if pc.all(pc.is_null(columns[required])).as_py() and table.num_rows:
            raise InputError(
                f"{block.file.url}: the producer log has no {required} column; columns found: "
                f"{', '.join(table.column_names)}. Give test_run and message_id columns (any case, with or without _)."
            )
    for name in ("partition", "trigger"):
        columns[name] = pc.if_else(pc.fill_null(pc.equal(columns[name], ""), False), pa.scalar(None, pa.string()), columns[name])
    columns["message_id"] = pc.utf8_trim_whitespace(columns["message_id"])
    columns["session"], _ = split_message_ids(columns["message_id"])
    return pa.table(columns, schema=SENT_SCHEMA)
