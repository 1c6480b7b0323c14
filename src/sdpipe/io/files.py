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

from sdpipe.errors import ConfigError, InputError, MissingDependencyError, NoInputError, StorageError
from sdpipe.io.secrets import mask_text
from sdpipe.io.storage import (
    account_name_of,
    adlfs_kwargs,
    blob_endpoint_of,
    check_endpoint_reachable,
    container_of,
    is_azure_url,
    protocol_of,
    resolve_storage_options,
    translate_error,
)

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
    """Return ``(filesystem, path)`` for a URL, with a clear error for unknown backends.

    Azure URLs get their options resolved and their endpoint checked first
    (see :mod:`sdpipe.io.storage`).
    """
    options: dict[str, Any] = dict(storage_options or {})
    if is_azure_url(urlpath):
        options = resolve_storage_options(urlpath, options)
        check_endpoint_reachable(options)
        options = adlfs_kwargs(options)
    try:
        if is_azure_url(urlpath):
            return _azure_filesystem(urlpath, options)
        return url_to_fs(urlpath, **options)
    except ImportError as exc:
        raise MissingDependencyError(f"cannot open {urlpath!r}: {_install_hint(protocol_of(urlpath), exc)}") from exc
    except ValueError as exc:
        if "Protocol not known" in str(exc):
            protocol = protocol_of(urlpath)
            raise MissingDependencyError(
                f"cannot open {urlpath!r}: no fsspec backend is known for {protocol!r}://; "
                "check the URL's scheme or install the package that provides it"
            ) from exc
        if is_azure_url(urlpath):
            raise ConfigError(f"cannot open {urlpath!r}: {mask_text(str(exc))}") from exc
        raise


def _azure_filesystem(urlpath: str, kwargs: dict[str, Any]):
    """Return ``(filesystem, path)`` for an Azure URL as ``url_to_fs`` does, on a filesystem that creates containers."""
    from sdpipe.io.azure_filesystem import ContainerCreatingFileSystem as filesystem_class

    options = filesystem_class._get_kwargs_from_urls(urlpath)
    options.update(kwargs)
    fs = filesystem_class(**options)
    return fs, fs._strip_protocol(urlpath)


def _install_hint(protocol: str, exc: ImportError) -> str:
    known = known_implementations.get(protocol, {})
    package = known.get("class", "").split(".", 1)[0]
    hint = known.get("err") or str(exc)
    if package and package != "fsspec":
        hint = f"{hint} (pip install {package})"
    return hint


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
        paths = _matching_paths(fs, path)
        if not paths and is_azure_url(urlpath) and not fs.exists(container_of(urlpath)):
            options = resolve_storage_options(urlpath, storage_options)
            raise NoInputError(
                f"container {container_of(urlpath)!r} not found for {urlpath!r} "
                f"in account {account_name_of(options)!r} at {blob_endpoint_of(options)}"
            )
        found = [_describe(fs, p) for p in sorted(paths)]
    except PermissionError as exc:
        raise StorageError(f"permission denied while listing {urlpath!r}: {exc}") from exc
    except Exception as exc:
        translated = _translated(exc, urlpath, storage_options)
        if translated is None:
            raise
        raise translated from exc

    if not found:
        raise NoInputError(
            f"no input file matches {urlpath!r}; check the path or glob pattern "
            "(quote it so that the shell does not expand it)"
        )
    return found


def _matching_paths(fs: fsspec.AbstractFileSystem, path: str) -> list[str]:
    try:
        if fs.isfile(path):
            return [path]
        if fs.isdir(path):
            root = path.rstrip("/")
            return [p for p in fs.find(path) if not _is_hidden(p, root)]
        if any(ch in path for ch in GLOB_CHARACTERS):
            matches = fs.glob(path) or _glob_in_literal_folder(fs, path)
            return [p for p in matches if fs.isfile(p)]
    except FileNotFoundError:
        pass
    return []


def _glob_in_literal_folder(fs: fsspec.AbstractFileSystem, path: str) -> list[str]:
    """Glob the last part of ``path`` in a folder whose name contains ``[`` or ``]`` literally.

    fsspec reads ``[x]`` as a character class, so ``data [x]/*.csv`` would
    match nothing; an existing folder's brackets are escaped as ``[[]`` and ``[]]``.
    """
    folder, _, name = path.rpartition("/")
    if not ("[" in folder or "]" in folder) or not fs.isdir(folder):
        return []
    escaped = "".join(f"[{ch}]" if ch in "[]" else ch for ch in folder)
    return fs.glob(f"{escaped}/{name}")


def _translated(exc: Exception, urlpath: str, storage_options: dict[str, Any] | None) -> Exception | None:
    """Return the sdpipe error for an Azure SDK error, or None to re-raise ``exc``."""
    if not is_azure_url(urlpath):
        return None
    return translate_error(exc, urlpath, resolve_storage_options(urlpath, storage_options))


def _is_hidden(path: str, root: str) -> bool:
    """Tell whether a file found under a folder is in a ``.``- or ``_``-prefixed file or folder.

    sdpipe's staging areas and markers (``_staging``, ``_SUCCESS``) and the
    hidden files of other tools are skipped.  Only the part below ``root``
    counts, so an input folder may itself start with ``_``.
    """
    relative = path[len(root) :].lstrip("/") if path.startswith(root) else path.rsplit("/", 1)[-1]
    return any(part.startswith((".", "_")) for part in relative.split("/"))


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
