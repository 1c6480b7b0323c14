"""--connect-timeout and --stale-after take durations alike; their help gives the unit and the default."""

from __future__ import annotations

import json

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


def option_help(pipeline: str, name: str) -> str:
    command = get_pipeline(pipeline).make_command()
    return next(p for p in command.params if p.name == name).help


def test_stale_after_takes_bare_seconds(run_cli, tmp_path):
    inbound = tmp_path / "inbound"
    inbound.mkdir()

    result = run_cli("run", "batch-validation", "-i", inbound, "--stale-after", "36", "--dry-run", "--json", "-q")

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["parameters"]["stale_after_seconds"] == 36


@pytest.mark.parametrize("text", ["0s", "0", "36x"])
def test_invalid_stale_after_is_usage_error(run_cli, tmp_path, text):
    result = run_cli("run", "batch-validation", "-i", tmp_path, "--stale-after", text)

    assert result.exit_code == 2
    assert result.stderr.startswith("Usage: sdpipe run batch-validation")
    assert "Invalid value for '--stale-after': " in result.stderr
    assert repr(text) in result.stderr
    assert "stale_after" not in result.stderr


def test_check_rejects_zero_stale_after(run_cli, tmp_path):
    job = tmp_path / "job.toml"
    job.write_text(f'pipeline = "batch-validation"\n[options]\ninput = "{tmp_path}"\nstale-after = "0s"\n')

    result = run_cli("check", job)

    assert result.exit_code == 2
    assert "options.stale-after: '0s' is not above 0" in result.stderr


def test_help_names_every_scheduler():
    from sdpipe.cluster.config import SCHEDULER_NAMES

    # The names come before the address; "distributed scheduler" in the address's text does not count.
    names = option_help("taxi-speed", "scheduler").partition("or the address")[0]
    assert [name for name in SCHEDULER_NAMES if name not in names] == []


@pytest.mark.parametrize(
    ("pipeline", "name", "default"),
    [
        ("batch-validation", "stale_after", "[default: never stale]"),
        ("message-timing", "max_p99_ms", "[default: no threshold]"),
        ("taxi-speed", "connect_timeout", "seconds, or a duration such as 30s"),
        ("taxi-speed", "connect_timeout", "[default: 5 s]"),
    ],
)
def test_help_says_the_default(pipeline, name, default):
    assert default in option_help(pipeline, name)
