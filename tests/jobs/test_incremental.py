"""Incremental reruns of taxi-speed: up to date, one new month, dropped inputs, changed options."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pandas.testing as pdt

from tests.jobs.conftest import MONTHS, add_month


def expected_daily(files: list[Path]) -> pd.DataFrame:
    """Compute the daily speeds from the definition with plain pandas, independently of sdpipe."""
    frames = [pd.read_csv(path, dtype=str, on_bad_lines="skip") for path in files]
    trips = pd.concat(frames, ignore_index=True)
    pickup = pd.to_datetime(trips["tpep_pickup_datetime"], format="%Y-%m-%d %H:%M:%S", errors="coerce")
    dropoff = pd.to_datetime(trips["tpep_dropoff_datetime"], format="%Y-%m-%d %H:%M:%S", errors="coerce")
    distance = pd.to_numeric(trips["trip_distance"], errors="coerce")
    hours = (dropoff - pickup).dt.total_seconds() / 3600
    speed = distance / hours
    valid = (distance > 0) & (hours > 0) & (hours <= 24) & (speed <= 100)

    table = pd.DataFrame({"date": pickup[valid].dt.date, "speed": speed[valid], "miles": distance[valid], "hours": hours[valid]})
    grouped = table.groupby("date")
    result = pd.DataFrame(
        {
            "trips": grouped.size(),
            "mean_speed_mph": grouped["speed"].mean(),
            "distance_weighted_speed_mph": grouped["miles"].sum() / grouped["hours"].sum(),
        }
    )
    return result.reset_index()


def read_result(output: Path) -> pd.DataFrame:
    frame = pd.read_csv(output / "result.csv")
    frame["date"] = pd.to_datetime(frame["date"]).dt.date
    return frame[["date", "trips", "mean_speed_mph", "distance_weighted_speed_mph"]]


def assert_same_result(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(actual["date"]) == list(expected["date"])
    assert actual["trips"].tolist() == expected["trips"].tolist()
    np.testing.assert_allclose(actual["mean_speed_mph"], expected["mean_speed_mph"], rtol=1e-12)
    np.testing.assert_allclose(actual["distance_weighted_speed_mph"], expected["distance_weighted_speed_mph"], rtol=1e-12)


def corrupt_keeping_size_and_mtime(path: Path) -> None:
    """Replace every trip row by an unreadable one, keeping the header, size and modification time.

    Only a run that reads the file again notices: all its rows are then unparseable.
    """
    stat = path.stat()
    data = path.read_bytes()
    header, _, rows = data.partition(b"\n")
    garbage = b"".join(b"x" * (len(line) - 1) + b"\n" if line else b"" for line in rows.splitlines(keepends=True))
    path.write_bytes(header + b"\n" + garbage)
    assert path.stat().st_size == stat.st_size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def state_files(output: Path) -> set[str]:
    state = json.loads((output / "partials" / "state.json").read_text())
    return {Path(url).name for url in state["files"]}


def without_file_counts(counts: dict) -> dict:
    """Return the counts without files_read and files_reused, which differ between a rerun and a fresh run."""
    return {key: value for key, value in counts.items() if key not in ("files_read", "files_reused")}


def test_new_month_reads_only_that_month(tmp_path, run_cli, trips_dir):
    output = tmp_path / "out"
    first = run_cli("run", "taxi-speed", "-i", f"{trips_dir}/*.csv", "-o", output, "-q")
    originals = {path.name: path.read_bytes() for path in trips_dir.iterdir()}
    for path in trips_dir.iterdir():
        corrupt_keeping_size_and_mtime(path)
    add_month(trips_dir, MONTHS[2])

    second = run_cli("run", "taxi-speed", "-i", f"{trips_dir}/*.csv", "-o", output, "--json")

    assert first.exit_code == 0, first.stderr
    assert second.exit_code == 0, second.stderr
    document = json.loads(second.stdout)
    assert document["counts"]["files"] == 3
    assert document["counts"]["read"] == 6001
    assert document["counts"]["files_read"] == 1
    assert document["counts"]["files_reused"] == 2
    assert state_files(output) == {f"yellow_tripdata_{m}.csv" for m in MONTHS}

    # Independent check 1: a fresh full run on the original three months.
    fresh = tmp_path / "fresh"
    for name, data in originals.items():
        (trips_dir / name).write_bytes(data)
    full = run_cli("run", "taxi-speed", "-i", f"{trips_dir}/*.csv", "-o", fresh, "--json")
    assert full.exit_code == 0, full.stderr
    assert without_file_counts(json.loads(full.stdout)["counts"]) == without_file_counts(document["counts"])
    assert_same_result(read_result(output), read_result(fresh))

    # Independent check 2: the definition computed with plain pandas.
    assert_same_result(read_result(output), expected_daily(sorted(trips_dir.glob("*.csv"))))


def test_same_inputs_are_up_to_date(tmp_path, run_cli, trips_dir):
    output = tmp_path / "out"
    args = ("run", "taxi-speed", "-i", f"{trips_dir}/*.csv", "-o", output)
    first = run_cli(*args, "-q")
    manifest = json.loads((output / "manifest.json").read_text())

    again = run_cli(*args, "--json")

    assert first.exit_code == 0, first.stderr
    assert again.exit_code == 0
    document = json.loads(again.stdout)
    assert document["status"] == "up_to_date"
    assert without_file_counts(document["counts"]) == without_file_counts(manifest["counts"])
    assert document["counts"]["files_read"] == 0
    assert document["counts"]["files_reused"] == 2
    assert len(document["result"]) == len(pd.read_csv(output / "result.csv"))
    assert json.loads((output / "manifest.json").read_text())["run_id"] == manifest["run_id"]
    assert "up to date" in again.stderr


def test_force_reads_everything_again(tmp_path, run_cli, trips_dir):
    output = tmp_path / "out"
    args = ("run", "taxi-speed", "-i", f"{trips_dir}/*.csv", "-o", output)
    run_cli(*args, "-q")
    before = json.loads((output / "manifest.json").read_text())["run_id"]
    for path in trips_dir.iterdir():
        corrupt_keeping_size_and_mtime(path)

    forced = run_cli(*args, "--force", "--json")

    # Every file was read again, so the corrupted rows show: all trips unparseable.
    assert forced.exit_code == 0, forced.stderr
    counts = json.loads(forced.stdout)["counts"]
    assert counts["read"] == 4000
    assert counts["valid"] == 0
    assert json.loads((output / "manifest.json").read_text())["run_id"] != before


def test_dropped_input_leaves_result_and_partials(tmp_path, run_cli, trips_dir):
    output = tmp_path / "out"
    add_month(trips_dir, MONTHS[2])
    run_cli("run", "taxi-speed", "-i", f"{trips_dir}/*.csv", "-o", output, "-q")
    kept = [trips_dir / f"yellow_tripdata_{m}.csv" for m in MONTHS[1:]]

    rerun = run_cli("run", "taxi-speed", *[arg for path in kept for arg in ("-i", path)], "-o", output, "--json")

    assert rerun.exit_code == 0, rerun.stderr
    assert json.loads(rerun.stdout)["counts"]["files"] == 2
    assert state_files(output) == {path.name for path in kept}
    assert_same_result(read_result(output), expected_daily(kept))


def test_changed_file_is_read_again(tmp_path, run_cli, trips_dir):
    output = tmp_path / "out"
    args = ("run", "taxi-speed", "-i", f"{trips_dir}/*.csv", "-o", output)
    run_cli(*args, "-q")
    february = trips_dir / "yellow_tripdata_2017-02.csv"
    lines = february.read_text().splitlines(keepends=True)
    february.write_text("".join(lines[:1001]))

    rerun = run_cli(*args, "--json")

    assert rerun.exit_code == 0, rerun.stderr
    assert json.loads(rerun.stdout)["status"] == "ok"
    assert_same_result(read_result(output), expected_daily(sorted(trips_dir.glob("*.csv"))))


def test_changed_options_compute_again(tmp_path, run_cli, trips_dir):
    output = tmp_path / "out"
    args = ("run", "taxi-speed", "-i", f"{trips_dir}/*.csv", "-o", output)
    run_cli(*args, "-q")
    for path in trips_dir.iterdir():
        corrupt_keeping_size_and_mtime(path)

    rerun = run_cli(*args, "--max-mph", "50", "--json")

    # Partials made with --max-mph 100 must not be reused: the corrupted files are read and have no valid trip.
    assert rerun.exit_code == 0, rerun.stderr
    assert json.loads(rerun.stdout)["counts"]["valid"] == 0


def test_python_api_reuses_partials(tmp_path, trips_dir):
    import sdpipe

    output = tmp_path / "out"
    sdpipe.run_taxi_speed(f"{trips_dir}/*.csv", output=str(output))
    add_month(trips_dir, MONTHS[2])

    report = sdpipe.run_taxi_speed(f"{trips_dir}/*.csv", output=str(output))
    again = sdpipe.run_taxi_speed(f"{trips_dir}/*.csv", output=str(output))

    assert report.status == "ok"
    assert again.status == "up_to_date"
    pdt.assert_frame_equal(
        again.result.reset_index(drop=True)[["trips"]], report.result.reset_index(drop=True)[["trips"]]
    )


def test_summary_counts_read_and_reused_files(tmp_path, run_cli, trips_dir):
    output = tmp_path / "out"
    args = ("run", "taxi-speed", "-i", f"{trips_dir}/*.csv", "-o", output)
    run_cli(*args, "-q")
    add_month(trips_dir, MONTHS[2])

    rerun = run_cli(*args)
    forced = run_cli(*args, "--force", "--json")

    assert rerun.exit_code == 0, rerun.stderr
    lines = rerun.stdout.splitlines()
    assert lines[0].startswith("taxi-speed: 3 input files")
    assert lines[1].split() == ["files", "read", "1"]
    assert lines[2].split()[:3] == ["files", "reused", "2"]
    counts = json.loads(forced.stdout)["counts"]
    assert (counts["files_read"], counts["files_reused"]) == (3, 0)
    manifest = json.loads((output / "manifest.json").read_text())
    assert (manifest["counts"]["files_read"], manifest["counts"]["files_reused"]) == (3, 0)
