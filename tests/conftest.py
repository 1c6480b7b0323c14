"""Fixtures shared by the whole test suite.

The real trip records and customer files live outside the repository, in
``../shared/data/real`` by default; ``SDPIPE_REAL_DATA`` points elsewhere.
With ``SDPIPE_REQUIRE_REAL_DATA=1`` (set by .ci/run) a missing folder fails
the tests that need it instead of skipping them.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

# Azurite fixtures: azurite_blob, azurite_blob_https, azurite_queue, azure_clean_env (see tests/azurite.py).
from tests.azurite import azure_clean_env, azurite_blob, azurite_blob_https, azurite_queue  # noqa: F401

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REAL_DATA = REPO_ROOT.parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def real_data() -> Path:
    """Folder of the real public data sets (read-only: copy before changing anything)."""
    folder = Path(os.environ.get("SDPIPE_REAL_DATA", DEFAULT_REAL_DATA))
    if not folder.is_dir():
        message = f"real data folder {folder} not found; set SDPIPE_REAL_DATA"
        if os.environ.get("SDPIPE_REQUIRE_REAL_DATA") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return folder


@pytest.fixture(autouse=True)
def isolated_secret_registry():
    """Forget secrets that a test registered, so that masking in one test never depends on another."""
    from sdpipe.io import secrets

    with secrets._registered_lock:
        before = set(secrets._registered)
    yield
    with secrets._registered_lock:
        secrets._registered.clear()
        secrets._registered.update(before)


@pytest.fixture(autouse=True)
def restored_root_logging():
    """Remove the root log handlers that a test's in-process CLI run installed, and restore the level.

    The CLI installs a handler on the ``sys.stderr`` of that moment, which pytest
    closes after the test, so a later test's log record would fail with
    "I/O operation on closed file".  pytest's own capture handlers stay.
    """
    root = logging.getLogger()
    before = set(root.handlers)
    level = root.level
    yield
    for handler in list(root.handlers):
        if handler not in before and not type(handler).__module__.startswith("_pytest"):
            root.removeHandler(handler)
    root.setLevel(level)
