"""Helpers of the CLI tests: the same in-process runner and trip files as the job tests."""

from __future__ import annotations

from tests.jobs.conftest import run_cli, trips_dir  # noqa: F401
