"""Reader of NYC TLC trip records: every header version, CSV or parquet, in partitions.

The reader finds the pickup time, dropoff time and distance columns under
any name the TLC or common extracts have used, reads only those columns (and
``color`` where present) with declared types, and returns them as an Arrow
table of ``pickup`` and ``dropoff`` (``timestamp[us]``, naive local time),
``distance`` (``float64``, miles) and optionally ``color``.  A value that
cannot be read becomes null, which the job counts as unparseable; a row with
fewer fields than the header (a row cut short) is counted the same way.

NOTE: CSV files are split into byte ranges at line ends, so a quoted value
that contains a newline would be split wrongly.  TLC trip files never quote
newlines; a file that did would show as unparseable rows.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from sdpipe.errors import InputError
from sdpipe.io.files import InputFile, filesystem_for

logger = logging.getLogger(__name__)

# Names each needed column has had, compared after stripping spaces and quotes and lowering case.
COLUMN_NAMES: dict[str, tuple[str, ...]] = {
    "pickup": (
        "tpep_pickup_datetime",
        "lpep_pickup_datetime",
        "pickup_datetime",
        "trip_pickup_datetime",
        "pickup",
    ),
    "dropoff": (
        "tpep_dropoff_datetime",
        "lpep_dropoff_datetime",
        "dropoff_datetime",
        "trip_dropoff_datetime",
        "dropoff",
    ),
    "distance": ("trip_distance", "distance"),
}
OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {"color": ("color", "taxi_color", "taxi_type")}

# Timestamp layouts tried, in order, on values that are not ISO 8601.
TIMESTAMP_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%Y %b %d %I:%M:%S %p",
    "%Y %b %d %H:%M:%S",
)
ISO_FORMAT = "ISO 8601"

PARQUET_SUFFIXES = (".parquet", ".parq", ".pq")
HEAD_BYTES = 64 * 1024
DEFAULT_BLOCKSIZE = 64 * 1024 * 1024

TRIP_SCHEMA = pa.schema(
    [
        ("pickup", pa.timestamp("us")),
        ("dropoff", pa.timestamp("us")),
        ("distance", pa.float64()),
    ]
)


@dataclass(frozen=True)
class TripLayout:
    """How one trip file is laid out, found once by :func:`inspect_file`.

    ``columns`` maps the job's column names (pickup, dropoff, distance and
    optionally color) to the file's own names; for CSV, ``field_names`` are
    the names given to every field of a data row, which can outnumber the
    header's names (2016 files have two empty fields at the end of each row).
    """

    file: InputFile
    format: str
    header_version: str
    columns: dict[str, str]
    field_names: tuple[str, ...] = ()
    compression: str | None = None
    note: str | None = None

    def describe(self) -> dict[str, Any]:
        entry = self.file.describe()
        entry.update(format=self.format, header_version=self.header_version, columns=self.columns)
        if self.note:
            entry["note"] = self.note
        return entry


@dataclass(frozen=True)
class Partition:
    """A piece of one file: a byte range of a CSV file, or row groups of a parquet file."""

    layout: TripLayout
    index: int
    offset: int = 0
    length: int | None = None
    row_groups: tuple[int, ...] | None = None


@dataclass
class PartitionData:
    """What the reader got from one partition."""

    table: pa.Table
    short_rows: list[str] = field(default_factory=list)
    timestamp_formats: dict[str, int] = field(default_factory=dict)
    row_offset: int = 0


def normalise_name(name: str) -> str:
    return name.strip().strip('"').strip("'").strip().lower()


def match_columns(names: list[str], url: str) -> dict[str, str]:
    """Map the job's column names to the file's names; raise naming what is missing."""
    by_normal = {}
    for name in names:
        by_normal.setdefault(normalise_name(name), name)

    found: dict[str, str] = {}
    for wanted, candidates in {**COLUMN_NAMES, **OPTIONAL_COLUMNS}.items():
        for candidate in candidates:
            if candidate in by_normal:
                found[wanted] = by_normal[candidate]
                break

    missing = [wanted for wanted in COLUMN_NAMES if wanted not in found]
    if missing:
        details = "; ".join(f"{m}: one of {', '.join(COLUMN_NAMES[m])}" for m in missing)
        raise InputError(
            f"{url}: cannot find the {', '.join(missing)} column(s). "
            f"Columns found: {', '.join(repr(n) for n in names) or '(none)'}. "
            f"Names looked for (any case) - {details}. "
            "Rename the column or pass a file in a TLC trip-record layout."
        )
    return found


def describe_header(names: list[str], spaced: bool = False) -> str:
    """Name the TLC header version that a list of column names belongs to."""
    normal = {normalise_name(n) for n in names}
    if "trip_pickup_datetime" in normal:
        parts = ["2009 (Trip_Pickup_DateTime, Start_Lon/Start_Lat)"]
    elif "tpep_pickup_datetime" in normal or "lpep_pickup_datetime" in normal:
        if "pickup_longitude" in normal:
            parts = ["2015-2016H1 (tpep_*, longitude/latitude)"]
        else:
            parts = ["2016H2+ (tpep_*, PULocationID/DOLocationID)"]
        if "ratecodeid" in normal:
            spelled = [n.strip() for n in names if normalise_name(n) == "ratecodeid"][0]
            parts.append(spelled)
    elif "pickup_datetime" in normal:
        if "pickup_location_id" in normal:
            parts = ["snake_case extract (pickup_datetime, pickup_location_id)"]
        else:
            parts = ["2010-2014 (pickup_datetime, longitude/latitude)"]
    elif "pickup" in normal:
        parts = ["friendly names (pickup, dropoff, distance)"]
    else:
        parts = ["unknown layout"]
    if "congestion_surcharge" in normal:
        parts.append("congestion_surcharge")
    if "airport_fee" in normal:
        parts.append("airport_fee")
    if "color" in normal:
        parts.append("color")
    if spaced:
        parts.append("spaces after commas")
    return ", ".join(parts)


def inspect_file(file: InputFile, storage_options: dict[str, Any] | None = None) -> TripLayout:
    """Read the head of a file and work out its format, header version and columns."""
    fs, path = filesystem_for(file.url, storage_options)
    lowered = file.url.lower()
    compression = _compression(lowered)
    try:
        with fs.open(path, "rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise InputError(f"{file.url}: cannot open the file ({exc}); check that it is readable") from exc

    if lowered.endswith(PARQUET_SUFFIXES) or magic == b"PAR1":
        return _inspect_parquet(file, fs, path)
    return _inspect_csv(file, fs, path, compression)


def _compression(lowered_url: str) -> str | None:
    for suffix, name in ((".gz", "gzip"), (".bz2", "bz2"), (".zst", "zstd"), (".xz", "xz")):
        if lowered_url.endswith(suffix):
            return name
    return None


def _inspect_parquet(file: InputFile, fs, path: str) -> TripLayout:
    try:
        with fs.open(path, "rb") as handle:
            schema = pq.ParquetFile(handle).schema_arrow
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{file.url}: not a readable parquet file ({exc})") from exc
    names = list(schema.names)
    columns = match_columns(names, file.url)
    return TripLayout(file, "parquet", describe_header(names), columns, tuple(names))


def _inspect_csv(file: InputFile, fs, path: str, compression: str | None) -> TripLayout:
    try:
        with fs.open(path, "rb", compression=compression) as handle:
            head = handle.read(HEAD_BYTES)
    except OSError as exc:
        raise InputError(f"{file.url}: cannot read the file ({exc})") from exc

    if not head.strip():
        return TripLayout(file, "csv", "empty file", {}, (), compression, note="empty file: no header, no rows")
    if b"\x00" in head[:4096]:
        raise InputError(
            f"{file.url}: the file holds NUL bytes, so it is not a text CSV file "
            "(UTF-16 or binary?); convert it to UTF-8 CSV or parquet"
        )

    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    lines = text.splitlines()
    if len(head) == HEAD_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line of a cut head may be incomplete
    header = next(csv.reader([lines[0]]))
    columns = match_columns(header, file.url)

    data_lines = [line for line in lines[1:200] if line.strip()]
    widths = [len(row) for row in csv.reader(data_lines)]
    width = max([len(header), *widths])
    field_names = list(header) + [f"_extra_{i}" for i in range(len(header), width)]
    field_names = _unique_names(field_names)
    columns = {key: field_names[header.index(name)] for key, name in columns.items()}

    spaced = any(name.startswith(" ") for name in header[1:])
    return TripLayout(file, "csv", describe_header(header, spaced), columns, tuple(field_names), compression)


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    unique = []
    for i, name in enumerate(names):
        label = name if name.strip() else f"_unnamed_{i}"
        if label in seen:
            seen[label] += 1
            label = f"{label}_{seen[label]}"
        else:
            seen[label] = 0
        unique.append(label)
    return unique


def plan_partitions(layout: TripLayout, storage_options=None, blocksize: int = DEFAULT_BLOCKSIZE) -> list[Partition]:
    """Split one file into partitions of about ``blocksize`` bytes."""
    if layout.format == "parquet":
        fs, path = filesystem_for(layout.file.url, storage_options)
        with fs.open(path, "rb") as handle:
            metadata = pq.ParquetFile(handle).metadata
        groups: list[list[int]] = [[]]
        size = 0
        for i in range(metadata.num_row_groups):
            if groups[-1] and size >= blocksize:
                groups.append([])
                size = 0
            groups[-1].append(i)
            size += metadata.row_group(i).total_byte_size
        return [Partition(layout, n, row_groups=tuple(g)) for n, g in enumerate(groups)]

    if layout.compression or not layout.columns or layout.file.size <= blocksize:
        return [Partition(layout, 0)]
    return [
        Partition(layout, n, offset=offset, length=blocksize)
        for n, offset in enumerate(range(0, layout.file.size, blocksize))
    ]


def read_partition(partition: Partition, storage_options=None) -> PartitionData:
    """Read one partition into a trip table (see the module docstring)."""
    layout = partition.layout
    if not layout.columns:
        return PartitionData(_empty_table(layout))
    if layout.format == "parquet":
        return _read_parquet(partition, storage_options)
    return _read_csv(partition, storage_options)


def _empty_table(layout: TripLayout) -> pa.Table:
    schema = TRIP_SCHEMA
    if "color" in layout.columns:
        schema = schema.append(pa.field("color", pa.string()))
    return schema.empty_table()


def _read_parquet(partition: Partition, storage_options) -> PartitionData:
    layout = partition.layout
    fs, path = filesystem_for(layout.file.url, storage_options)
    wanted = list(dict.fromkeys(layout.columns.values()))
    try:
        with fs.open(path, "rb") as handle:
            parquet = pq.ParquetFile(handle)
            if parquet.metadata.num_row_groups == 0:
                return PartitionData(_empty_table(layout))
            table = parquet.read_row_groups(list(partition.row_groups or ()), columns=wanted)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{layout.file.url}: reading row groups {partition.row_groups} failed: {exc}") from exc
    columns = {key: table.column(name) for key, name in layout.columns.items()}
    return _normalise(columns, layout)


def _read_csv(partition: Partition, storage_options) -> PartitionData:
    layout = partition.layout
    fs, path = filesystem_for(layout.file.url, storage_options)
    try:
        if partition.length is None:
            with fs.open(path, "rb", compression=layout.compression) as handle:
                data = handle.read()
        else:
            with fs.open(path, "rb") as handle:
                data = _read_block(handle, partition.offset, partition.length)
    except OSError as exc:
        raise InputError(f"{layout.file.url}: reading bytes at offset {partition.offset} failed: {exc}") from exc

    first = partition.offset == 0
    if first and data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    wanted = list(dict.fromkeys(layout.columns.values()))
    short_rows: list[str] = []

    def on_invalid_row(row) -> str:
        short_rows.append(row.text)
        return "skip"

    read_options = pa_csv.ReadOptions(column_names=list(layout.field_names), skip_rows=1 if first else 0)
    parse_options = pa_csv.ParseOptions(invalid_row_handler=on_invalid_row)
    typed = {layout.columns["pickup"]: pa.timestamp("us"), layout.columns["dropoff"]: pa.timestamp("us")}
    typed[layout.columns["distance"]] = pa.float64()
    if "color" in layout.columns:
        typed[layout.columns["color"]] = pa.string()

    try:
        table = pa_csv.read_csv(
            io.BytesIO(data),
            read_options=read_options,
            parse_options=parse_options,
            convert_options=pa_csv.ConvertOptions(
                include_columns=wanted, column_types=typed, timestamp_parsers=[pa_csv.ISO8601]
            ),
        )
        columns = {key: table.column(name) for key, name in layout.columns.items()}
        result = PartitionData(table=_assemble(columns, layout), timestamp_formats={ISO_FORMAT: table.num_rows})
    except pa.ArrowInvalid:
        # Some value is not ISO 8601 or not a plain number: read text and parse value by value.
        short_rows.clear()
        as_text = {name: pa.string() for name in wanted}
        table = pa_csv.read_csv(
            io.BytesIO(data),
            read_options=read_options,
            parse_options=parse_options,
            convert_options=pa_csv.ConvertOptions(
                include_columns=wanted, column_types=as_text, strings_can_be_null=True
            ),
        )
        columns = {key: table.column(name) for key, name in layout.columns.items()}
        result = _normalise(columns, layout)
    result.short_rows = short_rows
    return result


def _read_block(handle, offset: int, length: int) -> bytes:
    """Return the lines that start within ``[offset, offset + length)``."""
    if offset > 0:
        handle.seek(offset - 1)
        if handle.read(1) != b"\n":
            handle.readline()  # skip the rest of a line that started in the previous block
    start = handle.tell()
    data = handle.read(offset + length - start) if offset + length > start else b""
    if data and not data.endswith(b"\n"):
        data += handle.readline()
    return data


def _normalise(columns: dict[str, pa.ChunkedArray], layout: TripLayout) -> PartitionData:
    formats: dict[str, int] = {}
    out = {}
    for key in ("pickup", "dropoff"):
        out[key] = _to_timestamp(columns[key], formats)
    out["distance"] = _to_float(columns["distance"])
    if "color" in columns:
        out["color"] = columns["color"].cast(pa.string())
    # Both timestamp columns were counted; report rows, not values.
    formats = {name: count // 2 for name, count in formats.items()}
    return PartitionData(table=_assemble(out, layout), timestamp_formats=formats)


def _assemble(columns: dict[str, pa.ChunkedArray], layout: TripLayout) -> pa.Table:
    names = ["pickup", "dropoff", "distance"] + (["color"] if "color" in columns else [])
    return pa.table({name: columns[name] for name in names})


def _to_timestamp(values: pa.ChunkedArray, formats: dict[str, int]) -> pa.ChunkedArray:
    kind = values.type
    if pa.types.is_timestamp(kind):
        formats[f"parquet timestamp[{kind.unit}]"] = formats.get(f"parquet timestamp[{kind.unit}]", 0) + len(values)
        if kind.tz is not None:
            values = pc.local_timestamp(values)
        return values.cast(pa.timestamp("us"), safe=False)
    if pa.types.is_date(kind):
        return values.cast(pa.timestamp("us"))

    text = pc.utf8_trim_whitespace(values.cast(pa.string()))
    result = pa.nulls(len(text), pa.timestamp("us"))
    result = pa.chunked_array([result])
    for layout in TIMESTAMP_FORMATS:
        remaining = pc.and_(pc.is_null(result), pc.is_valid(text))
        if not pc.any(remaining).as_py():
            break
        parsed = pc.strptime(text, format=layout, unit="us", error_is_null=True)
        newly = pc.sum(pc.and_(remaining, pc.is_valid(parsed))).as_py() or 0
        if newly:
            formats[layout] = formats.get(layout, 0) + newly
            result = pc.coalesce(result, parsed)
    return result


def _to_float(values: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_floating(values.type) or pa.types.is_integer(values.type) or pa.types.is_decimal(values.type):
        return values.cast(pa.float64())
    text = pc.utf8_trim_whitespace(values.cast(pa.string()))
    numeric = pc.match_substring_regex(text, r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
    cleaned = pc.if_else(numeric, text, pa.scalar(None, pa.string()))
    return cleaned.cast(pa.float64())
