"""Producer and consumer together in one process, and the reports of all three commands."""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any

from sdpipe.errors import EXIT_FAILURE
from sdpipe.loadtest.connection import QueueSettings
from sdpipe.loadtest.consumer import ENDED_TIMEOUT, Consumer, ConsumerConfig, ConsumerResult
from sdpipe.loadtest.output import POISON_FOLDER, RECORDS_FOLDER, join_url
from sdpipe.loadtest.producer import ProducerConfig, ProducerResult, prepare_queues, run_producer
from sdpipe.pipeline import RunReport

logger = logging.getLogger(__name__)

REPORT_NAME = "load-test"


def run_load_test(
    producer_config: ProducerConfig,
    consumer_config: ConsumerConfig,
    settings: QueueSettings,
    output: str,
    *,
    storage_options: dict[str, Any] | None = None,
    service: Any = None,
) -> tuple[ProducerResult, ConsumerResult]:
    """Send and consume at the same time; stop once every sent message is accounted for, or at the timeout.

    The consumer counts only the producer's test run, and learns how many
    messages to expect when the producer is done, so messages that were not
    sent are not waited for.
    """
    service = service or settings.service_client()
    prepare_queues(service, producer_config.queues, create=producer_config.create_queues,
                   clear=producer_config.clear_queues, settings=settings)
    producer_config = dataclasses.replace(producer_config, create_queues=False, clear_queues=False)
    consumer_config = dataclasses.replace(consumer_config, test_run=producer_config.test_run, expected=None)
    consumer = Consumer(consumer_config, settings, output, storage_options=storage_options, service=service)

    outcome: dict[str, Any] = {}

    def consume() -> None:
        try:
            outcome["result"] = consumer.run()
        except BaseException as exc:  # noqa: BLE001 - handed over to the main thread below
            outcome["error"] = exc

    thread = threading.Thread(target=consume, name="sdpipe-load-test-consumer", daemon=True)
    thread.start()
    try:
        produced = run_producer(producer_config, settings, output=output, storage_options=storage_options, service=service)
    except BaseException:
        consumer.stop()
        thread.join()
        raise
    consumer.set_expected(produced.sent)
    thread.join()

    if "error" in outcome:
        raise outcome["error"]
    return produced, outcome["result"]


def producer_report(produced: ProducerResult, settings: QueueSettings, queues: list[str]) -> RunReport:
    """Build the report of ``sdpipe load-test produce``."""
    counts = produced.counts()
    summary = [
        f"load test {produced.test_run}: producer",
        f"  sent {counts['sent']} of {counts['requested']} messages over {len(queues)} queues "
        f"in {counts['send_seconds']:.1f} s ({counts['retries']} retries, {counts['not_sent']} not sent)",
    ]
    if produced.log_url:
        summary.append(f"  producer log: {produced.log_url}")
    if produced.not_sent_url:
        summary.append(f"  not sent: {produced.not_sent_url}")
    return RunReport(
        pipeline=REPORT_NAME,
        counts={"producer": counts},
        output=produced.log_url,
        details={"test_run": produced.test_run, "queues": queues, "connection": settings.describe(),
                 "producer_log": produced.log_url, "not_sent_log": produced.not_sent_url},
        summary=summary,
    )


def consumer_report(consumed: ConsumerResult, settings: QueueSettings, queues: list[str], output: str) -> RunReport:
    """Build the report of ``sdpipe load-test consume``; a timeout exits 1."""
    counts = consumed.counts()
    records_url = join_url(output, RECORDS_FOLDER)
    summary = [
        f"consumer {consumed.instance_id}: ended by {_ended_text(consumed.ended)}",
        f"  handled {counts['handled']} messages ({counts['handled_before_start']} by earlier consumers), "
        f"{counts['duplicates']} duplicates, {counts['poisoned']} poisoned, "
        f"{counts['failed_handlings']} failed handlings, {counts['delete_failures']} failed deletes "
        f"in {counts['consume_seconds']:.1f} s",
        f"  out of queue order: {counts['order_violations']} messages",
        f"  records: {records_url}",
    ]
    if consumed.still_queued:
        summary.insert(2, f"  still queued: {consumed.still_queued} handled messages whose delete failed; "
                          "they will be delivered again and recorded as duplicates")
    timed_out = consumed.ended == ENDED_TIMEOUT
    return RunReport(
        pipeline=REPORT_NAME,
        status="timeout" if timed_out else "ok",
        counts={"consumer": counts},
        output=records_url,
        details={"instance_id": consumed.instance_id, "ended": consumed.ended, "queues": queues,
                 "connection": settings.describe(), "records": records_url,
                 "poison_log": join_url(output, POISON_FOLDER), "order_violations": consumed.order_violations},
        summary=summary,
        exit_code=EXIT_FAILURE if timed_out else 0,
    )


def load_test_report(
    produced: ProducerResult, consumed: ConsumerResult, settings: QueueSettings, queues: list[str], output: str
) -> RunReport:
    """Build the report of ``sdpipe load-test queue``, ending with the command that analyses the records."""
    report = consumer_report(consumed, settings, queues, output)
    producer = producer_report(produced, settings, queues)
    records_url = join_url(output, RECORDS_FOLDER)
    analyse = f"sdpipe run message-timing --input {records_url}"
    if produced.log_url:
        analyse += f" --producer-log {produced.log_url}"
    sent = produced.sent
    accounted = consumed.handled + consumed.handled_before + consumed.poisoned
    report.counts = {"producer": producer.counts["producer"], "consumer": report.counts["consumer"],
                     "unaccounted": max(sent - accounted, 0)}
    report.details.update(producer.details)
    report.details["analyse"] = analyse
    report.summary = producer.summary + report.summary[0:] + [
        f"  unaccounted: {report.counts['unaccounted']} of {sent} sent messages",
        f"  analyse with: {analyse}",
    ]
    return report


def _ended_text(ended: str) -> str:
    return {
        "expected-count": "reaching the expected count",
        "queues-drained": "finding every queue empty",
        "timeout": "the timeout, before the expected count was reached",
        "interrupted": "an error or an interruption",
    }.get(ended, ended)
