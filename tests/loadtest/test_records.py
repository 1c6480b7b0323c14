"""Unit tests of message bodies, consumer records and the order count (no queue service)."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone

import pytest

from sdpipe.errors import ConfigError, InputError
from sdpipe.loadtest.records import (
    MessageBody,
    consumer_record,
    count_order_violations,
    decode_body,
    encode_body,
    fan_out,
    format_timestamp,
    parse_timestamp,
    queue_names,
)

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)


def test_timestamp_has_seven_fraction_digits():
    assert format_timestamp(T0) == "2024-05-01T12:00:00.1234560Z"
    assert format_timestamp(datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))) == "2024-05-01T12:00:00.0000000Z"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2024-05-01T12:00:00.1234567Z", T0.replace(microsecond=123456)),
        ("2024-05-01T12:00:00Z", T0.replace(microsecond=0)),
        ("2024-05-01T12:00:00.5", T0.replace(microsecond=500000)),
        ("2024-05-01T14:00:00.1234560+02:00", T0),
    ],
    ids=["seven-digits", "no-fraction", "no-zone", "offset"],
)
def test_timestamp_parse(text, expected):
    assert parse_timestamp(text) == expected


def test_timestamp_parse_rejects_garbage():
    with pytest.raises(ValueError, match=r"'yesterday' is not an ISO 8601 UTC timestamp"):
        parse_timestamp("yesterday")


def test_fan_out_round_robin_numbers_from_one():
    queues = ["q-0", "q-1", "q-2"]
    plan = fan_out(8, queues)
    expected = [("q-0", "q-0/1"), ("q-1", "q-1/1"), ("q-2", "q-2/1"), ("q-0", "q-0/2"),
                ("q-1", "q-1/2"), ("q-2", "q-2/2"), ("q-0", "q-0/3"), ("q-1", "q-1/3")]
    assert plan == expected


def test_queue_names_and_invalid_prefix():
    assert queue_names("load", 2) == ["load-0", "load-1"]
    with pytest.raises(ConfigError, match=r"invalid queue name 'Load-0': use 3 to 63 lowercase letters"):
        queue_names("Load", 1)
    with pytest.raises(ConfigError, match=r"invalid queue count 0"):
        queue_names("load", 0)
    with pytest.raises(ConfigError, match=r"invalid queue name '.*-poison'"):
        queue_names("a" * 55, 1)


def test_body_round_trip():
    body = MessageBody("run-1", "q-0/7", T0, work_time_ms=15, fail_count=2, content="xyz")
    text = encode_body(body)
    document = json.loads(text)
    assert document == {"TestRunId": "run-1", "MessageId": "q-0/7", "EnqueueTimeUtc": "2024-05-01T12:00:00.1234560Z",
                        "workTime": 15, "FailCount": 2, "Content": "xyz"}
    assert decode_body(text, queue="q-0") == body


@pytest.mark.parametrize(
    "text, message",
    [
        ("not json", r"message in queue 'q-0' is not JSON \(Expecting value at character 0\): 'not json'"),
        ("[1]", r"message in queue 'q-0' is not a JSON object: '\[1\]'"),
        ('{"TestRunId": "r", "EnqueueTimeUtc": "2024-05-01T12:00:00Z"}', r"has no field 'MessageId'"),
        ('{"TestRunId": "r", "MessageId": "q-0/1", "EnqueueTimeUtc": "soon"}',
         r"message 'q-0/1' in queue 'q-0': field 'EnqueueTimeUtc': 'soon' is not an ISO 8601"),
        ('{"TestRunId": "r", "MessageId": "q-0/1", "EnqueueTimeUtc": "2024-05-01T12:00:00Z", "workTime": -1}',
         r"field 'workTime' is -1, expected a whole number of 0 or more"),
    ],
    ids=["not-json", "not-object", "missing-id", "bad-time", "negative-work"],
)
def test_body_decode_errors(text, message):
    with pytest.raises(InputError, match=message):
        decode_body(text, queue="q-0")


def test_consumer_record_has_sample_shape():
    body = MessageBody("run-1", "q-0/7", T0)
    dequeued = T0 + timedelta(milliseconds=250, microseconds=500)
    processed = dequeued + timedelta(milliseconds=10)
    record = consumer_record(body, instance_id="inst", execution_id="exec", system_enqueued=T0.replace(microsecond=0),
                             dequeued=dequeued, processed=processed)

    assert list(record) == ["MessageProcessedTime", "CloudProvider", "TestRun", "Trigger", "Properties"]
    assert record["MessageProcessedTime"] == "2024-05-01T12:00:00.3839560Z"
    assert record["CloudProvider"] == "Azure"
    assert record["TestRun"] == "run-1"
    assert record["Trigger"] == "Queue"
    properties = record["Properties"]
    assert set(properties) == {"InstanceId", "ExecutionId", "ElapsedTimeMs", "ClientEnqueueTimeUtc",
                               "SystemEnqueuedTime", "MessageId", "DequeuedTime", "Language"}
    assert properties["ElapsedTimeMs"] == pytest.approx(250.5)
    assert properties["ClientEnqueueTimeUtc"] == "2024-05-01T12:00:00.1234560Z"
    assert properties["SystemEnqueuedTime"] == "2024-05-01T12:00:00.0000000Z"
    assert properties["DequeuedTime"] == "2024-05-01T12:00:00.3739560Z"
    assert properties["MessageId"] == "q-0/7"


def _brute_force_violations(deliveries):
    """A message counts if some lower-numbered message of its queue was dequeued strictly later."""
    counts = {}
    for message_id, dequeued in deliveries:
        queue, number = message_id.rsplit("/", 1)
        later_lower = any(
            other.rsplit("/", 1)[0] == queue and int(other.rsplit("/", 1)[1]) < int(number) and other_time > dequeued
            for other, other_time in deliveries
        )
        counts[queue] = counts.get(queue, 0) + int(later_lower)
    return counts


def test_order_violations_small_case():
    t = [T0 + timedelta(seconds=s) for s in range(5)]
    deliveries = [("a-0/1", t[2]), ("a-0/2", t[0]), ("a-0/3", t[1]), ("a-0/4", t[3]), ("b-0/1", t[0]), ("b-0/2", t[0])]
    # a-0/2 and a-0/3 were dequeued before a-0/1; b's tie is no violation.
    assert count_order_violations(deliveries) == {"a-0": 2, "b-0": 0}


def test_order_violations_match_brute_force():
    rng = random.Random(7)
    deliveries = []
    for queue in ("q-0", "q-1", "q-2"):
        for number in range(1, 80):
            deliveries.append((f"{queue}/{number}", T0 + timedelta(milliseconds=rng.randint(0, 40) * 10)))
    rng.shuffle(deliveries)
    assert count_order_violations(deliveries) == _brute_force_violations(deliveries)
