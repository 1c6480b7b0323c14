"""Choice of the Dask scheduler that runs a pipeline's task graph.

NOTE: this first version runs local schedulers only (threads by default);
connecting to a distributed scheduler and starting a LocalCluster are added
here, behind the same :func:`compute` call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sdpipe.errors import ConfigError

logger = logging.getLogger(__name__)

LOCAL_SCHEDULERS = ("threads", "processes", "synchronous", "sync")


@dataclass(frozen=True)
class ClusterConfig:
    """Where a run's tasks execute.

    ``scheduler`` is a local scheduler name or a ``tcp://`` address; ``None``
    lets sdpipe choose.  ``progress`` shows a progress bar on stderr.
    """

    scheduler: str | None = None
    workers: int | None = None
    threads_per_worker: int | None = None
    memory_limit: str | None = None
    connect_timeout: float = 5.0
    progress: bool = False


def compute(*collections: Any, cluster: ClusterConfig | None = None) -> tuple:
    """Compute Dask collections on the configured scheduler and return their values."""
    import dask

    cluster = cluster or ClusterConfig()
    scheduler = cluster.scheduler or "threads"
    if scheduler not in LOCAL_SCHEDULERS:
        raise ConfigError(
            f"unknown scheduler {scheduler!r}; choose one of {', '.join(LOCAL_SCHEDULERS)}"
        )
    if cluster.progress:
        import sys

        from dask.diagnostics import ProgressBar

        with ProgressBar(out=sys.stderr):
            return dask.compute(*collections, scheduler=scheduler)
    return dask.compute(*collections, scheduler=scheduler)
