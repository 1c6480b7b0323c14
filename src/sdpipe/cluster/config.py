"""Cluster settings (where a run's tasks execute) and their resolution.

Each setting is taken from the first of these layers that sets it: command
line flag, environment variable (``SDPIPE_*`` before Dask's own), job file,
default.  The choice of scheduler is made once, by the highest layer that
names a scheduler or sizes a LocalCluster, so that ``--workers 4`` on the
command line wins over ``SDPIPE_SCHEDULER=threads`` in the environment.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sdpipe.errors import ConfigError

logger = logging.getLogger(__name__)

# Chosen by measurement on taxi-speed; docs/cluster.md has the figures and the reasons.
DEFAULT_SCHEDULER = "threads"
DEFAULT_CONNECT_TIMEOUT = 5.0

LOCAL_CLUSTER = "local-cluster"
# "distributed" is Dask's own name for the distributed Client already made in this process.
DEFAULT_CLIENT = "distributed"
LOCAL_SCHEDULERS = ("threads", "processes", "synchronous", "sync")
SCHEDULER_ALIASES = {
    "sync": "synchronous",
    "single-threaded": "synchronous",
    "threading": "threads",
    "multiprocessing": "processes",
}
SCHEDULER_NAMES = ("threads", "processes", "synchronous", LOCAL_CLUSTER, DEFAULT_CLIENT)
SIZING_SETTINGS = ("workers", "threads_per_worker", "memory_limit")
SETTINGS = ("scheduler", *SIZING_SETTINGS, "connect_timeout")

ENV_VARIABLES: dict[str, tuple[str, ...]] = {
    "scheduler": ("SDPIPE_SCHEDULER", "DASK_SCHEDULER_ADDRESS", "DASK_SCHEDULER"),
    "workers": ("SDPIPE_WORKERS",),
    "threads_per_worker": ("SDPIPE_THREADS_PER_WORKER",),
    "memory_limit": ("SDPIPE_MEMORY_LIMIT",),
    "connect_timeout": ("SDPIPE_CONNECT_TIMEOUT", "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT"),
}
FLAG_NAMES = {
    "scheduler": "--scheduler",
    "workers": "--workers",
    "threads_per_worker": "--threads-per-worker",
    "memory_limit": "--memory-limit",
    "connect_timeout": "--connect-timeout",
}
_HOST_PORT = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+):\d{1,5}$")


@dataclass(frozen=True)
class ClusterConfig:
    """Where a run's tasks execute.

    ``scheduler`` is ``threads``, ``processes``, ``synchronous``,
    ``local-cluster`` (a LocalCluster of worker processes on this machine),
    ``distributed`` (the distributed Client already made in this process) or
    the address of a running distributed scheduler, such as
    ``tcp://127.0.0.1:8786``.  ``None`` lets :func:`sdpipe.cluster.compute`
    resolve it from the environment, an existing Client, or the default.

    ``workers``, ``threads_per_worker`` and ``memory_limit`` size a
    LocalCluster, so giving any of them with ``scheduler`` left unset means
    ``local-cluster``.  ``memory_limit`` is per worker: bytes, a size such as
    ``"4GiB"``, a fraction of the machine's memory, or ``"auto"``.  ``connect_timeout`` is in seconds.
    ``progress`` draws a progress bar on stderr; ``print_dashboard_link``
    prints the Dask dashboard's address on stderr when a distributed
    scheduler runs the tasks.  ``origin`` maps a setting to where its value
    came from (``--workers``, ``SDPIPE_WORKERS``, ``job file``), for messages.
    """

    scheduler: str | None = None
    workers: int | None = None
    threads_per_worker: int | None = None
    memory_limit: str | int | float | None = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    progress: bool = False
    print_dashboard_link: bool = False
    origin: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        scheduler = self.scheduler
        if scheduler is None and any(getattr(self, name) is not None for name in SIZING_SETTINGS):
            scheduler = LOCAL_CLUSTER
        if scheduler is not None:
            scheduler = normalise_scheduler(scheduler, self._name("scheduler"))
        object.__setattr__(self, "scheduler", scheduler)

        for name in ("workers", "threads_per_worker"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"invalid {self._name(name)} {value!r}; give a whole number of at least 1")
        if not (isinstance(self.connect_timeout, (int, float)) and self.connect_timeout > 0):
            raise ConfigError(
                f"invalid {self._name('connect_timeout')} {self.connect_timeout!r}; give a number of seconds above 0"
            )
        if scheduler is not None and scheduler != LOCAL_CLUSTER:
            sizing = [name for name in SIZING_SETTINGS if getattr(self, name) is not None]
            if sizing:
                raise ConfigError(
                    f"{self._name(sizing[0])} sizes a LocalCluster started by sdpipe, "
                    f"but the scheduler is {scheduler!r} (from {self._name('scheduler')}); "
                    "drop one of the two (the workers of a running cluster are sized where they are started)"
                )

    def _name(self, setting: str) -> str:
        return self.origin.get(setting) or setting

    @property
    def is_address(self) -> bool:
        """True when ``scheduler`` is the address of a running distributed scheduler."""
        return self.scheduler is not None and self.scheduler not in SCHEDULER_NAMES

    def describe(self) -> dict[str, Any]:
        """Return the settings for logs and manifests (they hold no secret)."""
        return {
            "scheduler": self.scheduler,
            "workers": self.workers,
            "threads_per_worker": self.threads_per_worker,
            "memory_limit": self.memory_limit,
            "connect_timeout": self.connect_timeout,
        }


def normalise_scheduler(value: str, source: str = "scheduler") -> str:
    """Return the canonical scheduler name, or the address unchanged; raise on anything else."""
    text = str(value).strip()
    name = SCHEDULER_ALIASES.get(text.lower(), text.lower())
    if name in SCHEDULER_NAMES:
        return name
    if "://" in text:
        scheme, _, rest = text.partition("://")
        if scheme and rest:
            return text
    if _HOST_PORT.match(text):
        return f"tcp://{text}"
    raise ConfigError(
        f"invalid {source} {value!r}; choose one of {', '.join(SCHEDULER_NAMES)}, "
        "or give the address of a running distributed scheduler such as tcp://HOST:8786"
    )


def settings_from_env(environ: Mapping[str, str] | None = None) -> dict[str, tuple[Any, str]]:
    """Read the cluster settings set by environment variables.

    Returns ``{setting: (value, variable name)}``; ``SDPIPE_*`` variables win
    over Dask's ``DASK_SCHEDULER_ADDRESS``, ``DASK_SCHEDULER`` and
    ``DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT``.  Empty variables count as unset.
    """
    environ = os.environ if environ is None else environ
    found: dict[str, tuple[Any, str]] = {}
    for setting, variables in ENV_VARIABLES.items():
        for variable in variables:
            raw = environ.get(variable, "").strip().strip("'\"")
            if raw:
                found[setting] = (_parse_setting(setting, raw, variable), variable)
                break
    return found


def settings_from_job(settings: Mapping[str, Any] | None) -> dict[str, tuple[Any, str]]:
    """Check the cluster settings of a job file and return them as ``{setting: (value, "job file")}``.

    Keys are the setting names (``scheduler``, ``workers``,
    ``threads_per_worker``, ``memory_limit``, ``connect_timeout``), with ``-``
    or ``_``; values are as on the command line.  An unknown key raises
    :class:`ConfigError` naming the known ones.
    """
    found: dict[str, tuple[Any, str]] = {}
    for key, value in (settings or {}).items():
        setting = str(key).strip().replace("-", "_")
        if setting not in SETTINGS:
            raise ConfigError(
                f"unknown cluster setting {key!r} in the job file; known settings: {', '.join(SETTINGS)}"
            )
        if value is None:
            continue
        source = f"job file setting {key!r}"
        found[setting] = (_parse_setting(setting, value, source), source)
    return found


def _parse_setting(setting: str, value: Any, source: str) -> Any:
    """Convert a setting's value given as text or a number; raise naming ``source`` when invalid."""
    if setting in ("workers", "threads_per_worker"):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            raise ConfigError(f"invalid {source} {value!r}; give a whole number of at least 1") from None
    if setting == "connect_timeout":
        return parse_seconds(value, source)
    if setting == "scheduler":
        return normalise_scheduler(str(value), source)
    return value


def parse_seconds(value: Any, source: str = "connect timeout") -> float:
    """Return a duration in seconds from a number or a Dask duration such as ``"10s"`` or ``"2 minutes"``."""
    from dask.utils import parse_timedelta

    try:
        seconds = float(value) if isinstance(value, (int, float)) else parse_timedelta(str(value).strip(), default="s")
    except (ValueError, KeyError):
        raise ConfigError(f"invalid {source} {value!r}; give a number of seconds, such as 10 or 10s") from None
    if seconds is None or not seconds > 0 or not math.isfinite(seconds):
        raise ConfigError(f"invalid {source} {value!r}; give a number of seconds above 0")
    return float(seconds)


def resolve_cluster(
    flags: Mapping[str, Any] | None = None,
    *,
    job: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    progress: bool = False,
    print_dashboard_link: bool = False,
    default: str | None = DEFAULT_SCHEDULER,
) -> ClusterConfig:
    """Resolve the cluster settings once: flag > environment variable > job file > default.

    ``flags`` are the command line values by setting name (``None`` for a
    flag not given); ``job`` is the job file's cluster table as taken by
    :func:`settings_from_job`.  ``default=None`` leaves the scheduler unset
    when no layer names one, for :func:`sdpipe.cluster.compute` to choose.
    """
    layers = [
        {name: (value, FLAG_NAMES[name]) for name, value in (flags or {}).items() if value is not None},
        settings_from_env(environ),
        settings_from_job(job),
    ]
    unknown = set(layers[0]) - set(SETTINGS)
    if unknown:
        raise ConfigError(f"unknown cluster setting(s) {', '.join(sorted(unknown))}; known: {', '.join(SETTINGS)}")
    if "scheduler" in layers[0]:
        value, source = layers[0]["scheduler"]
        layers[0]["scheduler"] = (normalise_scheduler(value, source), source)

    chosen: dict[str, tuple[Any, str]] = {}
    scheduler_layer = len(layers)
    for index, layer in enumerate(layers):
        if "scheduler" in layer or any(name in layer for name in SIZING_SETTINGS):
            if "scheduler" in layer:
                chosen["scheduler"] = layer["scheduler"]
            else:
                chosen["scheduler"] = (LOCAL_CLUSTER, _first_sizing_source(layer))
            scheduler_layer = index
            break
    scheduler = chosen.get("scheduler", (default, "default"))[0]

    for name in (*SIZING_SETTINGS, "connect_timeout"):
        for index, layer in enumerate(layers):
            if name not in layer:
                continue
            if name in SIZING_SETTINGS and scheduler != LOCAL_CLUSTER and index > scheduler_layer:
                # Sizing from a layer below the one that chose another scheduler does not apply.
                logger.debug("ignoring %s from %s: the scheduler is %r", name, layer[name][1], scheduler)
                break
            chosen[name] = layer[name]
            break

    values = {name: value for name, (value, _) in chosen.items()}
    values["scheduler"] = scheduler
    origin = {name: source for name, (_, source) in chosen.items()}
    config = ClusterConfig(
        **values, progress=progress, print_dashboard_link=print_dashboard_link, origin=origin
    )
    if config.scheduler == LOCAL_CLUSTER:
        from sdpipe.cluster.sizing import plan_local_cluster

        plan_local_cluster(config)  # raises now, before any input is read, if the sizes do not fit
    logger.debug("cluster settings: %s (from %s)", config.describe(), origin or "defaults")
    return config


def _first_sizing_source(layer: Mapping[str, tuple[Any, str]]) -> str:
    return next(layer[name][1] for name in SIZING_SETTINGS if name in layer)
