"""``sdpipe run batch-validation``: the command-line face of the pipeline."""

from __future__ import annotations

import click

from sdpipe.cli.options import (
    cluster_from,
    common_options,
    emit_report,
    parse_storage_options,
    pipeline_command,
)
from sdpipe.errors import ConfigError
from sdpipe.pipelines.batch_validation.batches import parse_duration
from sdpipe.pipelines.batch_validation.run import (
    BatchValidationOptions,
    routing_root,
    run,
)


class StaleAfter(click.ParamType):
    """A duration above 0 in seconds: a bare number of seconds, or such as ``36h``, ``2d`` or ``1h30m``."""

    name = "duration"

    def convert(self, value, param, ctx) -> float:
        try:
            seconds = parse_duration(value)
        except ConfigError as exc:
            self.fail(str(exc), param, ctx)
        if not seconds > 0:
            self.fail(f"{value!r} is not above 0; give a duration such as 36h, or leave it out for no stale batches", param, ctx)
        return seconds


@click.command(name="batch-validation")
@click.option("--input", "-i", "inbound", required=True, metavar="URL",
              help="Inbound folder that customers drop CSV files into: a local path or an fsspec URL (az://...).")
@click.option("--output", "-o", default=None, metavar="URL",
              help="Root of the valid/, invalid/ and reports/ areas. Default: the parent of --input.")
@click.option("--spec", "spec", default=None, metavar="FILE",
              help="Batch spec (TOML): naming pattern and per file type rules. Default: the spec shipped with "
              "sdpipe, with the rules of Azure's Serverless File Validation sample.")
@click.option("--dry-run/--no-dry-run", default=False, help="Check and report, but move and write nothing.")
@click.option("--stale-after", type=StaleAfter(), default=None, metavar="DURATION",
              help="Report incomplete batches whose newest file is older than this as stale: seconds, or a "
              "duration such as 36h, 2d or 1h30m. [default: never stale]")
@click.option("--fail-on-invalid/--no-fail-on-invalid", default=False, help="Exit with code 3 when any batch is invalid.")
@click.option("--max-errors-per-file", type=click.IntRange(min=1), default=None, metavar="N",
              help="Problems listed per file in reports (all are counted). Default: the spec's, 100 in the default spec.")
@common_options
@pipeline_command(lock_output=lambda kwargs: routing_root(kwargs["inbound"], kwargs.get("output")))
def command(inbound, output, spec, dry_run, stale_after, fail_on_invalid, max_errors_per_file,
            storage_option, scheduler, as_json, quiet, debug) -> int:
    """Check complete customer CSV batches and route each to valid/ or invalid/.

    \b
    Files are named {customer}_{yyyyMMdd}_{HHmm}_{type}.csv (configurable in
    the spec); the batch is {customer}_{yyyyMMdd}_{HHmm}.  A batch is checked
    once every required type is present, then moved as a whole to
    OUTPUT/valid/BATCH/attempt-N/ or OUTPUT/invalid/BATCH/attempt-N/ with
    _report.json and _report.txt.  Files are copied, verified (size and
    SHA-256) and only then deleted, so an interrupted run loses nothing and
    the next run finishes the move.  Incomplete batches, late files and
    files that match no pattern stay in the inbound folder.

    \b
    Exit codes: 0 the run worked (whatever the verdicts), 1 a file could not
    be routed, 2 usage error, 3 --fail-on-invalid and a batch is invalid,
    75 another run holds the lock on the output (given or derived).

    Example: sdpipe run batch-validation --input data/drop/inbound --stale-after 2d --json
    """
    options = BatchValidationOptions(
        inbound=inbound,
        output=output,
        spec=spec,
        dry_run=dry_run,
        stale_after=stale_after,
        fail_on_invalid=fail_on_invalid,
        max_errors_per_file=max_errors_per_file,
        storage_options=parse_storage_options(storage_option),
    )
    report = run(options, cluster_from(scheduler, quiet))
    return emit_report(report, as_json, quiet, verdict=_verdict(report))


def _verdict(report) -> str:
    """Return the one-line reason of exit code 3: the invalid batches."""
    invalid = [entry["batch"] for entry in report.result_records() if entry.get("status") == "invalid"]
    shown = ", ".join(invalid[:5]) + (f" and {len(invalid) - 5} more" if len(invalid) > 5 else "")
    total = len(report.result) if report.result is not None else len(invalid)
    return f"{len(invalid)} of {total} batch{'es' if total != 1 else ''} invalid (--fail-on-invalid): {shown}"
