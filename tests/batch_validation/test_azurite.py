"""batch-validation on Azure Blob storage (az://), against Azurite on 127.0.0.1."""

from __future__ import annotations

import pytest

from batch_validation_helpers import REQUIRED, valid_file
from sdpipe.pipelines.batch_validation.api import run_batch_validation
from tests.azurite import unique_name


@pytest.mark.azurite
def test_routing_on_azurite(azurite_blob, azure_clean_env):
    container = unique_name("drop")
    client = azurite_blob.blob_client()
    client.create_container(container)
    files = {}
    for batch, bad in (("good_20240102_0930", False), ("bad_20240102_0930", True)):
        for file_type in REQUIRED:
            data = b'"x"\n' if bad and file_type == "type2" else valid_file(file_type)
            name = f"{batch}_{file_type}.csv"
            client.get_blob_client(container, f"inbound/{name}").upload_blob(data)
            files[name] = data
    client.get_blob_client(container, "inbound/notes.txt").upload_blob(b"hello")

    report = run_batch_validation(f"az://{container}/inbound", storage_options=azurite_blob.storage_options)

    statuses = {e["batch"]: e["status"] for e in report.result_records()}
    assert statuses == {"good_20240102_0930": "valid", "bad_20240102_0930": "invalid"}
    assert [item["file"] for item in report.to_dict()["unmatched"]] == ["notes.txt"]
    blobs = {b.name for b in client.get_container_client(container).list_blobs()}
    assert {b for b in blobs if b.startswith("inbound/")} == {"inbound/notes.txt"}
    for name, data in files.items():
        area = "valid" if name.startswith("good") else "invalid"
        batch = name.rsplit("_", 1)[0]
        path = f"{area}/{batch}/attempt-1/{name}"
        assert client.get_blob_client(container, path).download_blob().readall() == data
    assert "valid/good_20240102_0930/attempt-1/_report.json" in blobs
    assert not any(b.endswith("_routing.json") for b in blobs)

    rerun = run_batch_validation(f"az://{container}/inbound", storage_options=azurite_blob.storage_options)
    assert rerun.result_records() == []
