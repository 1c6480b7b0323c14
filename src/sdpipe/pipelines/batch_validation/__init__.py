"""batch-validation: complete customer CSV batches are checked and routed, nothing lost."""

from __future__ import annotations

from sdpipe.pipeline import PipelineSpec


def _make_command():
    from sdpipe.pipelines.batch_validation.command import command

    return command


PIPELINE = PipelineSpec(
    name="batch-validation",
    summary="Check complete customer CSV batches and move each to valid/ or invalid/ with a report.",
    make_command=_make_command,
)
