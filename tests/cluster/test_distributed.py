"""taxi-speed on real distributed clusters: a LocalCluster, lost workers, a hand-started scheduler.

Every cluster here listens on 127.0.0.1 only.  The tests start few
clusters, because each start costs seconds of CPU.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import psutil
import pytest
from distributed import Client, LocalCluster
from distributed.diagnostics.plugin import SchedulerPlugin

from sdpipe.cluster import ClusterConfig, ClusterError, SchedulerUnreachableError, compute
from sdpipe.pipelines.taxi_speed.run import TaxiSpeedOptions, run

pytestmark = pytest.mark.cluster

SDPIPE = [sys.executable, "-c", "from sdpipe.cli.main import main; main()"]
DASK = [sys.executable, "-m", "dask"]


def expected_by_date(frame: pd.DataFrame) -> pd.DataFrame:
    """Average speeds per pickup date, from the definition: valid trips only."""
    hours = (frame["tpep_dropoff_datetime"] - frame["tpep_pickup_datetime"]).dt.total_seconds() / 3600
    distance = frame["trip_distance"]
    speed = distance / hours.where(hours > 0)
    valid = (distance > 0) & (hours > 0) & (hours <= 24) & (speed <= 100)
    trips = pd.DataFrame(
        {"date": frame["tpep_pickup_datetime"].dt.date, "speed": speed, "miles": distance, "hours": hours}
    )[valid]
    grouped = trips.groupby("date")
    expected = pd.DataFrame(
        {
            "trips": grouped.size(),
            "mean_speed_mph": grouped["speed"].mean(),
            "distance_weighted_speed_mph": grouped["miles"].sum() / grouped["hours"].sum(),
        }
    )
    return expected.reset_index()


def assert_same_speeds(result: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Check a taxi-speed result against the pandas computation: counts exact, speeds to rounding."""
    assert list(result["date"]) == list(expected["date"])
    assert list(result["trips"]) == list(expected["trips"])
    np.testing.assert_allclose(result["mean_speed_mph"], expected["mean_speed_mph"], rtol=1e-9)
    np.testing.assert_allclose(
        result["distance_weighted_speed_mph"], expected["distance_weighted_speed_mph"], rtol=1e-9
    )


def run_cli(args: list[str], cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([*SDPIPE, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout)


def listening_addresses(process: psutil.Process) -> set[str]:
    """Return the IP addresses that a process and its children listen on."""
    found = set()
    for proc in [process, *process.children(recursive=True)]:
        try:
            connections = proc.net_connections(kind="inet")
        except psutil.Error:
            continue
        found |= {c.laddr.ip for c in connections if c.status == psutil.CONN_LISTEN}
    return found


def test_local_cluster_run_equals_synchronous(small_trips, tmp_path):
    folder, frame = small_trips
    common = ["run", "taxi-speed", "-i", str(folder / "*.csv"), "--blocksize", "65536", "--json"]
    synchronous = run_cli([*common, "-o", str(tmp_path / "sync"), "--scheduler", "synchronous"], tmp_path)
    assert synchronous.returncode == 0, synchronous.stderr

    proc = subprocess.Popen(
        [*SDPIPE, *common, "-o", str(tmp_path / "cluster"), "--workers", "2", "--threads-per-worker", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    watched = psutil.Process(proc.pid)
    addresses: set[str] = set()
    worker_processes = 0
    while proc.poll() is None:
        addresses |= listening_addresses(watched)
        try:
            worker_processes = max(worker_processes, len(watched.children(recursive=True)))
        except psutil.Error:
            pass
        time.sleep(0.05)
    stdout, stderr = proc.communicate(timeout=60)

    assert proc.returncode == 0, stderr
    assert worker_processes >= 2
    assert addresses == {"127.0.0.1"}
    assert "Dask dashboard: http://127.0.0.1:" in stderr
    cluster_document = json.loads(stdout)  # fails if anything but the JSON document is on stdout
    sync_document = json.loads(synchronous.stdout)
    assert cluster_document["result"] == sync_document["result"]
    assert cluster_document["counts"] == sync_document["counts"]
    result = pd.read_parquet(tmp_path / "cluster" / "result.parquet")
    assert_same_speeds(result, expected_by_date(frame))


class KillWorker(SchedulerPlugin):
    """Kill the worker process of a map task with SIGKILL: after the n-th map result, or whenever ``key`` starts."""

    name = "kill-worker"

    def __init__(self, after_results: int | None = None, key: str | None = None):
        self.after_results = after_results
        self.key = key
        self.map_results = 0
        self.killed: list[tuple[str, int]] = []

    async def start(self, scheduler):
        self.scheduler = scheduler

    def transition(self, key, start, finish, *args, **kwargs):
        if not str(key).startswith("map-"):
            return
        task = self.scheduler.tasks.get(key)
        if finish == "memory":
            self.map_results += 1
            if self.map_results == self.after_results:
                worker = next(iter(task.who_has))
                self._kill(worker, results_lost=len(worker.has_what))
        elif finish == "processing" and key == self.key:
            self._kill(task.processing_on, results_lost=0)

    def _kill(self, worker, results_lost: int) -> None:
        self.killed.append((worker.address, results_lost))
        psutil.Process(worker.pid).kill()


@pytest.fixture(scope="module")
def test_cluster():
    """Two single-threaded worker processes behind nannies, which restart a killed worker."""
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        with LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster, Client(cluster) as client:
            yield cluster, client


def install_plugin(client: Client, cluster: LocalCluster, plugin: KillWorker) -> KillWorker:
    client.register_plugin(plugin)
    return cluster.scheduler.plugins[plugin.name]


def test_unset_scheduler_uses_existing_client(test_cluster, monkeypatch):
    cluster, client = test_cluster
    for variable in ("SDPIPE_SCHEDULER", "DASK_SCHEDULER_ADDRESS", "DASK_SCHEDULER"):
        monkeypatch.delenv(variable, raising=False)
    worker_pids = set(client.run(os.getpid).values())

    (pid,) = compute(dask.delayed(os.getpid, pure=False)(), cluster=ClusterConfig())

    assert pid in worker_pids


def test_worker_killed_mid_run_result_exact(test_cluster, many_task_trips, tmp_path):
    cluster, client = test_cluster
    folder, frame = many_task_trips
    options = TaxiSpeedOptions(inputs=(str(folder / "trips.csv"),), output=str(tmp_path / "out"), blocksize=64 * 1024)
    plugin = install_plugin(client, cluster, KillWorker(after_results=25))
    try:
        report = run(options, ClusterConfig(scheduler=cluster.scheduler_address))
    finally:
        client.unregister_scheduler_plugin(plugin.name)

    assert len(plugin.killed) == 1
    _, results_lost = plugin.killed[0]
    assert results_lost >= 1  # the killed worker held results, which had to be computed again
    assert plugin.map_results > 25
    assert report.counts["read"] == len(frame)
    assert_same_speeds(report.result, expected_by_date(frame))
    assert_same_speeds(pd.read_parquet(tmp_path / "out" / "result.parquet"), expected_by_date(frame))
    client.wait_for_workers(2, timeout=60)


def test_dying_task_named_nothing_published(test_cluster, small_trips, tmp_path):
    cluster, client = test_cluster
    folder, _ = small_trips
    output = tmp_path / "out"
    options = TaxiSpeedOptions(inputs=(str(folder / "*.csv"),), output=str(output), blocksize=64 * 1024)
    plugin = install_plugin(client, cluster, KillWorker(key="map-5"))
    try:
        with pytest.raises(ClusterError) as raised:
            run(options, ClusterConfig(scheduler=cluster.scheduler_address))
    finally:
        client.unregister_scheduler_plugin(plugin.name)

    message = str(raised.value)
    # map-5 kills its worker; a task queued on that worker beside it may die twice as well and be named first.
    assert re.match(r"task 'map-\d+' failed: 2 worker processes died while running it \(the last was tcp://127\.0\.0\.1:", message)
    assert "raise the memory limit" in message
    assert len(plugin.killed) == 2
    assert not output.exists()  # nothing was published
    client.wait_for_workers(2, timeout=60)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_scheduler_names_address(tmp_path, small_trips):
    address = f"tcp://127.0.0.1:{free_port()}"

    with pytest.raises(SchedulerUnreachableError) as raised:
        compute(dask.delayed(sum)([1, 2]), cluster=ClusterConfig(scheduler=address, connect_timeout=0.5))
    assert f"cannot reach the Dask scheduler at {address} within 0.5 s" in str(raised.value)

    folder, _ = small_trips
    result = run_cli(
        ["run", "taxi-speed", "-i", str(folder / "*.csv"), "-o", str(tmp_path / "out"), "--scheduler", address, "--connect-timeout", "0.5"],
        tmp_path,
    )
    assert result.returncode == 1
    assert f"Error: cannot reach the Dask scheduler at {address} within 0.5 s" in result.stderr
    assert "--connect-timeout" in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "out").exists()


@pytest.fixture
def hand_started_cluster(tmp_path):
    """``dask scheduler`` and ``dask worker`` started as docs/cluster.md shows, on 127.0.0.1."""
    scheduler_file = tmp_path / "scheduler.json"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    processes = [
        subprocess.Popen(
            [*DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address", "127.0.0.1:0",
             "--scheduler-file", str(scheduler_file)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        )
    ]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() or not scheduler_file.read_text().strip():
            assert time.monotonic() < deadline, "dask scheduler did not write its scheduler file"
            time.sleep(0.1)
        processes.append(
            subprocess.Popen(
                [*DASK, "worker", "--scheduler-file", str(scheduler_file), "--host", "127.0.0.1",
                 "--nworkers", "1", "--nthreads", "2", "--no-dashboard"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
            )
        )
        address = json.loads(scheduler_file.read_text())["address"]
        with Client(address, timeout=30) as client:
            client.wait_for_workers(1, timeout=60)
        yield address
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in reversed(processes):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_cli_on_hand_started_scheduler(hand_started_cluster, small_trips, tmp_path):
    folder, frame = small_trips
    address = hand_started_cluster
    assert address.startswith("tcp://127.0.0.1:")

    result = run_cli(
        ["run", "taxi-speed", "-i", str(folder / "*.csv"), "-o", str(tmp_path / "out"), "--scheduler", address, "--json"],
        tmp_path,
    )

    assert result.returncode == 0, result.stderr
    assert "Dask dashboard: http://127.0.0.1:" in result.stderr
    document = json.loads(result.stdout)
    assert document["counts"]["read"] == len(frame)
    assert_same_speeds(pd.read_parquet(tmp_path / "out" / "result.parquet"), expected_by_date(frame))
