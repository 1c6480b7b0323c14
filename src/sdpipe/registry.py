"""Pipelines by name, imported only when used.

The map below names each built-in pipeline's module and the attribute that
holds its :class:`~sdpipe.pipeline.PipelineSpec`.  Other packages add their
own through the ``sdpipe.pipelines`` entry-point group.
"""

from __future__ import annotations

import importlib
import importlib.util
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from sdpipe.errors import ConfigError

if TYPE_CHECKING:
    from sdpipe.pipeline import PipelineSpec

BUILTIN_PIPELINES: dict[str, str] = {
    "batch-validation": "sdpipe.pipelines.batch_validation:PIPELINE",
    "message-timing": "sdpipe.pipelines.message_timing:PIPELINE",
    "taxi-speed": "sdpipe.pipelines.taxi_speed:PIPELINE",
}


def known_pipelines() -> dict[str, str]:
    """Return a sorted map of pipeline name to ``module:attribute`` import path."""
    found = dict(BUILTIN_PIPELINES)
    for entry in entry_points(group="sdpipe.pipelines"):
        found.setdefault(entry.name, entry.value)
    return dict(sorted(found.items()))


def available_pipelines() -> dict[str, str]:
    """Return the known pipelines whose module can be found on this installation."""
    result = {}
    for name, target in known_pipelines().items():
        module_name = target.partition(":")[0]
        if importlib.util.find_spec(module_name) is not None:
            result[name] = target
    return result


def get_pipeline(name: str) -> PipelineSpec:
    """Import and return the pipeline registered under ``name``."""
    pipelines = available_pipelines()
    if name not in pipelines:
        choices = ", ".join(pipelines)
        raise ConfigError(f"unknown pipeline {name!r}; known pipelines: {choices}")

    module_name, _, attribute = pipelines[name].partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute)
