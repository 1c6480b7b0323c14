"""Output containers on Azurite: created when missing, through the library and the CLI; inputs never are."""

from __future__ import annotations

import json

import pytest

from sdpipe.cli.errors import run_with_exit_codes
from sdpipe.cli.main import cli
from sdpipe.errors import NoInputError
from sdpipe.io.files import expand_inputs
from sdpipe.io.publish import OutputFolder
from tests.azurite import unique_name

pytestmark = pytest.mark.azurite

TRIPS_2017 = (
    "VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,passenger_count,trip_distance,RatecodeID,"
    "store_and_fwd_flag,PULocationID,DOLocationID,payment_type,fare_amount,extra,mta_tax,tip_amount,"
    "tolls_amount,improvement_surcharge,total_amount\n"
    "2,2017-01-17 12:00:00,2017-01-17 12:30:00,1,5.0,1,N,75,201,1,8.11,0,0.5,0,0,0.3,8.91\n"
    "2,2017-01-17 13:00:00,2017-01-17 14:00:00,1,10.0,1,N,83,88,1,12.62,0,0.5,2.27,0,0.3,15.69\n"
)


def container_names(service) -> list[str]:
    return sorted(container.name for container in service.blob_client().list_containers())


def test_publish_creates_missing_container(azurite_blob, azure_clean_env):
    container = unique_name("created")

    with OutputFolder(f"az://{container}/speed", azurite_blob.storage_options, run_id="run1") as folder:
        folder.write_text("result.csv", "x\n")
        folder.publish()

    assert container in container_names(azurite_blob)
    blobs = sorted(blob.name for blob in azurite_blob.blob_client().get_container_client(container).list_blobs())
    assert blobs == ["speed/_SUCCESS", "speed/result.csv"]


def test_missing_input_container_not_created(azurite_blob, azure_clean_env):
    container = unique_name("absent")

    with pytest.raises(NoInputError, match=rf"^container '{container}' not found"):
        expand_inputs(f"az://{container}/*.csv", azurite_blob.storage_options)

    assert container not in container_names(azurite_blob)


def test_cli_run_creates_output_container(azurite_blob, azure_clean_env, capsys):
    inputs = unique_name("trips")
    outputs = unique_name("trips-out")
    azurite_blob.blob_client().create_container(inputs).upload_blob("2017-01.csv", TRIPS_2017.encode())
    azure_clean_env.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite_blob.connection_string)

    code = run_with_exit_codes(
        cli, ["run", "taxi-speed", "-i", f"az://{inputs}/*.csv", "-o", f"az://{outputs}/speed", "--json", "--quiet"]
    )

    captured = capsys.readouterr()
    assert code == 0, captured.err
    document = json.loads(captured.out)
    # Both trips are valid by definition: 10 mph and 10 mph on 2017-01-17.
    assert document["counts"]["valid"] == 2
    assert [row["date"] for row in document["result"]] == ["2017-01-17"]
    marker = azurite_blob.blob_client().get_blob_client(outputs, "speed/_SUCCESS").download_blob().readall()
    published = json.loads(marker)["files"]
    blobs = sorted(blob.name for blob in azurite_blob.blob_client().get_container_client(outputs).list_blobs())
    assert blobs == sorted(["speed/_SUCCESS", *(f"speed/{name}" for name in published)])
