"""`sdpipe check` warns about unset environment variables; --require-env and `sdpipe run` reject them."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
AZURE_VARIABLES = ("AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN")


@pytest.fixture
def clean_env(monkeypatch):
    for name in AZURE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SDPIPE_BLOCKSIZE_FOR_TEST", raising=False)


def test_readme_check_passes_on_fresh_clone(run_cli, clean_env, monkeypatch):
    monkeypatch.chdir(REPO)
    files = sorted(str(path.relative_to(REPO)) for path in (REPO / "pipelines").glob("*.toml"))

    result = run_cli("check", *files)

    assert result.exit_code == 0, result.stderr
    assert "Error" not in result.stderr
    warning = next(line for line in result.stderr.splitlines() if line.startswith("pipelines/taxi-speed-azure.toml"))
    assert "warning" in warning
    assert "AZURE_STORAGE_ACCOUNT (storage_options.account_name)" in warning
    assert "AZURE_STORAGE_KEY (storage_options.account_key)" in warning
    assert "pipelines/taxi-speed-azure.toml: valid taxi-speed job" in result.stdout


def test_require_env_makes_unset_a_mistake(run_cli, clean_env):
    result = run_cli("check", "--require-env", REPO / "pipelines" / "taxi-speed-azure.toml")

    assert result.exit_code == 2
    assert "storage_options.account_key: environment variable AZURE_STORAGE_KEY is not set" in result.stderr
    assert result.stderr.splitlines()[-1] == "Error: 1 of 1 job file invalid"


def test_require_env_passes_when_set(run_cli, clean_env, monkeypatch):
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT", "devstoreaccount1")
    monkeypatch.setenv("AZURE_STORAGE_KEY", "not-a-real-key")

    result = run_cli("check", "--require-env", REPO / "pipelines" / "taxi-speed-azure.toml")

    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""


def test_unset_value_is_not_converted(run_cli, clean_env, tmp_path):
    job = tmp_path / "job.toml"
    job.write_text('pipeline = "taxi-speed"\n[options]\nblocksize = "${SDPIPE_BLOCKSIZE_FOR_TEST}"\n')

    result = run_cli("check", job)

    # The empty value in place of the variable is no mistake of the file: only the warning shows.
    assert result.exit_code == 0, result.stderr
    assert "SDPIPE_BLOCKSIZE_FOR_TEST (options.blocksize)" in result.stderr
    assert "has 1 mistake" not in result.stderr
    assert "is not a size" not in result.stderr


def test_other_mistakes_still_fail(run_cli, clean_env, tmp_path):
    job = tmp_path / "job.toml"
    job.write_text('pipeline = "taxi-speed"\n[options]\ngroup-by = "year"\n[storage_options]\naccount_name = "${AZURE_STORAGE_ACCOUNT}"\n')

    result = run_cli("check", job)

    assert result.exit_code == 2
    assert "has 1 mistake:" in result.stderr
    assert "options.group-by:" in result.stderr
    # The unset variable is listed too, as a warning and not as a second mistake.
    assert f"{job}: warning: not set here: AZURE_STORAGE_ACCOUNT (storage_options.account_name)" in result.stderr


def test_run_with_unset_variable_fails(run_cli, clean_env):
    result = run_cli("run", REPO / "pipelines" / "taxi-speed-azure.toml")

    assert result.exit_code == 2
    assert "storage_options.account_name: environment variable AZURE_STORAGE_ACCOUNT is not set; export it before the run" in result.stderr
