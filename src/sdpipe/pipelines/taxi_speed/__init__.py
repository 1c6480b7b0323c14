"""taxi-speed: average speed of NYC taxi trips per pickup date, by map/reduce on Dask."""

from __future__ import annotations

from sdpipe.pipeline import PipelineSpec


def _make_command():
    from sdpipe.pipelines.taxi_speed.command import command

    return command


PIPELINE = PipelineSpec(
    name="taxi-speed",
    summary="Average NYC taxi trip speed per pickup date, with rejected trips counted by reason.",
    make_command=_make_command,
)
