"""Atomic publication of a run's output folder.

A run writes every output file into a staging area first and publishes the
set only when all of it is written, so that a run that fails or is
interrupted leaves the previous result untouched.

Local folders are swapped by two renames: the old folder is moved aside,
the staged one moved in, then the old one deleted.  If a crash falls
between the two renames, the next publication to the same place moves the
old folder back first.  On object stores, where a folder cannot be renamed,
the files are copied next to the old ones and ``_SUCCESS`` (which lists the
run's files) is written last; it is removed before the copy starts, so a
reader that checks for it never takes a half-written set as a result.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import IO, Any

from sdpipe.errors import StorageError
from sdpipe.io.files import filesystem_for

logger = logging.getLogger(__name__)

SUCCESS_MARKER = "_SUCCESS"


class OutputFolder:
    """A staged output folder; use as a context manager, then call :meth:`publish`.

    Leaving the ``with`` block without publishing (an exception, Ctrl-C)
    deletes the staging area and leaves the destination as it was.
    """

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None, *, run_id: str | None = None):
        self.url = url.rstrip("/")
        self.storage_options = storage_options or {}
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.fs, self.path = filesystem_for(self.url, self.storage_options)
        self.is_local = "file" in _protocols(self.fs)
        self.written: list[str] = []
        self.published = False
        if self.is_local:
            target = Path(self.path)
            self.staging = str(target.parent / f".{target.name}.staging-{self.run_id}")
        else:
            self.staging = f"{self.path}/_staging/{self.run_id}"

    def __enter__(self) -> OutputFolder:
        if self.is_local:
            _restore_interrupted_swap(Path(self.path))
        self.fs.makedirs(self.staging, exist_ok=True)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.published:
            self.discard()

    def staged_path(self, name: str) -> str:
        """Return the staging path of output file ``name`` (a relative path)."""
        return f"{self.staging}/{name}"

    def open(self, name: str, mode: str = "wb") -> IO:
        """Open output file ``name`` for writing in the staging area."""
        parent = self.staged_path(name).rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        self.written.append(name)
        return self.fs.open(self.staged_path(name), mode)

    def write_bytes(self, name: str, data: bytes) -> None:
        with self.open(name, "wb") as handle:
            handle.write(data)

    def write_text(self, name: str, text: str) -> None:
        self.write_bytes(name, text.encode("utf-8"))

    def publish(self) -> str:
        """Make the staged files the output folder's content; return its URL."""
        try:
            if self.is_local:
                self._publish_local()
            else:
                self._publish_remote()
        except OSError as exc:
            raise StorageError(f"publishing the output to {self.url!r} failed: {exc}") from exc
        self.published = True
        logger.info("published %d files to %s", len(self.written), self.url)
        return self.url

    def discard(self) -> None:
        """Delete the staging area."""
        try:
            if self.fs.exists(self.staging):
                self.fs.rm(self.staging, recursive=True)
        except OSError:
            logger.warning("could not remove the staging area %s", self.staging)

    def _publish_local(self) -> None:
        target = Path(self.path)
        staging = Path(self.staging)
        self.fs.write_text(f"{self.staging}/{SUCCESS_MARKER}", _marker(self.run_id, self.written))
        if target.exists():
            previous = target.parent / f".{target.name}.previous-{self.run_id}"
            os.replace(target, previous)
            os.replace(staging, target)
            shutil.rmtree(previous, ignore_errors=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging, target)

    def _publish_remote(self) -> None:
        marker = f"{self.path}/{SUCCESS_MARKER}"
        if self.fs.exists(marker):
            self.fs.rm(marker)
        for name in self.written:
            self.fs.copy(self.staged_path(name), f"{self.path}/{name}")
        self.fs.write_text(marker, _marker(self.run_id, self.written))
        self.fs.rm(self.staging, recursive=True)


def _marker(run_id: str, names: list[str]) -> str:
    return json.dumps({"run_id": run_id, "files": sorted(set(names))}, indent=2)


def _restore_interrupted_swap(target: Path) -> None:
    """Move an old output folder back if a crash fell between the two renames."""
    if target.exists() or not target.parent.exists():
        return
    previous = sorted(target.parent.glob(f".{target.name}.previous-*"))
    if previous:
        logger.warning("restoring %s, left aside by an interrupted run", target)
        os.replace(previous[-1], target)


def _protocols(fs) -> set[str]:
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    return set(protocols) | ({"file"} if "local" in protocols else set())
