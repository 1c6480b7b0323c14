"""The lock per output: a second run exits 75, a stale lock is taken over, on local and fsspec URLs."""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
import subprocess
import sys
import threading

import fsspec
import pytest

from sdpipe.errors import LockHeldError
from sdpipe.locking import LockInfo, OutputLock, lock_url

HOLD_LOCK = """
import sys
from sdpipe.locking import OutputLock
lock = OutputLock(sys.argv[1], run_id="holder")
lock.acquire()
print("locked", flush=True)
sys.stdin.read()
"""


def write_lock(path, *, pid: int, hostname: str, heartbeat_age_s: float, output: str = "out") -> None:
    beat = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=heartbeat_age_s)).isoformat()
    info = {"run_id": "other", "pid": pid, "hostname": hostname, "created": beat, "heartbeat": beat, "output": output}
    path.write_text(json.dumps(info))


def dead_pid() -> int:
    process = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    return int(process.stdout)


@pytest.fixture
def lock_holder(tmp_path):
    """Start a process that holds the lock on tmp_path/out; kill it with kill()."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(tmp_path / "out")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "locked"
    yield process
    if process.poll() is None:
        process.kill()
    process.wait()


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("output/taxi-speed", "output/.taxi-speed.lock"),
        ("output/taxi-speed/", "output/.taxi-speed.lock"),
        ("/srv/out", "/srv/.out.lock"),
        ("out", ".out.lock"),
        ("az://results/speed/2017", "az://results/speed/.2017.lock"),
        ("az://results", "az://results/_sdpipe.lock"),
        ("file:///tmp/out", "file:///tmp/.out.lock"),
    ],
    ids=["relative", "trailing-slash", "absolute", "bare", "az", "container-root", "file-url"],
)
def test_lock_url_sits_beside_output(output, expected):
    assert lock_url(output) == expected


def test_second_run_exits_75(tmp_path, run_cli, trips_dir, lock_holder):
    output = tmp_path / "out"

    result = run_cli("run", "taxi-speed", "-i", f"{trips_dir}/*.csv", "-o", output)

    assert result.exit_code == 75
    assert result.stderr.startswith(f"Error: another run holds the lock on '{output}': run holder (pid {lock_holder.pid} on host")
    assert "Try again when it has finished" in result.stderr
    assert not output.exists()


def test_crashed_run_lock_is_taken_over(tmp_path, run_cli, trips_dir, lock_holder):
    output = tmp_path / "out"
    lock_holder.kill()
    lock_holder.wait()
    assert (tmp_path / ".out.lock").exists()

    result = run_cli("run", "taxi-speed", "-i", f"{trips_dir}/*.csv", "-o", output)

    assert result.exit_code == 0, result.stderr
    assert f"taking over the stale lock on {output} left by run holder (pid {lock_holder.pid}" in result.stderr
    assert "is no longer running" in result.stderr
    assert (output / "result.csv").exists()
    assert not (tmp_path / ".out.lock").exists()


def test_lock_of_dead_process_is_stale(tmp_path):
    write_lock(tmp_path / ".out.lock", pid=dead_pid(), hostname=socket.gethostname(), heartbeat_age_s=1)

    with OutputLock(str(tmp_path / "out"), run_id="mine") as lock:
        assert lock.info.run_id == "mine"
        assert json.loads((tmp_path / ".out.lock").read_text())["run_id"] == "mine"

    assert not (tmp_path / ".out.lock").exists()


def test_other_host_fresh_heartbeat_holds(tmp_path):
    write_lock(tmp_path / ".out.lock", pid=1, hostname="worker-7.example", heartbeat_age_s=10)

    with pytest.raises(LockHeldError) as caught:
        OutputLock(str(tmp_path / "out"), stale_after=300).acquire()

    assert "pid 1 on host worker-7.example" in str(caught.value)
    assert "last heartbeat 10 s ago" in str(caught.value)
    assert caught.value.exit_code == 75
    assert json.loads((tmp_path / ".out.lock").read_text())["run_id"] == "other"


def test_other_host_old_heartbeat_is_stale(tmp_path, caplog):
    write_lock(tmp_path / ".out.lock", pid=1, hostname="worker-7.example", heartbeat_age_s=600)

    with caplog.at_level(logging.WARNING, logger="sdpipe.locking"):
        with OutputLock(str(tmp_path / "out"), stale_after=300, run_id="mine"):
            pass

    assert "no heartbeat for 600 s (stale after 300 s)" in caplog.text


def test_unreadable_lock_file_is_stale(tmp_path):
    (tmp_path / ".out.lock").write_text('{"run_id": "cut sh')

    with OutputLock(str(tmp_path / "out"), run_id="mine") as lock:
        assert lock.info.run_id == "mine"


def test_heartbeat_refreshes_lock(tmp_path):
    lock = OutputLock(str(tmp_path / "out"), heartbeat=0.05, stale_after=60)
    with lock:
        first = json.loads((tmp_path / ".out.lock").read_text())["heartbeat"]
        refreshed = threading.Event()
        for _ in range(200):
            if json.loads((tmp_path / ".out.lock").read_text())["heartbeat"] != first:
                refreshed.set()
                break
            refreshed.wait(0.05)
        assert refreshed.is_set()


def test_nested_lock_in_same_thread(tmp_path):
    output = str(tmp_path / "out")
    with OutputLock(output):
        with OutputLock(output):
            assert (tmp_path / ".out.lock").exists()
        assert (tmp_path / ".out.lock").exists()
    assert not (tmp_path / ".out.lock").exists()


def test_other_thread_of_same_process_is_rejected(tmp_path):
    output = str(tmp_path / "out")
    errors = []

    def second_run():
        try:
            OutputLock(output).acquire()
        except LockHeldError as exc:
            errors.append(str(exc))

    with OutputLock(output):
        thread = threading.Thread(target=second_run)
        thread.start()
        thread.join()

    assert errors == [f"another run in this process holds the lock on {output!r}; run one job per output at a time"]


def test_lock_on_memory_filesystem():
    output = "memory://locks/out"
    fs = fsspec.filesystem("memory")

    with OutputLock(output, run_id="first"):
        assert json.loads(fs.cat("/locks/.out.lock"))["run_id"] == "first"
    assert not fs.exists("/locks/.out.lock")

    # A holder on another host, written directly, keeps the lock while its heartbeat is fresh.
    info = LockInfo("other", 1, "worker-7.example", *(2 * [dt.datetime.now(dt.timezone.utc).isoformat()]), output)
    fs.pipe("/locks/.out.lock", json.dumps(info.__dict__).encode())
    with pytest.raises(LockHeldError):
        OutputLock(output).acquire()
    fs.rm("/locks/.out.lock")


@pytest.mark.azurite
def test_lock_on_azure_blob(azurite_blob):
    from tests.azurite import unique_name

    container = unique_name("locks")
    azurite_blob.blob_client().create_container(container)
    output = f"az://{container}/speed/2017"
    options = azurite_blob.storage_options

    with OutputLock(output, options, run_id="first"):
        with pytest.raises(FileExistsError):
            fs = fsspec.filesystem("az", **options)
            with fs.open(f"{container}/speed/.2017.lock", "xb") as handle:
                handle.write(b"{}")
        info = json.loads(fs.cat(f"{container}/speed/.2017.lock"))
        assert info["run_id"] == "first"

    assert not fs.exists(f"{container}/speed/.2017.lock")


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_quiet_keeps_stale_lock_warning(tmp_path, run_cli, trips_dir, monkeypatch, log_format):
    write_lock(tmp_path / ".out.lock", pid=dead_pid(), hostname=socket.gethostname(), heartbeat_age_s=1)
    monkeypatch.setenv("SDPIPE_LOG_FORMAT", log_format)

    result = run_cli("run", "taxi-speed", "-i", f"{trips_dir}/*.csv", "-o", tmp_path / "out", "-q")

    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "taking over the stale lock" in line]
    assert len(warnings) == 1, result.stderr
    assert "is no longer running" in warnings[0]
    if log_format == "json":
        assert json.loads(warnings[0])["level"] == "WARNING"


def test_unreadable_lock_file_warns_once_without_age(tmp_path, caplog):
    (tmp_path / ".out.lock").write_text('{"run_id": "cut sh')

    with caplog.at_level(logging.WARNING, logger="sdpipe.locking"):
        with OutputLock(str(tmp_path / "out"), run_id="mine"):
            pass

    (warning,) = [record.getMessage() for record in caplog.records]
    assert f"the lock file {tmp_path / '.out.lock'} is unreadable" in warning
    assert "no heartbeat" not in warning
    assert "1970" not in warning
