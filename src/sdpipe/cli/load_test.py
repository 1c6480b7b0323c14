"""``sdpipe load-test``: make real queue traffic and record its timing for message-timing."""

from __future__ import annotations

import functools
from typing import Any, Callable

import click

from sdpipe.cli.options import configure_logging, emit_report, parse_storage_options

DEFAULT_OUTPUT = "output/load-test"


def connection_options(command: Callable) -> Callable:
    """Add the queue account options; secrets are best given through the environment variables."""
    decorators = [
        click.option("--connection-string", envvar="AZURE_STORAGE_CONNECTION_STRING", show_envvar=True, default=None,
                     metavar="TEXT", help="Storage account connection string (prefer the environment variable: "
                     "command lines are visible to other users)."),
        # The pipelines' storage options read the same variables; the first spelling is the documented one.
        click.option("--account-name", envvar=["AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_ACCOUNT_NAME"], show_envvar=True,
                     default=None, help="Storage account name, with --account-key or --sas-token."),
        click.option("--account-key", envvar=["AZURE_STORAGE_KEY", "AZURE_STORAGE_ACCOUNT_KEY"], show_envvar=True,
                     default=None, metavar="KEY", help="Storage account key."),
        click.option("--sas-token", envvar="AZURE_STORAGE_SAS_TOKEN", show_envvar=True, default=None,
                     metavar="TOKEN", help="SAS token with queue permissions (raup and d for the consumer)."),
        click.option("--queue-endpoint", envvar="SDPIPE_QUEUE_ENDPOINT", show_envvar=True, default=None, metavar="URL",
                     help="Queue service URL; default https://ACCOUNT.queue.core.windows.net. "
                     "Azurite: http://127.0.0.1:PORT/devstoreaccount1."),
        click.option("--queues", "queue_count", type=click.IntRange(min=1), default=4, show_default=True,
                     help="Number of queues the messages are fanned out over."),
        click.option("--queue-prefix", default="sdpipe-load", show_default=True,
                     help="Queue names are PREFIX-0 to PREFIX-(N-1); poison queues add -poison."),
        click.option("--output", "-o", default=DEFAULT_OUTPUT, show_default=True, metavar="URL",
                     help="Folder (local or fsspec URL) for records/, poison/ and producer/."),
        click.option("--storage-option", "storage_option", multiple=True, metavar="KEY=VALUE",
                     help="fsspec storage option for an --output URL on blob storage (repeatable)."),
        click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout and nothing else there."),
        click.option("--quiet", "-q", is_flag=True, help="Print no summary; errors still go to stderr."),
        click.option("--debug", is_flag=True, help="Log at DEBUG level and show tracebacks of errors."),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def producer_options(prefix: str = "") -> Callable[[Callable], Callable]:
    """Return a decorator adding the producer's options (``--{prefix}concurrency`` for the concurrency)."""

    def decorate(command: Callable) -> Callable:
        decorators = [
            click.option("--messages", "-n", type=click.IntRange(min=1), required=True,
                         help="Messages to send in total."),
            click.option(f"--{prefix}concurrency", "producer_concurrency", type=click.IntRange(min=1), default=8,
                         show_default=True, help="Sends in flight at once (threads)."),
            click.option("--work-time-ms", type=click.IntRange(min=0), default=0, show_default=True,
                         help="Simulated work per message, in milliseconds, slept by the consumer."),
            click.option("--payload-bytes", type=click.IntRange(0, 60_000), default=0, show_default=True,
                         help="Filler bytes added to each message."),
            click.option("--max-attempts", type=click.IntRange(min=1), default=5, show_default=True,
                         help="Attempts per message before it is logged as not sent."),
            click.option("--backoff", type=click.FloatRange(min=0), default=0.2, show_default=True,
                         help="First retry wait in seconds; it doubles with each attempt, up to 10 s."),
            click.option("--failing-every", type=click.IntRange(min=0), default=0, show_default=True,
                         help="Make every K-th message fail its first --fail-count handlings (0: none)."),
            click.option("--fail-count", type=click.IntRange(min=0), default=1, show_default=True,
                         help="Handlings that fail for each failing message; at least the consumer's "
                         "--max-dequeue-count sends it to the poison queue."),
            click.option("--clear", is_flag=True, help="Delete the messages already in the queues first."),
        ]
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return decorate


def consumer_options(prefix: str = "") -> Callable[[Callable], Callable]:
    """Return a decorator adding the consumer's options (``--{prefix}concurrency`` for the concurrency)."""

    def decorate(command: Callable) -> Callable:
        decorators = [
            click.option(f"--{prefix}concurrency", "consumer_concurrency", type=click.IntRange(min=1), default=4,
                         show_default=True, help="Worker threads receiving and handling messages."),
            click.option("--visibility-timeout", type=click.IntRange(1, 7 * 24 * 3600), default=30, show_default=True,
                         help="Seconds a received message stays hidden; a failed one comes back after it."),
            click.option("--max-dequeue-count", type=click.IntRange(min=1), default=5, show_default=True,
                         help="Deliveries before a failing message goes to its poison queue."),
            click.option("--flush-records", type=click.IntRange(min=1), default=200, show_default=True,
                         help="Records per written file; messages are deleted after their file is written."),
            click.option("--flush-interval", type=click.FloatRange(min=0.01), default=1.0, show_default=True,
                         help="Longest wait in seconds before handled records are written."),
        ]
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return decorate


def cli_command(func: Callable) -> Callable:
    """Set up logging, then turn library errors into exit codes through the caller."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> int:
        configure_logging(kwargs.get("quiet", False), kwargs.get("debug", False))
        return func(*args, **kwargs)

    return wrapper


def _settings(kwargs: dict[str, Any]):
    from sdpipe.loadtest.connection import QueueSettings

    return QueueSettings(
        account_name=kwargs["account_name"], queue_endpoint=kwargs["queue_endpoint"],
        connection_string=kwargs["connection_string"], account_key=kwargs["account_key"], sas_token=kwargs["sas_token"],
    )


def _producer_config(kwargs: dict[str, Any], queues: list[str]):
    from sdpipe.loadtest.producer import ProducerConfig

    extra = {"test_run": kwargs["test_run"]} if kwargs.get("test_run") else {}
    return ProducerConfig(
        queues=queues, messages=kwargs["messages"], concurrency=kwargs["producer_concurrency"],
        work_time_ms=kwargs["work_time_ms"], payload_bytes=kwargs["payload_bytes"], max_attempts=kwargs["max_attempts"],
        backoff_s=kwargs["backoff"], failing_every=kwargs["failing_every"], fail_count=kwargs["fail_count"],
        clear_queues=kwargs["clear"], **extra,
    )


def _consumer_config(kwargs: dict[str, Any], queues: list[str]):
    from sdpipe.loadtest.consumer import ConsumerConfig

    return ConsumerConfig(
        queues=queues, concurrency=kwargs["consumer_concurrency"], visibility_timeout_s=kwargs["visibility_timeout"],
        max_dequeue_count=kwargs["max_dequeue_count"], flush_records=kwargs["flush_records"],
        flush_interval_s=kwargs["flush_interval"], expected=kwargs.get("expected"), test_run=kwargs.get("test_run"),
        timeout_s=kwargs.get("timeout"), idle_exit_s=kwargs.get("idle_exit"),
    )


def _queues(kwargs: dict[str, Any]) -> list[str]:
    from sdpipe.loadtest.records import queue_names

    return queue_names(kwargs["queue_prefix"], kwargs["queue_count"])


@click.group(name="load-test")
def load_test() -> None:
    """Send messages through Azure Storage queues and record their timing.

    `queue` runs a producer and a consumer together; `produce` and `consume`
    run them apart (several consumers may share the queues).  Consumer
    records go to OUTPUT/records in the shape `sdpipe run message-timing` reads.
    """


@load_test.command(name="queue")
@connection_options
@producer_options(prefix="producer-")
@consumer_options(prefix="consumer-")
@click.option("--test-run", default=None, help="Test run id written into every message; default a new UUID.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=600, show_default=True,
              help="Seconds after which the run stops even if messages are still missing (exit code 1).")
@cli_command
def queue_command(**kwargs: Any) -> int:
    """Produce and consume in one process, until every sent message is handled or the timeout.

    Example: sdpipe load-test queue --messages 5000 --queues 4 --output out/lt1
    """
    from sdpipe.loadtest.run import load_test_report, run_load_test

    queues = _queues(kwargs)
    settings = _settings(kwargs)
    storage_options = parse_storage_options(kwargs["storage_option"])
    produced, consumed = run_load_test(
        _producer_config(kwargs, queues), _consumer_config(kwargs, queues), settings, kwargs["output"],
        storage_options=storage_options,
    )
    report = load_test_report(produced, consumed, settings, queues, kwargs["output"])
    return emit_report(report, kwargs["as_json"], kwargs["quiet"])


@load_test.command(name="produce")
@connection_options
@producer_options()
@click.option("--test-run", default=None, help="Test run id written into every message; default a new UUID.")
@cli_command
def produce_command(**kwargs: Any) -> int:
    """Send messages fanned out over the queues and write the producer log.

    The log, OUTPUT/producer/TEST_RUN.jsonl, has one line per message, with
    "Sent": false for a message whose every attempt failed.

    Example: sdpipe load-test produce --messages 10000 --queues 8 --test-run run1
    """
    from sdpipe.loadtest.producer import run_producer
    from sdpipe.loadtest.run import producer_report

    queues = _queues(kwargs)
    settings = _settings(kwargs)
    produced = run_producer(
        _producer_config(kwargs, queues), settings, output=kwargs["output"],
        storage_options=parse_storage_options(kwargs["storage_option"]),
    )
    return emit_report(producer_report(produced, settings, queues), kwargs["as_json"], kwargs["quiet"])


@load_test.command(name="consume")
@connection_options
@consumer_options()
@click.option("--test-run", default=None,
              help="Count only this run's messages, and count its records already in OUTPUT (from earlier or "
              "other consumers) as handled.")
@click.option("--expected", type=click.IntRange(min=0), default=None,
              help="Stop once this many messages (of --test-run) are handled or poisoned.")
@click.option("--idle-exit", type=click.FloatRange(min=0.1), default=None,
              help="Stop once no message arrived for this many seconds and every queue is empty.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=None,
              help="Stop after this many seconds (exit code 1 if the run had not ended otherwise).")
@cli_command
def consume_command(**kwargs: Any) -> int:
    """Receive, handle and delete messages, writing one consumer record per delivery.

    Start it as often as you like, on any machine, with the same --output.
    It stops at --expected, --idle-exit or --timeout, whichever comes
    first, and says which.

    Example: sdpipe load-test consume --queues 8 --test-run run1 --expected 10000 --timeout 900
    """
    from sdpipe.loadtest.consumer import run_consumer
    from sdpipe.loadtest.run import consumer_report

    queues = _queues(kwargs)
    settings = _settings(kwargs)
    consumed = run_consumer(
        _consumer_config(kwargs, queues), settings, kwargs["output"],
        storage_options=parse_storage_options(kwargs["storage_option"]),
    )
    return emit_report(consumer_report(consumed, settings, queues, kwargs["output"]), kwargs["as_json"], kwargs["quiet"])
