"""PNG charts of pipeline results, drawn with matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import pandas as pd


def line_or_bar_chart(
    frame: pd.DataFrame,
    key: str,
    series: Sequence[tuple[str, str]],
    *,
    title: str,
    ylabel: str,
) -> bytes:
    """Draw ``series`` (column, label) of ``frame`` against ``key`` and return PNG bytes.

    Date and time keys get a line chart; categorical keys get grouped bars.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 4.5), dpi=100)
    axes = figure.add_subplot()
    x = frame[key]
    if pd.api.types.is_datetime64_any_dtype(x) and len(frame) > 1:
        for column, label in series:
            axes.plot(x, frame[column], label=label, linewidth=1.2, marker="." if len(frame) < 60 else None)
        figure.autofmt_xdate()
    else:
        width = 0.8 / max(len(series), 1)
        positions = range(len(frame))
        for n, (column, label) in enumerate(series):
            axes.bar([p + n * width for p in positions], frame[column], width=width, label=label)
        axes.set_xticks([p + width * (len(series) - 1) / 2 for p in positions])
        axes.set_xticklabels([str(v) for v in x], rotation=45 if len(frame) > 12 else 0)

    axes.set_title(title)
    axes.set_xlabel(key)
    axes.set_ylabel(ylabel)
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
