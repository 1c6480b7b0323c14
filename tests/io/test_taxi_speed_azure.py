"""taxi-speed end to end with input and output on Azurite, against local files and a pandas reference."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from sdpipe.cli.errors import run_with_exit_codes
from sdpipe.cli.main import cli
from tests.azurite import unique_name

pytestmark = [pytest.mark.azurite, pytest.mark.realdata]

SOURCE_FOLDER = "great_expectations_taxi_samples"
SOURCE_FILES = ("yellow_tripdata_sample_2019-01.csv", "yellow_tripdata_sample_2019-02.csv")
RELATIVE = 1e-9


def reference_by_date(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Compute taxi-speed's definition with plain pandas: valid trips, mean speed and miles / hours per date."""
    trips = pd.concat(frames, ignore_index=True)
    pickup = pd.to_datetime(trips["pickup_datetime"], errors="coerce", format="%Y-%m-%d %H:%M:%S")
    dropoff = pd.to_datetime(trips["dropoff_datetime"], errors="coerce", format="%Y-%m-%d %H:%M:%S")
    distance = pd.to_numeric(trips["trip_distance"], errors="coerce")
    hours = (dropoff - pickup).dt.total_seconds() / 3600
    speed = distance / hours
    valid = pickup.notna() & dropoff.notna() & distance.notna()
    valid &= (distance > 0) & (hours > 0) & (hours <= 24) & (speed <= 100)

    table = pd.DataFrame({"date": pickup[valid].dt.strftime("%Y-%m-%d"), "speed": speed[valid], "miles": distance[valid], "hours": hours[valid]})
    grouped = table.groupby("date")
    return pd.DataFrame(
        {
            "trips": grouped.size(),
            "mean_speed_mph": grouped["speed"].mean(),
            "distance_weighted_speed_mph": grouped["miles"].sum() / grouped["hours"].sum(),
        }
    ).reset_index()


def _run(args: list[str], capsys) -> dict:
    code = run_with_exit_codes(cli, ["run", "taxi-speed", *args, "--json", "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    return json.loads(captured.out)


def _assert_same_table(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(actual["date"].astype(str)) == list(expected["date"].astype(str))
    assert list(actual["trips"]) == list(expected["trips"])
    for column in ("mean_speed_mph", "distance_weighted_speed_mph"):
        np.testing.assert_allclose(actual[column].to_numpy(), expected[column].to_numpy(), rtol=RELATIVE, atol=0)


def test_azurite_equals_local_and_reference(real_data, azurite_blob, azure_clean_env, tmp_path, capsys):
    sources = [real_data / SOURCE_FOLDER / name for name in SOURCE_FILES]
    local_inputs = tmp_path / "in"
    local_inputs.mkdir()
    for source in sources:
        shutil.copy(source, local_inputs / source.name)
    container = unique_name("taxi")
    container_client = azurite_blob.blob_client().create_container(container)
    for number, source in enumerate(sources, start=1):
        # Spaces and brackets in blob names, as users' folders have them.
        container_client.upload_blob(f"trips 2019/yellow [{number:02d}].csv", source.read_bytes())
    storage = ["--storage-option", f"connection_string={azurite_blob.connection_string}"]

    local = _run(["-i", str(local_inputs / "*.csv"), "-o", str(tmp_path / "out")], capsys)
    remote = _run(
        ["-i", f"az://{container}/trips 2019/*.csv", "-o", f"az://{container}/results/speed", "--blocksize", "262144", *storage],
        capsys,
    )

    assert remote["counts"] == local["counts"]
    assert remote["counts"]["files"] == 2
    assert remote["output"] == f"az://{container}/results/speed"
    _assert_same_table(pd.DataFrame(remote["result"]), pd.DataFrame(local["result"]))

    remote_csv = container_client.get_blob_client("results/speed/result.csv").download_blob().readall()
    local_csv = (tmp_path / "out" / "result.csv").read_bytes()
    _assert_same_table(pd.read_csv(io.BytesIO(remote_csv)), pd.read_csv(io.BytesIO(local_csv)))

    reference = reference_by_date([pd.read_csv(source, dtype=str) for source in sources])
    _assert_same_table(pd.DataFrame(remote["result"]), reference)
    assert remote["counts"]["valid"] == int(reference["trips"].sum())

    blobs = sorted(b.name for b in container_client.list_blobs())
    assert "results/speed/_SUCCESS" in blobs
    assert not [name for name in blobs if "_staging" in name or "_previous" in name]
    assert [name for name in blobs if name.startswith("trips 2019/")] == ["trips 2019/yellow [01].csv", "trips 2019/yellow [02].csv"]
    manifest = json.loads(container_client.get_blob_client("results/speed/manifest.json").download_blob().readall())
    assert [entry["url"] for entry in manifest["inputs"]] == [
        f"abfs://{container}/trips 2019/yellow [01].csv",
        f"abfs://{container}/trips 2019/yellow [02].csv",
    ]
