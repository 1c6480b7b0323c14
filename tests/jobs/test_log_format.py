"""--log-format json: one JSON object per stderr line, each with the run id."""

from __future__ import annotations

import json


def parse_lines(stderr: str) -> list[dict]:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "no log line on stderr"
    return [json.loads(line) for line in lines]


def test_json_log_lines_carry_run_id(tmp_path, run_cli, trips_dir):
    output = tmp_path / "out"

    result = run_cli("run", "taxi-speed", "-i", f"{trips_dir}/*.csv", "-o", output, "--log-format", "json", "--debug", "--json")

    assert result.exit_code == 0, result.stderr
    records = parse_lines(result.stderr)
    run_ids = {record["run_id"] for record in records}
    manifest = json.loads((output / "manifest.json").read_text())
    assert run_ids == {manifest["run_id"]}
    assert {"time", "level", "logger", "message", "run_id"} <= set(records[0])
    assert any(record["logger"] == "sdpipe.locking" and record["message"].startswith("locked ") for record in records)
    assert json.loads(result.stdout)["pipeline"] == "taxi-speed"


def test_json_error_line(tmp_path, run_cli):
    result = run_cli("run", "taxi-speed", "-i", f"{tmp_path}/none-*.csv", "-o", tmp_path / "out", "--log-format", "json")

    assert result.exit_code == 1
    (record,) = parse_lines(result.stderr)
    assert record["level"] == "ERROR"
    assert record["message"].startswith("Error: no input file matches")
    assert record["run_id"]


def test_text_is_the_default(tmp_path, run_cli, trips_dir):
    result = run_cli("run", "taxi-speed", "-i", f"{tmp_path}/none-*.csv", "-o", tmp_path / "out")

    assert result.exit_code == 1
    assert result.stderr.startswith("Error: no input file matches")


def test_log_format_from_environment(tmp_path, run_cli, monkeypatch):
    monkeypatch.setenv("SDPIPE_LOG_FORMAT", "json")

    result = run_cli("run", "taxi-speed", "-i", f"{tmp_path}/none-*.csv", "-o", tmp_path / "out")

    assert parse_lines(result.stderr)[0]["message"].startswith("Error: no input file matches")


def test_usage_error_is_a_json_line(tmp_path, run_cli, trips_dir):
    job = tmp_path / "job.toml"
    job.write_text(f'pipeline = "taxi-speed"\n[options]\ninput = ["{trips_dir}/*.csv"]\noutput = "{tmp_path / "out"}"\n')

    result = run_cli("run", job, "--log-format", "json", "--max-mph", "0")

    assert result.exit_code == 2
    (record,) = parse_lines(result.stderr)
    assert record["level"] == "ERROR"
    assert record["message"].startswith("Error: Invalid value for '--max-mph'")
    assert record["run_id"]


def test_usage_error_in_text_keeps_usage_line(run_cli):
    result = run_cli("run", "taxi-speed", "--max-mph", "0")

    assert result.exit_code == 2
    assert result.stderr.startswith("Usage: sdpipe run taxi-speed")


def test_json_run_logs_run_finished_line(tmp_path, run_cli, trips_dir):
    output = tmp_path / "out"

    result = run_cli("run", "taxi-speed", "-i", f"{trips_dir}/*.csv", "-o", output, "--log-format", "json", "--quiet")

    assert result.exit_code == 0, result.stderr
    (record,) = [record for record in parse_lines(result.stderr) if record["message"].startswith("run finished")]
    manifest = json.loads((output / "manifest.json").read_text())
    assert record["level"] == "INFO"
    assert record["run_id"] == manifest["run_id"]
    assert (record["pipeline"], record["status"], record["exit_code"]) == ("taxi-speed", "ok", 0)
    assert record["duration_s"] >= 0


def test_text_run_logs_nothing_on_success(tmp_path, run_cli, trips_dir):
    result = run_cli("run", "taxi-speed", "-i", f"{trips_dir}/*.csv", "-o", tmp_path / "out", "--quiet")

    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
