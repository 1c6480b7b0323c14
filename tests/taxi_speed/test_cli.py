"""The command line: JSON output, help, list, version, exit codes, atomic outputs, Ctrl-C."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from sdpipe import __version__
from sdpipe.registry import available_pipelines

HEADER = "tpep_pickup_datetime,tpep_dropoff_datetime,trip_distance\n"
ROWS = "2017-03-05 10:00:00,2017-03-05 10:30:00,5\n2017-03-06 10:00:00,2017-03-06 11:00:00,20\n"


@pytest.fixture
def trips(write_csv):
    return write_csv("trips.csv", HEADER + ROWS)


def test_json_stdout_is_one_document(sdpipe, trips, tmp_path):
    run = sdpipe("run", "taxi-speed", "-i", trips, "-o", tmp_path / "out", "--json")

    assert run.exit_code == 0, run.stderr
    document = json.loads(run.stdout)  # raises if anything else is on stdout
    assert run.stdout.startswith("{")
    assert run.stdout.rstrip("\n").endswith("}")
    assert {"pipeline", "status", "inputs", "counts", "output", "result"} <= set(document)
    assert document["pipeline"] == "taxi-speed"
    assert document["status"] == "ok"
    assert document["output"] == str(tmp_path / "out")
    assert set(document["counts"]) >= {"read", "valid", "rejected"}
    assert document["result"][0] == {
        "date": "2017-03-05", "trips": 1, "mean_speed_mph": 10.0, "distance_weighted_speed_mph": 10.0
    }
    assert "trips read" in run.stderr  # the readable summary goes to stderr


def test_summary_without_json_on_stdout(sdpipe, trips, tmp_path):
    run = sdpipe("run", "taxi-speed", "-i", trips, "-o", tmp_path / "out")

    assert run.exit_code == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == f"taxi-speed: 1 input file ({trips.stat().st_size} B)"
    assert "  trips read                2" in lines
    assert "  valid                     2" in lines
    assert any(line.strip().startswith("2017-03-05") for line in lines)
    assert lines[-1] == f"  output: {tmp_path / 'out'}"


def test_outputs_written(sdpipe, trips, tmp_path):
    run = sdpipe("run", "taxi-speed", "-i", trips, "-o", tmp_path / "out", "--quiet")

    assert run.exit_code == 0, run.stderr
    assert run.stdout == ""
    out = tmp_path / "out"
    assert pq.read_table(out / "result.parquet").column("trips").to_pylist() == [1, 1]
    assert (out / "result.csv").read_text().splitlines()[0] == "date,trips,mean_speed_mph,distance_weighted_speed_mph"
    assert (out / "speed.png").read_bytes().startswith(b"\x89PNG")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["read"] == 2
    assert manifest["inputs"][0]["size"] == trips.stat().st_size
    assert manifest["inputs"][0]["timestamp_formats"]["pickup"] == {
        "YYYY-MM-DD hh:mm[:ss] (ISO 8601, typed fast path)": 2
    }
    assert manifest["parameters"]["group_by"] == "date"
    assert "pyarrow" in manifest["versions"]


@pytest.mark.parametrize("name", sorted(available_pipelines()))
def test_help_of_every_pipeline(sdpipe, name):
    run = sdpipe("run", name, "--help")

    assert run.exit_code == 0, run.stderr
    assert run.stdout.startswith(f"Usage: sdpipe run {name} [OPTIONS]")
    assert "--json" in run.stdout


def test_taxi_speed_help_explains_definition(sdpipe):
    run = sdpipe("run", "taxi-speed", "--help")

    text = " ".join(run.stdout.split())
    assert "daylight-saving change is off by one hour" in text
    assert "unparseable, other_taxi_type, outside_period, non_positive_distance" in text
    assert "Example: sdpipe run taxi-speed" in text


def test_list_names_every_pipeline(sdpipe):
    run = sdpipe("list")

    assert run.exit_code == 0
    names = [line.split()[0] for line in run.stdout.splitlines()]
    assert names == sorted(available_pipelines())
    assert any(line.startswith("taxi-speed") and "speed" in line.lower() for line in run.stdout.splitlines())


def test_version(sdpipe):
    run = sdpipe("--version")

    assert run.exit_code == 0
    assert run.stdout.strip() == f"sdpipe, version {__version__}"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--group-by", "year"), "Invalid value for '--group-by': 'year' is not one of"),
        (("--max-mph", "0"), "Invalid value for '--max-mph'"),
        (("--start", "2017-13-01"), "Invalid value for '--start'"),
        (("--taxi-type", "blue"), "Invalid value for '--taxi-type'"),
        (("--compat", "aws"), "Invalid value for '--compat'"),
        (("--no-such-option",), "No such option '--no-such-option'"),
    ],
)
def test_usage_errors_exit_2(sdpipe, trips, tmp_path, arguments, message):
    run = sdpipe("run", "taxi-speed", "-i", trips, "-o", tmp_path / "o", *arguments)

    assert run.exit_code == 2
    assert message in run.stderr
    assert run.stdout == ""
    assert not (tmp_path / "o").exists()


def test_unknown_pipeline_exit_2(sdpipe):
    run = sdpipe("run", "no-such-pipeline")

    assert run.exit_code == 2
    assert "No such command 'no-such-pipeline'" in run.stderr


def previous_result(sdpipe, trips, out) -> bytes:
    run = sdpipe("run", "taxi-speed", "-i", trips, "-o", out, "--quiet")
    assert run.exit_code == 0, run.stderr
    return (out / "result.csv").read_bytes()


def test_failed_write_leaves_earlier_result(sdpipe, trips, write_csv, tmp_path, monkeypatch):
    from sdpipe.pipelines.taxi_speed import outputs

    out = tmp_path / "out"
    before = previous_result(sdpipe, trips, out)
    files_before = sorted(p.name for p in out.iterdir())
    more = write_csv("more.csv", HEADER + "2017-04-01 10:00:00,2017-04-01 11:00:00,7\n")

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(outputs, "_plot", fail)  # after result.parquet and result.csv are staged
    run = sdpipe("run", "taxi-speed", "-i", trips, "-i", more, "-o", out, "--force")

    assert run.exit_code == 1
    assert "disk full" in run.stderr
    assert (out / "result.csv").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == files_before
    assert sorted(p.name for p in tmp_path.iterdir() if "staging" in p.name) == []


def test_ctrl_c_publishes_nothing(sdpipe, trips, write_csv, tmp_path, monkeypatch):
    from sdpipe.pipelines.taxi_speed import outputs

    out = tmp_path / "out"
    before = previous_result(sdpipe, trips, out)
    more = write_csv("more.csv", HEADER + "2017-04-01 10:00:00,2017-04-01 11:00:00,7\n")

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(outputs, "_plot", interrupt)
    run = sdpipe("run", "taxi-speed", "-i", trips, "-i", more, "-o", out, "--rejected-output", tmp_path / "rej",
                 "--force")

    assert run.exit_code == 130
    assert "nothing was published." in run.stderr
    assert (out / "result.csv").read_bytes() == before
    assert not (tmp_path / "rej").exists()
    assert [p.name for p in tmp_path.iterdir() if "staging" in p.name] == []


def test_ctrl_c_during_compute(sdpipe, trips, tmp_path, monkeypatch):
    from sdpipe.pipelines.taxi_speed import tasks

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(tasks, "read_partition", interrupt)
    run = sdpipe("run", "taxi-speed", "-i", trips, "-o", tmp_path / "out", "--scheduler", "synchronous")

    assert run.exit_code == 130
    assert not (tmp_path / "out").exists()


def test_library_error_without_traceback_unless_debug(sdpipe, tmp_path):
    quiet = sdpipe("run", "taxi-speed", "-i", tmp_path / "none.csv", "-o", tmp_path / "o")
    debug = sdpipe("run", "taxi-speed", "-i", tmp_path / "none.csv", "-o", tmp_path / "o", "--debug")

    assert quiet.exit_code == debug.exit_code == 1
    assert "Traceback" not in quiet.stderr
    assert "Traceback" in debug.stderr
