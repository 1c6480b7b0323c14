"""The record reader: every accepted shape, exact times, unreadable values counted, clear errors."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sdpipe.errors import InputError
from sdpipe.io.files import expand_inputs
from sdpipe.io.messages import TIME_ERROR_BITS, plan_blocks, read_block
from sdpipe.schemas.messages import validate_records

LINES = [
    {"MessageProcessedTime": "2024-05-01T10:00:00.1234567Z", "CloudProvider": "Azure", "TestRun": "r1", "Trigger": "Queue",
     "Properties": {"ClientEnqueueTimeUtc": "2024-05-01T10:00:00.0000001Z", "SystemEnqueuedTime": "2024-05-01T10:00:00.0000002",
                    "MessageId": 0, "DequeuedTime": "2024-05-01T12:00:00.05+02:00", "ElapsedTimeMs": 50.0}},
    {"MessageProcessedTime": "2024-05-01T10:00:01Z", "TestRun": "r2", "Trigger": "ServiceBus",
     "Properties": {"ClientEnqueueTimeUtc": "2024-05-01T10:00:00.5Z", "MessageId": "sess-a/12",
                    "DequeuedTime": "yesterday", "Partition": 3}},
]


def read_all(path) -> list:
    blocks = plan_blocks(expand_inputs(str(path)), blocksize=1024)
    return [read_block(block) for block in blocks]


def write_lines(path, lines) -> None:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))


def test_jsonl_mixed_id_types(tmp_path):
    write_lines(tmp_path / "log.jsonl", LINES)
    table = read_all(tmp_path / "log.jsonl")[0].table
    assert table.column("message_id").to_pylist() == ["0", "sess-a/12"]
    assert table.column("session").to_pylist() == [None, "sess-a"]
    assert table.column("seq").to_pylist() == [0, 12]
    assert table.column("partition").to_pylist() == [None, "3"]


def test_times_keep_seven_digits(tmp_path):
    write_lines(tmp_path / "log.jsonl", LINES)
    table = read_all(tmp_path / "log.jsonl")[0].table
    nanos = {name: table.column(name).cast(pa.int64()).to_pylist() for name in ("processed_time", "client_enqueue_time", "system_enqueued_time", "dequeued_time")}
    base = 1714557600 * 10**9  # 2024-05-01T10:00:00Z
    assert nanos["processed_time"] == [base + 123456700, base + 10**9]
    assert nanos["client_enqueue_time"] == [base + 100, base + 500_000_000]
    assert nanos["system_enqueued_time"] == [base + 200, None]  # no zone is UTC; absent is null
    assert nanos["dequeued_time"][0] == base + 50_000_000  # +02:00 offset converted


def test_unreadable_time_kept_and_counted(tmp_path):
    write_lines(tmp_path / "log.jsonl", LINES)
    data = read_all(tmp_path / "log.jsonl")[0]
    assert data.table.num_rows == 2
    assert data.table.column("time_errors").to_pylist() == [0, TIME_ERROR_BITS["dequeued_time"]]
    assert data.examples[0]["field"] == "dequeued_time"
    assert data.examples[0]["value"] == "yesterday"
    assert data.examples[0]["record_in_block"] == 2


def test_malformed_line_counted(tmp_path):
    write_lines(tmp_path / "log.jsonl", [LINES[0], '{"TestRun": "r1", "Properties": {', LINES[1]])
    data = read_all(tmp_path / "log.jsonl")[0]
    assert data.table.num_rows == 2
    assert data.malformed_lines == 1
    assert data.examples[0]["reason"].startswith("malformed JSON")


def test_blocks_cover_every_line_once(tmp_path):
    lines = [dict(LINES[0], TestRun=f"run-{i % 7}", Properties=dict(LINES[0]["Properties"], MessageId=i)) for i in range(300)]
    write_lines(tmp_path / "log.jsonl", lines)
    blocks = read_all(tmp_path / "log.jsonl")
    assert len(blocks) > 5
    ids = [value for block in blocks for value in block.table.column("seq").to_pylist()]
    assert sorted(ids) == list(range(300))


def test_flat_csv_with_partition(tmp_path):
    (tmp_path / "log.csv").write_text(
        "test_run,trigger,message_id,message_processed_time,client_enqueue_time_utc,dequeued_time,partition\n"
        "r1,EventHub,5,2024-05-01 10:00:01.0000000,2024-05-01 10:00:00.0000000,2024-05-01 10:00:00.5000000,7\n"
    )
    table = read_all(tmp_path / "log.csv")[0].table
    assert table.column("partition").to_pylist() == ["7"]
    assert table.column("seq").to_pylist() == [5]
    assert table.column("dequeued_time").cast(pa.int64()).to_pylist() == [1714557600 * 10**9 + 500_000_000]


def test_parquet_timestamp_and_integer_ids(tmp_path):
    table = pa.table({
        "test_run": ["r1"], "trigger": ["Queue"], "message_id": pa.array([9], pa.int64()),
        "message_processed_time": pa.array([1714557601 * 10**6], pa.timestamp("us")),
        "client_enqueue_time_utc": pa.array([1714557600 * 10**6], pa.timestamp("us", tz="UTC")),
        "dequeued_time": ["2024-05-01T10:00:00.5Z"],
    })
    pq.write_table(table, tmp_path / "log.parquet")
    read = read_all(tmp_path / "log.parquet")[0].table
    assert read.column("message_id").to_pylist() == ["9"]
    assert read.column("processed_time").cast(pa.int64()).to_pylist() == [1714557601 * 10**9]


@pytest.mark.parametrize("name", ["log.jsonl", "log.csv", "log.parquet"], ids=["jsonl", "csv", "parquet"])
def test_reader_output_matches_model(tmp_path, name):
    from sdpipe.generate.messages import RunSpec, generate_records, write_flat, write_jsonl

    generated = generate_records([RunSpec("a", "ServiceBus", 200, sessions=3, unreadable_rate=0.05), RunSpec("b", "Queue", 100)], seed=2)
    path = tmp_path / name
    write_jsonl(generated.records, path) if name.endswith("jsonl") else write_flat(generated.records, path)
    for data in read_all(path):
        validate_records(data.table, str(path))


def test_missing_column_error(tmp_path):
    (tmp_path / "log.csv").write_text("test_run,message_id,dequeued_time\nr1,1,2024-05-01T10:00:00Z\n")
    with pytest.raises(InputError) as caught:
        read_all(tmp_path / "log.csv")
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'log.csv'}: missing column(s) message_processed_time, client_enqueue_time_utc.")
    assert "Columns found: 'test_run', 'message_id', 'dequeued_time'" in message


def test_wrong_json_shape_error(tmp_path):
    write_lines(tmp_path / "log.jsonl", [{"hello": 1}])
    with pytest.raises(InputError, match="no record has TestRun or Properties.MessageId"):
        read_all(tmp_path / "log.jsonl")


def test_unknown_suffix_error(tmp_path):
    (tmp_path / "log.xml").write_text("<a/>")
    with pytest.raises(InputError, match=r"log.xml: unknown file type; name record files \*.jsonl"):
        read_all(tmp_path / "log.xml")


def test_model_rejects_session_without_number(tmp_path):
    write_lines(tmp_path / "log.jsonl", LINES)
    table = read_all(tmp_path / "log.jsonl")[0].table
    broken = table.set_column(table.schema.get_field_index("seq"), "seq", pa.nulls(table.num_rows, pa.int64()))
    with pytest.raises(InputError, match="a record with a session must have a message number"):
        validate_records(broken, "log.jsonl")


def with_time(field: str, value) -> dict:
    """Return LINES[0] with one Properties time replaced by ``value``."""
    return dict(LINES[0], Properties=dict(LINES[0]["Properties"], **{field: value}))


@pytest.mark.parametrize(
    "value",
    [1714557600, 1714557600.5, True, {"utc": "2024-05-01T10:00:00Z"}, ["2024-05-01T10:00:00Z"]],
    ids=["integer", "float", "boolean", "object", "array"],
)
def test_non_string_time_unreadable(tmp_path, value):
    write_lines(tmp_path / "log.jsonl", [LINES[0], with_time("ClientEnqueueTimeUtc", value), LINES[1]])
    data = read_all(tmp_path / "log.jsonl")[0]

    assert data.table.num_rows == 3
    assert data.table.column("test_run").to_pylist() == ["r1", "r1", "r2"]
    assert data.table.column("client_enqueue_time").is_null().to_pylist() == [False, True, False]
    assert data.table.column("time_errors").to_pylist() == [
        0, TIME_ERROR_BITS["client_enqueue_time"], TIME_ERROR_BITS["dequeued_time"]
    ]
    assert data.examples[0]["field"] == "client_enqueue_time"
    assert data.examples[0]["value"] == json.dumps(value)


def test_date_without_time_unreadable(tmp_path):
    write_lines(tmp_path / "log.jsonl", [with_time("ClientEnqueueTimeUtc", "2024-05-01")])
    (tmp_path / "log.csv").write_text(
        "test_run,message_id,message_processed_time,client_enqueue_time_utc,dequeued_time\n"
        "r1,1,2024-05-01T10:00:01Z,2024-05-01,2024-05-01T10:00:00.5Z\n"
    )
    for name in ("log.jsonl", "log.csv"):
        table = read_all(tmp_path / name)[0].table
        assert table.column("client_enqueue_time").to_pylist() == [None], name
        assert table.column("time_errors").to_pylist() == [TIME_ERROR_BITS["client_enqueue_time"]], name


def test_lowercase_t_and_z_parse(tmp_path):
    line = with_time("ClientEnqueueTimeUtc", "2024-05-01t10:00:00.25z")
    line["Properties"]["DequeuedTime"] = "2024-05-01 10:00:00.5Z"  # RFC 3339 allows a space for T
    write_lines(tmp_path / "log.jsonl", [line])
    table = read_all(tmp_path / "log.jsonl")[0].table

    base = 1714557600 * 10**9  # 2024-05-01T10:00:00Z
    assert table.column("client_enqueue_time").cast(pa.int64()).to_pylist() == [base + 250_000_000]
    assert table.column("dequeued_time").cast(pa.int64()).to_pylist() == [base + 500_000_000]
    assert table.column("time_errors").to_pylist() == [0]
