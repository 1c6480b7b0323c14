"""The README's first command: taxi-speed on the bundled sample, from the repository root."""

from __future__ import annotations

import json
import subprocess
import sys

from sdpipe.generate.taxi import make_month, month_rows

SAMPLE_ROWS, SAMPLE_MONTHS, SAMPLE_SEED = 6000, 3, 2017


def test_run_on_sample_counts_planted_rows(repo_root, tmp_path):
    output = tmp_path / "out"
    completed = subprocess.run(
        [sys.executable, "-m", "sdpipe.cli.main", "run", "taxi-speed", "--output", str(output), "--json"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    document = json.loads(completed.stdout)

    # Expected counts from the generator's definition of the planted rows, not from sdpipe.
    planted_per_kind = sum(len(make_month(2017, m + 1, n, SAMPLE_SEED, dirty=True)[1]["too_fast"])
                           for m, n in enumerate(month_rows(SAMPLE_ROWS, SAMPLE_MONTHS)))
    cut_short_rows = 1
    counts = document["counts"]
    assert counts["read"] == SAMPLE_ROWS + cut_short_rows
    assert counts["rejected"]["unparseable"] == 2 * planted_per_kind + cut_short_rows
    assert counts["rejected"]["outside_period"] == 0
    for reason in ("non_positive_distance", "non_positive_duration", "too_long", "too_fast"):
        assert counts["rejected"][reason] == planted_per_kind, reason
    assert counts["valid"] == counts["read"] - sum(counts["rejected"].values())

    dates = [row["date"] for row in document["result"]]
    assert dates == sorted(dates)
    assert dates[0] < "2017-01-01"  # trips planted 40 days before their month are still reported
    assert sum(row["trips"] for row in document["result"]) == counts["valid"]
    for name in ("result.parquet", "result.csv", "speed.png", "manifest.json"):
        assert (output / name).is_file(), name
