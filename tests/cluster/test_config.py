"""Resolution of the cluster settings, and the checks on them, without starting any cluster."""

from __future__ import annotations

import pickle

import pytest

from sdpipe.cli.errors import run_with_exit_codes
from sdpipe.cli.main import cli
from sdpipe.cluster import (
    ClusterConfig,
    ClusterError,
    SchedulerUnreachableError,
    plan_local_cluster,
    resolve_cluster,
    settings_from_job,
)
from sdpipe.errors import ConfigError

GIB = 1024**3


def test_resolve_default_is_threads():
    config = resolve_cluster({}, environ={})

    assert config.scheduler == "threads"
    assert config.connect_timeout == 5.0


@pytest.mark.parametrize(
    ("flags", "environ", "job", "expected"),
    [
        ({"scheduler": "synchronous"}, {"SDPIPE_SCHEDULER": "processes"}, {"scheduler": "threads"}, "synchronous"),
        ({}, {"SDPIPE_SCHEDULER": "processes"}, {"scheduler": "threads"}, "processes"),
        ({}, {}, {"scheduler": "sync"}, "synchronous"),
        ({}, {"DASK_SCHEDULER_ADDRESS": "tcp://127.0.0.1:8786"}, {}, "tcp://127.0.0.1:8786"),
        ({}, {"SDPIPE_SCHEDULER": "threads", "DASK_SCHEDULER_ADDRESS": "tcp://127.0.0.1:8786"}, {}, "threads"),
        ({}, {"DASK_SCHEDULER": "processes"}, {}, "processes"),
        ({"scheduler": "127.0.0.1:8786"}, {}, {}, "tcp://127.0.0.1:8786"),
    ],
    ids=["flag-wins", "env-over-job", "job-over-default", "dask-address", "sdpipe-over-dask", "dask-scheduler", "host-port"],
)
def test_resolve_scheduler_precedence(flags, environ, job, expected):
    assert resolve_cluster(flags, environ=environ, job=job).scheduler == expected


def test_resolve_workers_flag_beats_env_scheduler():
    config = resolve_cluster({"workers": 2}, environ={"SDPIPE_SCHEDULER": "threads", "SDPIPE_MEMORY_LIMIT": "1GiB"})

    assert config.scheduler == "local-cluster"
    assert config.workers == 2
    assert config.memory_limit == "1GiB"
    assert config.origin["memory_limit"] == "SDPIPE_MEMORY_LIMIT"


def test_resolve_lower_sizing_ignored_for_other_scheduler():
    config = resolve_cluster({"scheduler": "threads"}, environ={"SDPIPE_WORKERS": "4"}, job={"memory_limit": "1GiB"})

    assert config.scheduler == "threads"
    assert config.workers is None
    assert config.memory_limit is None


def test_resolve_connect_timeout_layers():
    dask_env = {"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "20s"}

    assert resolve_cluster({}, environ=dask_env).connect_timeout == 20.0
    assert resolve_cluster({}, environ={**dask_env, "SDPIPE_CONNECT_TIMEOUT": "7"}).connect_timeout == 7.0
    assert resolve_cluster({"connect_timeout": 1.5}, environ=dask_env).connect_timeout == 1.5
    assert resolve_cluster({}, environ={}, job={"connect-timeout": "2 minutes"}).connect_timeout == 120.0


@pytest.mark.parametrize(
    ("flags", "environ", "job", "message"),
    [
        ({"scheduler": "threads", "workers": 2}, {}, {}, "--workers sizes a LocalCluster started by sdpipe, but the scheduler is 'threads'"),
        ({}, {"SDPIPE_SCHEDULER": "tcp://127.0.0.1:8786", "SDPIPE_WORKERS": "2"}, {}, "SDPIPE_WORKERS sizes a LocalCluster"),
        ({"scheduler": "dask"}, {}, {}, "invalid --scheduler 'dask'; choose one of threads, processes, synchronous, local-cluster"),
        ({}, {"SDPIPE_WORKERS": "two"}, {}, "invalid SDPIPE_WORKERS 'two'; give a whole number"),
        ({}, {"SDPIPE_CONNECT_TIMEOUT": "soon"}, {}, "invalid SDPIPE_CONNECT_TIMEOUT 'soon'"),
        ({}, {}, {"nodes": 3}, "unknown cluster setting 'nodes' in the job file; known settings: scheduler, workers"),
        ({"workers": 0}, {}, {}, "invalid --workers 0; give a whole number of at least 1"),
    ],
    ids=["flag-conflict", "env-conflict", "unknown-name", "env-not-a-number", "bad-timeout", "job-unknown-key", "zero-workers"],
)
def test_resolve_rejects(flags, environ, job, message):
    with pytest.raises(ConfigError) as raised:
        resolve_cluster(flags, environ=environ, job=job)

    assert message in str(raised.value)


def test_settings_from_job_names_source():
    assert settings_from_job({"workers": 3}) == {"workers": (3, "job file setting 'workers'")}


def test_plan_default_splits_cores_and_memory():
    plan = plan_local_cluster(ClusterConfig(scheduler="local-cluster"), memory=16 * GIB, cores=2)

    assert (plan.n_workers, plan.threads_per_worker) == (2, 1)
    assert plan.memory_limit == 8 * GIB


@pytest.mark.parametrize(
    ("memory_limit", "per_worker"),
    [("auto", 8 * GIB), ("2GiB", 2 * GIB), ("0.25", 4 * GIB), (0.5, 8 * GIB), (3 * GIB, 3 * GIB)],
    ids=["auto", "size", "fraction-text", "fraction", "bytes"],
)
def test_plan_memory_limit_forms(memory_limit, per_worker):
    config = ClusterConfig(workers=2, memory_limit=memory_limit)

    assert plan_local_cluster(config, memory=16 * GIB, cores=2).memory_limit == per_worker


def test_plan_rejects_more_memory_than_machine():
    config = ClusterConfig(workers=4, memory_limit="5GiB", origin={"memory_limit": "--memory-limit"})

    with pytest.raises(ConfigError) as raised:
        plan_local_cluster(config, memory=16 * GIB, cores=2)

    message = str(raised.value)
    assert "--memory-limit '5GiB' for each of 4 workers makes 20.0 GiB in total" in message
    assert "more than the 16.0 GiB of memory this machine has; give at most 4.0 GiB per worker" in message


@pytest.mark.parametrize("memory_limit", ["0", 0, "-1GiB", "lots", "0.0"], ids=["zero-text", "zero", "negative", "word", "zero-fraction"])
def test_plan_rejects_bad_memory_limit(memory_limit):
    with pytest.raises(ConfigError, match="memory limit"):
        plan_local_cluster(ClusterConfig(workers=2, memory_limit=memory_limit), memory=16 * GIB, cores=2)


def test_cluster_errors_survive_pickling():
    for error in (ClusterError("task 'map-3' failed"), SchedulerUnreachableError("cannot reach tcp://127.0.0.1:1")):
        copy = pickle.loads(pickle.dumps(error))

        assert type(copy) is type(error)
        assert str(copy) == str(error)


def test_cli_rejects_workers_with_threads(capsys, small_trips, tmp_path):
    folder, _ = small_trips
    argv = ["run", "taxi-speed", "-i", str(folder / "*.csv"), "-o", str(tmp_path / "out"), "--scheduler", "threads", "--workers", "2"]

    code = run_with_exit_codes(cli, argv)

    assert code == 2
    assert "Error: --workers sizes a LocalCluster started by sdpipe, but the scheduler is 'threads'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_rejects_memory_over_machine(capsys, small_trips, tmp_path):
    folder, _ = small_trips
    argv = ["run", "taxi-speed", "-i", str(folder / "*.csv"), "-o", str(tmp_path / "out"), "--workers", "2", "--memory-limit", "100000TiB"]

    code = run_with_exit_codes(cli, argv)

    assert code == 2
    assert "Error: --memory-limit '100000TiB' for each of 2 workers makes" in capsys.readouterr().err
