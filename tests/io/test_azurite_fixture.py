"""The Azurite fixtures themselves: each service responds on 127.0.0.1 with the development account."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.azurite import DEV_ACCOUNT_NAME, unique_name

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
