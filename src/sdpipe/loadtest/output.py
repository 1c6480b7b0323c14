"""Writing of load-test logs (consumer records, producer log, poison log) to fsspec URLs.

Each file is written whole: on a local disk it is written under a hidden
temporary name and renamed, and on blob storage the upload is committed when
the file is closed, so a reader (or a restarted consumer) never sees half a
file.  Hidden names start with ``.``, which sdpipe's input expansion skips.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from typing import Any, Callable

from sdpipe.errors import InputError, StorageError
from sdpipe.io.files import filesystem_for
from sdpipe.loadtest.records import to_json_lines

logger = logging.getLogger(__name__)

RECORDS_FOLDER = "records"
POISON_FOLDER = "poison"
PRODUCER_FOLDER = "producer"
NOT_SENT_FOLDER = "not-sent"


def join_url(base: str, *parts: str) -> str:
    """Join URL path parts with ``/`` (fsspec URLs use ``/`` on every platform)."""
    return "/".join([base.rstrip("/"), *parts])


class JsonLinesWriter:
    """Writes lists of records as whole JSON-lines files below one folder URL."""

    def __init__(self, folder: str, storage_options: dict[str, Any] | None = None, *, mask: Callable[[str], str] = str):
        self.folder = folder.rstrip("/")
        self.mask = mask
        self.fs, self.path = filesystem_for(self.folder, storage_options)
        protocols = self.fs.protocol if isinstance(self.fs.protocol, (tuple, list)) else (self.fs.protocol,)
        self.is_local = bool({"file", "local"} & set(protocols))

    def write(self, name: str, records: list[dict[str, Any]]) -> str:
        """Write ``records`` to file ``name`` in the folder and return the file's URL."""
        data = to_json_lines(records)
        target = f"{self.path}/{name}"
        try:
            self.fs.makedirs(self.path, exist_ok=True)
            if self.is_local:
                temporary = f"{self.path}/.{name}.{uuid.uuid4().hex[:8]}.tmp"
                with open(temporary, "wb") as handle:
                    handle.write(data)
                os.replace(temporary, target)
            else:
                with self.fs.open(target, "wb") as handle:
                    handle.write(data)
        except OSError as exc:
            url = join_url(self.folder, name)
            raise StorageError(f"writing {len(records)} records to {url!r} failed: {self.mask(str(exc))}") from exc
        logger.debug("wrote %d records to %s", len(records), join_url(self.folder, name))
        return join_url(self.folder, name)

    def read_all(self, suffix: str = ".jsonl") -> list[dict[str, Any]]:
        """Read every record of the folder's visible ``*.jsonl`` files (none if the folder does not exist)."""
        try:
            if not self.fs.exists(self.path):
                return []
            paths = sorted(p for p in self.fs.find(self.path) if p.endswith(suffix) and not p.rsplit("/", 1)[-1].startswith("."))
            records: list[dict[str, Any]] = []
            for path in paths:
                with self.fs.open(path, "rb") as handle:
                    text = handle.read().decode("utf-8")
                records.extend(_parse_lines(text, path))
        except OSError as exc:
            raise StorageError(f"reading the records in {self.folder!r} failed: {self.mask(str(exc))}") from exc
        return records


def _parse_lines(text: str, path: str) -> list[dict[str, Any]]:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise InputError(
                f"{path!r} line {number} is not JSON ({exc.msg}); remove or repair the file, "
                "which a load-test consumer did not write"
            ) from exc
    return records
