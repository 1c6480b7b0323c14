"""The pipeline contract: the spec each pipeline registers and the report each run returns."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

# Values of RunReport.status that scripts can rely on, the same in every pipeline.
STATUS_OK = "ok"
STATUS_UP_TO_DATE = "up_to_date"  # an incremental rerun found nothing new: exit 0
STATUS_VERDICT_FAILED = "verdict_failed"  # the run worked and found what the user asked to fail on: exit 3

if TYPE_CHECKING:
    import click
    import pandas as pd


@dataclass(frozen=True)
class PipelineSpec:
    """A pipeline as the registry and the CLI see it.

    ``make_command`` builds the ``sdpipe run NAME`` click command; it is a
    function so that click and the pipeline's options load only when used.
    """

    name: str
    summary: str
    make_command: Callable[[], click.Command]


@dataclass
class RunReport:
    """The outcome of one pipeline run, shared by the CLI, ``--json`` and the Python API.

    ``result`` is the pipeline's result table and ``counts`` the row or item
    accounting.  ``details`` contains anything pipeline-specific that belongs
    in the JSON document, and ``summary`` the lines of the readable summary.
    """

    pipeline: str
    status: str = STATUS_OK
    inputs: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)
    output: str | None = None
    result: pd.DataFrame | None = None
    details: dict[str, Any] = field(default_factory=dict)
    summary: list[str] = field(default_factory=list)
    exit_code: int = 0

    def result_records(self) -> list[dict[str, Any]]:
        """Return the result table as JSON-ready records (NaN becomes null)."""
        if self.result is None:
            return []
        records = self.result.to_dict(orient="records")
        return [{key: _json_value(value) for key, value in row.items()} for row in records]

    def to_dict(self) -> dict[str, Any]:
        """Return the ``--json`` document."""
        document = {
            "pipeline": self.pipeline,
            "status": self.status,
            "inputs": self.inputs,
            "counts": self.counts,
            "output": self.output,
            "result": self.result_records(),
        }
        document.update(self.details)
        return document

    def to_json(self, indent: int | None = 2) -> str:
        """Return the ``--json`` document as text."""
        return json.dumps(self.to_dict(), indent=indent, default=_json_value)


def _json_value(value: Any) -> Any:
    """Convert numpy and pandas scalars to plain JSON values."""
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def blocksize_bytes(value: int | str) -> int:
    """Return a block size given as bytes or as a size such as ``"64MiB"``."""
    if isinstance(value, int):
        return value
    from dask.utils import parse_bytes

    from sdpipe.errors import ConfigError

    try:
        return parse_bytes(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid blocksize {value!r}; give bytes or a size such as '64MiB'") from exc
