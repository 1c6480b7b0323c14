"""The part of ``manifest.json`` that every pipeline writes the same way."""

from __future__ import annotations

import platform
import time
from collections.abc import Sequence
from typing import Any

from sdpipe import __version__
from sdpipe.pipeline import RunReport

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def base_manifest(
    report: RunReport,
    options: Any,
    run_id: str,
    timings: dict[str, float],
    started: float,
    files: Sequence[str],
) -> dict[str, Any]:
    """Return what a later reader needs to trust an output: inputs, parameters, counts, versions.

    ``options`` must have a ``describe()`` method that leaves out secrets;
    ``started`` is the run's start in epoch seconds; times are UTC.
    """
    import dask
    import numpy
    import pandas
    import pyarrow

    return {
        "pipeline": report.pipeline,
        "run_id": run_id,
        "sdpipe_version": __version__,
        "started": time.strftime(TIME_FORMAT, time.gmtime(started)),
        "finished": time.strftime(TIME_FORMAT, time.gmtime()),
        "parameters": options.describe(),
        "inputs": report.inputs,
        "counts": report.counts,
        "result_rows": 0 if report.result is None else len(report.result),
        "files": list(files),
        "timings": {name: round(seconds, 3) for name, seconds in timings.items()},
        "versions": {
            "python": platform.python_version(),
            "dask": dask.__version__,
            "pyarrow": pyarrow.__version__,
            "pandas": pandas.__version__,
            "numpy": numpy.__version__,
        },
    }
