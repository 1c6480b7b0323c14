"""Expansion of input URL paths (local paths, globs, fsspec URLs) into files."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import fsspec
from fsspec.core import url_to_fs
from fsspec.registry import known_implementations

from sdpipe.errors import InputError, MissingDependencyError, NoInputError, StorageError

logger = logging.getLogger(__name__)

GLOB_CHARACTERS = "*?["


@dataclass(frozen=True)
class InputFile:
    """One input file: its URL, size in bytes and version stamp (etag or mtime)."""

    url: str
    size: int
    modified: str | None = None
    etag: str | None = None

    def describe(self) -> dict[str, Any]:
        """Return the file's entry for manifests and ``--json`` output."""
        return {"url": self.url, "size": self.size, "modified": self.modified, "etag": self.etag}


def filesystem_for(urlpath: str, storage_options: dict[str, Any] | None = None):
    """Return ``(filesystem, path)`` for a URL, with a clear error for unknown backends."""
    try:
        return url_to_fs(urlpath, **(storage_options or {}))
    except ImportError as exc:
        protocol = urlpath.split("://", 1)[0]
        hint = known_implementations.get(protocol, {}).get("err") or str(exc)
        raise MissingDependencyError(f"cannot open {urlpath!r}: {hint}") from exc
    except ValueError as exc:
        if "Protocol not known" in str(exc):
            protocol = urlpath.split("://", 1)[0]
            raise MissingDependencyError(
                f"cannot open {urlpath!r}: no fsspec backend is known for {protocol!r}://"
            ) from exc
        raise


def expand_inputs(
    urlpaths: str | Sequence[str], storage_options: dict[str, Any] | None = None
) -> list[InputFile]:
    """Expand paths, glob patterns and URLs into a sorted list of distinct files.

    A path that exists as written is taken literally even if it contains
    ``[`` or ``]``; otherwise glob characters are expanded.  A pattern that
    matches nothing raises :class:`NoInputError`.
    """
    if isinstance(urlpaths, str):
        urlpaths = [urlpaths]
    if not urlpaths:
        raise NoInputError("no input given; pass --input PATH (a file, a glob pattern or a URL)")

    files: dict[str, InputFile] = {}
    for urlpath in urlpaths:
        for found in _expand_one(urlpath, storage_options):
            files.setdefault(found.url, found)
    return sorted(files.values(), key=lambda f: f.url)


def _expand_one(urlpath: str, storage_options: dict[str, Any] | None) -> list[InputFile]:
    fs, path = filesystem_for(urlpath, storage_options)
    try:
        if fs.isfile(path):
            paths = [path]
        elif fs.isdir(path):
            paths = [p for p in fs.find(path) if not _is_hidden(p)]
        elif any(ch in path for ch in GLOB_CHARACTERS):
            paths = [p for p in fs.glob(path) if fs.isfile(p)]
        else:
            paths = []
    except FileNotFoundError:
        paths = []
    except PermissionError as exc:
        raise StorageError(f"permission denied while listing {urlpath!r}: {exc}") from exc

    if not paths:
        raise NoInputError(
            f"no input file matches {urlpath!r}; check the path or glob pattern "
            "(quote it so that the shell does not expand it)"
        )
    return [_describe(fs, p) for p in sorted(paths)]


def _is_hidden(path: str) -> bool:
    return any(part.startswith((".", "_")) for part in path.split("/")[-1:])


def _describe(fs: fsspec.AbstractFileSystem, path: str) -> InputFile:
    try:
        info = fs.info(path)
    except FileNotFoundError as exc:
        raise InputError(f"input file {path!r} disappeared while it was listed") from exc

    url = fs.unstrip_protocol(path) if _is_remote(fs) else path
    modified = info.get("mtime") or info.get("last_modified") or info.get("LastModified")
    if isinstance(modified, (int, float)):
        modified = datetime.fromtimestamp(modified, tz=timezone.utc).isoformat()
    elif modified is not None and not isinstance(modified, str):
        modified = modified.isoformat() if hasattr(modified, "isoformat") else str(modified)
    etag = info.get("etag") or info.get("ETag")
    return InputFile(url=url, size=int(info.get("size") or 0), modified=modified, etag=etag)


def _is_remote(fs: fsspec.AbstractFileSystem) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    return not ({"file", "local"} & set(protocols))
