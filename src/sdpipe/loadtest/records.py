"""Message bodies, consumer records and producer-log entries of a queue load test.

Pure functions only: no queue client, no clock and no file access.  The
consumer record has the shape of the Azure "durable-functions-producer-
consumer" sample's collector messages for its Storage queue trigger, which
is what ``sdpipe run message-timing`` reads.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sdpipe.errors import ConfigError, InputError

CLOUD_PROVIDER = "Azure"
TRIGGER = "Queue"
LANGUAGE = "python"

# Azure Storage queue names: 3 to 63 lowercase letters, digits and single hyphens,
# starting and ending with a letter or digit.
QUEUE_NAME = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$")
POISON_SUFFIX = "-poison"


@dataclass(frozen=True)
class MessageBody:
    """The content of one load-test message, as the producer sends it."""

    test_run: str
    message_id: str
    client_enqueue_time: datetime
    work_time_ms: int = 0
    fail_count: int = 0
    content: str = ""


def format_timestamp(moment: datetime) -> str:
    """Format a UTC time with seven fractional digits and a ``Z``, as .NET writes ``DateTime``."""
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {moment!r} has no time zone; pass an aware UTC datetime")
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond:06d}0Z"


def parse_timestamp(text: str) -> datetime:
    """Parse a timestamp written by :func:`format_timestamp` (up to seven fractional digits)."""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,7}))?(Z|[+-]\d\d:\d\d)?", text)
    if match is None:
        raise ValueError(f"{text!r} is not an ISO 8601 UTC timestamp such as 2024-05-01T12:00:00.1234567Z")
    whole, fraction, zone = match.groups()
    microseconds = int((fraction or "0").ljust(7, "0")[:6])
    moment = datetime.fromisoformat(whole).replace(microsecond=microseconds)
    if zone in (None, "Z"):
        return moment.replace(tzinfo=timezone.utc)
    return moment.replace(tzinfo=datetime.fromisoformat(f"2000-01-01T00:00:00{zone}").tzinfo).astimezone(timezone.utc)


def check_queue_name(name: str) -> str:
    """Return ``name`` if Azure accepts it as a queue name, else raise :class:`ConfigError`."""
    if not QUEUE_NAME.match(name):
        raise ConfigError(
            f"invalid queue name {name!r}: use 3 to 63 lowercase letters, digits and single hyphens, "
            "starting and ending with a letter or digit"
        )
    return name


def queue_names(prefix: str, count: int) -> list[str]:
    """Return the names of ``count`` queues: ``{prefix}-0`` to ``{prefix}-{count-1}``."""
    if count < 1:
        raise ConfigError(f"invalid queue count {count}: use 1 or more")
    names = [check_queue_name(f"{prefix}-{index}") for index in range(count)]
    for name in names:
        check_queue_name(name + POISON_SUFFIX)
    return names


def fan_out(messages: int, queues: list[str]) -> list[tuple[str, str]]:
    """Assign messages to queues round-robin; return ``(queue, message_id)`` in send order.

    Message ``k`` goes to queue ``k % len(queues)`` and gets the id
    ``"{queue}/{n}"`` with ``n`` counting from 1 within its queue, as the
    sample numbers the messages of a Service Bus session.
    """
    return [(queues[k % len(queues)], f"{queues[k % len(queues)]}/{k // len(queues) + 1}") for k in range(messages)]


def split_message_id(message_id: str) -> tuple[str, int]:
    """Split ``"{queue}/{n}"`` into the queue name and the number ``n``."""
    queue, sep, number = message_id.rpartition("/")
    if not sep or not number.isdigit():
        raise ValueError(f"message id {message_id!r} is not of the form QUEUE/N")
    return queue, int(number)


def encode_body(body: MessageBody) -> str:
    """Return the message text: JSON with the sample's field names plus the failure plan."""
    document: dict[str, Any] = {
        "TestRunId": body.test_run,
        "MessageId": body.message_id,
        "EnqueueTimeUtc": format_timestamp(body.client_enqueue_time),
        "workTime": body.work_time_ms,
    }
    if body.fail_count:
        document["FailCount"] = body.fail_count
    if body.content:
        document["Content"] = body.content
    return json.dumps(document, separators=(",", ":"))


def decode_body(text: str, *, queue: str) -> MessageBody:
    """Parse a message text written by :func:`encode_body`.

    Raises :class:`InputError` naming the queue, the field and the value,
    because such a message can never be handled and belongs in the poison queue.
    """
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"message in queue {queue!r} is not JSON ({exc.msg} at character {exc.pos}): {text[:80]!r}") from exc
    if not isinstance(document, dict):
        raise InputError(f"message in queue {queue!r} is not a JSON object: {text[:80]!r}")

    missing = [name for name in ("TestRunId", "MessageId", "EnqueueTimeUtc") if name not in document]
    if missing:
        raise InputError(f"message in queue {queue!r} has no field {missing[0]!r}: {text[:80]!r}")
    try:
        enqueued = parse_timestamp(str(document["EnqueueTimeUtc"]))
    except ValueError as exc:
        raise InputError(f"message {document['MessageId']!r} in queue {queue!r}: field 'EnqueueTimeUtc': {exc}") from exc
    for name in ("workTime", "FailCount"):
        value = document.get(name, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InputError(
                f"message {document['MessageId']!r} in queue {queue!r}: field {name!r} is {value!r}, "
                "expected a whole number of 0 or more"
            )

    return MessageBody(
        test_run=str(document["TestRunId"]),
        message_id=str(document["MessageId"]),
        client_enqueue_time=enqueued,
        work_time_ms=document.get("workTime", 0),
        fail_count=document.get("FailCount", 0),
        content=str(document.get("Content", "")),
    )


def consumer_record(
    body: MessageBody,
    *,
    instance_id: str,
    execution_id: str,
    system_enqueued: datetime | None,
    dequeued: datetime,
    processed: datetime,
) -> dict[str, Any]:
    """Build the consumer record of one handled delivery, in the sample's collector shape.

    ``ElapsedTimeMs`` is the dequeue time minus the producer's enqueue time,
    as the sample computes it.
    """
    elapsed_ms = (dequeued - body.client_enqueue_time).total_seconds() * 1000.0
    properties: dict[str, Any] = {
        "InstanceId": instance_id,
        "ExecutionId": execution_id,
        "ElapsedTimeMs": elapsed_ms,
        "ClientEnqueueTimeUtc": format_timestamp(body.client_enqueue_time),
        "SystemEnqueuedTime": format_timestamp(system_enqueued) if system_enqueued is not None else None,
        "MessageId": body.message_id,
        "DequeuedTime": format_timestamp(dequeued),
        "Language": LANGUAGE,
    }
    return {
        "MessageProcessedTime": format_timestamp(processed),
        "CloudProvider": CLOUD_PROVIDER,
        "TestRun": body.test_run,
        "Trigger": TRIGGER,
        "Properties": properties,
    }


def producer_entry(
    *,
    test_run: str,
    queue: str,
    message_id: str,
    sent: bool,
    attempts: int,
    client_enqueue_time: datetime | None,
    system_enqueued: datetime | None = None,
    queue_message_id: str | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """Build the producer-log line of one message; ``Sent`` is false when every attempt failed."""
    return {
        "TestRun": test_run,
        "Trigger": TRIGGER,
        "Queue": queue,
        "MessageId": message_id,
        "Sent": sent,
        "Attempts": attempts,
        "ClientEnqueueTimeUtc": format_timestamp(client_enqueue_time) if client_enqueue_time else None,
        "SystemEnqueuedTime": format_timestamp(system_enqueued) if system_enqueued else None,
        "QueueMessageId": queue_message_id,
        "Error": error,
    }


def poison_entry(
    *, test_run: str | None, queue: str, message_id: str | None, dequeue_count: int, reason: str, poisoned: datetime
) -> dict[str, Any]:
    """Build the poison-log line of a message moved to its poison queue."""
    return {
        "TestRun": test_run,
        "Queue": queue,
        "MessageId": message_id,
        "DequeueCount": dequeue_count,
        "Reason": reason,
        "PoisonedTime": format_timestamp(poisoned),
    }


def to_json_lines(records: list[dict[str, Any]]) -> bytes:
    """Serialise records as JSON lines (UTF-8, one object a line, each line ending in a newline)."""
    return "".join(json.dumps(record, separators=(",", ":")) + "\n" for record in records).encode("utf-8")


def count_order_violations(deliveries: list[tuple[str, datetime]]) -> dict[str, int]:
    """Count, per queue, the messages dequeued before a lower-numbered message of the same queue.

    ``deliveries`` holds ``(message_id, dequeued_time)`` of first deliveries.
    A message counts once however many lower-numbered messages it overtook.
    Ties in dequeue time are not violations.
    """
    by_queue: dict[str, list[tuple[datetime, int]]] = {}
    for message_id, dequeued in deliveries:
        queue, number = split_message_id(message_id)
        by_queue.setdefault(queue, []).append((dequeued, number))

    violations: dict[str, int] = {}
    for queue, items in sorted(by_queue.items()):
        items.sort()
        count = 0
        lowest_later: int | None = None
        index = len(items) - 1
        # Walk backwards in groups of equal dequeue time, so that ties never count.
        while index >= 0:
            start = index
            while start > 0 and items[start - 1][0] == items[index][0]:
                start -= 1
            group = [number for _, number in items[start : index + 1]]
            if lowest_later is not None:
                count += sum(1 for number in group if number > lowest_later)
            group_lowest = min(group)
            lowest_later = group_lowest if lowest_later is None else min(lowest_later, group_lowest)
            index = start - 1
        violations[queue] = count
    return violations
