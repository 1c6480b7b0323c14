"""Fixtures of the taxi-speed tests: the reference computation and a CLI runner."""

from __future__ import annotations

import importlib.util
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from sdpipe.cli.errors import run_with_exit_codes
from sdpipe.cli.main import cli

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def reference():
    """The independent plain-pandas computation in ``reference.py`` (loaded by path, tests are no package)."""
    spec = importlib.util.spec_from_file_location("taxi_speed_reference", HERE / "reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> dict:
        return json.loads(self.stdout)


@pytest.fixture
def sdpipe():
    """Run ``sdpipe ARGS...`` in this process and return its exit code, stdout and stderr."""
    root = logging.getLogger()
    saved = list(root.handlers), root.level

    def invoke(*args: str) -> CliResult:
        runner = CliRunner()
        with runner.isolation() as (stdout, stderr, _):
            code = run_with_exit_codes(cli, [str(a) for a in args])
        return CliResult(code, stdout.getvalue().decode(), stderr.getvalue().decode())

    yield invoke
    # The CLI installs a stderr handler on the root logger; drop it with the captured stream.
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


@pytest.fixture
def write_csv(tmp_path):
    """Write text (or bytes) to a file under tmp_path and return its path."""

    def write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.encode("utf-8")
        path.write_bytes(content)
        return path

    return write
