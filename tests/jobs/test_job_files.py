"""Job files: loading, checking, secrets by reference and command-line overrides."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import click
import pandas as pd
import pytest

from sdpipe.cli.options import parse_storage_options
from sdpipe.errors import ConfigError
from sdpipe.jobs import _with_job_settings, check_job, job_command, load_job

REPO = Path(__file__).resolve().parents[2]
JOB_FILES = sorted((REPO / "pipelines").glob("*.toml"))
# Values for the variables that the example job files reference; nothing is contacted.
EXAMPLE_ENV = {
    "AZURE_STORAGE_ACCOUNT": "exampleaccount",
    "AZURE_STORAGE_KEY": "planted-key-0123456789",
    "AZURE_STORAGE_SAS_TOKEN": "planted-sas-0123456789",
}


def write_job(tmp_path: Path, text: str, name: str = "job.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_pipelines_folder_has_two_jobs_per_pipeline():
    from sdpipe.registry import available_pipelines

    names = {path.stem for path in JOB_FILES}
    for pipeline in available_pipelines():
        assert pipeline in names, f"pipelines/{pipeline}.toml is missing"
        assert f"{pipeline}-azure" in names, f"pipelines/{pipeline}-azure.toml is missing"


@pytest.mark.parametrize("path", JOB_FILES, ids=[p.name for p in JOB_FILES])
def test_check_accepts_every_job_file(path, run_cli, monkeypatch):
    for name, value in EXAMPLE_ENV.items():
        monkeypatch.setenv(name, value)

    result = run_cli("check", path)

    assert result.exit_code == 0, result.stderr
    assert f"valid {load_job(path).pipeline} job" in result.stdout
    for value in EXAMPLE_ENV.values():
        if "planted" in value:
            assert value not in result.stdout + result.stderr


@pytest.mark.parametrize("path", JOB_FILES, ids=[p.name for p in JOB_FILES])
def test_job_files_hold_no_inline_secret(path):
    with path.open("rb") as handle:
        raw = tomllib.load(handle)
    for section in ("options", "cluster", "storage_options"):
        for key, value in raw.get(section, {}).items():
            if any(word in key.lower() for word in ("key", "secret", "token", "password", "sas", "connection")):
                assert str(value).startswith("${"), f"{path.name}: {section}.{key} is not an environment reference"


SAMPLE_JOBS = sorted(path for path in JOB_FILES if not path.stem.endswith("-azure"))


@pytest.mark.parametrize("path", SAMPLE_JOBS, ids=[p.name for p in SAMPLE_JOBS])
def test_sample_job_runs_as_is(path, run_cli, monkeypatch, tmp_path):
    monkeypatch.chdir(REPO)
    job = load_job(path)
    before = {p: p.stat().st_mtime_ns for p in (REPO / "data" / "sample").rglob("*") if p.is_file()}
    overrides = ["--output", tmp_path / "out"] if "output" in job.defaults else []

    result = run_cli("run", path.relative_to(REPO), *overrides, "--json")

    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["pipeline"] == job.pipeline
    assert document["result"], "the sample gives an empty result"
    after = {p: p.stat().st_mtime_ns for p in (REPO / "data" / "sample").rglob("*") if p.is_file()}
    assert after == before, "running a sample job changed the bundled sample"


def test_check_reports_every_mistake(tmp_path, run_cli):
    job = write_job(
        tmp_path,
        """
pipeline = "taxi-speed"
colour = "blue"

[options]
input = ["trips/*.csv"]
grup-by = "weekday"
taxi-type = "purple"
max-mph = -3
workers = 2

[cluster]
threads = 4

[storage_options]
account_key = "written-inline-123"
""",
    )

    result = run_cli("check", job)

    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert "has 7 mistakes" in lines[0]
    assert any(line.startswith("  colour: unknown key") and "valid keys: pipeline, description" in line for line in lines)
    assert any("options.grup-by: unknown option (did you mean 'group-by'?)" in line for line in lines)
    assert any("options.taxi-type: 'purple' is not one of 'all', 'yellow', 'green'" in line for line in lines)
    assert any(line.startswith("  options.max-mph:") and "-3" in line for line in lines)
    assert any("options.workers: belongs in [cluster]" in line for line in lines)
    assert any(line.startswith("  cluster.threads:") and "threads_per_worker" in line for line in lines)
    assert any("storage_options.account_key: holds a secret written inline" in line for line in lines)
    assert "written-inline-123" not in result.stderr


def test_check_names_valid_pipelines(tmp_path, run_cli):
    job = write_job(tmp_path, 'pipeline = "taxi-sped"\n')

    result = run_cli("check", job)

    assert result.exit_code == 2
    assert "pipeline: unknown pipeline 'taxi-sped' (did you mean 'taxi-speed'?)" in result.stderr
    assert "choose one of batch-validation, message-timing, taxi-speed" in result.stderr


def test_check_rejects_bad_toml(tmp_path, run_cli):
    job = write_job(tmp_path, 'pipeline = "taxi-speed"\n[options\n')

    result = run_cli("check", job)

    assert result.exit_code == 2
    assert f"Error: job file '{job}' is not valid TOML" in result.stderr


def test_run_missing_job_file(tmp_path, run_cli):
    result = run_cli("run", tmp_path / "absent.toml")

    assert result.exit_code == 2
    assert f"Error: job file '{tmp_path / 'absent.toml'}' not found" in result.stderr


def test_secret_reference_resolved_from_environment(tmp_path):
    job_path = write_job(
        tmp_path,
        """
pipeline = "taxi-speed"
[storage_options]
account_name = "acct"
account_key = "${SDPIPE_TEST_KEY}"
connection_string = "AccountName=acct;AccountKey=${SDPIPE_TEST_KEY}"
""",
    )

    job = load_job(job_path, environ={"SDPIPE_TEST_KEY": "s3cr3t-value"})

    assert job.storage_options["account_key"] == "s3cr3t-value"
    assert job.storage_options["connection_string"] == "AccountName=acct;AccountKey=s3cr3t-value"
    assert "s3cr3t-value" not in repr(job)
    assert "s3cr3t-value" not in " ".join(job.command_line())
    assert "account_key=${SDPIPE_TEST_KEY}" in job.command_line()


def test_secret_reference_to_unset_variable(tmp_path):
    job_path = write_job(tmp_path, 'pipeline = "taxi-speed"\n[storage_options]\naccount_key = "${SDPIPE_UNSET_KEY}"\n')

    with pytest.raises(ConfigError) as caught:
        load_job(job_path, environ={})

    assert "storage_options.account_key: environment variable SDPIPE_UNSET_KEY is not set" in str(caught.value)


def test_secret_never_reaches_output_or_logs(tmp_path, run_cli, monkeypatch, trips_dir):
    monkeypatch.setenv("SDPIPE_TEST_KEY", "planted-secret-4711")
    output = tmp_path / "out"
    job = write_job(
        tmp_path,
        f"""
pipeline = "taxi-speed"
[options]
input = ["{trips_dir}/*.csv"]
output = "{output}"
[storage_options]
auto_mkdir = true
password = "${{SDPIPE_TEST_KEY}}"
""",
    )

    result = run_cli("run", job, "--json", "--debug")

    # The local filesystem rejects the unknown 'password' argument, so the run fails; the secret must stay hidden.
    assert "planted-secret-4711" not in result.stdout + result.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".csv", ".lock"):
            assert "planted-secret-4711" not in path.read_text()


def test_command_line_overrides_job(tmp_path, run_cli, trips_dir):
    output = tmp_path / "out"
    job = write_job(
        tmp_path,
        f"""
pipeline = "taxi-speed"
[options]
input = ["{trips_dir}/*.csv"]
output = "{output}"
group-by = "weekday"
max-mph = 100
""",
    )

    by_weekday = run_cli("run", job, "--json")
    by_hour = run_cli("run", job, "--group-by", "hour", "--max-mph", "50", "--json")

    assert by_weekday.exit_code == 0, by_weekday.stderr
    assert by_hour.exit_code == 0, by_hour.stderr
    assert json.loads(by_weekday.stdout)["parameters"]["group_by"] == "weekday"
    parameters = json.loads(by_hour.stdout)["parameters"]
    assert parameters["group_by"] == "hour"
    assert parameters["max_mph"] == 50
    assert list(pd.read_csv(output / "result.csv").columns)[0] == "hour"


def test_storage_options_merge_key_by_key(tmp_path):
    job_path = write_job(tmp_path, 'pipeline = "taxi-speed"\n[storage_options]\naccount_name = "file-account"\nanon = false\n')
    job = load_job(job_path, environ={})
    seen = {}

    def body(**kwargs):
        seen.update(kwargs)

    wrapped = _with_job_settings(body, job, True)
    with click.Context(job_command(job)):
        wrapped(storage_option=("account_name=flag-account",))

    assert parse_storage_options(seen["storage_option"]) == {"account_name": "flag-account", "anon": "false"}


def test_job_cluster_table_ranks_below_environment(tmp_path, run_cli, trips_dir, monkeypatch):
    job = write_job(
        tmp_path,
        f"""
pipeline = "taxi-speed"
[options]
input = ["{trips_dir}/*.csv"]
output = "{tmp_path / 'out'}"
[cluster]
scheduler = "synchronous"
""",
    )
    monkeypatch.delenv("SDPIPE_SCHEDULER", raising=False)
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    monkeypatch.delenv("DASK_SCHEDULER", raising=False)

    from_file = run_cli("run", job, "--debug", "--force")
    monkeypatch.setenv("SDPIPE_SCHEDULER", "threads")
    from_env = run_cli("run", job, "--debug", "--force")

    assert from_file.exit_code == 0, from_file.stderr
    assert from_env.exit_code == 0, from_env.stderr
    assert "'scheduler': 'synchronous'" in from_file.stderr
    assert "'scheduler': 'threads'" in from_env.stderr


def test_check_job_returns_problems_without_raising(tmp_path):
    job, problems = check_job(write_job(tmp_path, '[options]\ninput = "x"\n'), environ={})

    assert job is None
    assert [str(p) for p in problems] == ["pipeline: missing; name one of batch-validation, message-timing, taxi-speed"]
