"""Option sets shared by every ``sdpipe run`` command, and the printing of reports."""

from __future__ import annotations

import functools
import logging
import sys
from typing import Any, Callable

import click

from sdpipe.cluster import ClusterConfig
from sdpipe.pipeline import RunReport


def parse_storage_options(values: tuple[str, ...]) -> dict[str, Any]:
    """Turn repeated ``KEY=VALUE`` strings into a storage-options dict."""
    options: dict[str, Any] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--storage-option")
        options[key.strip()] = value
    return options


def common_options(command: Callable) -> Callable:
    """Add the output, logging, storage and scheduler options that every pipeline takes."""
    decorators = [
        click.option(
            "--storage-option",
            "storage_option",
            multiple=True,
            metavar="KEY=VALUE",
            help="fsspec storage option for --input and --output URLs, e.g. account_name=NAME "
            "(repeatable). AZURE_STORAGE_* environment variables work too.",
        ),
        click.option(
            "--scheduler",
            default=None,
            envvar="SDPIPE_SCHEDULER",
            metavar="NAME|ADDRESS",
            help="Dask scheduler: threads (default), processes, synchronous, "
            "or tcp://HOST:PORT of a running distributed scheduler. [env: SDPIPE_SCHEDULER]",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout and nothing else there."),
        click.option("--quiet", "-q", is_flag=True, help="Print no summary and no progress; errors still go to stderr."),
        click.option("--debug", is_flag=True, help="Log at DEBUG level and show tracebacks of errors."),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def configure_logging(quiet: bool, debug: bool) -> None:
    """Send log records to stderr: WARNING by default, ERROR with --quiet, DEBUG with --debug."""
    level = logging.DEBUG if debug else logging.ERROR if quiet else logging.WARNING
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s", force=True)


def cluster_from(scheduler: str | None, quiet: bool, **extra: Any) -> ClusterConfig:
    """Build the cluster configuration; progress shows only on a terminal and without --quiet."""
    progress = not quiet and sys.stderr.isatty()
    return ClusterConfig(scheduler=scheduler, progress=progress, **extra)


def emit_report(report: RunReport, as_json: bool, quiet: bool) -> int:
    """Print the report and return the exit code.

    With ``as_json`` stdout holds only the JSON document and the readable
    summary goes to stderr; otherwise the summary goes to stdout.
    """
    if as_json:
        click.echo(report.to_json())
    if not quiet:
        lines = list(report.summary)
        if report.output:
            lines.append(f"  output: {report.output}")
        click.echo("\n".join(lines), err=as_json)
    return report.exit_code


def pipeline_command(func: Callable) -> Callable:
    """Wrap a command body so that logging is set up first and its exit code is returned."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> int:
        configure_logging(kwargs.get("quiet", False), kwargs.get("debug", False))
        return func(*args, **kwargs)

    return wrapper
