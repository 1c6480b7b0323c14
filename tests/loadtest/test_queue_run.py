"""Load tests against Azurite's queue service: accounting, failures, poison, retries, a killed consumer.

Expected values come from the run's definition (which ids were sent, which
messages were configured to fail) and from reading the written files here with
json and numpy, never from sdpipe's own counters.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from azure.core.exceptions import ResourceNotFoundError, ServiceRequestError

from sdpipe.cli.main import main
from sdpipe.errors import StorageError
from sdpipe.loadtest import ConsumerConfig, ProducerConfig, QueueSettings, run_consumer, run_load_test, run_producer
from sdpipe.loadtest.records import queue_names
from sdpipe.loadtest.run import load_test_report
from tests.azurite import AzuriteProcess

pytestmark = pytest.mark.azurite

REPO_ROOT = Path(__file__).resolve().parents[2]
SDPIPE = [sys.executable, "-m", "sdpipe.cli.main"]


def read_json_lines(folder: Path) -> list[dict]:
    """Every record of the visible ``*.jsonl`` files in ``folder`` (none if it does not exist)."""
    if not folder.exists():
        return []
    records = []
    for path in sorted(folder.glob("*.jsonl")):
        records.extend(json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return records


def parse_time(text: str) -> np.datetime64:
    """Parse ``2024-05-01T12:00:00.1234567Z`` with numpy (not sdpipe's parser)."""
    assert text.endswith("Z"), text
    return np.datetime64(text[:-1], "ns")


def fifo_violations(records: list[dict]) -> dict[str, int]:
    """Per queue: first deliveries dequeued while a lower-numbered message of the queue was dequeued later."""
    first: dict[str, dict] = {}
    for record in sorted(records, key=lambda r: r["MessageProcessedTime"]):
        first.setdefault(record["Properties"]["MessageId"], record)
    by_queue: dict[str, list[tuple[int, np.datetime64]]] = {}
    for message_id, record in first.items():
        queue, number = message_id.rsplit("/", 1)
        by_queue.setdefault(queue, []).append((int(number), parse_time(record["Properties"]["DequeuedTime"])))
    counts = {}
    for queue, items in by_queue.items():
        numbers = np.array([n for n, _ in items])
        times = np.array([t for _, t in items])
        lower_and_later = (numbers[None, :] < numbers[:, None]) & (times[None, :] > times[:, None])
        counts[queue] = int(lower_and_later.any(axis=1).sum())
    return counts


def expected_ids(queues: list[str], messages: int) -> set[str]:
    """The ids the producer is defined to send: message k goes to queue k % M as number k // M + 1."""
    return {f"{queues[k % len(queues)]}/{k // len(queues) + 1}" for k in range(messages)}


def queue_lengths(azurite_queue, queues: list[str]) -> list[int]:
    service = azurite_queue.queue_client()
    return [service.get_queue_client(name).get_queue_properties().approximate_message_count for name in queues]


class FlakyService:
    """Wraps a QueueServiceClient: chosen sends, receives and deletes fail as a dropped connection or a stale receipt would.

    ``delete_failures``: message ids whose first delete fails with "message not found".
    ``delete_resets``: message id -> how many delete attempts fail with a connection reset.
    ``receive_resets``: how many receives, counted over all queues, fail with a connection reset.
    ``redeliver_at_once``: the last planned delete reset of a message also makes it visible again at
    once, as if its visibility timeout had run out, so that a test need not wait for it.
    """

    def __init__(self, service, *, send_failures=None, always_fail=(), delete_failures=(), delete_resets=None,
                 receive_resets=0, redeliver_at_once=False):
        self.service = service
        self.send_failures = dict(send_failures or {})  # message id -> transient failures before success
        self.always_fail = set(always_fail)
        self.delete_failures = set(delete_failures)
        self.delete_resets = dict(delete_resets or {})
        self.receive_resets = receive_resets
        self.redeliver_at_once = redeliver_at_once
        self.deleted_ids: dict[str, str] = {}
        self.lock = threading.Lock()

    def take(self, name: str, key=None) -> bool:
        """Use up one planned failure of kind ``name`` (for ``key``); return whether one was left."""
        with self.lock:
            plan = getattr(self, name)
            if key is None:
                if plan <= 0:
                    return False
                setattr(self, name, plan - 1)
                return True
            if plan.get(key, 0) <= 0:
                return False
            plan[key] -= 1
            return True

    def get_queue_client(self, name):
        return FlakyQueue(self, self.service.get_queue_client(name))


class FlakyQueue:
    def __init__(self, owner: FlakyService, client):
        self.owner = owner
        self.client = client

    def __getattr__(self, name):
        return getattr(self.client, name)

    def send_message(self, content, **kwargs):
        message_id = json.loads(content).get("MessageId")
        if message_id in self.owner.always_fail:
            raise ServiceRequestError("connection reset by peer (injected)")
        if self.owner.send_failures.get(message_id, 0) > 0:
            self.owner.send_failures[message_id] -= 1
            raise ServiceRequestError("connection reset by peer (injected)")
        return self.client.send_message(content, **kwargs)

    def receive_messages(self, **kwargs):
        if self.owner.take("receive_resets"):
            raise ServiceRequestError("Connection reset by peer (injected)")
        messages = list(self.client.receive_messages(**kwargs))
        for message in messages:
            self.owner.deleted_ids.setdefault(message.id, json.loads(message.content).get("MessageId"))
        return messages

    def delete_message(self, message, pop_receipt=None, **kwargs):
        message_id = self.owner.deleted_ids.get(message)
        if self.owner.take("delete_resets", message_id):
            if self.owner.redeliver_at_once and self.owner.delete_resets[message_id] == 0:
                self.client.update_message(message, pop_receipt, visibility_timeout=0)
            raise ServiceRequestError("Connection reset by peer (injected)")
        if message_id in self.owner.delete_failures:
            self.owner.delete_failures.discard(message_id)
            raise ResourceNotFoundError("The specified message does not exist (injected)")
        return self.client.delete_message(message, pop_receipt, **kwargs)


def test_run_accounts_for_every_message(queue_settings, queue_prefix, azurite_queue, tmp_path):
    queues = queue_names(queue_prefix, 4)
    messages = 2000
    producer = ProducerConfig(queues=queues, messages=messages, concurrency=8, failing_every=250, fail_count=1)
    consumer = ConsumerConfig(queues=queues, concurrency=4, visibility_timeout_s=5, timeout_s=120)

    produced, consumed = run_load_test(producer, consumer, queue_settings, str(tmp_path))

    sent_log = read_json_lines(tmp_path / "producer")
    records = read_json_lines(tmp_path / "records")
    record_ids = [r["Properties"]["MessageId"] for r in records]
    assert {e["MessageId"] for e in sent_log} == expected_ids(queues, messages)
    assert all(e["Sent"] and e["TestRun"] == produced.test_run for e in sent_log)
    assert set(record_ids) == expected_ids(queues, messages)
    assert {r["TestRun"] for r in records} == {produced.test_run}
    assert consumed.ended == "expected-count"
    assert consumed.handled == messages
    assert consumed.duplicates == len(record_ids) - len(set(record_ids))
    assert consumed.failed_handlings == messages // 250
    assert consumed.poisoned == 0
    assert queue_lengths(azurite_queue, queues) == [0, 0, 0, 0]
    assert consumed.order_violations == fifo_violations(records)

    # Every record reads as the sample's shape, with its times in causal order.
    for record in records[:50]:
        properties = record["Properties"]
        assert parse_time(properties["ClientEnqueueTimeUtc"]) <= parse_time(properties["DequeuedTime"])
        assert parse_time(properties["DequeuedTime"]) <= parse_time(record["MessageProcessedTime"])

    # The message-timing pipeline agrees with the counts known from the run.
    out = tmp_path / "analysis"
    code = main_json(["run", "message-timing", "--input", str(tmp_path / "records"),
                      "--producer-log", produced.log_url, "--output", str(out), "--by", "session", "--json"])
    assert code["exit"] == 0
    rows = {row["session"]: row for row in code["document"]["result"] if row.get("session")}
    independent = fifo_violations(records)
    for queue in queues:
        ids = [i for i in record_ids if i.startswith(queue + "/")]
        assert rows[queue]["messages"] == len(set(ids))
        assert rows[queue]["duplicates"] == len(ids) - len(set(ids))
        assert rows[queue]["missing"] == 0
        assert rows[queue]["fifo_violations"] == independent[queue]


def main_json(argv: list[str]) -> dict:
    """Run the CLI in this process and return its exit code and the JSON document it printed."""
    import contextlib
    import io

    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        try:
            main(argv)
        except SystemExit as exc:
            code = exc.code
    return {"exit": code, "document": json.loads(stdout.getvalue())}


def test_failing_messages_go_to_poison_queue(queue_settings, queue_prefix, azurite_queue, tmp_path):
    queues = queue_names(queue_prefix, 2)
    producer = ProducerConfig(queues=queues, messages=40, concurrency=4, failing_every=5, fail_count=3)
    consumer = ConsumerConfig(queues=queues, concurrency=2, visibility_timeout_s=1, max_dequeue_count=3,
                              flush_interval_s=0.2, timeout_s=60)

    produced, consumed = run_load_test(producer, consumer, queue_settings, str(tmp_path))

    failing = {f"{queues[k % 2]}/{k // 2 + 1}" for k in range(40) if (k + 1) % 5 == 0}
    poison_log = read_json_lines(tmp_path / "poison")
    records = read_json_lines(tmp_path / "records")
    assert {entry["MessageId"] for entry in poison_log} == failing
    assert all(entry["DequeueCount"] == 3 for entry in poison_log)
    assert {r["Properties"]["MessageId"] for r in records} == expected_ids(queues, 40) - failing
    assert consumed.poisoned == len(failing)
    assert consumed.failed_handlings == 3 * len(failing)

    service = azurite_queue.queue_client()
    in_poison = set()
    for queue in queues:
        for message in service.get_queue_client(queue + "-poison").receive_messages(max_messages=32):
            in_poison.add(json.loads(message.content)["MessageId"])
    assert in_poison == failing
    assert queue_lengths(azurite_queue, queues) == [0, 0]


def test_send_retries_then_records_not_sent(queue_settings, queue_prefix, azurite_queue, tmp_path):
    queues = queue_names(queue_prefix, 2)
    flaky = FlakyService(azurite_queue.queue_client(), send_failures={f"{queues[0]}/2": 2}, always_fail={f"{queues[1]}/3"})
    waits: list[float] = []
    config = ProducerConfig(queues=queues, messages=10, concurrency=2, max_attempts=4, backoff_s=0.5)

    produced = run_producer(config, queue_settings, output=str(tmp_path), service=flaky, sleep=waits.append, seed=1)

    by_id = {entry["MessageId"]: entry for entry in produced.entries}
    assert by_id[f"{queues[0]}/2"]["Sent"] is True
    assert by_id[f"{queues[0]}/2"]["Attempts"] == 3
    assert by_id[f"{queues[1]}/3"]["Sent"] is False
    assert by_id[f"{queues[1]}/3"]["Attempts"] == 4
    assert "ServiceRequestError: connection reset by peer" in by_id[f"{queues[1]}/3"]["Error"]
    assert produced.sent == 9
    assert produced.not_sent == 1
    # Waits: 2 before the flaky message's retries and 3 before the failing one's; each in [0.5, 1] of 0.5 * 2**(a-1).
    assert len(waits) == 5
    assert all(0.25 <= w <= 2.0 for w in waits)
    assert sorted(waits)[-1] >= 1.0
    assert {e["MessageId"] for e in read_json_lines(tmp_path / "producer")} == expected_ids(queues, 10) - {f"{queues[1]}/3"}
    assert [e["MessageId"] for e in read_json_lines(tmp_path / "not-sent")] == [f"{queues[1]}/3"]
    assert queue_lengths(azurite_queue, queues) == [5, 4]


def test_missing_queue_stops_producer(queue_settings, queue_prefix, tmp_path):
    queues = queue_names(queue_prefix, 1)
    config = ProducerConfig(queues=queues, messages=5, concurrency=1, create_queues=False)

    with pytest.raises(StorageError, match=rf"sending message '{queues[0]}/1' to queue '{queues[0]}' failed: "
                       r"ResourceNotFoundError: The specified queue does not exist"):
        run_producer(config, queue_settings, output=str(tmp_path))
    not_sent = read_json_lines(tmp_path / "not-sent")
    assert len(not_sent) == 5
    assert read_json_lines(tmp_path / "producer") == []


def test_failed_delete_is_reported_as_duplicate(queue_settings, queue_prefix, azurite_queue, tmp_path):
    queues = queue_names(queue_prefix, 1)
    run_producer(ProducerConfig(queues=queues, messages=6, concurrency=2, test_run="run-dup"), queue_settings)
    flaky = FlakyService(azurite_queue.queue_client(), delete_failures={f"{queues[0]}/4"})
    config = ConsumerConfig(queues=queues, concurrency=1, visibility_timeout_s=1, flush_interval_s=0.2,
                            test_run="run-dup", idle_exit_s=2.5, timeout_s=60)

    consumed = run_consumer(config, queue_settings, str(tmp_path), service=flaky)

    ids = [r["Properties"]["MessageId"] for r in read_json_lines(tmp_path / "records")]
    assert sorted(ids) == sorted([f"{queues[0]}/{n}" for n in range(1, 7)] + [f"{queues[0]}/4"])
    assert consumed.delete_failures == 1
    assert consumed.duplicates == 1
    assert consumed.handled == 6
    assert consumed.ended == "queues-drained"


def sdpipe_threads() -> list[str]:
    return sorted(thread.name for thread in threading.enumerate() if thread.name.startswith("sdpipe-"))


def test_reset_delete_is_retried(queue_settings, queue_prefix, azurite_queue, tmp_path):
    queues = queue_names(queue_prefix, 1)
    run_producer(ProducerConfig(queues=queues, messages=6, concurrency=2, test_run="run-retry"), queue_settings)
    flaky = FlakyService(azurite_queue.queue_client(), delete_resets={f"{queues[0]}/3": 2}, receive_resets=2)
    config = ConsumerConfig(queues=queues, concurrency=1, visibility_timeout_s=30, flush_interval_s=0.2,
                            test_run="run-retry", expected=6, timeout_s=60)

    consumed = run_consumer(config, queue_settings, str(tmp_path), service=flaky)

    ids = [r["Properties"]["MessageId"] for r in read_json_lines(tmp_path / "records")]
    assert sorted(ids) == sorted(f"{queues[0]}/{n}" for n in range(1, 7))
    assert flaky.delete_resets == {f"{queues[0]}/3": 0}
    assert flaky.receive_resets == 0
    assert consumed.delete_failures == 0
    assert consumed.still_queued == 0
    assert consumed.ended == "expected-count"
    assert queue_lengths(azurite_queue, queues) == [0]


def test_run_deletes_redelivered_message(queue_settings, queue_prefix, azurite_queue, tmp_path):
    queues = queue_names(queue_prefix, 2)
    lost = f"{queues[1]}/5"
    # Every attempt to delete the first delivery fails, and the message comes back at once.
    flaky = FlakyService(azurite_queue.queue_client(), delete_resets={lost: 4}, receive_resets=3, redeliver_at_once=True)
    producer = ProducerConfig(queues=queues, messages=20, concurrency=4)
    consumer = ConsumerConfig(queues=queues, concurrency=2, visibility_timeout_s=30, flush_interval_s=0.2, timeout_s=60)

    produced, consumed = run_load_test(producer, consumer, queue_settings, str(tmp_path), service=flaky)

    ids = [r["Properties"]["MessageId"] for r in read_json_lines(tmp_path / "records")]
    assert set(ids) == expected_ids(queues, 20)
    assert ids.count(lost) == 2
    assert consumed.ended == "expected-count"
    assert consumed.delete_failures == 1
    assert consumed.duplicates == 1
    assert consumed.still_queued == 0
    assert queue_lengths(azurite_queue, queues) == [0, 0]
    assert sdpipe_threads() == []


def test_undeletable_message_reported_still_queued(queue_settings, queue_prefix, azurite_queue, tmp_path):
    queues = queue_names(queue_prefix, 1)
    stuck = f"{queues[0]}/2"
    flaky = FlakyService(azurite_queue.queue_client(), delete_resets={stuck: 10_000})
    producer = ProducerConfig(queues=queues, messages=4, concurrency=2)
    consumer = ConsumerConfig(queues=queues, concurrency=1, visibility_timeout_s=2, flush_interval_s=0.2, timeout_s=60)

    produced, consumed = run_load_test(producer, consumer, queue_settings, str(tmp_path), service=flaky)
    report = load_test_report(produced, consumed, queue_settings, queues, str(tmp_path))

    assert consumed.ended == "expected-count"
    assert consumed.still_queued == 1
    assert report.counts["consumer"]["still_queued"] == 1
    assert ("  still queued: 1 handled messages whose delete failed; they will be delivered again "
            "and recorded as duplicates") in report.summary
    assert queue_lengths(azurite_queue, queues) == [1]
    assert sdpipe_threads() == []


def test_consumer_counts_earlier_records(queue_settings, queue_prefix, tmp_path):
    queues = queue_names(queue_prefix, 1)
    run_producer(ProducerConfig(queues=queues, messages=4, concurrency=1, test_run="run-again"), queue_settings)
    earlier = {"MessageProcessedTime": "2024-05-01T12:00:00.0000000Z", "CloudProvider": "Azure", "TestRun": "run-again",
               "Trigger": "Queue", "Properties": {"MessageId": f"{queues[0]}/2"}}
    (tmp_path / "records").mkdir()
    (tmp_path / "records" / "earlier-00001.jsonl").write_text(json.dumps(earlier) + "\n")
    config = ConsumerConfig(queues=queues, concurrency=1, test_run="run-again", expected=4, timeout_s=60)

    consumed = run_consumer(config, queue_settings, str(tmp_path))

    assert consumed.handled_before == 1
    assert consumed.duplicates == 1
    assert consumed.handled == 3
    assert consumed.ended == "expected-count"


def test_killed_consumer_loses_nothing(azurite_queue, queue_prefix, tmp_path):
    messages = 1200
    env = {**os.environ, "AZURE_STORAGE_CONNECTION_STRING": azurite_queue.connection_string}
    common = ["--queues", "3", "--queue-prefix", queue_prefix, "--output", str(tmp_path)]
    produce = subprocess.run([*SDPIPE, "load-test", "produce", "-n", str(messages), "--test-run", "killed",
                              "--concurrency", "8", *common, "--json"],
                             env=env, capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert produce.returncode == 0, produce.stderr
    consume = [*SDPIPE, "load-test", "consume", "--test-run", "killed", "--expected", str(messages),
               "--visibility-timeout", "3", "--flush-records", "100", "--timeout", "120", *common, "--json"]

    first = subprocess.Popen(consume, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO_ROOT)
    deadline = time.monotonic() + 90
    while len(read_json_lines(tmp_path / "records")) < messages // 3:
        assert first.poll() is None, first.stderr.read()
        assert time.monotonic() < deadline, "the first consumer wrote too few records"
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    first.stdout.close()
    first.stderr.close()
    before = [r["Properties"]["MessageId"] for r in read_json_lines(tmp_path / "records")]
    assert len(set(before)) < messages

    second = subprocess.run(consume, env=env, capture_output=True, text=True, timeout=150, cwd=REPO_ROOT)
    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout)

    queues = queue_names(queue_prefix, 3)
    all_ids = [r["Properties"]["MessageId"] for r in read_json_lines(tmp_path / "records")]
    after = list(all_ids)
    for message_id in before:
        after.remove(message_id)
    assert set(all_ids) == expected_ids(queues, messages)
    assert report["ended"] == "expected-count"
    assert report["counts"]["consumer"]["handled_before_start"] == len(set(before))
    assert report["counts"]["consumer"]["duplicates"] == len(after) - len(set(after) - set(before))
    assert report["counts"]["consumer"]["handled"] == messages - len(set(before))
    assert queue_lengths(azurite_queue, queues) == [0, 0, 0]


@pytest.fixture(scope="module")
def azurite_queue_checking_api_version(tmp_path_factory):
    """Azurite's queue service started without --skipApiVersionCheck, as a user might start it."""
    workdir = tmp_path_factory.mktemp("azurite-queue-strict")
    with AzuriteProcess("queue", workdir=workdir, check_api_version=True) as service:
        yield service


API_VERSION_ADVICE = (r"does not support the Azure Storage API version \d{4}-\d{2}-\d{2} that the installed Azure SDK "
                      r"sends; start Azurite with --skipApiVersionCheck, or upgrade Azurite")


def test_producer_names_api_version_flag(azurite_queue_checking_api_version, queue_prefix, tmp_path):
    service = azurite_queue_checking_api_version
    settings = QueueSettings(connection_string=service.connection_string)
    queues = queue_names(queue_prefix, 1)

    with pytest.raises(StorageError) as caught:
        run_producer(ProducerConfig(queues=queues, messages=1), settings, output=str(tmp_path))

    assert re.match(rf"preparing queue '{queues[0]}' failed: the queue service at {re.escape(service.endpoint)} "
                    + API_VERSION_ADVICE, str(caught.value)), str(caught.value)


def test_consumer_stops_on_api_version(azurite_queue_checking_api_version, queue_prefix, tmp_path):
    settings = QueueSettings(connection_string=azurite_queue_checking_api_version.connection_string)
    config = ConsumerConfig(queues=queue_names(queue_prefix, 1), concurrency=1, expected=1, timeout_s=120)

    with pytest.raises(StorageError) as caught:
        run_consumer(config, settings, str(tmp_path))

    assert re.match(rf"receiving from queue '{queue_prefix}-0' failed: the queue service at .* " + API_VERSION_ADVICE,
                    str(caught.value)), str(caught.value)
    assert sdpipe_threads() == []
