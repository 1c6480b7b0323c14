"""Option sets shared by every ``sdpipe run`` command, and the printing of reports."""

from __future__ import annotations

import datetime as dt
import functools
import inspect
import logging
import sys
import time
from typing import Any, Callable

import click

from sdpipe.cli.errors import echo_verdict, request_json_document
from sdpipe.cluster import DEFAULT_CONNECT_TIMEOUT, ClusterConfig, resolve_cluster
from sdpipe.cluster.config import parse_seconds
from sdpipe.errors import EXIT_VERDICT, ConfigError
from sdpipe.io.secrets import StorageOptions, install_logging_filter
from sdpipe.jobs import JOB_CLUSTER_KEY
from sdpipe.locking import output_lock
from sdpipe.pipeline import RunReport
from sdpipe.runlog import JsonFormatter, RunIdFilter, json_logs, new_run_id, set_log_format

LOG_FORMATS = ("text", "json")
# The logger of the one "run finished" line per run: INFO, shown by default under --log-format json only.
RUN_LOGGER = "sdpipe.run"
# The click context's meta key under which emit_report leaves the report's status for that line.
RUN_STATUS_KEY = "sdpipe.run_status"


class Seconds(click.ParamType):
    """A duration in seconds: a number, or a Dask duration such as ``30s`` or ``2 minutes``.

    It parses with the cluster module's :func:`parse_seconds`, so a flag, its
    environment variable and a job file accept the same values.
    """

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            return parse_seconds(value, "duration")
        except ConfigError as exc:
            # parse_seconds says "invalid duration VALUE; what to give".
            advice = str(exc).partition("; ")[2]
            self.fail(f"{value!r} is not a valid duration; {advice}", param, ctx)


class ByteSize(click.ParamType):
    """A number of bytes: a whole number or a size such as ``64MiB`` or ``128 MB`` (``dask.utils.parse_bytes``)."""

    name = "size"

    def __init__(self, minimum: int = 0):
        self.minimum = minimum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        from dask.utils import format_bytes, parse_bytes

        if isinstance(value, int) and not isinstance(value, bool):
            size = value
        else:
            try:
                size = parse_bytes(str(value).strip())
            except (ValueError, TypeError):
                self.fail(f"{value!r} is not a size; give bytes or a size such as 64MiB", param, ctx)
        if size < self.minimum:
            self.fail(f"{value!r} is below the minimum of {format_bytes(self.minimum)} ({self.minimum} bytes)", param, ctx)
        return size


def size_text(size: int) -> str:
    """Return a size for help text: ``64 MiB`` for a whole number of a binary unit, else Dask's format."""
    from dask.utils import format_bytes

    for unit, name in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if size >= unit and size % unit == 0:
            return f"{size // unit} {name}"
    return format_bytes(size)


class IsoDate(click.ParamType):
    """A calendar date written YYYY-MM-DD, returned as :class:`datetime.date`."""

    name = "date"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dt.date:
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        text = str(value).strip()
        try:
            return dt.datetime.strptime(text, "%Y-%m-%d").date()
        except ValueError:
            pass
        try:
            # strptime says only "does not match"; this names what is wrong in a well-formed date.
            dt.date(*(int(part) for part in text.split("-")))
        except (TypeError, ValueError) as exc:
            reason = f" ({exc})" if text.count("-") == 2 else ""
        else:
            reason = ""
        self.fail(f"{text!r} is not a valid date{reason}; give YYYY-MM-DD", param, ctx)


def parse_storage_options(values: tuple[str, ...]) -> StorageOptions:
    """Turn repeated ``KEY=VALUE`` strings into a storage-options dict whose repr masks secrets."""
    options = StorageOptions()
    for number, item in enumerate(values, start=1):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            # The value is not shown: a secret given without its name cannot be recognised and masked.
            raise click.BadParameter(
                f"item {number} is not KEY=VALUE (its text is not shown in case it is a secret)",
                param_hint="--storage-option",
            )
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
            help="fsspec storage option for --input and --output URLs (repeatable). For az:// and "
            "abfs:// URLs: account_name=NAME with one of account_key=KEY, sas_token=TOKEN, anon=true "
            "(public container) or credential=default|managed-identity|service-principal; or "
            "connection_string=STRING; blob_endpoint=URL for an emulator such as Azurite. "
            "AZURE_STORAGE_ACCOUNT, AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN, "
            "AZURE_STORAGE_CONNECTION_STRING and AZURE_STORAGE_AUTH_MODE=login are read when no "
            "credential option is given. Secrets are masked in logs and errors.",
        ),
        click.option(
            "--scheduler",
            default=None,
            metavar="NAME|ADDRESS",
            help="Where tasks run: threads (default), processes, synchronous, local-cluster "
            "(worker processes on this machine), distributed (a Dask Client already made in this "
            "process, for use from Python), or the address of a running distributed scheduler such as "
            "tcp://HOST:8786. [env: SDPIPE_SCHEDULER, DASK_SCHEDULER_ADDRESS]",
        ),
        click.option(
            "--workers",
            type=click.IntRange(min=1),
            default=None,
            help="Start a LocalCluster of this many worker processes on this machine. Without it, no "
            "LocalCluster starts unless --threads-per-worker, --memory-limit or --scheduler local-cluster "
            "asks for one, and tasks run where --scheduler says (threads of this process by default); "
            "a LocalCluster without --workers gets as many as Dask splits the cores into. [env: SDPIPE_WORKERS]",
        ),
        click.option(
            "--threads-per-worker",
            type=click.IntRange(min=1),
            default=None,
            help="Threads in each LocalCluster worker process; implies a LocalCluster. "
            "[env: SDPIPE_THREADS_PER_WORKER]",
        ),
        click.option(
            "--memory-limit",
            default=None,
            metavar="SIZE",
            help="Memory of each LocalCluster worker, e.g. 4GiB, or 0.25 of the machine's memory; "
            "implies a LocalCluster. The workers never get more in total than the machine has. "
            "[default: auto, an even share] [env: SDPIPE_MEMORY_LIMIT]",
        ),
        click.option(
            "--connect-timeout",
            type=Seconds(),
            default=None,
            metavar="SECONDS",
            help=f"How long to try to reach a running scheduler before failing: seconds, or a duration "
            f"such as 30s or 2m. [default: {DEFAULT_CONNECT_TIMEOUT:g} s] [env: SDPIPE_CONNECT_TIMEOUT]",
        ),
        click.option(
            "--json/--no-json",
            "as_json",
            default=False,
            help="Print one JSON document on stdout and nothing else there, also when the run fails.",
        ),
        click.option(
            "--quiet/--no-quiet",
            "-q",
            default=False,
            help="Print no summary, no progress and no dashboard link; errors, warnings and the reason "
            "of exit code 3 still go to stderr.",
        ),
        click.option("--debug", is_flag=True, help="Log at DEBUG level and show tracebacks of errors."),
        click.option(
            "--log-format",
            type=click.Choice(LOG_FORMATS),
            default="text",
            show_default=True,
            envvar="SDPIPE_LOG_FORMAT",
            help="Log lines on stderr as readable text, or as one JSON object per line with the run id, "
            "for log collectors; json also logs one 'run finished' line with the exit code, also with "
            "--quiet. [env: SDPIPE_LOG_FORMAT]",
        ),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def configure_logging(quiet: bool, debug: bool, log_format: str = "text") -> None:
    """Send log records to stderr: WARNING and above, DEBUG with --debug.

    --quiet does not change the level: it drops the summary and the progress,
    never a warning.  ``log_format="json"`` writes each record as one JSON
    object on one line, with the run id (see :mod:`sdpipe.runlog`), and lets
    the INFO "run finished" line through, so that a log collector gets the run
    id of a run that logged nothing else.  Text logs nothing on success.
    """
    del quiet  # kept in the signature: the commands pass it, and it chooses no level
    level = logging.DEBUG if debug else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RunIdFilter())
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    logging.getLogger(RUN_LOGGER).setLevel(logging.INFO if log_format == "json" and not debug else logging.NOTSET)
    install_logging_filter()
    set_log_format(log_format)
    # distributed sets its logger to INFO from Dask's config when imported, and those records
    # would pass the root handler whatever its level; set the config before that import.
    import dask

    dask.config.set({"logging.distributed": logging.getLevelName(level).lower()})
    logging.getLogger("distributed").setLevel(level)


CLUSTER_FLAGS = ("workers", "threads_per_worker", "memory_limit", "connect_timeout")
CLUSTER_FLAGS_KEY = "sdpipe.cluster_flags"


def cluster_from(scheduler: str | None, quiet: bool, *, job: dict[str, Any] | None = None, **flags: Any) -> ClusterConfig:
    """Resolve the cluster configuration: flag > SDPIPE_*/DASK_* environment variable > job file > default.

    ``flags`` are the values of --workers, --threads-per-worker,
    --memory-limit and --connect-timeout; a command that does not take
    them as arguments gets them from the click context.  ``job`` is the job
    file's cluster table.  Progress shows only on a terminal and without
    --quiet; the dashboard link is printed unless --quiet.
    """
    context = click.get_current_context(silent=True)
    stashed = context.meta.get(CLUSTER_FLAGS_KEY, {}) if context is not None else {}
    if job is None and context is not None:
        job = context.meta.get(JOB_CLUSTER_KEY)
    values = {name: flags.get(name, stashed.get(name)) for name in CLUSTER_FLAGS}
    progress = not quiet and sys.stderr.isatty()
    return resolve_cluster({"scheduler": scheduler, **values}, job=job, progress=progress, print_dashboard_link=not quiet)


def emit_report(report: RunReport, as_json: bool, quiet: bool, *, verdict: str | None = None) -> int:
    """Print the report and return the exit code.

    With ``as_json`` stdout holds only the JSON document and the readable
    summary goes to stderr; otherwise the summary goes to stdout.  When the
    exit code is 3, ``verdict`` (why the run failed the check the user asked
    for) is printed on stderr as one ``Failed:`` line, even with ``quiet``.
    """
    context = click.get_current_context(silent=True)
    if context is not None:
        context.meta[RUN_STATUS_KEY] = report.status
    if as_json:
        click.echo(report.to_json())
    if report.exit_code == EXIT_VERDICT:
        echo_verdict(verdict or f"{report.pipeline} found what you asked it to fail on (exit code {EXIT_VERDICT})")
    if not quiet:
        lines = list(report.summary)
        if report.output:
            lines.append(f"  output: {report.output}")
        if as_json and json_logs():
            # stderr carries JSON lines only; the summary's content is in the JSON document.
            return report.exit_code
        click.echo("\n".join(lines), err=as_json)
    return report.exit_code


def pipeline_command(func: Callable | None = None, *, lock_output: Callable[[dict[str, Any]], str | None] | None = None) -> Callable:
    """Wrap a command body so that logging is set up first and its exit code is returned.

    Cluster flags that the body does not take as arguments are kept in the
    click context, where :func:`cluster_from` finds them.  The run holds the
    lock on its output: ``kwargs["output"]``, or what ``lock_output(kwargs)``
    returns for a command whose output has a derived default.
    """
    if func is None:
        return functools.partial(pipeline_command, lock_output=lock_output)
    accepted = inspect.signature(func).parameters
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> int:
        new_run_id()
        request_json_document(kwargs.get("as_json", False))
        configure_logging(kwargs.get("quiet", False), kwargs.get("debug", False), kwargs.get("log_format", "text"))
        if "log_format" not in accepted and not takes_all:
            kwargs.pop("log_format", None)
        context = click.get_current_context(silent=True)
        if context is not None:
            context.meta[CLUSTER_FLAGS_KEY] = {name: kwargs.get(name) for name in CLUSTER_FLAGS}
        if not takes_all:
            for name in CLUSTER_FLAGS:
                if name not in accepted:
                    kwargs.pop(name, None)
        # One run at a time per output: a second run exits 75 (LockHeldError) before reading anything.
        locked = lock_output(kwargs) if lock_output is not None else kwargs.get("output")
        started = time.monotonic()
        with output_lock(locked, parse_storage_options(kwargs.get("storage_option") or ())):
            exit_code = func(*args, **kwargs)
        log_run_finished(context, exit_code, time.monotonic() - started)
        return exit_code

    return wrapper


def log_run_finished(context: click.Context | None, exit_code: int, seconds: float) -> None:
    """Log the INFO "run finished" line: pipeline, status, exit code and duration (the run id comes with every line).

    A run that fails with an error logs its ``Error:`` line instead.
    """
    pipeline = context.command.name if context is not None else None
    status = context.meta.get(RUN_STATUS_KEY, "ok") if context is not None else "ok"
    fields = {"pipeline": pipeline, "status": status, "exit_code": exit_code, "duration_s": round(seconds, 3)}
    logging.getLogger(RUN_LOGGER).info(
        "run finished: %s %s, exit code %d, %.1f s", pipeline, status, exit_code, seconds, extra={"fields": fields}
    )
