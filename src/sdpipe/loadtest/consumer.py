"""The consumer of a queue load test: receive, handle, record, then delete.

Worker threads receive messages from the queues in turn, stamp the dequeue
time, run the handling (by default the simulated work the message asks for)
and stamp the processed time.  A flusher thread writes the consumer records
as a JSON-lines file and only then deletes the messages, so a consumer that
dies at any point loses no record of a deleted message: what it had not
written comes back after the visibility timeout and is handled again, and
the second record of such a message counts as a duplicate.

A delete that fails with a connection error, 408, 429 or 5xx is retried.
A message whose delete still failed stays in its queue and comes back after
the visibility timeout; once the expected count is reached the consumer goes
on for up to twice the visibility timeout, so that it receives, records (as
a duplicate) and deletes such messages, and then reports those it could not
delete as still queued.  It waits the same way when it found records of
earlier consumers, one of which may have died before deleting its messages.

A message whose handling fails is left in its queue and comes back after
the visibility timeout.  Once a message has been dequeued
``max_dequeue_count`` times and failed, or arrives dequeued more often than
that, or cannot be parsed, it is copied to ``{queue}-poison`` and deleted,
as the Azure Functions queue trigger does.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from sdpipe.errors import ConfigError, InputError, StorageError
from sdpipe.loadtest.connection import QueueSettings
from sdpipe.loadtest.output import POISON_FOLDER, RECORDS_FOLDER, JsonLinesWriter, join_url
from sdpipe.loadtest.producer import is_transient
from sdpipe.loadtest.records import (
    POISON_SUFFIX,
    MessageBody,
    consumer_record,
    count_order_violations,
    decode_body,
    parse_timestamp,
    poison_entry,
)

logger = logging.getLogger(__name__)

ENDED_EXPECTED = "expected-count"
ENDED_DRAINED = "queues-drained"
ENDED_TIMEOUT = "timeout"
ENDED_INTERRUPTED = "interrupted"
# Azure Storage caps one receive at 32 messages and a visibility timeout at 7 days.
MAX_MESSAGES_PER_RECEIVE = 32
MAX_VISIBILITY_TIMEOUT_S = 7 * 24 * 3600
DELETE_ATTEMPTS = 4
DELETE_BACKOFF_S = 0.1  # doubled after each failed attempt


class SimulatedFailure(Exception):
    """The handling of a delivery failed on purpose, as the message's ``FailCount`` asks."""


def simulated_handling(body: MessageBody, dequeue_count: int, sleep: Callable[[float], None] = time.sleep) -> None:
    """Sleep the message's work time, then fail if this is one of its first ``FailCount`` deliveries."""
    if body.work_time_ms:
        sleep(body.work_time_ms / 1000.0)
    if dequeue_count <= body.fail_count:
        raise SimulatedFailure(f"simulated failure on delivery {dequeue_count} of the first {body.fail_count}")


@dataclass(frozen=True)
class ConsumerConfig:
    """How to consume, and when to stop.

    The consumer stops when ``expected`` messages of ``test_run`` (of any run
    when it is None) are accounted for (recorded or poisoned), when every
    queue has been empty for ``idle_exit_s`` seconds, or after ``timeout_s``
    seconds, whichever comes first; at least one of the three must be set.
    After the expected count it waits up to ``2 * visibility_timeout_s``
    for recorded messages that may still be queued (see the module docstring).
    """

    queues: list[str]
    concurrency: int = 4
    visibility_timeout_s: int = 30
    max_dequeue_count: int = 5
    messages_per_receive: int = MAX_MESSAGES_PER_RECEIVE
    flush_records: int = 200
    flush_interval_s: float = 1.0
    max_poll_interval_s: float = 1.0
    expected: int | None = None
    test_run: str | None = None
    timeout_s: float | None = None
    idle_exit_s: float | None = None

    def __post_init__(self) -> None:
        if not self.queues:
            raise ConfigError("no queue given: name at least one queue")
        checks = [
            (self.concurrency >= 1, "concurrency", self.concurrency, "1 or more"),
            (1 <= self.visibility_timeout_s <= MAX_VISIBILITY_TIMEOUT_S, "visibility timeout", self.visibility_timeout_s,
             f"1 to {MAX_VISIBILITY_TIMEOUT_S} seconds"),
            (self.max_dequeue_count >= 1, "max dequeue count", self.max_dequeue_count, "1 or more"),
            (1 <= self.messages_per_receive <= MAX_MESSAGES_PER_RECEIVE, "messages per receive", self.messages_per_receive,
             f"1 to {MAX_MESSAGES_PER_RECEIVE}"),
            (self.flush_records >= 1, "flush size", self.flush_records, "1 or more records"),
            (self.flush_interval_s > 0, "flush interval", self.flush_interval_s, "more than 0 seconds"),
            (self.expected is None or self.expected >= 0, "expected count", self.expected, "0 or more"),
            (self.timeout_s is None or self.timeout_s > 0, "timeout", self.timeout_s, "more than 0 seconds"),
            (self.idle_exit_s is None or self.idle_exit_s > 0, "idle exit", self.idle_exit_s, "more than 0 seconds"),
        ]
        for ok, name, value, expected in checks:
            if not ok:
                raise ConfigError(f"invalid {name} {value!r}: use {expected}")
        if self.flush_interval_s >= self.visibility_timeout_s:
            raise ConfigError(
                f"flush interval {self.flush_interval_s} s is not shorter than the visibility timeout "
                f"{self.visibility_timeout_s} s: messages would reappear before their records are written"
            )


@dataclass
class ConsumerResult:
    """The outcome of one consumer: the messages it handled and the reason it stopped."""

    instance_id: str
    ended: str
    started: datetime
    finished: datetime
    records_written: int = 0
    handled: int = 0
    handled_before: int = 0
    duplicates: int = 0
    failed_handlings: int = 0
    poisoned: int = 0
    delete_failures: int = 0
    still_queued: int = 0
    order_violations: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, Any]:
        return {
            "ended": self.ended,
            "records_written": self.records_written,
            "handled": self.handled,
            "handled_before_start": self.handled_before,
            "duplicates": self.duplicates,
            "failed_handlings": self.failed_handlings,
            "poisoned": self.poisoned,
            "delete_failures": self.delete_failures,
            "still_queued": self.still_queued,
            "order_violations": sum(self.order_violations.values()),
            "consume_seconds": round((self.finished - self.started).total_seconds(), 3),
        }


@dataclass(frozen=True)
class _Receipt:
    queue: str
    message_id: str
    pop_receipt: str


@dataclass
class _Pending:
    """Records waiting to be written, with the messages to delete once they are."""

    records: list[dict[str, Any]] = field(default_factory=list)
    receipts: list[_Receipt] = field(default_factory=list)
    keys: list[tuple[str, str]] = field(default_factory=list)


class Consumer:
    """One consumer instance; call :meth:`run` (it blocks) and, from another thread, :meth:`stop` or :meth:`set_expected`."""

    def __init__(
        self,
        config: ConsumerConfig,
        settings: QueueSettings,
        output: str,
        *,
        storage_options: dict[str, Any] | None = None,
        service: Any = None,
        handler: Callable[[MessageBody, int], None] = simulated_handling,
    ):
        self.config = config
        self.settings = settings
        self.instance_id = str(uuid.uuid4())
        self.handler = handler
        self.service = service or settings.service_client()
        self.clients = {name: self.service.get_queue_client(name) for name in config.queues}
        self.records = JsonLinesWriter(join_url(output, RECORDS_FOLDER), storage_options, mask=settings.mask)
        self.poison_log = JsonLinesWriter(join_url(output, POISON_FOLDER), storage_options, mask=settings.mask)

        self._expected = config.expected
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._wake_flusher = threading.Condition(self._lock)
        self._pending = _Pending()
        self._pending_poison = _Pending()
        self._handled: set[tuple[str, str]] = set()
        self._poisoned: set[tuple[str, str]] = set()
        # Messages of the counted run that are recorded or poisoned: what the expected count is compared with.
        self._accounted_keys: set[tuple[str, str]] = set()
        self._first_deliveries: list[tuple[str, datetime]] = []
        self._poison_queues_ready: set[str] = set()
        self._fatal: list[str] = []
        self._last_received = time.monotonic()
        self._sequence = 0
        # Messages received and handled but not yet deleted.  Workers stop receiving at the cap,
        # so that no message waits for its delete longer than its visibility timeout.
        self._undeleted = 0
        self._delete_errors_logged = 0
        # Handled messages (queue, queue message id) whose every delete attempt failed and that no
        # later delivery has deleted yet: they are still in their queues.
        self._not_deleted: set[tuple[str, str]] = set()
        self._settle_deadline: float | None = None
        self._found_earlier_records = False
        self._next_settle_check = 0.0
        self._max_undeleted = 2 * config.flush_records + config.concurrency * config.messages_per_receive
        self._room = threading.Condition(self._lock)
        self._result: ConsumerResult | None = None

    # Control from other threads.

    def set_expected(self, expected: int) -> None:
        """Set the count to stop at (the combined run has it only after the producer is done)."""
        self._expected = expected

    def stop(self) -> None:
        """Ask the workers to stop after the delivery they are handling."""
        self._stop.set()

    # The run.

    def run(self) -> ConsumerResult:
        """Consume until the expected count, drained queues or the timeout; write the last records and return."""
        config = self.config
        if config.expected is None and config.timeout_s is None and config.idle_exit_s is None:
            raise ConfigError("the consumer would never stop: give an expected count, an idle exit or a timeout")
        result = ConsumerResult(self.instance_id, ENDED_INTERRUPTED, datetime.now(timezone.utc), datetime.now(timezone.utc))
        self._result = result
        result.handled_before = self._load_earlier_records()
        logger.info("consumer %s starts on %d queues with %d workers", self.instance_id, len(config.queues), config.concurrency)

        started = time.monotonic()
        workers = [
            threading.Thread(target=self._work, args=(index,), name=f"sdpipe-consumer-{index}", daemon=True)
            for index in range(config.concurrency)
        ]
        flusher = threading.Thread(target=self._flush_loop, name="sdpipe-consumer-flush", daemon=True)
        with ThreadPoolExecutor(max_workers=max(config.concurrency, 8), thread_name_prefix="sdpipe-delete") as deleter:
            self._deleter = deleter
            flusher.start()
            for worker in workers:
                worker.start()
            try:
                result.ended = self._wait_for_end(started)
            finally:
                self._stop.set()
                for worker in workers:
                    worker.join()
                with self._lock:
                    self._wake_flusher.notify_all()
                flusher.join()
                self._flush()

        result.finished = datetime.now(timezone.utc)
        result.order_violations = count_order_violations(self._first_deliveries)
        result.still_queued = len(self._not_deleted)
        if result.still_queued:
            logger.warning("%d handled messages are still in their queues because deleting them failed; "
                           "they will be delivered again and recorded as duplicates", result.still_queued)
        logger.info("consumer %s ended (%s): %d handled, %d duplicates, %d poisoned",
                    self.instance_id, result.ended, result.handled, result.duplicates, result.poisoned)
        if self._fatal:
            raise StorageError(f"{self._fatal[0]}; the messages not recorded stay in their queues and will be delivered again")
        return result

    def _wait_for_end(self, started: float) -> str:
        config = self.config
        next_drain_check = 0.0
        while not self._fatal:
            now = time.monotonic()
            expected = self._expected
            if expected is not None and self._accounted() >= expected and self._redeliveries_settled(now):
                return ENDED_EXPECTED
            if config.timeout_s is not None and now - started >= config.timeout_s:
                return ENDED_TIMEOUT
            if config.idle_exit_s is not None and now - self._last_received >= config.idle_exit_s and now >= next_drain_check:
                next_drain_check = now + 1.0
                if self._queues_empty():
                    return ENDED_DRAINED
            time.sleep(0.05)
        return ENDED_INTERRUPTED

    def _redeliveries_settled(self, now: float) -> bool:
        """Tell whether no recorded message that may still be queued is worth waiting for any more.

        Such messages are those whose delete failed here, and, when records of
        earlier consumers were found, those that a consumer which died had
        recorded but not deleted.  They come back within the visibility
        timeout, and this consumer then deletes them.  The first call starts a
        wait of at most twice the visibility timeout, because another consumer
        may take them or their deletes may go on failing.  The wait also ends
        once every queue is empty.
        """
        with self._lock:
            if not self._not_deleted and not self._found_earlier_records:
                return True
        if self._settle_deadline is None:
            self._settle_deadline = now + 2 * self.config.visibility_timeout_s
            logger.info("waiting up to %d s for recorded messages that may still be queued (%d whose delete failed)",
                        2 * self.config.visibility_timeout_s, len(self._not_deleted))
        if now >= self._settle_deadline:
            return True
        if now >= self._next_settle_check:
            self._next_settle_check = now + 1.0
            return self._queues_empty()
        return False

    def _accounted(self) -> int:
        with self._lock:
            return len(self._accounted_keys)

    def _counts(self, key: tuple[str, str]) -> bool:
        return self.config.test_run is None or key[0] == self.config.test_run

    def _queues_empty(self) -> bool:
        """Tell whether every queue is empty, invisible messages included (the approximate count covers them)."""
        from azure.core.exceptions import AzureError

        try:
            return all(client.get_queue_properties().approximate_message_count == 0 for client in self.clients.values())
        except AzureError as exc:
            logger.warning("could not read the queue lengths: %s", self.settings.mask(str(exc).splitlines()[0]))
            return False

    def _load_earlier_records(self) -> int:
        """Seed the handled and poisoned sets with the records of ``test_run`` already in the output folder.

        A restarted consumer (or one of several) then reports a message it
        receives again as a duplicate and counts earlier work towards the
        expected count.  Without ``test_run`` nothing is read, because the
        folder may hold other runs.
        """
        if self.config.test_run is None:
            return 0
        run = self.config.test_run
        for record in self.records.read_all():
            if record.get("TestRun") == run:
                key = (run, str(record.get("Properties", {}).get("MessageId")))
                self._handled.add(key)
        for entry in self.poison_log.read_all():
            if entry.get("TestRun") == run and entry.get("MessageId") is not None:
                self._poisoned.add((run, str(entry["MessageId"])))
        self._accounted_keys = self._handled | self._poisoned
        self._found_earlier_records = bool(self._accounted_keys)
        if self._handled or self._poisoned:
            logger.info("found %d handled and %d poisoned messages of run %s from earlier consumers",
                        len(self._handled), len(self._poisoned), run)
        return len(self._handled)

    # Worker threads.

    def _work(self, index: int) -> None:
        from azure.core.exceptions import AzureError

        queues = self.config.queues
        position = index % len(queues)
        empty_receives = 0
        poll_wait = 0.05
        while not self._stop.is_set():
            with self._lock:
                while self._undeleted >= self._max_undeleted and not self._stop.is_set():
                    self._room.wait(0.1)
            queue = queues[position]
            position = (position + 1) % len(queues)
            try:
                messages = list(self.clients[queue].receive_messages(
                    messages_per_page=self.config.messages_per_receive,
                    max_messages=self.config.messages_per_receive,
                    visibility_timeout=self.config.visibility_timeout_s,
                ))
            except AzureError as exc:
                if _is_fatal_receive_error(exc):
                    self._fail(f"receiving from queue {queue!r} failed: {self.settings.error_text(exc)}")
                    return
                logger.warning("receive from queue %s failed: %s", queue, self.settings.error_text(exc))
                self._stop.wait(poll_wait)
                poll_wait = min(poll_wait * 2, self.config.max_poll_interval_s)
                continue

            if not messages:
                empty_receives += 1
                if empty_receives >= len(queues):
                    self._stop.wait(poll_wait)
                    poll_wait = min(poll_wait * 2, self.config.max_poll_interval_s)
                continue
            # One receive dequeues the whole batch, so its messages share one dequeue time.
            dequeued = datetime.now(timezone.utc)
            empty_receives = 0
            poll_wait = 0.05
            self._last_received = time.monotonic()
            for message in messages:
                if self._stop.is_set():
                    break  # Left undeleted, it comes back after the visibility timeout.
                self._handle(queue, message, dequeued)

    def _handle(self, queue: str, message: Any, dequeued: datetime) -> None:
        try:
            body = decode_body(message.content, queue=queue)
        except InputError as exc:
            self._poison(queue, message, None, f"cannot be parsed: {exc}")
            return
        if message.dequeue_count > self.config.max_dequeue_count:
            self._poison(queue, message, body, f"dequeued {message.dequeue_count} times, more than {self.config.max_dequeue_count}")
            return

        try:
            self.handler(body, message.dequeue_count)
        except Exception as exc:  # noqa: BLE001 - any handling failure leaves the message to come back
            with self._lock:
                self._result.failed_handlings += 1
            if message.dequeue_count >= self.config.max_dequeue_count:
                self._poison(queue, message, body, f"handling failed on all {message.dequeue_count} deliveries: {exc}")
            else:
                logger.info("handling %s failed on delivery %d, it comes back after %d s: %s",
                            body.message_id, message.dequeue_count, self.config.visibility_timeout_s, exc)
            return

        record = consumer_record(
            body, instance_id=self.instance_id, execution_id=str(uuid.uuid4()),
            system_enqueued=message.inserted_on, dequeued=dequeued, processed=datetime.now(timezone.utc),
        )
        self._enqueue(self._pending, record, _Receipt(queue, message.id, message.pop_receipt), (body.test_run, body.message_id))

    def _poison(self, queue: str, message: Any, body: MessageBody | None, reason: str) -> None:
        """Copy the message to its poison queue; the original is deleted once the poison log is written."""
        from azure.core.exceptions import AzureError, ResourceExistsError

        poison_queue = queue + POISON_SUFFIX
        client = self.service.get_queue_client(poison_queue)
        try:
            if poison_queue not in self._poison_queues_ready:
                try:
                    client.create_queue()
                except ResourceExistsError:
                    pass
                self._poison_queues_ready.add(poison_queue)
            client.send_message(message.content)
        except AzureError as exc:
            logger.error("moving a message of queue %s to %s failed, it comes back after the visibility timeout: %s",
                         queue, poison_queue, self.settings.mask(str(exc).splitlines()[0]))
            return

        test_run = body.test_run if body else None
        message_id = body.message_id if body else None
        logger.warning("moved %s to %s: %s", message_id or f"message {message.id}", poison_queue, reason)
        entry = poison_entry(test_run=test_run, queue=queue, message_id=message_id, dequeue_count=message.dequeue_count,
                             reason=reason, poisoned=datetime.now(timezone.utc))
        self._enqueue(self._pending_poison, entry, _Receipt(queue, message.id, message.pop_receipt), (test_run, message_id))

    def _enqueue(self, pending: _Pending, record: dict[str, Any], receipt: _Receipt, key: tuple[Any, Any]) -> None:
        with self._lock:
            self._undeleted += 1
            pending.records.append(record)
            pending.receipts.append(receipt)
            pending.keys.append(key)
            if len(pending.records) >= self.config.flush_records:
                self._wake_flusher.notify()

    # Flushing: write the records, then delete their messages.

    def _flush_loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                self._wake_flusher.wait(self.config.flush_interval_s)
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, _Pending()
            poison, self._pending_poison = self._pending_poison, _Pending()
            self._sequence += 1
            sequence = self._sequence
        name = f"{self.instance_id}-{sequence:05d}.jsonl"
        for writer, batch, is_poison in ((self.records, pending, False), (self.poison_log, poison, True)):
            if not batch.records:
                continue
            try:
                url = writer.write(name, batch.records)
            except StorageError as exc:
                self._fail(str(exc))
                continue
            self._delete_batch(batch)
            # Counted only after the deletes, so that the expected count is never reached while
            # the messages still in their queues are unknown.
            self._account(batch, is_poison, url)

    def _delete_batch(self, batch: _Pending) -> None:
        """Delete the messages of written records; remember those that stay in their queues."""
        deleted = list(self._deleter.map(self._delete, batch.receipts))
        with self._lock:
            for receipt, ok in zip(batch.receipts, deleted):
                key = (receipt.queue, receipt.message_id)
                if ok:
                    self._not_deleted.discard(key)
                else:
                    self._not_deleted.add(key)
            self._result.delete_failures += deleted.count(False)
            self._undeleted -= len(batch.receipts)
            self._room.notify_all()

    def _fail(self, message: str) -> None:
        """Stop the run because of an error that every further request would meet too."""
        logger.error("%s", message)
        with self._lock:
            self._fatal.append(message)
        self._stop.set()

    def _account(self, batch: _Pending, is_poison: bool, url: str) -> None:
        with self._lock:
            result = self._result
            result.files.append(url)
            if is_poison:
                for key in batch.keys:
                    if key[1] is not None and key not in self._poisoned:
                        self._poisoned.add(key)
                        result.poisoned += 1
                        if self._counts(key):
                            self._accounted_keys.add(key)
                return
            result.records_written += len(batch.records)
            for key, record in zip(batch.keys, batch.records):
                if key in self._handled:
                    result.duplicates += 1
                    continue
                self._handled.add(key)
                result.handled += 1
                if self._counts(key):
                    self._accounted_keys.add(key)
                    self._first_deliveries.append((key[1], parse_timestamp(record["Properties"]["DequeuedTime"])))

    def _delete(self, receipt: _Receipt) -> bool:
        """Delete one handled message, retrying transient errors; return False if it stays in its queue."""
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        delay = DELETE_BACKOFF_S
        for attempt in range(1, DELETE_ATTEMPTS + 1):
            try:
                self.clients[receipt.queue].delete_message(receipt.message_id, receipt.pop_receipt)
                return True
            except ResourceNotFoundError as exc:
                if attempt > 1:
                    # Either an earlier attempt whose response was lost deleted it, or its visibility
                    # timeout ran out and another delivery has received it.
                    return True
                self._log_delete_failure(receipt, attempt, self.settings.error_text(exc))
                return False
            except AzureError as exc:
                if not is_transient(exc) or attempt == DELETE_ATTEMPTS:
                    self._log_delete_failure(receipt, attempt, self.settings.error_text(exc))
                    return False
            time.sleep(delay)
            delay *= 2
        return False

    def _log_delete_failure(self, receipt: _Receipt, attempts: int, text: str) -> None:
        with self._lock:
            self._delete_errors_logged += 1
            logged = self._delete_errors_logged
        # The first ten failures are logged, then every hundredth: a slow consumer can cause thousands.
        if logged <= 10 or logged % 100 == 0:
            logger.warning("deleting message %s from queue %s failed after %d attempt(s) (failure %d), "
                           "it will be delivered again: %s", receipt.message_id, receipt.queue, attempts, logged, text)


def _is_fatal_receive_error(exc: BaseException) -> bool:
    """Tell whether a failed receive would fail again however often it is tried.

    A missing queue is not fatal, because a producer may create it later.
    """
    from azure.core.exceptions import HttpResponseError

    if is_transient(exc) or not isinstance(exc, HttpResponseError):
        return False
    return exc.status_code != 404


def run_consumer(
    config: ConsumerConfig,
    settings: QueueSettings,
    output: str,
    *,
    storage_options: dict[str, Any] | None = None,
    service: Any = None,
    handler: Callable[[MessageBody, int], None] = simulated_handling,
) -> ConsumerResult:
    """Run one consumer until it ends (see :class:`ConsumerConfig`) and return what it handled."""
    consumer = Consumer(config, settings, output, storage_options=storage_options, service=service, handler=handler)
    return consumer.run()
