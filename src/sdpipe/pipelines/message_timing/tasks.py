"""The task functions of the message-timing graph.

The map tasks read one block each and write its records, split by test run
and trigger, to a spill folder as Arrow IPC files, returning only an index
of what they wrote.  The summary tasks then read all pieces of one run and
compute its metrics.  A task therefore holds one block or one run at a time,
so memory grows with the largest block and the largest run, not with the
number of files or runs.  They run on Dask workers and take and return only
picklable values.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sdpipe.errors import StorageError
from sdpipe.io.files import filesystem_for
from sdpipe.io.messages import RECORD_SCHEMA, TIME_ERROR_BITS, MessageBlock, read_block, read_sent_block
from sdpipe.pipelines.message_timing.compute import (
    NAT,
    RunRecords,
    SentIds,
    TimingParams,
    first_deliveries,
    is_event_hubs,
    per_second_series,
    summarise_run,
)

RunKey = tuple[str | None, str | None]  # (test_run, trigger)


@dataclass
class BlockIndex:
    """What one map task read and where it spilled it: record pieces per run key."""

    url: str
    records: int = 0
    malformed_lines: int = 0
    unreadable_times: dict[str, int] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)
    pieces: dict[RunKey, tuple[str, int]] = field(default_factory=dict)
    # Producer-log blocks only: the (test run, trigger) pairs listed, with a null trigger where a row has none.
    sent_keys: set[RunKey] = field(default_factory=set)


def spill_name(kind: str, key: RunKey, block_id: str) -> str:
    """Return a piece's file name: a hash of the key, so any test run name is safe in a path."""
    digest = hashlib.sha1(repr(key).encode("utf-8")).hexdigest()[:20]
    return f"{kind}/{digest}/{block_id}.arrow"


def map_block(block: MessageBlock, block_id: str, spill_url: str, storage_options: dict[str, Any] | None) -> BlockIndex:
    """Read one block and spill its records by (test run, trigger)."""
    data = read_block(block, storage_options)
    table = data.table
    index = BlockIndex(url=block.file.url, records=table.num_rows, malformed_lines=data.malformed_lines, examples=data.examples)
    errors = table.column("time_errors").to_numpy()
    for name, bit in TIME_ERROR_BITS.items():
        index.unreadable_times[name] = int(np.count_nonzero(errors & bit))
    for key, piece in _split(table, ("test_run", "trigger")):
        path = spill_name("records", key, block_id)
        write_piece(spill_url, path, piece)
        index.pieces[key] = (path, piece.num_rows)
    return index


def map_sent_block(block: MessageBlock, block_id: str, spill_url: str, storage_options: dict[str, Any] | None) -> BlockIndex:
    """Read one block of the producer log and spill it by test run."""
    table = read_sent_block(block, storage_options)
    index = BlockIndex(url=block.file.url, records=table.num_rows)
    keys = pd.DataFrame({k: table.column(k).to_numpy(zero_copy_only=False) for k in ("test_run", "trigger")})
    index.sent_keys = {_plain_key(key) for key in keys.drop_duplicates().itertuples(index=False, name=None)}
    for (test_run,), piece in _split(table, ("test_run",)):
        path = spill_name("sent", (test_run, None), block_id)
        write_piece(spill_url, path, piece)
        index.pieces[(test_run, None)] = (path, piece.num_rows)
    return index


def _split(table: pa.Table, keys: Sequence[str]):
    if table.num_rows == 0:
        return
    frame = pd.DataFrame({k: table.column(k).to_numpy(zero_copy_only=False) for k in keys})
    for key, rows in frame.groupby(list(keys), dropna=False, sort=True).indices.items():
        yield _plain_key(key if isinstance(key, tuple) else (key,)), table.take(pa.array(rows))


def _plain_key(key: tuple) -> tuple:
    """Return ``key`` with pandas' NaN for a missing value replaced by None."""
    return tuple(None if (v is None or (isinstance(v, float) and np.isnan(v))) else v for v in key)


def write_piece(spill_url: str, path: str, table: pa.Table) -> None:
    fs, root = filesystem_for(spill_url)
    target = f"{root}/{path}"
    try:
        fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        with fs.open(target, "wb") as handle, pa.ipc.new_file(handle, table.schema) as writer:
            writer.write_table(table)
    except OSError as exc:
        raise StorageError(f"writing the spill file {target!r} failed: {exc}; free space or pass another spill folder") from exc


def read_pieces(spill_url: str, paths: Sequence[str]) -> pa.Table | None:
    fs, root = filesystem_for(spill_url)
    tables = []
    for path in paths:
        with fs.open(f"{root}/{path}", "rb") as handle:
            tables.append(pa.ipc.open_file(handle).read_all())
    return pa.concat_tables(tables) if tables else None


def summarise_key(
    key: RunKey, paths: Sequence[str], sent_paths: Sequence[str], spill_url: str, params: TimingParams
) -> tuple[list[dict[str, Any]], pd.DataFrame]:
    """Read the pieces of one run and return its result rows and per-second series.

    A run that the producer log lists but no record names has no ``paths``:
    it is summarised as a run of zero records.
    """
    test_run, trigger = key
    records = to_run_records(read_pieces(spill_url, paths) if paths else RECORD_SCHEMA.empty_table())
    sent = None
    if sent_paths:
        sent_table = read_pieces(spill_url, sent_paths)
        triggers = sent_table.column("trigger")
        if pc.any(pc.is_valid(triggers)).as_py():
            sent_table = sent_table.filter(pc.fill_null(pc.equal(triggers, trigger or ""), True))
        sent = to_sent_ids(sent_table)

    rows = [{"test_run": test_run, "trigger": trigger, **row} for row in summarise_run(records, trigger, params, sent)]
    series = run_series(records, trigger, params)
    series.insert(0, "trigger", trigger)
    series.insert(0, "test_run", test_run)
    return rows, series


def run_series(records: RunRecords, trigger: str | None, params: TimingParams) -> pd.DataFrame:
    """Return the per-second series of the run's first deliveries."""
    identified = np.flatnonzero(records.message_id != None)  # noqa: E711
    ambiguous = is_event_hubs(trigger) and bool(np.any(records.partition[identified] == None))  # noqa: E711
    first = identified if ambiguous else identified[first_deliveries(records.take(identified))]
    return per_second_series(records.take(first), params)


def to_run_records(table: pa.Table) -> RunRecords:
    """Convert the canonical table of one run into :class:`RunRecords` arrays."""

    def objects(name: str) -> np.ndarray:
        return table.column(name).to_numpy(zero_copy_only=False).astype(object)

    def nanos(name: str) -> np.ndarray:
        return table.column(name).cast(pa.int64()).fill_null(NAT).to_numpy()

    seq = table.column("seq")
    return RunRecords(
        partition=objects("partition"),
        message_id=objects("message_id"),
        session=objects("session"),
        seq=seq.fill_null(0).to_numpy(),
        has_seq=pc.is_valid(seq).to_numpy(zero_copy_only=False),
        processed=nanos("processed_time"),
        client_enqueue=nanos("client_enqueue_time"),
        system_enqueued=nanos("system_enqueued_time"),
        dequeued=nanos("dequeued_time"),
        time_errors=table.column("time_errors").to_numpy(),
    )


def to_sent_ids(table: pa.Table) -> SentIds:
    return SentIds(
        *(table.column(name).to_numpy(zero_copy_only=False).astype(object) for name in ("partition", "message_id", "session"))
    )
