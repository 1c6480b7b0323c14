"""Job-file errors read the same from `check` and `run`, and never show a secret."""

from __future__ import annotations

import pytest

INLINE_KEY = "abc123"
EXPECTED = (
    "  storage_options.account_key: holds a secret written inline; keep it in an environment variable "
    'and write account_key = "${AZURE_STORAGE_KEY}"'
)


@pytest.fixture
def inline_secret_job(tmp_path):
    job = tmp_path / "job.toml"
    job.write_text(f'pipeline = "taxi-speed"\n[storage_options]\naccount_name = "abc"\naccount_key = "{INLINE_KEY}"\n')
    return job


@pytest.mark.parametrize("command", ["run", "check"])
def test_inline_secret_message_reads_right(run_cli, inline_secret_job, command):
    result = run_cli(command, inline_secret_job)

    assert result.exit_code == 2
    assert EXPECTED in result.stderr.splitlines()
    assert INLINE_KEY not in result.stderr + result.stdout


@pytest.mark.parametrize("command", ["run", "check"])
def test_value_in_conversion_error_is_masked(run_cli, tmp_path, command):
    job = tmp_path / "job.toml"
    job.write_text('pipeline = "taxi-speed"\n[options]\nmax-hours = "sig=SIGNATURE123"\n')

    result = run_cli(command, job)

    assert result.exit_code == 2
    assert "options.max-hours:" in result.stderr
    assert "sig=***" in result.stderr
    assert "SIGNATURE123" not in result.stderr
