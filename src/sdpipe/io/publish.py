"""Atomic publication of a run's output folder.

A run writes every output file into a staging area first and publishes the
set only when all of it is written, so that a run that fails or is
interrupted leaves the previous result untouched.

Local folders are swapped by two renames: the old folder is moved aside,
the staged one moved in, then the old one deleted.  If a crash falls
between the two renames, the next publication to the same place moves the
old folder back first.

On object stores, where a folder cannot be renamed, the output folder contains
``_SUCCESS`` (a JSON list of the run's files) while, and only while, its
files are one finished run's result.  Publication removes ``_SUCCESS``,
moves the previous run's files to ``_previous/RUN_ID/``, copies the staged
files in, deletes the previous files the new run did not write, and writes
``_SUCCESS`` last.  If a step fails, the previous files are copied back
and the previous ``_SUCCESS`` rewritten; if that fails too (the store went
away), the next publication to the same place restores them first.
Readers check for ``_SUCCESS`` with :func:`published_files`.

Outputs never replace files that no sdpipe run wrote: a destination that is
a file, or a folder that contains such files (inputs, for example), is
rejected.  Names that start
with ``_`` or ``.`` (markers, locks, staging areas) are not counted.
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
from sdpipe.io.secrets import mask_text
from sdpipe.io.storage import is_azure_url, resolve_storage_options, translate_error

logger = logging.getLogger(__name__)

SUCCESS_MARKER = "_SUCCESS"
STAGING_FOLDER = "_staging"
PREVIOUS_FOLDER = "_previous"


class OutputFolder:
    """A staged output folder; use as a context manager, then call :meth:`publish`.

    Leaving the ``with`` block without publishing (an exception, Ctrl-C)
    deletes the staging area and leaves the destination as it was.
    """

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None, *, run_id: str | None = None):
        self.url = url.rstrip("/")
        self.storage_options = resolve_storage_options(self.url, storage_options)
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.fs, self.path = filesystem_for(self.url, self.storage_options)
        self.path = self.path.rstrip("/")
        self.is_local = "file" in _protocols(self.fs)
        self.written: list[str] = []
        self.published = False
        if self.is_local:
            target = Path(self.path)
            self.staging = str(target.parent / f".{target.name}.staging-{self.run_id}")
        else:
            self.staging = f"{self.path}/{STAGING_FOLDER}/{self.run_id}"

    def __repr__(self) -> str:
        return f"OutputFolder({self.url!r}, run_id={self.run_id!r})"

    def __enter__(self) -> OutputFolder:
        self._check_not_a_file()
        try:
            if self.is_local:
                _restore_interrupted_swap(Path(self.path))
            else:
                self._restore_interrupted_publication()
            self.fs.makedirs(self.staging, exist_ok=True)
        except Exception as exc:
            raise self._storage_error("preparing", exc) from exc
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.published:
            self.discard()

    def staged_path(self, name: str) -> str:
        """Return the staging path of output file ``name`` (a relative path)."""
        return f"{self.staging}/{name}"

    def open(self, name: str, mode: str = "wb") -> IO:
        """Open output file ``name`` for writing in the staging area."""
        _check_name(name)
        parent = self.staged_path(name).rsplit("/", 1)[0]
        try:
            self.fs.makedirs(parent, exist_ok=True)
            handle = self.fs.open(self.staged_path(name), mode)
        except Exception as exc:
            raise self._storage_error(f"staging {name!r} for", exc) from exc
        if name not in self.written:
            self.written.append(name)
        return handle

    def write_bytes(self, name: str, data: bytes) -> None:
        _check_name(name)
        try:
            with self.open(name, "wb") as handle:
                handle.write(data)
        except StorageError:
            raise
        except Exception as exc:
            raise self._storage_error(f"writing {name!r} for", exc) from exc

    def write_text(self, name: str, text: str) -> None:
        self.write_bytes(name, text.encode("utf-8"))

    def publish(self) -> str:
        """Make the staged files the output folder's content; return its URL."""
        self._check_not_a_file()
        try:
            if self.is_local:
                self._publish_local()
            else:
                self._publish_remote()
        except StorageError:
            raise
        except Exception as exc:
            raise self._storage_error("publishing", exc) from exc
        self.published = True
        logger.info("published %d files to %s", len(self.written), self.url)
        return self.url

    def discard(self) -> None:
        """Delete the staging area."""
        try:
            self._remove_if_exists(self.staging, recursive=True)
        except Exception as exc:  # noqa: BLE001 - cleanup must not hide the run's own error
            logger.warning("could not remove the staging area %s: %s", self.staging, mask_text(str(exc)))

    def _check_not_a_file(self) -> None:
        """Raise if the output path is an existing file, which publishing would otherwise replace."""
        try:
            is_file = self.fs.isfile(self.path)
        except Exception as exc:
            raise self._storage_error("checking", exc) from exc
        if is_file:
            raise StorageError(
                f"the output {self.url} is a file, not a folder; sdpipe never replaces it, so choose another --output"
            )

    # Local folders ---------------------------------------------------------------------------

    def _publish_local(self) -> None:
        target = Path(self.path)
        staging = Path(self.staging)
        if target.exists():
            _check_only_own_files(self.url, _local_names(target), _local_marker_files(target))
        self.fs.write_text(f"{self.staging}/{SUCCESS_MARKER}", _marker(self.run_id, self.written))
        if target.exists():
            previous = target.parent / f".{target.name}.previous-{self.run_id}"
            os.replace(target, previous)
            try:
                os.replace(staging, target)
            except OSError:
                os.replace(previous, target)
                raise
            shutil.rmtree(previous, ignore_errors=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging, target)

    # Object stores ---------------------------------------------------------------------------

    def _publish_remote(self) -> None:
        marker = f"{self.path}/{SUCCESS_MARKER}"
        old_marker = self._read_marker()
        old_files = list(old_marker["files"]) if old_marker else []
        _check_only_own_files(self.url, self._remote_names(), old_files)
        backup = f"{self.path}/{PREVIOUS_FOLDER}/{self.run_id}"

        try:
            if old_marker:
                self.fs.write_text(f"{backup}/{SUCCESS_MARKER}", json.dumps(old_marker, indent=2))
            self._remove_if_exists(marker)
            for name in old_files:
                self._move(f"{self.path}/{name}", f"{backup}/{name}")
            for name in self.written:
                self.fs.cp_file(self.staged_path(name), f"{self.path}/{name}")
            self.fs.write_text(marker, _marker(self.run_id, self.written))
        except Exception as exc:
            logger.error("publishing to %s failed, restoring the previous result: %s", self.url, mask_text(str(exc)))
            self._roll_back(backup, old_files)
            raise
        self._remove_if_exists(backup, recursive=True)
        self._remove_if_exists(self.staging, recursive=True)

    def _roll_back(self, backup: str, old_files: list[str]) -> None:
        """Put the previous run's files and marker back after a failed publication."""
        try:
            for name in self.written:
                if name not in old_files:
                    self._remove_if_exists(f"{self.path}/{name}")
            self._restore_from(backup)
        except Exception as exc:  # noqa: BLE001 - the publication error is the one to report
            logger.error(
                "restoring the previous result of %s failed (%s); the next run restores it from %s",
                self.url,
                mask_text(str(exc)),
                backup,
            )

    def _restore_interrupted_publication(self) -> None:
        """Restore a previous result left in ``_previous/`` by a publication that did not finish."""
        if self.fs.exists(f"{self.path}/{SUCCESS_MARKER}"):
            return
        backups = sorted(self._list(f"{self.path}/{PREVIOUS_FOLDER}"))
        for backup in reversed(backups):
            if self.fs.exists(f"{backup}/{SUCCESS_MARKER}"):
                logger.warning("restoring %s from %s, left by an interrupted publication", self.url, backup)
                self._restore_from(backup)
                return

    def _restore_from(self, backup: str) -> None:
        backup_marker = f"{backup}/{SUCCESS_MARKER}"
        if not self.fs.exists(backup_marker):
            return
        old = json.loads(self.fs.cat_file(backup_marker))
        for name in old["files"]:
            source = f"{backup}/{name}"
            if self.fs.exists(source):
                self.fs.cp_file(source, f"{self.path}/{name}")
        self.fs.write_text(f"{self.path}/{SUCCESS_MARKER}", json.dumps(old, indent=2))
        self._remove_if_exists(backup, recursive=True)

    def _read_marker(self) -> dict[str, Any] | None:
        marker = f"{self.path}/{SUCCESS_MARKER}"
        if not self.fs.exists(marker):
            return None
        return json.loads(self.fs.cat_file(marker))

    def _remote_names(self) -> list[str]:
        """Return the names of the files under the output folder, relative to it."""
        return [path[len(self.path) + 1 :] for path in self._find(self.path)]

    def _find(self, path: str) -> list[str]:
        try:
            return [p.rstrip("/") for p in self.fs.find(path)]
        except FileNotFoundError:
            return []

    def _list(self, path: str) -> list[str]:
        try:
            return [p.rstrip("/") for p in self.fs.ls(path, detail=False)]
        except FileNotFoundError:
            return []

    def _move(self, source: str, destination: str) -> None:
        if self.fs.exists(source):
            self.fs.cp_file(source, destination)
            self.fs.rm_file(source)

    def _remove_if_exists(self, path: str, recursive: bool = False) -> None:
        """Delete a file, or a folder with ``recursive``, taking ``[`` and ``*`` in names literally.

        fsspec's ``copy`` and ``rm`` expand glob characters, so only
        single-file operations are used on paths that may contain them.
        """
        if not self.fs.exists(path):
            return
        if not recursive:
            self.fs.rm_file(path)
        elif self.is_local:
            shutil.rmtree(path)
        else:
            for found in self._find(path):
                self.fs.rm_file(found)

    def _storage_error(self, action: str, exc: Exception) -> StorageError:
        if is_azure_url(self.url):
            translated = translate_error(exc, self.url, self.storage_options)
            if translated is not None:
                return StorageError(f"{action} the output {self.url} failed: {translated}")
        return StorageError(f"{action} the output {self.url} failed: {mask_text(str(exc))}")


def published_files(url: str, storage_options: dict[str, Any] | None = None) -> list[str] | None:
    """Return the files of the finished result at ``url``, or ``None`` while there is none.

    Readers of an object-store output call this before reading: a folder
    without ``_SUCCESS`` is being published or was never published.
    """
    fs, path = filesystem_for(url.rstrip("/"), storage_options)
    marker = f"{path.rstrip('/')}/{SUCCESS_MARKER}"
    if not fs.exists(marker):
        return None
    return list(json.loads(fs.cat_file(marker))["files"])


def _marker(run_id: str, names: list[str]) -> str:
    return json.dumps({"run_id": run_id, "files": sorted(set(names))}, indent=2)


def _check_name(name: str) -> None:
    parts = name.split("/")
    if not name or name.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"invalid output file name {name!r}; give a relative path without '.' or '..' parts")
    if parts[0].startswith(("_", ".")):
        raise ValueError(f"invalid output file name {name!r}; names starting with '_' or '.' are reserved")


def _check_only_own_files(url: str, names: list[str], own_files: list[str]) -> None:
    """Raise if the destination contains files that no sdpipe run wrote there."""
    own = set(own_files)
    foreign = sorted(n for n in names if n not in own and not n.split("/")[0].startswith(("_", ".")))
    if foreign:
        shown = ", ".join(repr(n) for n in foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        raise StorageError(
            f"the output folder {url} contains {len(foreign)} file(s) that no sdpipe run wrote ({shown}); "
            "sdpipe never replaces them, so choose an empty or new output folder"
        )


def _local_names(target: Path) -> list[str]:
    return [p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()]


def _local_marker_files(target: Path) -> list[str]:
    marker = target / SUCCESS_MARKER
    if not marker.is_file():
        return []
    try:
        return list(json.loads(marker.read_text())["files"])
    except (ValueError, KeyError):
        return []


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
