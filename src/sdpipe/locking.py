"""One lock per output, so that two overlapping runs never write the same output.

The lock is a small JSON file next to the output (see :func:`lock_url`) that
names its holder: run id, process id, host name, when it was taken and a
heartbeat that the holder rewrites while it runs.  A second run that finds a
live lock raises :class:`~sdpipe.errors.LockHeldError` at once (the CLI exits
75).  A lock is stale, and the next run takes it over, when its holder ran
on this host and that process is gone, or when its heartbeat is older than
``stale_after`` seconds (the holder crashed on another host, or its host
went down).

The lock file is created with exclusive-create mode (``"xb"``): ``O_EXCL`` on
local disks and ``If-None-Match: *`` on Azure Blob storage (adlfs), so two
runs that start together cannot both create it.

NOTE: taking over a stale lock reads it, deletes it and creates a new one.
Two runs that find the same stale lock within the same instant can both
take it over; each checks the lock's content after creating it, which
catches most such races but not all.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import threading
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from sdpipe.errors import LockHeldError, StorageError
from sdpipe.io.files import filesystem_for
from sdpipe.runlog import current_run_id

logger = logging.getLogger(__name__)

DEFAULT_STALE_AFTER = 300.0
DEFAULT_HEARTBEAT = 30.0
LOCK_SUFFIX = ".lock"

# Locks this process holds, by lock path, with the thread that took each and
# how many times: a run that locks its output inside a CLI command that
# already locked it must not lock itself out.
_held: dict[str, tuple[int, int]] = {}
_held_guard = threading.Lock()


@dataclass(frozen=True)
class LockInfo:
    """The content of a lock file: who holds the lock and since when (UTC, ISO 8601)."""

    run_id: str
    pid: int
    hostname: str
    created: str
    heartbeat: str
    output: str
    # Why the lock file could not be read, for a file cut short by a crash; never written to a lock file.
    unreadable: str | None = None

    def age_seconds(self, now: dt.datetime | None = None) -> float:
        """Return the seconds since the holder's last heartbeat."""
        now = now or _utcnow()
        return (now - dt.datetime.fromisoformat(self.heartbeat)).total_seconds()

    def describe(self) -> str:
        if self.unreadable is not None:
            return "an unknown run"
        return f"run {self.run_id} (pid {self.pid} on host {self.hostname}, started {self.created})"


def lock_url(output: str) -> str:
    """Return the URL of the lock file that guards ``output``.

    The lock sits next to the output folder, not inside it, because a local
    output folder is replaced as a whole when a run publishes.  An output at
    the root of a bucket or container has no parent to sit in, so its lock
    goes inside it.
    """
    stripped = output.rstrip("/")
    protocol, sep, path = stripped.rpartition("://")
    parent, slash, name = path.rpartition("/")
    if sep and (not slash or not parent):
        return f"{stripped}/_sdpipe{LOCK_SUFFIX}"
    prefix = f"{protocol}{sep}"
    if not slash:
        return f"{prefix}.{name}{LOCK_SUFFIX}"
    return f"{prefix}{parent}/.{name}{LOCK_SUFFIX}"


class OutputLock:
    """The lock on one output; use as a context manager around the whole run.

    ``stale_after`` is how many seconds without a heartbeat make a lock
    stale; the holder rewrites its heartbeat every ``heartbeat`` seconds.
    """

    def __init__(
        self,
        output: str,
        storage_options: dict[str, Any] | None = None,
        *,
        run_id: str | None = None,
        stale_after: float = DEFAULT_STALE_AFTER,
        heartbeat: float = DEFAULT_HEARTBEAT,
    ):
        if not heartbeat < stale_after:
            raise ValueError(f"heartbeat ({heartbeat} s) must be shorter than stale_after ({stale_after} s)")
        self.output = output
        self.url = lock_url(output)
        self.fs, self.path = filesystem_for(self.url, storage_options)
        self.run_id = run_id or current_run_id() or uuid.uuid4().hex[:12]
        self.stale_after = stale_after
        self.heartbeat = heartbeat
        self.info: LockInfo | None = None
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock, taking over a stale one; raise :class:`LockHeldError` if another run holds it."""
        if self._enter_nested():
            return
        try:
            self._acquire_file()
        except BaseException:
            self._leave_nested()
            raise
        self._beat = threading.Thread(target=self._beat_loop, name=f"sdpipe-lock-{self.run_id}", daemon=True)
        self._beat.start()
        logger.info("locked %s for run %s", self.output, self.run_id)

    def release(self) -> None:
        """Release the lock; a lock taken over meanwhile by another run is left alone."""
        if self._leave_nested():
            return
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        current = self._read()
        if current is not None and current.run_id == self.run_id:
            self._remove()
        elif current is not None:
            logger.error("lock %s was taken over by %s while this run held it", self.url, current.describe())
        logger.info("released the lock on %s", self.output)

    def _acquire_file(self) -> None:
        for _attempt in range(3):
            now = _utcnow().isoformat()
            info = LockInfo(self.run_id, os.getpid(), socket.gethostname(), now, now, self.output)
            if self._create(info):
                if self._read() == info:
                    self.info = info
                    return
                continue
            holder = self._read()
            if holder is None:
                continue
            reason = self.stale_reason(holder)
            if reason is None:
                raise LockHeldError(
                    f"another run holds the lock on {self.output!r}: {holder.describe()}, "
                    f"last heartbeat {holder.age_seconds():.0f} s ago. Try again when it has finished; "
                    f"if no such run is alive, the lock becomes stale {self.stale_after:.0f} s after its "
                    f"last heartbeat, or delete {self.url!r}."
                )
            logger.warning("taking over the stale lock on %s left by %s: %s", self.output, holder.describe(), reason)
            if self._read() == holder:
                self._remove()
        raise LockHeldError(f"could not take the lock on {self.output!r}: other runs keep taking it; try again later")

    def stale_reason(self, holder: LockInfo) -> str | None:
        """Return why ``holder``'s lock is stale, or ``None`` while its run may be alive."""
        if holder.unreadable is not None:
            return f"the lock file {self.url} is unreadable ({holder.unreadable}), as a run that crashed while writing it leaves it"
        if holder.hostname == socket.gethostname() and not _process_alive(holder.pid):
            return f"process {holder.pid} is no longer running"
        age = holder.age_seconds()
        if age > self.stale_after:
            return f"no heartbeat for {age:.0f} s (stale after {self.stale_after:.0f} s)"
        return None

    def _create(self, info: LockInfo) -> bool:
        parent = self.path.rsplit("/", 1)[0]
        try:
            if parent and parent != self.path:
                self.fs.makedirs(parent, exist_ok=True)
            with self.fs.open(self.path, "xb") as handle:
                handle.write(_encode(info))
        except FileExistsError:
            return False
        except OSError as exc:
            raise StorageError(f"cannot create the lock file {self.url!r}: {exc}") from exc
        return True

    def _read(self) -> LockInfo | None:
        try:
            with self.fs.open(self.path, "rb") as handle:
                data = json.loads(handle.read())
            return LockInfo(**data)
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as exc:
            # A lock file cut short by a crash while it was written belongs to a dead holder.
            # stale_reason gives the reason, and the caller logs it once when it takes the lock over.
            epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc).isoformat()
            return LockInfo("unknown", -1, "unknown", epoch, epoch, self.output, unreadable=str(exc))
        except OSError as exc:
            raise StorageError(f"cannot read the lock file {self.url!r}: {exc}") from exc

    def _remove(self) -> None:
        try:
            self.fs.rm(self.path)
        except FileNotFoundError:
            pass

    def _beat_loop(self) -> None:
        while not self._stop.wait(self.heartbeat):
            try:
                self._refresh()
            except Exception as exc:  # noqa: BLE001 - a missed heartbeat must not kill the run
                logger.warning("could not refresh the lock %s: %s", self.url, exc)

    def _refresh(self) -> None:
        current = self._read()
        if current is None or current.run_id != self.run_id:
            logger.error("lost the lock on %s: it now belongs to %s", self.output, current.describe() if current else "nobody")
            self._stop.set()
            return
        self.info = LockInfo(**{**asdict(current), "heartbeat": _utcnow().isoformat()})
        self._replace(_encode(self.info))

    def _replace(self, data: bytes) -> None:
        """Replace the lock file's content in one step, so that a reader never sees it half written."""
        if "file" in _protocols(self.fs):
            staged = f"{self.path}.{self.run_id}.tmp"
            with open(staged, "wb") as handle:
                handle.write(data)
            os.replace(staged, self.path)
        else:
            # One upload replaces a blob or object as a whole.
            self.fs.pipe_file(self.path, data)

    def _enter_nested(self) -> bool:
        with _held_guard:
            owner = _held.get(self.url)
            if owner is None:
                _held[self.url] = (threading.get_ident(), 1)
                return False
            thread, count = owner
            if thread != threading.get_ident():
                raise LockHeldError(
                    f"another run in this process holds the lock on {self.output!r}; "
                    "run one job per output at a time"
                )
            _held[self.url] = (thread, count + 1)
            return True

    def _leave_nested(self) -> bool:
        """Count one release; return whether an outer holder in this thread still holds the lock."""
        with _held_guard:
            thread, count = _held.get(self.url, (0, 1))
            if count > 1:
                _held[self.url] = (thread, count - 1)
                return True
            _held.pop(self.url, None)
            return False


def output_lock(output: str | None, storage_options: dict[str, Any] | None = None, **kwargs: Any):
    """Return the lock on ``output``, or a no-op context manager when there is no output."""
    if not output:
        import contextlib

        return contextlib.nullcontext()
    return OutputLock(output, storage_options, **kwargs)


def _protocols(fs) -> set[str]:
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    return set(protocols) | ({"file"} if "local" in protocols else set())


def _encode(info: LockInfo) -> bytes:
    content = asdict(info)
    content.pop("unreadable")
    return json.dumps(content, indent=2).encode("utf-8")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _process_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists but belongs to another user
    return True
