"""The producer of a queue load test: N messages fanned out over M Storage queues.

Each message is sent with the official ``azure-storage-queue`` SDK, whose own
retry policy is switched off: a send that fails with a transient error (a
connection error, 408, 429 or 5xx) is retried here with exponential backoff
and jitter, and a message whose last attempt failed is logged with
``"Sent": false``.  Any other error (authentication, missing queue) stops
the run, because every further send would fail the same way.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from sdpipe.errors import ConfigError, StorageError
from sdpipe.loadtest.connection import QueueSettings
from sdpipe.loadtest.output import NOT_SENT_FOLDER, PRODUCER_FOLDER, JsonLinesWriter, join_url
from sdpipe.loadtest.records import MessageBody, encode_body, fan_out, producer_entry

logger = logging.getLogger(__name__)

TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# Azure Storage rejects queue messages above 64 KiB; leave room for the JSON fields.
MAX_PAYLOAD_BYTES = 60_000


@dataclass(frozen=True)
class ProducerConfig:
    """What to send and how hard to push.

    ``work_time_ms`` is carried in each message (the sample's ``workTime``) and
    slept by the consumer.  Every ``failing_every``-th message (counting from
    1, 0 for none) carries ``fail_count``: the consumer's handling fails on
    its first ``fail_count`` deliveries, so a message with ``fail_count`` at
    least the consumer's maximum dequeue count ends in the poison queue.
    """

    queues: list[str]
    messages: int
    test_run: str = field(default_factory=lambda: str(uuid.uuid4()))
    concurrency: int = 8
    work_time_ms: int = 0
    payload_bytes: int = 0
    max_attempts: int = 5
    backoff_s: float = 0.2
    max_backoff_s: float = 10.0
    failing_every: int = 0
    fail_count: int = 0
    clear_queues: bool = False
    create_queues: bool = True

    def __post_init__(self) -> None:
        checks = [
            (self.messages >= 1, "messages", self.messages, "1 or more"),
            (self.concurrency >= 1, "concurrency", self.concurrency, "1 or more"),
            (self.work_time_ms >= 0, "work time", self.work_time_ms, "0 or more milliseconds"),
            (0 <= self.payload_bytes <= MAX_PAYLOAD_BYTES, "payload size", self.payload_bytes, f"0 to {MAX_PAYLOAD_BYTES} bytes"),
            (self.max_attempts >= 1, "max attempts", self.max_attempts, "1 or more"),
            (self.backoff_s >= 0, "backoff", self.backoff_s, "0 or more seconds"),
            (self.failing_every >= 0, "failing-every", self.failing_every, "0 (none) or more"),
            (self.fail_count >= 0, "fail count", self.fail_count, "0 or more"),
        ]
        for ok, name, value, expected in checks:
            if not ok:
                raise ConfigError(f"invalid {name} {value!r}: use {expected}")
        if not self.queues:
            raise ConfigError("no queue given: name at least one queue")


@dataclass
class ProducerResult:
    """The outcome of a producer: one producer-log entry per message, sent or not, in send order."""

    test_run: str
    entries: list[dict[str, Any]]
    started: datetime
    finished: datetime
    log_url: str | None = None
    not_sent_url: str | None = None

    @property
    def sent(self) -> int:
        return sum(1 for entry in self.entries if entry["Sent"])

    @property
    def not_sent(self) -> int:
        return len(self.entries) - self.sent

    @property
    def retries(self) -> int:
        """Attempts beyond the first, summed over all messages."""
        return sum(max(entry["Attempts"] - 1, 0) for entry in self.entries)

    def counts(self) -> dict[str, Any]:
        return {
            "requested": len(self.entries),
            "sent": self.sent,
            "not_sent": self.not_sent,
            "retries": self.retries,
            "send_seconds": round((self.finished - self.started).total_seconds(), 3),
        }


class FatalSendError(Exception):
    """A send failed in a way that retrying cannot fix."""


def is_transient(exc: BaseException) -> bool:
    """Tell whether a failed send may succeed when tried again."""
    from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

    if isinstance(exc, (ServiceRequestError, ServiceResponseError, ConnectionError, TimeoutError)):
        return True
    if isinstance(exc, HttpResponseError):
        return exc.status_code in TRANSIENT_STATUS
    return False


def backoff_delay(attempt: int, base_s: float, max_s: float, rng: random.Random) -> float:
    """Return the wait before attempt ``attempt + 1``: ``base * 2**(attempt-1)`` capped, times a jitter in [0.5, 1]."""
    return min(max_s, base_s * 2 ** (attempt - 1)) * rng.uniform(0.5, 1.0)


def prepare_queues(service: Any, queues: list[str], *, create: bool, clear: bool, settings: QueueSettings) -> None:
    """Create the queues that are missing (``create``) and delete their messages (``clear``)."""
    from azure.core.exceptions import AzureError, ResourceExistsError

    for name in queues:
        client = service.get_queue_client(name)
        try:
            if create:
                try:
                    client.create_queue()
                    logger.info("created queue %s", name)
                except ResourceExistsError:
                    pass
            if clear:
                client.clear_messages()
                logger.info("cleared queue %s", name)
        except AzureError as exc:
            raise StorageError(f"preparing queue {name!r} failed: {settings.error_text(exc)}") from None


def run_producer(
    config: ProducerConfig,
    settings: QueueSettings,
    *,
    output: str | None = None,
    storage_options: dict[str, Any] | None = None,
    service: Any = None,
    sleep: Callable[[float], None] = time.sleep,
    seed: int | None = None,
) -> ProducerResult:
    """Send the messages, write the producer log to ``{output}/producer/{test_run}.jsonl`` and return the result.

    ``service`` replaces the ``QueueServiceClient`` built from ``settings``
    (tests pass one that injects failures).  Raises :class:`StorageError`
    after writing the log if a send failed with an error that retrying
    cannot fix.
    """
    service = service or settings.service_client()
    prepare_queues(service, config.queues, create=config.create_queues, clear=config.clear_queues, settings=settings)
    clients = {name: service.get_queue_client(name) for name in config.queues}
    plan = fan_out(config.messages, config.queues)
    payload = "x" * config.payload_bytes
    stop = threading.Event()
    fatal: list[str] = []
    rng_lock = threading.Lock()
    rng = random.Random(seed)

    def send_one(index: int) -> dict[str, Any]:
        queue, message_id = plan[index]
        fail_count = config.fail_count if config.failing_every and (index + 1) % config.failing_every == 0 else 0
        attempts = 0
        error: str | None = None
        enqueued: datetime | None = None
        while attempts < config.max_attempts and not stop.is_set():
            attempts += 1
            enqueued = datetime.now(timezone.utc)
            body = MessageBody(config.test_run, message_id, enqueued, config.work_time_ms, fail_count, payload)
            try:
                sent = clients[queue].send_message(encode_body(body))
            except Exception as exc:  # noqa: BLE001 - classified just below, never swallowed
                error = settings.error_text(exc)
                if not is_transient(exc):
                    fatal.append(f"sending message {message_id!r} to queue {queue!r} failed: {error}")
                    stop.set()
                    break
                logger.warning("send of %s failed (attempt %d of %d): %s", message_id, attempts, config.max_attempts, error)
                if attempts < config.max_attempts:
                    with rng_lock:
                        delay = backoff_delay(attempts, config.backoff_s, config.max_backoff_s, rng)
                    sleep(delay)
                continue
            return producer_entry(
                test_run=config.test_run, queue=queue, message_id=message_id, sent=True, attempts=attempts,
                client_enqueue_time=enqueued, system_enqueued=getattr(sent, "inserted_on", None),
                queue_message_id=getattr(sent, "id", None),
            )

        if attempts == 0:
            error = "not attempted: the run stopped after an error that retrying cannot fix"
        else:
            logger.error("message %s not sent after %d attempts: %s", message_id, attempts, error)
        return producer_entry(
            test_run=config.test_run, queue=queue, message_id=message_id, sent=False, attempts=attempts,
            client_enqueue_time=enqueued, error=error,
        )

    started = datetime.now(timezone.utc)
    logger.info("sending %d messages over %d queues, test run %s", config.messages, len(config.queues), config.test_run)
    with ThreadPoolExecutor(max_workers=config.concurrency, thread_name_prefix="sdpipe-producer") as pool:
        entries = list(pool.map(send_one, range(len(plan))))
    result = ProducerResult(config.test_run, entries, started, datetime.now(timezone.utc))
    logger.info("sent %d of %d messages (%d retries)", result.sent, len(entries), result.retries)

    if output is not None:
        write_producer_logs(result, output, storage_options, settings.mask)
    if fatal:
        where = f"; the producer log {result.log_url} lists what was sent" if result.log_url else ""
        raise StorageError(f"{fatal[0]}{where}. Check the credentials and that the queues exist, then run again")
    return result


def write_producer_logs(
    result: ProducerResult, output: str, storage_options: dict[str, Any] | None, mask: Callable[[str], str]
) -> None:
    """Write the sent messages to ``producer/`` and the others, if any, to ``not-sent/``.

    The two are apart because message-timing counts every line of a
    producer log as sent.
    """
    name = f"{result.test_run}.jsonl"
    sent = [entry for entry in result.entries if entry["Sent"]]
    not_sent = [entry for entry in result.entries if not entry["Sent"]]
    result.log_url = JsonLinesWriter(join_url(output, PRODUCER_FOLDER), storage_options, mask=mask).write(name, sent)
    if not_sent:
        writer = JsonLinesWriter(join_url(output, NOT_SENT_FOLDER), storage_options, mask=mask)
        result.not_sent_url = writer.write(name, not_sent)
