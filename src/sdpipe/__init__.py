"""sdpipe: big-data batch pipelines on Dask.

The Python API mirrors ``sdpipe run``: each pipeline is one call that
returns its result as a pandas DataFrame, for example::

    import sdpipe
    daily = sdpipe.taxi_speed("data/sample/csv/*.csv")
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# Public functions, imported on first use so that `import sdpipe` stays fast.
_LAZY_API = {
    "batch_validation": "sdpipe.pipelines.batch_validation.api",
    "run_batch_validation": "sdpipe.pipelines.batch_validation.api",
    "message_timing": "sdpipe.pipelines.message_timing.api",
    "run_message_timing": "sdpipe.pipelines.message_timing.api",
    "taxi_speed": "sdpipe.pipelines.taxi_speed.api",
    "run_taxi_speed": "sdpipe.pipelines.taxi_speed.api",
}

__all__ = ["__version__", *sorted(_LAZY_API)]


def __getattr__(name: str) -> Any:
    if name in _LAZY_API:
        import importlib

        return getattr(importlib.import_module(_LAZY_API[name]), name)
    raise AttributeError(f"module 'sdpipe' has no attribute {name!r}")
