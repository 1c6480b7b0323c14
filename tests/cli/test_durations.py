"""--connect-timeout takes the durations that SDPIPE_CONNECT_TIMEOUT and a job file take."""

from __future__ import annotations

import pytest

from sdpipe.cli.options import Seconds
from sdpipe.registry import get_pipeline


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30.0), ("2 minutes", 120.0), ("1.5", 1.5), ("500ms", 0.5)],
    ids=["seconds-unit", "minutes-word", "bare-number", "milliseconds"],
)
def test_seconds_type_parses_durations(text, seconds):
    assert Seconds().convert(text, None, None) == seconds


@pytest.mark.parametrize("text", ["30x", "0", "-5s"], ids=["unknown-unit", "zero", "negative"])
def test_invalid_duration_is_usage_error(run_cli, text):
    result = run_cli("run", "taxi-speed", "--connect-timeout", text)

    assert result.exit_code == 2
    assert f"Invalid value for '--connect-timeout': {text!r} is not a valid duration" in result.stderr


def connect_timeout_logged(stderr: str) -> str:
    line = next(line for line in stderr.splitlines() if "cluster settings:" in line)
    return line.split("'connect_timeout': ")[1].split("}")[0]


def test_flag_environment_and_job_agree(run_cli, trips_dir, tmp_path, monkeypatch):
    base = ("run", "taxi-speed", "-i", f"{trips_dir}/*.csv", "--debug", "-q")
    job = tmp_path / "job.toml"
    job.write_text(f'pipeline = "taxi-speed"\n[options]\ninput = ["{trips_dir}/*.csv"]\n[cluster]\nconnect-timeout = "30s"\n')

    flag = run_cli(*base, "-o", tmp_path / "flag", "--connect-timeout", "30s")
    monkeypatch.setenv("SDPIPE_CONNECT_TIMEOUT", "30s")
    env = run_cli(*base, "-o", tmp_path / "env")
    monkeypatch.delenv("SDPIPE_CONNECT_TIMEOUT")
    from_job = run_cli("run", job, "-o", tmp_path / "job", "--debug", "-q")

    for result in (flag, env, from_job):
        assert result.exit_code == 0, result.stderr
        assert connect_timeout_logged(result.stderr) == "30.0"


def test_help_says_the_unit():
    command = get_pipeline("taxi-speed").make_command()
    option = next(p for p in command.params if p.name == "connect_timeout")

    assert "seconds" in option.help
    assert "30s" in option.help
