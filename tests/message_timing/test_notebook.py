"""The message-timing notebook's per-second plot puts every run on its own clock."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import nbformat
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "message-timing.ipynb"
RECORDS = REPO / "data" / "sample" / "messages" / "records.jsonl"


def processed_span_seconds() -> dict[str, float]:
    """Return, per test run, the whole UTC seconds from its first to its last MessageProcessedTime."""
    seconds = defaultdict(list)
    for line in RECORDS.read_text().splitlines():
        record = json.loads(line)
        seconds[record["TestRun"]].append(pd.Timestamp(record["MessageProcessedTime"]).floor("s"))
    return {run: (max(values) - min(values)).total_seconds() for run, values in seconds.items()}


def test_per_second_plot_uses_elapsed_seconds(monkeypatch):
    import matplotlib.pyplot as plt

    monkeypatch.chdir(NOTEBOOK.parent)
    monkeypatch.setattr(plt, "show", lambda: None)
    namespace: dict = {}
    for cell in nbformat.read(NOTEBOOK, as_version=4).cells:
        if cell.cell_type == "code":
            exec(compile(cell.source, str(NOTEBOOK), "exec"), namespace)  # noqa: S102 - the repository's own notebook

    spans = processed_span_seconds()
    lines = namespace["axes"][1].get_lines()
    plt.close("all")
    assert len(lines) == len(spans) == 3
    for line in lines:
        run = line.get_label().split(" (")[0]
        elapsed = list(line.get_xdata())
        assert elapsed[0] == 0, run
        assert max(elapsed) <= spans[run], run
    assert "afew" not in NOTEBOOK.read_text()
