"""Approximate percentiles stay within their documented bound of numpy's exact ones."""

from __future__ import annotations

import numpy as np
import pytest

from sdpipe.generate.messages import RunSpec, generate_records, write_jsonl
from sdpipe.pipelines.message_timing.api import run_message_timing
from sdpipe.pipelines.message_timing.compute import APPROXIMATE_MIN_MS, LogHistogram

PERCENTS = (0.0, 1.0, 25.0, 50.0, 90.0, 99.0, 99.9, 100.0)
DISTRIBUTIONS = {
    "lognormal": lambda rng: rng.lognormal(3.0, 1.5, 20_000),
    "exponential": lambda rng: rng.exponential(5.0, 5_000),
    "with-zeros": lambda rng: np.r_[np.zeros(300), rng.uniform(0, 0.01, 300), rng.pareto(1.5, 3_000) * 100],
    "two-values": lambda rng: np.array([1.0, 1000.0]),
    "one-value": lambda rng: np.array([42.0]),
}


@pytest.mark.parametrize("accuracy", [0.001, 0.01, 0.05])
@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_histogram_within_bound(name, accuracy):
    values = DISTRIBUTIONS[name](np.random.default_rng(3))
    histogram = LogHistogram.from_values(values, accuracy)
    for percent in PERCENTS:
        exact = np.percentile(values, percent)
        bound = accuracy * exact + APPROXIMATE_MIN_MS
        assert abs(histogram.percentile(percent) - exact) <= bound * (1 + 1e-9), percent


def test_histogram_rejects_bad_accuracy():
    with pytest.raises(ValueError, match="relative_accuracy must be between 0 and 1, not 1.5"):
        LogHistogram.from_values(np.array([1.0]), 1.5)


def test_pipeline_approximate_mode(tmp_path):
    generated = generate_records([RunSpec("run", "Queue", 5000, latency_sigma=1.2)], seed=11)
    path = write_jsonl(generated.records, tmp_path / "records.jsonl")
    exact = run_message_timing(str(path), scheduler="synchronous").result.iloc[0]
    approximate = run_message_timing(str(path), percentiles="approximate", relative_accuracy=0.02, scheduler="synchronous").result.iloc[0]
    for statistic in ("p50", "p90", "p99", "p999"):
        for prefix in ("latency_ms", "processing_ms"):
            column = f"{prefix}_{statistic}"
            assert abs(approximate[column] - exact[column]) <= 0.02 * exact[column] + APPROXIMATE_MIN_MS, column
    # Mean and max are exact in both modes.
    assert approximate["latency_ms_mean"] == exact["latency_ms_mean"]
    assert approximate["latency_ms_max"] == exact["latency_ms_max"]
