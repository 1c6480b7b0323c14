"""message-timing: latency, throughput, loss, duplicates and order of queued messages, per test run."""

from __future__ import annotations

from sdpipe.pipeline import PipelineSpec


def _make_command():
    from sdpipe.pipelines.message_timing.command import command

    return command


PIPELINE = PipelineSpec(
    name="message-timing",
    summary="Queue latency, throughput, lost, duplicate and reordered messages per test run.",
    make_command=_make_command,
)
