"""The Python API of batch-validation holds the same lock as the CLI."""

from __future__ import annotations

import threading

import pytest
from batch_validation_helpers import tree_digest, write_batch

import sdpipe
from sdpipe.errors import LockHeldError
from sdpipe.locking import output_lock


def test_api_run_rejected_while_locked(tmp_path):
    inbound = tmp_path / "drop" / "inbound"
    write_batch(inbound, "cust1_20240101_0900")
    before = tree_digest(tmp_path)
    held, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        # The parent of the inbound folder is where routing writes, so that is what is locked.
        with output_lock(str(tmp_path / "drop")):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    held.wait(30)
    try:
        with pytest.raises(LockHeldError):
            sdpipe.run_batch_validation(str(inbound))
    finally:
        release.set()
        holder.join()

    assert tree_digest(tmp_path) == before
    report = sdpipe.run_batch_validation(str(inbound))
    assert [entry["status"] for entry in report.result_records()] == ["valid"]
