"""message-timing on records stored in Azure Blob storage (Azurite) equals the run on local files."""

from __future__ import annotations

import pandas as pd
import pytest

from sdpipe.generate.messages import RunSpec, generate_records, write_jsonl, write_producer_log
from sdpipe.pipelines.message_timing.api import run_message_timing
from tests.azurite import unique_name

pytestmark = pytest.mark.azurite


def test_blob_records_equal_local(azurite_blob, azure_clean_env, tmp_path):
    generated = generate_records(
        [RunSpec("sb", "ServiceBus", 600, sessions=3, duplicate_rate=0.05, loss_rate=0.05, reorder_rate=0.05),
         RunSpec("q", "Queue", 400, loss_rate=0.05, start="2024-05-01T11:00:00")],
        seed=9,
    )
    half = len(generated.records) // 2
    local = [write_jsonl(generated.records.iloc[:half], tmp_path / "a.jsonl"),
             write_jsonl(generated.records.iloc[half:], tmp_path / "b.jsonl")]
    sent = write_producer_log(generated.sent, tmp_path / "sent.csv")

    container = unique_name("messages")
    client = azurite_blob.blob_client()
    client.create_container(container)
    for path in [*local, sent]:
        client.get_blob_client(container, f"logs/{path.name}").upload_blob(path.read_bytes())

    options = azurite_blob.storage_options
    remote = run_message_timing(
        f"az://{container}/logs/*.jsonl", producer_log=f"az://{container}/logs/sent.csv",
        output=f"az://{container}/result", storage_options=options, scheduler="synchronous", blocksize=8192,
    )
    on_disk = run_message_timing(str(tmp_path / "*.jsonl"), producer_log=str(sent), scheduler="synchronous")

    pd.testing.assert_frame_equal(remote.result, on_disk.result)
    assert remote.counts["records"] == len(generated.records)
    names = {blob.name for blob in client.get_container_client(container).list_blobs(name_starts_with="result/")}
    assert {"result/result.parquet", "result/timeseries.parquet", "result/timeseries.png", "result/_SUCCESS"} <= names
