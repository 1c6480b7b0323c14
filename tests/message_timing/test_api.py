"""The Python API of message-timing takes the CLI's choices and shows the verdict in ``frame.attrs``."""

from __future__ import annotations

import inspect

import pytest

import sdpipe
from sdpipe.cluster import ClusterConfig
from sdpipe.errors import ConfigError
from sdpipe.generate.messages import RunSpec, generate_records, write_jsonl
from sdpipe.pipelines.message_timing import api


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    generated = generate_records([RunSpec("r1", "Queue", 300), RunSpec("r2", "Queue", 200, start="2024-05-01T11:00:00")], seed=3)
    return str(write_jsonl(generated.records, tmp_path_factory.mktemp("api") / "records.jsonl"))


def test_cluster_parameters_match_taxi_speed():
    from sdpipe.pipelines.taxi_speed.api import run_taxi_speed

    taxi = inspect.signature(run_taxi_speed).parameters
    timing = inspect.signature(api.run_message_timing).parameters
    for name in ("scheduler", "workers", "cluster", "blocksize"):
        assert timing[name].annotation == taxi[name].annotation, name
        assert timing[name].kind is inspect.Parameter.KEYWORD_ONLY, name


def test_workers_reach_cluster_config(records):
    with pytest.raises(ConfigError, match="invalid workers 0; give a whole number of at least 1"):
        sdpipe.message_timing(records, workers=0)


def test_cluster_config_passed_through(records, monkeypatch):
    seen = []
    real_run = api.run
    monkeypatch.setattr(api, "run", lambda options, cluster: seen.append(cluster) or real_run(options, cluster))
    chosen = ClusterConfig(scheduler="synchronous")

    sdpipe.message_timing(records, cluster=chosen)

    assert seen == [chosen]


def test_blocksize_accepts_size_text(records, monkeypatch):
    seen = []
    real_run = api.run
    monkeypatch.setattr(api, "run", lambda options, cluster: seen.append(options.blocksize) or real_run(options, cluster))

    by_text = sdpipe.message_timing(records, blocksize="4KiB", scheduler="synchronous")
    by_number = sdpipe.message_timing(records, blocksize=4096, scheduler="synchronous")

    assert seen == [4096, 4096]
    assert by_text.equals(by_number)


def test_blocksize_invalid_text_error(records):
    with pytest.raises(ConfigError, match=r"invalid blocksize '64 parsecs'; give bytes or a size such as '64MiB'"):
        sdpipe.message_timing(records, blocksize="64 parsecs")


def test_frame_attrs_show_breach(records):
    frame = sdpipe.message_timing(records, max_p99_ms=0.001, scheduler="synchronous")

    assert frame.attrs["status"] == "verdict_failed"
    assert frame.attrs["exit_code"] == 3
    assert len(frame.attrs["threshold_breaches"]) == 2  # both runs have latencies far above 1 µs
    assert "is above --max-p99-ms 0.001" in frame.attrs["threshold_breaches"][0]


def test_frame_attrs_ok_without_breach(records):
    frame = sdpipe.message_timing(records, max_p99_ms=10**9, scheduler="synchronous")

    assert frame.attrs["status"] == "ok"
    assert frame.attrs["exit_code"] == 0
    assert frame.attrs["threshold_breaches"] == []
