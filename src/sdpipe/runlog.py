"""The run id of this process, and log records as JSON lines for log collectors.

The CLI runs one pipeline per process, so the run id is a process-wide
value: log records from Dask worker threads carry it too.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid

_run_id: str | None = None
_log_format = "text"


def new_run_id() -> str:
    """Start a new run: make a fresh run id, make it this process's, and return it."""
    global _run_id
    _run_id = uuid.uuid4().hex[:12]
    return _run_id


def current_run_id() -> str | None:
    """Return this process's run id, or ``None`` outside a CLI run."""
    return _run_id


def set_log_format(name: str) -> None:
    """Record whether the CLI writes its stderr lines as text or as JSON objects."""
    global _log_format
    _log_format = name


def json_logs() -> bool:
    """Return whether stderr carries JSON lines only (``--log-format json``)."""
    return _log_format == "json"


def json_line(level: str, message: str, name: str = "sdpipe") -> str:
    """Return a message that the CLI prints itself (such as its ``Error:`` line) as a JSON log line."""
    record = logging.LogRecord(name, logging.getLevelName(level), __file__, 0, message, None, None)
    return JsonFormatter().format(record)


class RunIdFilter(logging.Filter):
    """Add ``run_id`` to every record that passes through the handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.run_id = _run_id
        return True


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object on one line: time, level, logger, message, run_id.

    A record logged with ``extra={"fields": {...}}`` carries those fields too,
    for values that a log collector filters on (the run-finished line's exit code).
    """

    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "run_id": getattr(record, "run_id", _run_id),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            document.update({key: value for key, value in fields.items() if key not in document})
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str)
