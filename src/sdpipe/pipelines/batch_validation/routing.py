"""Moving a checked batch out of the inbound folder without ever losing a file.

Each batch attempt goes to ``{output}/{valid|invalid}/{batch}/attempt-{n}/``.
The move is a journal plus copy, verify, delete:

1. ``_routing.json`` is written into the attempt folder first.  It lists
   every file with the size and SHA-256 that the checks saw.
2. Each file is copied, the copy is read back and compared (size and
   SHA-256), and only then is the inbound file deleted.  On a local disk
   the copy goes to a temporary name and is renamed into place, so a
   file under its final name is always complete.  On object stores a
   blob appears only when its upload is committed.
3. ``_report.json`` and ``_report.txt`` are written, then the journal is
   deleted.

A run killed at any point therefore leaves each file in the inbound
folder, in its destination (complete), or in both.  The next run finds
the journal and finishes the move (:func:`finish_interrupted`).  An
inbound file whose checksum differs from the journal's is a new upload
under the same name and is never deleted by that journal.
"""

from __future__ import annotations

import hashlib
import json
import logging
import posixpath
import uuid
from typing import Any

from sdpipe.errors import StorageError

logger = logging.getLogger(__name__)

JOURNAL = "_routing.json"
REPORT_JSON = "_report.json"
REPORT_TEXT = "_report.txt"
AREAS = ("valid", "invalid")
BLOCK_SIZE = 1024 * 1024


def checkpoint(event: str, path: str) -> None:
    """Mark a step of the routing protocol; tests replace this to kill a run at that step."""


def attempt_folder(root: str, area: str, batch: str, attempt: int) -> str:
    return f"{root}/{area}/{batch}/attempt-{attempt}"


def previous_attempts(fs, root: str) -> dict[str, int]:
    """Return, per batch name, the highest attempt number routed (or being routed) to an area.

    An attempt counts once its journal or report exists; an empty attempt
    folder left by a run killed before its journal was written does not.
    """
    found: dict[str, int] = {}
    for area in AREAS:
        for name in (JOURNAL, REPORT_JSON):
            for path in fs.glob(f"{root}/{area}/*/attempt-*/{name}"):
                parts = path.rstrip("/").split("/")
                batch, number = parts[-3], parts[-2].removeprefix("attempt-")
                if number.isdigit():
                    found[batch] = max(found.get(batch, 0), int(number))
    return found


def interrupted_journals(fs, root: str) -> list[str]:
    """Return the journals of attempts whose routing did not finish."""
    journals = []
    for area in AREAS:
        journals.extend(fs.glob(f"{root}/{area}/*/attempt-*/{JOURNAL}"))
    return sorted(journals)


def file_digest(fs, path: str) -> tuple[int, str]:
    """Return the size and SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    size = 0
    with fs.open(path, "rb") as handle:
        while block := handle.read(BLOCK_SIZE):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def route_batch(fs, inbound: str, folder: str, files: list[dict[str, Any]], report: dict[str, Any], text: str) -> None:
    """Move the batch's files into ``folder`` by the journal protocol; see the module docstring.

    Each entry of ``files`` contains ``name``, ``size`` and ``sha256`` of each file as checked.
    """
    journal = {"inbound": inbound, "folder": folder, "files": files, "report": report, "text": text}
    fs.makedirs(folder, exist_ok=True)
    _write_atomic(fs, f"{folder}/{JOURNAL}", json.dumps(journal, indent=2).encode("utf-8"))
    checkpoint("journal_written", folder)
    complete_journal(fs, journal)


def finish_interrupted(fs, journal_path: str) -> dict[str, Any]:
    """Finish the routing that ``journal_path`` describes; return the journal."""
    with fs.open(journal_path, "rb") as handle:
        journal = json.loads(handle.read().decode("utf-8"))
    logger.warning("finishing the interrupted routing of %s", journal["folder"])
    complete_journal(fs, journal)
    return journal


def complete_journal(fs, journal: dict[str, Any]) -> None:
    """Run steps 2 and 3 of the protocol; each step is skipped when already done."""
    folder = journal["folder"]
    for entry in journal["files"]:
        _move_verified(fs, f"{journal['inbound']}/{entry['name']}", f"{folder}/{entry['name']}", entry)

    _remove_partial_copies(fs, folder)
    _write_atomic(fs, f"{folder}/{REPORT_JSON}", json.dumps(journal["report"], indent=2).encode("utf-8"))
    _write_atomic(fs, f"{folder}/{REPORT_TEXT}", journal["text"].encode("utf-8"))
    checkpoint("report_written", folder)
    fs.rm(f"{folder}/{JOURNAL}")
    checkpoint("journal_removed", folder)


def _matches(fs, path: str, entry: dict[str, Any]) -> bool:
    try:
        if fs.size(path) != entry["size"]:
            return False
        return file_digest(fs, path) == (entry["size"], entry["sha256"])
    except FileNotFoundError:
        return False


def _move_verified(fs, source: str, target: str, entry: dict[str, Any]) -> None:
    if not _matches(fs, target, entry):
        if not _matches(fs, source, entry):
            if fs.exists(source):
                raise StorageError(
                    f"{source!r} changed after it was checked (size or SHA-256 differs); "
                    "it was left in place and will be checked again by the next run"
                )
            raise StorageError(
                f"{source!r} is missing and its copy {target!r} is missing or incomplete; "
                "restore the file into the inbound folder and run again"
            )
        _copy(fs, source, target)
        checkpoint("copied", target)
        if not _matches(fs, target, entry):
            raise StorageError(f"the copy {target!r} of {source!r} differs from the source after copying; nothing was deleted")
        checkpoint("verified", target)

    # Delete the source only when it is the very file that was copied, not a new upload.
    if fs.exists(source) and _matches(fs, source, entry):
        fs.rm(source)
        checkpoint("source_deleted", source)


def _is_local(fs) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    return bool({"file", "local"} & set(protocols))


def _copy(fs, source: str, target: str) -> None:
    """Copy a file; on a local disk via a temporary name so the final name is never partial."""
    staging = posixpath.join(posixpath.dirname(target), f".{posixpath.basename(target)}.partial-{uuid.uuid4().hex[:8]}")
    destination = staging if _is_local(fs) else target
    with fs.open(source, "rb") as reader, fs.open(destination, "wb") as writer:
        while block := reader.read(BLOCK_SIZE):
            writer.write(block)
    if destination != target:
        fs.mv(destination, target)


def _remove_partial_copies(fs, folder: str) -> None:
    """Delete temporary copies that a run killed while copying left behind."""
    for path in fs.glob(f"{folder}/.*.partial-*"):
        fs.rm(path)


def _write_atomic(fs, path: str, data: bytes) -> None:
    if _is_local(fs):
        staging = posixpath.join(posixpath.dirname(path), f".{posixpath.basename(path)}.partial-{uuid.uuid4().hex[:8]}")
        fs.pipe_file(staging, data)
        fs.mv(staging, path)
    else:
        fs.pipe_file(path, data)
