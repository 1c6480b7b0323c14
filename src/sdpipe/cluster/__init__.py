"""Choice of the Dask scheduler that runs a pipeline's task graph, and the run itself.

``from sdpipe.cluster import ClusterConfig, compute`` is what pipelines use;
the CLI builds the configuration with :func:`resolve_cluster`, and a job file
reader hands its cluster table to it as ``job=``.
"""

from __future__ import annotations

from sdpipe.cluster.config import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_SCHEDULER,
    LOCAL_CLUSTER,
    LOCAL_SCHEDULERS,
    ClusterConfig,
    normalise_scheduler,
    resolve_cluster,
    settings_from_env,
    settings_from_job,
)
from sdpipe.cluster.engine import ClusterError, SchedulerUnreachableError, compute
from sdpipe.cluster.sizing import LocalClusterPlan, plan_local_cluster

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_SCHEDULER",
    "LOCAL_CLUSTER",
    "LOCAL_SCHEDULERS",
    "ClusterConfig",
    "ClusterError",
    "LocalClusterPlan",
    "SchedulerUnreachableError",
    "compute",
    "normalise_scheduler",
    "plan_local_cluster",
    "resolve_cluster",
    "settings_from_env",
    "settings_from_job",
]
