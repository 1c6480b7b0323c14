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
