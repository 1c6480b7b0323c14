"""``sdpipe run taxi-speed``: the command-line face of the pipeline."""

from __future__ import annotations

import click

from sdpipe.cli.options import (
    ByteSize,
    IsoDate,
    cluster_from,
    common_options,
    emit_report,
    parse_storage_options,
    pipeline_command,
    size_text,
)
from sdpipe.io.trips import DEFAULT_BLOCKSIZE
from sdpipe.pipelines.taxi_speed.compute import GROUP_BY_CHOICES, TAXI_TYPES
from sdpipe.pipelines.taxi_speed.run import COMPAT_CHOICES, DEFAULT_OUTPUT, SAMPLE_PATTERN, TaxiSpeedOptions, run


@click.command(name="taxi-speed")
@click.option(
    "--input",
    "-i",
    "inputs",
    multiple=True,
    metavar="URLPATH",
    help=f"Trip files: a path, glob pattern or fsspec URL, CSV or parquet (repeatable). "
    f"Default: the bundled sample {SAMPLE_PATTERN} when run from the repository.",
)
@click.option(
    "--output",
    "-o",
    default=DEFAULT_OUTPUT,
    show_default=True,
    metavar="DIR",
    help="Folder for result.parquet, result.csv, speed.png and manifest.json; replaced atomically.",
)
@click.option(
    "--group-by",
    type=click.Choice(GROUP_BY_CHOICES),
    default="date",
    show_default=True,
    help="Key of the result rows: pickup date, weekday (0 = Sunday), hour of day (0-23) or month (YYYY-MM).",
)
@click.option("--start", type=IsoDate(), help="First pickup date to include (inclusive).")
@click.option("--end", type=IsoDate(), help="Last pickup date to include (inclusive).")
@click.option(
    "--max-hours",
    type=click.FloatRange(min=0, min_open=True),
    default=24.0,
    show_default=True,
    help="Longest valid trip duration, in hours.",
)
@click.option(
    "--max-mph",
    type=click.FloatRange(min=0, min_open=True),
    default=100.0,
    show_default=True,
    help="Highest valid trip speed, in miles per hour.",
)
@click.option(
    "--taxi-type",
    type=click.Choice(TAXI_TYPES),
    default="all",
    show_default=True,
    help="Keep only trips of this kind, where a file has a color column; others count as other_taxi_type.",
)
@click.option(
    "--compat",
    type=click.Choice(COMPAT_CHOICES),
    default=None,
    help="Reproduce the arithmetic of Azure's Serverless MapReduce sample: seven weekday means (see docs/taxi-speed.md).",
)
@click.option("--rejected-output", metavar="DIR", help="Also write the rejected rows, with their reason, to DIR/rejected.parquet.")
@click.option(
    "--blocksize",
    type=ByteSize(minimum=1024),
    default=DEFAULT_BLOCKSIZE,
    help=f"Size of CSV or parquet per task: bytes, or a size such as 64MiB or 128MB. "
    f"[default: {size_text(DEFAULT_BLOCKSIZE)}]",
)
@click.option(
    "--force/--no-force",
    default=False,
    help="Read every input file again, even when the inputs and options are those of the last run on --output.",
)
@common_options
@pipeline_command
def command(inputs, output, group_by, start, end, max_hours, max_mph, taxi_type, compat, rejected_output,
            blocksize, force, storage_option, scheduler, as_json, quiet, debug) -> int:
    """Average speed of NYC taxi trips per pickup date, with every rejected trip counted.

    \b
    Per trip: duration_h = dropoff - pickup in hours, speed_mph = trip_distance / duration_h.
    A trip is valid when trip_distance > 0, 0 < duration_h <= --max-hours and
    speed_mph <= --max-mph.  Every other trip counts under the first reason that
    applies: unparseable, other_taxi_type, outside_period, non_positive_distance,
    non_positive_duration, too_long, too_fast.

    Per key: trips (valid), mean_speed_mph (mean of trip speeds) and
    distance_weighted_speed_mph (total miles / total hours).

    Times are taken as written: TLC times are New York local time without a zone,
    so a trip that spans a daylight-saving change is off by one hour, as in the
    source data.

    \b
    Inputs on Azure Blob storage:
      sdpipe run taxi-speed -i 'az://trips/2017/*.csv' -o az://results/speed \\
          --storage-option account_name=ACCOUNT   # key from AZURE_STORAGE_KEY

    Example: sdpipe run taxi-speed --input 'data/sample/csv/*.csv' --group-by weekday --json
    """
    options = TaxiSpeedOptions(
        inputs=tuple(inputs),
        output=output,
        group_by=group_by,
        start=start,
        end=end,
        max_hours=max_hours,
        max_mph=max_mph,
        taxi_type=taxi_type,
        compat=compat,
        rejected_output=rejected_output,
        storage_options=parse_storage_options(storage_option),
        blocksize=blocksize,
    )
    report = run(options, cluster_from(scheduler, quiet), force=force)
    return emit_report(report, as_json, quiet)
