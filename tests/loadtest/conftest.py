"""Fixtures of the queue load-test tests (Azurite itself comes from tests/azurite.py)."""

from __future__ import annotations

import uuid

import pytest

from sdpipe.loadtest import QueueSettings


@pytest.fixture
def queue_settings(azurite_queue) -> QueueSettings:
    """Settings that reach the Azurite queue service with its connection string."""
    return QueueSettings(connection_string=azurite_queue.connection_string)


@pytest.fixture
def queue_prefix() -> str:
    """A queue-name prefix no other test uses."""
    return f"lt{uuid.uuid4().hex[:10]}"
