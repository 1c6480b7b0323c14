"""Backends for the storage test suite: the same tests run on local files and on Azurite.

``backend`` is parametrized over ``local`` and ``azurite``.  Each test gets a
fresh folder (a tmp_path, or a new container on Azurite) and a small API to
put, read and list files without going through sdpipe.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.azurite import AzuriteService, unique_name
from tests.io import network_guard


@dataclass
class Backend:
    """A folder that sdpipe addresses by ``url(...)`` and the test inspects directly."""

    name: str
    root: str
    storage_options: dict[str, Any] = field(default_factory=dict)
    local_root: Path | None = None
    service: AzuriteService | None = None
    container: str | None = None

    def url(self, relative: str = "") -> str:
        return f"{self.root}/{relative}" if relative else self.root

    def put(self, relative: str, data: bytes) -> None:
        if self.local_root is not None:
            path = self.local_root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        else:
            client = self.service.blob_client().get_blob_client(self.container, relative)
            client.upload_blob(data, overwrite=True)

    def read(self, relative: str) -> bytes:
        if self.local_root is not None:
            return (self.local_root / relative).read_bytes()
        return self.service.blob_client().get_blob_client(self.container, relative).download_blob().readall()

    def exists(self, relative: str) -> bool:
        if self.local_root is not None:
            return (self.local_root / relative).exists()
        return self.service.blob_client().get_blob_client(self.container, relative).exists()

    def files(self, prefix: str = "") -> list[str]:
        """Return every file below ``prefix``, relative to the backend's root, sorted."""
        if self.local_root is not None:
            base = self.local_root / prefix if prefix else self.local_root
            if not base.exists():
                return []
            return sorted(p.relative_to(self.local_root).as_posix() for p in base.rglob("*") if p.is_file())
        container = self.service.blob_client().get_container_client(self.container)
        return sorted(blob.name for blob in container.list_blobs(name_starts_with=prefix or None))


@pytest.fixture(params=["local", "azurite"], ids=["local", "azurite"])
def backend(request, tmp_path) -> Backend:
    if request.param == "local":
        return Backend("local", str(tmp_path), local_root=tmp_path)
    return request.getfixturevalue("azurite_backend")


@pytest.fixture
def azurite_backend(azurite_blob) -> Backend:
    """A new container on Azurite, reached with the connection string."""
    container = unique_name("suite")
    azurite_blob.blob_client().create_container(container)
    return Backend(
        "azurite", f"az://{container}", dict(azurite_blob.storage_options), service=azurite_blob, container=container
    )


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch) -> None:
    """Block every connection to a host other than 127.0.0.1 during the storage tests."""
    network_guard.install(monkeypatch.setattr)
