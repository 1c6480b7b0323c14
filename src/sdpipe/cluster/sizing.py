"""Sizes of a LocalCluster: worker processes, threads and memory, checked against the machine."""

from __future__ import annotations

from dataclasses import dataclass

from sdpipe.cluster.config import LOCAL_CLUSTER, ClusterConfig
from sdpipe.errors import ConfigError

GIB = 1024**3


@dataclass(frozen=True)
class LocalClusterPlan:
    """Sizes of one LocalCluster; ``memory_limit`` is in bytes per worker process."""

    n_workers: int
    threads_per_worker: int
    memory_limit: int
    machine_memory: int


def machine_memory() -> int:
    """Return the bytes of memory this process may use: the machine's, or less under a cgroup or rlimit."""
    import psutil
    from distributed.system import MEMORY_LIMIT

    return min(psutil.virtual_memory().total, MEMORY_LIMIT)


def machine_cores() -> int:
    """Return the cores this process may use (affinity and cgroup quotas counted)."""
    from dask.system import CPU_COUNT

    return CPU_COUNT


def plan_local_cluster(config: ClusterConfig, *, memory: int | None = None, cores: int | None = None) -> LocalClusterPlan:
    """Work out the LocalCluster's sizes; raise :class:`ConfigError` if the workers would get more memory than the machine has.

    Unset sizes follow Dask's own split of the cores into processes and
    threads.  An unset or ``"auto"`` memory limit shares the machine's memory
    evenly between the workers.
    """
    from distributed.deploy.utils import nprocesses_nthreads

    if config.scheduler != LOCAL_CLUSTER:
        raise ValueError(f"plan_local_cluster needs scheduler {LOCAL_CLUSTER!r}, not {config.scheduler!r}")
    memory = machine_memory() if memory is None else memory
    cores = machine_cores() if cores is None else cores

    if config.workers is None and config.threads_per_worker is None:
        n_workers, threads = nprocesses_nthreads(cores)
    elif config.workers is None:
        threads = config.threads_per_worker
        n_workers = max(1, cores // threads)
    else:
        n_workers = config.workers
        threads = config.threads_per_worker or max(1, cores // n_workers)

    per_worker = _memory_per_worker(config, n_workers, memory)
    total = per_worker * n_workers
    if total > memory:
        source = config.origin.get("memory_limit", "memory limit")
        raise ConfigError(
            f"{source} {config.memory_limit!r} for each of {n_workers} workers makes {_gib(total)} in total, "
            f"more than the {_gib(memory)} of memory this machine has; give at most {_gib(memory // n_workers)} per worker "
            "or start fewer workers"
        )
    return LocalClusterPlan(n_workers, threads, per_worker, memory)


def _memory_per_worker(config: ClusterConfig, n_workers: int, memory: int) -> int:
    from dask.utils import parse_bytes

    value = config.memory_limit
    source = config.origin.get("memory_limit", "memory limit")
    hint = "give a size such as 4GiB, a fraction of the machine's memory such as 0.25, or auto"
    if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
        return memory // n_workers
    if isinstance(value, bool):
        raise ConfigError(f"invalid {source} {value!r}; {hint}")
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            try:
                return _positive(parse_bytes(text), value, source, hint)
            except ValueError:
                raise ConfigError(f"invalid {source} {value!r}; {hint}") from None
        value = int(number) if number.is_integer() and number > 1 else number
    if isinstance(value, float) and 0 < value <= 1:
        return int(memory * value)
    if isinstance(value, (int, float)):
        return _positive(int(value), config.memory_limit, source, hint)
    raise ConfigError(f"invalid {source} {value!r}; {hint}")


def _positive(size: int, value, source: str, hint: str) -> int:
    # Dask reads a memory limit of 0 as "no limit", which would let the workers take more than the machine has.
    if size <= 0:
        raise ConfigError(f"invalid {source} {value!r}: workers need a limit above 0 bytes; {hint}")
    return size


def _gib(size: int) -> str:
    return f"{size / GIB:.1f} GiB"
