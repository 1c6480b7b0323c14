"""pandera model of the canonical message-timing records (see :mod:`sdpipe.io.messages`).

:func:`validate_records` checks a block's table with ``lazy=True``, so
that every failure is listed together.  The test suite runs it on every
shape the reader accepts; the pipeline does not, to keep reading fast.  The
checks are the reader's contract with the metrics: the time columns are UTC, ``seq`` is set
only where the id is an integer, a session only goes with a number, and
``time_errors`` holds only the four time bits.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
import pyarrow
from pandera.typing import Series

from sdpipe.errors import InputError
from sdpipe.schemas.failures import describe_failures

UTC_NS = pd.DatetimeTZDtype("ns", "UTC")


class MessageRecords(pa.DataFrameModel):
    """One row per consumer record, as the reader returns it."""

    test_run: Series[str] = pa.Field(nullable=True)
    trigger: Series[str] = pa.Field(nullable=True)
    partition: Series[str] = pa.Field(nullable=True)
    message_id: Series[str] = pa.Field(nullable=True)
    session: Series[str] = pa.Field(nullable=True)
    seq: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    processed_time: Series[UTC_NS] = pa.Field(nullable=True)
    client_enqueue_time: Series[UTC_NS] = pa.Field(nullable=True)
    system_enqueued_time: Series[UTC_NS] = pa.Field(nullable=True)
    dequeued_time: Series[UTC_NS] = pa.Field(nullable=True)
    time_errors: Series[pd.Int8Dtype] = pa.Field(ge=0, le=15)

    class Config:
        strict = True
        coerce = False

    @pa.dataframe_check(error="a record with a session must have a message number (seq)")
    def session_has_number(cls, frame: pd.DataFrame) -> pd.Series:
        return frame["session"].isna() | frame["seq"].notna()

    @pa.dataframe_check(error="seq must be null where message_id is missing")
    def seq_only_with_id(cls, frame: pd.DataFrame) -> pd.Series:
        return frame["seq"].isna() | frame["message_id"].notna()


def records_frame(table) -> pd.DataFrame:
    """Convert a canonical arrow table into the pandas frame the model checks."""
    return table.to_pandas(types_mapper={pyarrow.int64(): pd.Int64Dtype(), pyarrow.int8(): pd.Int8Dtype()}.get)


def validate_records(table, url: str) -> None:
    """Raise :class:`InputError` listing every check the records of ``url`` fail."""
    try:
        MessageRecords.validate(records_frame(table), lazy=True)
    except pa.errors.SchemaErrors as exc:
        details = describe_failures(exc)
        raise InputError(f"{url}: records do not match the message-timing record model: {details}") from exc
