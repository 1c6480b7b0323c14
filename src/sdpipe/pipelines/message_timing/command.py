"""``sdpipe run message-timing``: the command-line face of the pipeline."""

from __future__ import annotations

import click

from sdpipe.cli.options import (
    ByteSize,
    cluster_from,
    common_options,
    emit_report,
    parse_storage_options,
    pipeline_command,
    size_text,
)
from sdpipe.io.messages import DEFAULT_BLOCKSIZE
from sdpipe.pipelines.message_timing.compute import BY_CHOICES, ENQUEUE_TIMES, PERCENTILE_MODES
from sdpipe.pipelines.message_timing.run import DEFAULT_OUTPUT, MessageTimingOptions, run


@click.command(name="message-timing")
@click.option("--input", "-i", "inputs", multiple=True, required=True, metavar="URLPATH",
              help="Consumer record files: a path, glob pattern or fsspec URL; JSON lines, CSV or parquet (repeatable).")
@click.option("--producer-log", multiple=True, metavar="URLPATH",
              help="The producer's list of sent messages (test_run, message_id, optional trigger and partition), "
              "to count lost messages exactly (repeatable).")
@click.option("--output", "-o", default=DEFAULT_OUTPUT, show_default=True, metavar="DIR",
              help="Folder for result.parquet, result.csv, timeseries.parquet, timeseries.png and manifest.json; "
              "replaced atomically.")
@click.option("--enqueue-time", type=click.Choice(ENQUEUE_TIMES), default="client", show_default=True,
              help="Start of the queue latency: ClientEnqueueTimeUtc as recorded (client), or SystemEnqueuedTime (system).")
@click.option("--by", type=click.Choice(BY_CHOICES), default=None, help="Also split each run by session or by partition.")
@click.option("--percentiles", type=click.Choice(PERCENTILE_MODES), default="exact", show_default=True,
              help="exact: numpy's linear interpolation; approximate: log-bucket histogram within --relative-accuracy.")
@click.option("--relative-accuracy", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.01, show_default=True,
              help="Relative error bound of approximate percentiles (plus 0.001 ms).")
@click.option("--max-p99-ms", type=click.FloatRange(min=0), default=None,
              help="Exit 3 when a row's latency p99 is above this many milliseconds. [default: no threshold]")
@click.option("--fail-on-loss/--no-fail-on-loss", default=False, help="Exit 3 when a row has missing messages.")
@click.option("--blocksize", type=ByteSize(minimum=1024), default=DEFAULT_BLOCKSIZE,
              help="Size of JSON lines or CSV per read task: bytes, or a size such as 64MiB or 128MB. "
              f"[default: {size_text(DEFAULT_BLOCKSIZE)}]")
@click.option("--spill-dir", metavar="URLPATH", default=None,
              help="Folder for the records split by run between the two stages (default: a temporary folder, deleted "
              "afterwards). Workers on other machines need a folder they all reach.")
@common_options
@pipeline_command
def command(inputs, producer_log, output, enqueue_time, by, percentiles, relative_accuracy, max_p99_ms, fail_on_loss,
            blocksize, spill_dir, storage_option, scheduler, as_json, quiet, debug) -> int:
    """Latency, throughput, loss, duplicates and FIFO order of queued messages, per test run and trigger.

    \b
    Reads the timing records a consumer writes per message (the shape of Azure's
    durable-functions-producer-consumer sample) and reports per test run and trigger:
      avg_individual_process_time_ms, total_runtime_s   the sample's own query
      messages, duplicates, missing                     distinct ids, extra deliveries, lost
      latency_ms_* (dequeued - enqueue), processing_ms_* (processed - dequeued):
          mean, p50, p90, p99, p999, max over first deliveries; negatives counted
      throughput_per_s, peak_rate_per_s, fifo_violations
    Without --producer-log, missing counts the gaps in the message numbers; it is
    null where ids cannot be told apart (Event Hubs records without a partition).

    Exit code 0 whatever the figures are, 3 when --max-p99-ms or --fail-on-loss is exceeded.

    Example: sdpipe run message-timing --input 'logs/*.jsonl' --by session --max-p99-ms 500 --json
    """
    options = MessageTimingOptions(
        inputs=tuple(inputs),
        producer_log=tuple(producer_log),
        output=output,
        enqueue_time=enqueue_time,
        by=by,
        percentiles=percentiles,
        relative_accuracy=relative_accuracy,
        max_p99_ms=max_p99_ms,
        fail_on_loss=fail_on_loss,
        storage_options=parse_storage_options(storage_option),
        blocksize=blocksize,
        spill_dir=spill_dir,
    )
    report = run(options, cluster_from(scheduler, quiet))
    return emit_report(report, as_json, quiet, verdict=_verdict(report.details.get("threshold_breaches", [])))


def _verdict(breaches: list[str], shown: int = 3) -> str:
    """Return the one-line reason of exit code 3: how many thresholds were exceeded, and the first few."""
    listed = "; ".join(breaches[:shown])
    more = f"; and {len(breaches) - shown} more (see the summary or --json)" if len(breaches) > shown else ""
    return f"{len(breaches)} threshold{'s' if len(breaches) != 1 else ''} exceeded: {listed}{more}"
