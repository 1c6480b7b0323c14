"""The Python API of batch-validation: cluster choices, integer attempts, the verdict in ``frame.attrs``."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from batch_validation_helpers import REQUIRED, write_batch
from click.testing import CliRunner

import sdpipe
from sdpipe.cli.errors import run_with_exit_codes
from sdpipe.cli.main import cli
from sdpipe.cluster import ClusterConfig
from sdpipe.errors import ConfigError
from sdpipe.pipelines.batch_validation import api

VALID = "acme_20240102_0930"
INVALID = "acme_20240103_0930"
INCOMPLETE = "acme_20240104_0930"


@pytest.fixture
def inbound(tmp_path: Path) -> Path:
    folder = tmp_path / "drop" / "inbound"
    write_batch(folder, VALID)
    write_batch(folder, INVALID, overrides={"type3": b'"only one column"\n'})
    write_batch(folder, INCOMPLETE, types=REQUIRED[:2])
    return folder


def test_attempt_column_is_integer(inbound: Path):
    frame = sdpipe.batch_validation(str(inbound), dry_run=True, scheduler="synchronous")

    assert str(frame["attempt"].dtype) == "Int64"
    attempts = dict(zip(frame["batch"], frame["attempt"]))
    assert attempts[VALID] == 1
    assert attempts[INVALID] == 1
    assert attempts[INCOMPLETE] is pd.NA


def test_frame_attrs_show_invalid_verdict(inbound: Path):
    frame = sdpipe.batch_validation(str(inbound), dry_run=True, fail_on_invalid=True, scheduler="synchronous")

    assert frame.attrs["status"] == "verdict_failed"
    assert frame.attrs["exit_code"] == 3
    assert frame.attrs["invalid_batches"] == [INVALID]
    assert frame.attrs["routing_errors"] == []


def test_frame_attrs_ok_without_fail_on_invalid(inbound: Path):
    frame = sdpipe.batch_validation(str(inbound), dry_run=True, scheduler="synchronous")

    assert frame.attrs["status"] == "ok"
    assert frame.attrs["exit_code"] == 0
    assert frame.attrs["invalid_batches"] == [INVALID]


def test_cli_status_verdict_failed(inbound: Path):
    args = ["run", "batch-validation", "-i", str(inbound), "--dry-run", "--fail-on-invalid", "--json", "--scheduler", "synchronous"]
    with CliRunner().isolation() as (stdout, _, _):
        code = run_with_exit_codes(cli, args)
        document = json.loads(stdout.getvalue().decode())

    assert code == 3
    assert document["status"] == "verdict_failed"


def test_workers_reach_cluster_config(inbound: Path):
    with pytest.raises(ConfigError, match="invalid workers 0; give a whole number of at least 1"):
        sdpipe.batch_validation(str(inbound), dry_run=True, workers=0)


def test_cluster_config_passed_through(inbound: Path, monkeypatch):
    seen = []
    real_run = api.run
    monkeypatch.setattr(api, "run", lambda options, cluster: seen.append(cluster) or real_run(options, cluster))
    chosen = ClusterConfig(scheduler="synchronous")

    sdpipe.batch_validation(str(inbound), dry_run=True, cluster=chosen)

    assert seen == [chosen]
