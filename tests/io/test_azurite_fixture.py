"""The Azurite fixtures and the documented Azurite commands: each service serves the SDKs on 127.0.0.1."""

from __future__ import annotations

import shlex
import subprocess
from urllib.parse import urlsplit

import pytest

from tests.azurite import (
    DEV_ACCOUNT_NAME,
    REPO_ROOT,
    AzuriteService,
    _wait_until_answering,
    free_port,
    unique_name,
)

pytestmark = pytest.mark.azurite


def test_blob_service_round_trip(azurite_blob):
    container = azurite_blob.blob_client().create_container(unique_name("fixture"))
    container.upload_blob("a.txt", b"hello")

    assert container.download_blob("a.txt").readall() == b"hello"
    assert urlsplit(azurite_blob.endpoint).hostname == "127.0.0.1"
    assert azurite_blob.endpoint.endswith(f"/{DEV_ACCOUNT_NAME}")
    assert f"BlobEndpoint={azurite_blob.endpoint};" in azurite_blob.connection_string


def test_queue_service_round_trip(azurite_queue):
    queue = azurite_queue.queue_client().create_queue(unique_name("fixture"))
    queue.send_message("first")

    messages = [message.content for message in queue.receive_messages()]

    assert messages == ["first"]
    assert urlsplit(azurite_queue.endpoint).hostname == "127.0.0.1"
    assert f"QueueEndpoint={azurite_queue.endpoint};" in azurite_queue.connection_string


def test_https_service_trusts_own_certificate(azurite_blob_https):
    client = azurite_blob_https.blob_client()
    client.create_container(unique_name("fixture"))

    assert azurite_blob_https.endpoint.startswith("https://127.0.0.1:")
    assert azurite_blob_https.ca_file is not None


DOCUMENTS = ("README.md", "docs/azure.md", "docs/load-test.md")


def documented_commands() -> list[tuple[str, str]]:
    """Return ``(where, command)`` for every Azurite command line in the docs, continuation lines joined."""
    found = []
    for document in DOCUMENTS:
        lines = (REPO_ROOT / document).read_text().splitlines()
        for number, line in enumerate(lines, start=1):
            if not line.startswith("node_modules/.bin/azurite-"):
                continue
            command, index = line, number
            while command.endswith("\\"):
                command = command[:-1] + lines[index]
                index += 1
            found.append((f"{document}:{number}", command.strip().removesuffix("&").strip()))
    return found


def test_every_document_has_an_azurite_command():
    assert sorted({where.split(":")[0] for where, _ in documented_commands()}) == sorted(DOCUMENTS)


@pytest.mark.parametrize("where, command", documented_commands(), ids=[where for where, _ in documented_commands()])
def test_documented_command_serves_the_sdk(where, command, tmp_path):
    words = shlex.split(command)
    kind = words[0].rsplit("azurite-", 1)[1]
    port = free_port()
    words[words.index(f"--{kind}Port") + 1] = str(port)  # the documented port may be taken on this machine
    service = AzuriteService(kind, port)

    with open(tmp_path / "azurite.log", "wb") as log:
        process = subprocess.Popen(words, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        assert _wait_until_answering(process, service), (tmp_path / "azurite.log").read_text()
        if kind == "blob":
            container = service.blob_client().create_container(unique_name("documented"))
            container.upload_blob("a.txt", b"hello")
            assert container.download_blob("a.txt").readall() == b"hello"
        else:
            queue = service.queue_client().create_queue(unique_name("documented"))
            queue.send_message("first")
            assert [message.content for message in queue.receive_messages()] == ["first"]
    finally:
        process.terminate()
        process.wait(timeout=10)
