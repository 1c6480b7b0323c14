"""Running a task graph on the chosen scheduler: local, a LocalCluster, or a running cluster.

Every server that sdpipe starts (the LocalCluster's scheduler, workers,
nannies and dashboard) listens on 127.0.0.1 only.  Connecting to a running
scheduler goes wherever the user's address points.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any

from sdpipe.cluster.config import (
    DEFAULT_CLIENT,
    DEFAULT_CONNECT_TIMEOUT,
    LOCAL_CLUSTER,
    ClusterConfig,
    resolve_cluster,
)
from sdpipe.cluster.sizing import plan_local_cluster
from sdpipe.errors import ConfigError, SdpipeError

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


class ClusterError(SdpipeError, RuntimeError):
    """The cluster could not run the tasks: a worker kept dying, or the scheduler went away."""


class SchedulerUnreachableError(ClusterError, ConnectionError):
    """No distributed scheduler accepted a connection at the given address within the connect timeout."""


def compute(*collections: Any, cluster: ClusterConfig | None = None) -> tuple:
    """Compute Dask collections on the configured scheduler and return their values.

    An unset scheduler is taken from the environment variables, else from
    the distributed Client already made in this process, else the default.
    """
    import dask

    config = cluster or ClusterConfig()
    if config.scheduler is None:
        config = _resolve_unset(config)

    if config.scheduler == LOCAL_CLUSTER:
        with _local_cluster(config) as client:
            return _compute_distributed(client, collections, config)
    if config.scheduler == DEFAULT_CLIENT:
        return _compute_distributed(_default_client(), collections, config)
    if config.is_address:
        with _connect(config) as client:
            return _compute_distributed(client, collections, config)

    with contextlib.ExitStack() as stack:
        if config.scheduler == "processes":
            stack.enter_context(_child_stdout_to_stderr())
        if config.progress:
            from dask.diagnostics import ProgressBar

            stack.enter_context(ProgressBar(out=sys.stderr))
        return dask.compute(*collections, scheduler=_local_get(config.scheduler))


def _local_get(name: str) -> Any:
    """Return the get function of a local scheduler.

    Dask imports distributed (about 0.15 s of CPU) to look for a Client
    whenever the scheduler is given by name, and not when it is given as a function.
    """
    if name == "threads":
        from dask.threaded import get
    elif name == "processes":
        from dask.multiprocessing import get
    elif name in ("synchronous", "sync"):
        from dask.local import get_sync as get
    else:
        raise ConfigError(f"unknown local scheduler {name!r}; choose threads, processes or synchronous")
    return get


def _resolve_unset(config: ClusterConfig) -> ClusterConfig:
    # A connect timeout left at its default must not hide SDPIPE_CONNECT_TIMEOUT.
    timeout = None if config.connect_timeout == DEFAULT_CONNECT_TIMEOUT else config.connect_timeout
    resolved = resolve_cluster(
        {"connect_timeout": timeout},
        progress=config.progress,
        print_dashboard_link=config.print_dashboard_link,
        default=None,
    )
    if resolved.scheduler is not None:
        return resolved
    scheduler = DEFAULT_CLIENT if _default_client(required=False) is not None else None
    return resolve_cluster(
        {"scheduler": scheduler, "connect_timeout": timeout},
        progress=config.progress,
        print_dashboard_link=config.print_dashboard_link,
    )


def _default_client(required: bool = True):
    """Return the distributed Client made earlier in this process (as a notebook does), or None."""
    if "distributed" not in sys.modules:
        client = None
    else:
        from distributed import default_client

        try:
            client = default_client()
        except ValueError:
            client = None
    if client is None and required:
        raise ConfigError(
            f"scheduler {DEFAULT_CLIENT!r} uses the distributed Client made in this process, but there is none; "
            "make one first (distributed.Client(...)) or give the scheduler's address"
        )
    return client


@contextlib.contextmanager
def _local_cluster(config: ClusterConfig) -> Iterator[Any]:
    """Start a LocalCluster of worker processes on 127.0.0.1, and stop it on leaving."""
    from distributed import Client, LocalCluster

    plan = plan_local_cluster(config)
    logger.info(
        "starting a LocalCluster: %d workers x %d threads, %.1f GiB memory limit each",
        plan.n_workers,
        plan.threads_per_worker,
        plan.memory_limit / 1024**3,
    )
    with _child_stdout_to_stderr():
        with LocalCluster(
            n_workers=plan.n_workers,
            threads_per_worker=plan.threads_per_worker,
            memory_limit=plan.memory_limit,
            processes=True,
            host=LOOPBACK,
            # Port 0: a free port, so that runs side by side do not fight over 8787.
            dashboard_address=f"{LOOPBACK}:0",
            silence_logs=logging.WARNING,
        ) as local, Client(local, set_as_default=False) as client:
            _announce_dashboard(client, config)
            yield client


@contextlib.contextmanager
def _connect(config: ClusterConfig) -> Iterator[Any]:
    """Connect to a running scheduler; raise :class:`SchedulerUnreachableError` after the connect timeout."""
    from distributed import Client

    address = config.scheduler
    _check_address(address, config.origin.get("scheduler", "scheduler"))
    logger.info("connecting to the Dask scheduler at %s", address)
    try:
        client = Client(address, timeout=config.connect_timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        source = config.origin.get("connect_timeout", "--connect-timeout")
        raise SchedulerUnreachableError(
            f"cannot reach the Dask scheduler at {address} within {config.connect_timeout:g} s ({exc}); "
            f"check that it is running and listens on that address, or allow more time with {source}"
        ) from exc
    try:
        _check_cluster_software(client, address)
        _announce_dashboard(client, config)
        yield client
    finally:
        client.close()


def _check_address(address: str, source: str) -> None:
    """Raise :class:`ConfigError` for an address that distributed cannot parse, before any connection."""
    from distributed.comm.addressing import get_address_host_port, parse_address
    from distributed.comm.registry import get_backend

    try:
        scheme, _ = parse_address(address)
        get_backend(scheme)
        get_address_host_port(address)
    except ValueError as exc:
        raise ConfigError(
            f"invalid {source} {address!r}: {exc}; give an address such as tcp://HOST:8786"
        ) from exc


def _check_cluster_software(client, address: str) -> None:
    """Raise if the scheduler or a worker lacks sdpipe; warn if versions differ from this machine's.

    The scheduler unpickles the task graph and the workers run it, so both
    import sdpipe's task functions.
    """
    from sdpipe import __version__

    versions = client.get_versions(packages=["sdpipe"])
    places = {"scheduler": versions.get("scheduler", {})}
    places.update({f"worker {name}": info for name, info in (versions.get("workers") or {}).items()})
    missing, other = [], []
    for place, info in places.items():
        found = (info.get("packages") or {}).get("sdpipe")
        if found is None:
            missing.append(place)
        elif found != __version__:
            other.append(f"{place} has {found}")
    if missing:
        raise ClusterError(
            f"sdpipe is not installed on the {', '.join(missing)} of the cluster at {address}; "
            f"install sdpipe=={__version__} (with the same dask and distributed versions) on the scheduler "
            "and on every worker, see docs/cluster.md"
        )
    if other:
        logger.warning("sdpipe %s here, but the %s; results may differ", __version__, ", ".join(other))
    if not versions.get("workers"):
        logger.warning("the scheduler at %s has no workers yet; tasks wait until one joins", address)


def _compute_distributed(client, collections: tuple, config: ClusterConfig) -> tuple:
    """Compute on a distributed Client, turning lost workers and schedulers into :class:`ClusterError`."""
    from distributed import CancelledError, KilledWorker
    from distributed.comm.core import CommClosedError

    from sdpipe.cluster.progress import StderrProgressBar

    address = getattr(client.scheduler, "address", None) or config.scheduler
    futures = client.compute(list(collections))
    try:
        if config.progress:
            StderrProgressBar(futures, scheduler=client.scheduler.address, loop=client.loop)
        return tuple(client.gather(futures))
    except KilledWorker as exc:
        raise ClusterError(_killed_worker_message(exc, config)) from exc
    except (CancelledError, CommClosedError) as exc:
        raise ClusterError(
            f"lost the Dask scheduler at {address} during the run ({type(exc).__name__}: {exc}); "
            "nothing of this run's result is kept: run again when the scheduler is back"
        ) from exc
    finally:
        # Drop the futures so that a shared cluster frees their results.
        for future in futures:
            future.release()


def _killed_worker_message(exc, config: ClusterConfig) -> str:
    worker = getattr(exc.last_worker, "address", exc.last_worker)
    hints = "a worker is killed when it uses more memory than its limit, so raise the memory limit"
    if config.scheduler == LOCAL_CLUSTER:
        hints += " (--memory-limit), use fewer --threads-per-worker"
    return (
        f"task {exc.task!r} failed: {exc.allowed_failures + 1} worker processes died while running it "
        f"(the last was {worker}); {hints} or a smaller --blocksize, and read the worker logs for the cause"
    )


def _announce_dashboard(client, config: ClusterConfig) -> None:
    if not config.print_dashboard_link:
        return
    try:
        link = client.dashboard_link
    except (KeyError, AttributeError, OSError):
        link = None
    if link:
        print(f"Dask dashboard: {link}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _child_stdout_to_stderr() -> Iterator[None]:
    """Point file descriptor 1 at stderr while worker processes are started and run.

    Worker processes inherit file descriptor 1, so anything they print would
    otherwise land on stdout, which holds only the JSON document with --json.
    """
    try:
        sys.stdout.flush()
        saved = os.dup(1)
        os.dup2(2, 1)
    except (OSError, ValueError):
        yield  # no usable file descriptors 1 and 2 (an embedded interpreter): nothing to protect
        return
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
