"""--json prints one JSON document on stdout when a run fails, and the Error: line on stderr."""

from __future__ import annotations

import json


def test_no_match_prints_failure_document(run_cli, tmp_path):
    result = run_cli("run", "taxi-speed", "-i", tmp_path / "nothing" / "*.csv", "-o", tmp_path / "out", "--json")

    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document == {
        "pipeline": "taxi-speed",
        "status": "failed",
        "error": {"type": "NoInputError", "message": document["error"]["message"], "exit_code": 1},
    }
    assert "no input file matches" in document["error"]["message"]
    assert result.stderr.splitlines()[0] == f"Error: {document['error']['message']}"


def test_usage_error_prints_failure_document(run_cli):
    result = run_cli("run", "message-timing", "-i", "x.jsonl", "--max-p99-ms", "fast", "--json")

    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert document["pipeline"] == "message-timing"
    assert document["error"]["exit_code"] == 2
    assert "--max-p99-ms" in document["error"]["message"]


def test_job_file_json_option_prints_failure_document(run_cli, tmp_path):
    job = tmp_path / "job.toml"
    job.write_text(f'pipeline = "taxi-speed"\n[options]\ninput = ["{tmp_path}/none/*.csv"]\noutput = "{tmp_path}/out"\njson = true\n')

    result = run_cli("run", job)

    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["pipeline"] == "taxi-speed"
    assert document["error"]["type"] == "NoInputError"


def test_secret_masked_in_failure_document(run_cli, tmp_path):
    job = tmp_path / "job.toml"
    job.write_text('pipeline = "taxi-speed"\n[storage_options]\naccount_key = "abc123"\n')

    result = run_cli("run", job, "--json")

    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert document["error"]["type"] == "JobFileError"
    assert 'write account_key = "${AZURE_STORAGE_KEY}"' in document["error"]["message"]
    assert "abc123" not in result.stdout + result.stderr


def test_without_json_stdout_stays_empty(run_cli, tmp_path):
    result = run_cli("run", "taxi-speed", "-i", tmp_path / "nothing" / "*.csv", "-o", tmp_path / "out")

    assert result.exit_code == 1
    assert result.stdout == ""
