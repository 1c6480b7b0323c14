"""``sdpipe generate``: synthetic input data made by sdpipe's own deterministic generators."""

from __future__ import annotations

import click


@click.group(name="generate")
def generate() -> None:
    """Write synthetic input data (the same seed always gives the same bytes)."""


@generate.command(name="taxi")
@click.option("--rows", type=click.IntRange(min=1), default=100_000, show_default=True, help="Trips in total, spread evenly over the months.")
@click.option("--months", type=click.IntRange(1, 12), default=12, show_default=True, help="Monthly files to write, from January.")
@click.option("--year", type=click.IntRange(2009, 2100), default=2017, show_default=True, help="Year of the trips.")
@click.option("--seed", type=int, default=2017, show_default=True, help="Random seed.")
@click.option(
    "--format",
    "formats",
    type=click.Choice(["csv", "parquet"]),
    multiple=True,
    default=("csv", "parquet"),
    show_default=True,
    help="File formats to write (repeatable); each goes to its own subfolder.",
)
@click.option("--dirty", is_flag=True, help="Plant rows of every rejection reason, as real files have.")
@click.option("--output", "-o", required=True, metavar="DIR", help="Folder to write csv/ and parquet/ into.")
def taxi(rows: int, months: int, year: int, seed: int, formats: tuple[str, ...], dirty: bool, output: str) -> None:
    """Write yellow-taxi trips in the 2017 TLC schema, one file per month.

    Example: sdpipe generate taxi --rows 2000000 --output /tmp/trips
    """
    from sdpipe.generate.taxi import write_taxi_files

    written = write_taxi_files(output, rows=rows, months=months, year=year, seed=seed, formats=formats, dirty=dirty)
    for path in written:
        click.echo(path)


@generate.command(name="messages")
@click.option("--runs", type=click.IntRange(min=1), default=3, show_default=True,
              help="Test runs to write; they cycle through the triggers ServiceBus (sessions), Queue and EventHub.")
@click.option("--messages", type=click.IntRange(min=1), default=10_000, show_default=True, help="Messages sent per run.")
@click.option("--sessions", type=click.IntRange(min=1), default=8, show_default=True, help="Sessions of each ServiceBus run.")
@click.option("--duplicate-rate", type=click.FloatRange(0, 1), default=0.01, show_default=True, help="Fraction of messages delivered twice.")
@click.option("--loss-rate", type=click.FloatRange(0, 1), default=0.005, show_default=True, help="Fraction of messages never delivered.")
@click.option("--reorder-rate", type=click.FloatRange(0, 1), default=0.01, show_default=True,
              help="Fraction of session messages swapped with the next one in dequeue order.")
@click.option("--skew-ms", type=float, default=0.0, show_default=True, help="Clock skew of one of four consumer instances, in ms.")
@click.option("--format", "file_format", type=click.Choice(["jsonl", "csv", "parquet"]), default="jsonl", show_default=True,
              help="File format: JSON lines in the sample's nested shape, or flat CSV or parquet.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--output", "-o", required=True, metavar="DIR", help="Folder to write records.* and producer-log.csv into.")
def messages(runs, messages, sessions, duplicate_rate, loss_rate, reorder_rate, skew_ms, file_format, seed, output) -> None:
    """Write consumer timing records of queued messages, and the producer's sent list.

    Latencies are log-normal (median 40 ms), processing times exponential (mean 5 ms).

    Example: sdpipe generate messages --runs 4 --messages 1000000 --output /tmp/messages
    """
    from pathlib import Path

    from sdpipe.generate.messages import RunSpec, generate_records, write_flat, write_jsonl, write_producer_log

    triggers = ("ServiceBus", "Queue", "EventHub")
    specs = []
    for i in range(runs):
        trigger = triggers[i % len(triggers)]
        specs.append(
            RunSpec(
                test_run=f"run-{i + 1:03d}", trigger=trigger, messages=messages,
                sessions=sessions if trigger == "ServiceBus" else 0,
                producers=2 if trigger == "EventHub" else 0, with_partition=trigger == "EventHub",
                duplicate_rate=duplicate_rate, loss_rate=loss_rate, reorder_rate=reorder_rate,
                skew_ms=skew_ms, skewed_instances=1 if skew_ms else 0,
                start=f"2024-05-01T{10 + i % 12:02d}:00:00",
            )
        )
    generated = generate_records(specs, seed=seed)
    folder = Path(output)
    path = folder / f"records.{file_format}"
    written = write_jsonl(generated.records, path) if file_format == "jsonl" else write_flat(generated.records, path)
    click.echo(written)
    click.echo(write_producer_log(generated.sent, folder / "producer-log.csv"))


@generate.command(name="batches")
@click.option("--seed", type=int, default=2024, show_default=True, help="Random seed.")
@click.option("--records", type=click.IntRange(min=4), default=6, show_default=True, help="Records per file.")
@click.option("--output", "-o", required=True, metavar="DIR", help="Inbound folder to write the files into.")
def batches(seed: int, records: int, output: str) -> None:
    """Write customer CSV drops: one valid, one invalid and one incomplete batch, and unmatched files.

    Example: sdpipe generate batches --output /tmp/drop/inbound
    """
    from sdpipe.generate.batches import write_customer_batches

    for path in write_customer_batches(output, seed=seed, records=records):
        click.echo(path)
