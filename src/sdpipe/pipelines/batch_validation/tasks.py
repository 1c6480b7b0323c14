"""The Dask task of batch-validation: read one file and check it.

It runs on Dask workers, so it takes and returns only picklable values.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sdpipe.io.files import filesystem_for
from sdpipe.pipelines.batch_validation.checks import FileCheck, check_blocks
from sdpipe.pipelines.batch_validation.spec import TypeSpec

BLOCK_SIZE = 1024 * 1024


def check_file(path: str, name: str, spec: TypeSpec, storage_options: dict[str, Any] | None,
               max_errors: int, url: str) -> FileCheck:
    """Stream the file at ``path`` (on the filesystem of ``url``) through the checks of its type.

    A file that cannot be read is returned with ``read_error`` set rather
    than raised, so one vanished file does not stop the other batches.
    """
    fs, _ = filesystem_for(url, storage_options)
    try:
        with fs.open(path, "rb") as handle:
            return check_blocks(_blocks(handle), name, spec, max_errors=max_errors)
    except OSError as exc:
        check = FileCheck(file=name, file_type=spec.name, cap=max_errors)
        check.read_error = f"cannot read {name!r}: {exc}"
        return check


def _blocks(handle) -> Iterator[bytes]:
    while block := handle.read(BLOCK_SIZE):
        yield block
