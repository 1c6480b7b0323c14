"""Translation of library errors into one ``Error:`` line and an exit code.

With ``--json`` a failed run also prints one JSON document on stdout, so
that stdout holds exactly one document whatever the outcome::

    {"pipeline": "taxi-speed", "status": "failed",
     "error": {"type": "NoInputError", "message": "...", "exit_code": 1}}
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback

import click

from sdpipe.errors import EXIT_FAILURE, EXIT_USAGE, SdpipeError
from sdpipe.io.secrets import mask_text
from sdpipe.io.storage import translate_error
from sdpipe.runlog import json_line, json_logs, new_run_id, set_log_format

logger = logging.getLogger(__name__)

# Whether stdout must carry a JSON document; set from the arguments, then by the command itself
# (a job file can set json = true).
_json_document = False


def request_json_document(requested: bool) -> None:
    """Record whether the running command was asked for ``--json``, so that a failure prints a JSON document."""
    global _json_document
    _json_document = bool(requested)


def run_with_exit_codes(command: click.Command, argv: list[str] | None) -> int:
    """Invoke ``command`` and return the process exit code.

    Library errors print ``Error: <message>`` on stderr (with the traceback
    only when ``--debug`` is among the arguments).  Ctrl-C exits 130.
    Under ``--log-format json`` a usage error is one JSON log line too.
    """
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    # A run id from the start, so that an error before the command runs (a usage error) carries one too.
    new_run_id()
    set_log_format(_requested_log_format(args))
    request_json_document(_requested_json(args))
    try:
        result = command.main(args=args, prog_name="sdpipe", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        if json_logs():
            _echo_error(f"Error: {exc.format_message().rstrip('.')}{_help_hint(exc)}")
        else:
            exc.show()
        code = exc.exit_code if exc.exit_code else EXIT_USAGE
        _echo_failure_document(args, exc, exc.format_message(), code)
        return code
    except click.Abort:
        click.echo("Aborted: nothing was published.", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("Interrupted: nothing was published.", err=True)
        return 130
    except SdpipeError as exc:
        if debug:
            _print_traceback()
        # An error whose parts are masked one by one (a job file's mistakes) is not masked again as
        # a whole, because "account_key: holds a secret" reads to the masker as a secret's value.
        masked = getattr(exc, "masked", False)
        _echo_error(f"Error: {exc}", masked=masked)
        _echo_failure_document(args, exc, str(exc), exc.exit_code, masked=masked)
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
        if debug:
            _print_traceback()
        storage_error = translate_error(exc)
        if storage_error is not None:
            _echo_error(f"Error: {storage_error}")
            _echo_failure_document(args, storage_error, str(storage_error), EXIT_FAILURE)
            return EXIT_FAILURE
        _echo_error(f"Error: {type(exc).__name__}: {exc}")
        _echo_error("Run again with --debug for the traceback.")
        _echo_failure_document(args, exc, f"{type(exc).__name__}: {exc}", EXIT_FAILURE)
        return EXIT_FAILURE
    return result if isinstance(result, int) else 0


def echo_verdict(reason: str) -> None:
    """Print why a run exits 3 as one ``Failed:`` line on stderr; ``--quiet`` does not hide it."""
    _echo_error(f"Failed: {reason}")


def _help_hint(exc: click.ClickException) -> str:
    """Return the pointer to the command's --help that click prints after a usage error."""
    context = getattr(exc, "ctx", None)
    if not isinstance(exc, click.UsageError) or context is None:
        return ""
    names = context.help_option_names
    return f"; try '{context.command_path} {'--help' if '--help' in names else names[0]}' for help" if names else ""


def _requested_json(args: list[str]) -> bool:
    """Return whether the last of ``--json`` and ``--no-json`` among the arguments is ``--json``."""
    flags = [arg for arg in args if arg in ("--json", "--no-json")]
    return bool(flags) and flags[-1] == "--json"


def _echo_failure_document(args: list[str], exc: BaseException, message: str, exit_code: int, *, masked: bool = False) -> None:
    """Print the JSON document of a failed run on stdout when ``--json`` was asked for."""
    if not _json_document:
        return
    document = {
        "pipeline": _pipeline_name(args),
        "status": "failed",
        "error": {"type": type(exc).__name__, "message": message if masked else mask_text(message), "exit_code": exit_code},
    }
    click.echo(json.dumps(document, indent=2))


def _pipeline_name(args: list[str]) -> str | None:
    """Return the pipeline that ``sdpipe run NAME`` or ``sdpipe run JOB_FILE`` names, or the command's name."""
    from sdpipe.jobs import is_job_file, read_toml

    words = [arg for arg in args if not arg.startswith("-")]
    if not words:
        return None
    if words[0] != "run" or len(words) < 2:
        return words[0]
    name = words[1]
    if not is_job_file(name):
        return name
    try:
        pipeline = read_toml(name).get("pipeline")
    except SdpipeError:
        return None
    return pipeline if isinstance(pipeline, str) else None


def _requested_log_format(args: list[str]) -> str:
    """Return the --log-format of the arguments, so that errors before the command runs use it too."""
    for index, arg in enumerate(args):
        if arg == "--log-format" and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith("--log-format="):
            return arg.split("=", 1)[1]
    return os.environ.get("SDPIPE_LOG_FORMAT", "text")


def _print_traceback() -> None:
    click.echo(mask_text(traceback.format_exc()), err=True, nl=False)


def _echo_error(line: str, *, masked: bool = False) -> None:
    """Print one error line on stderr, secrets masked, as a JSON log line under ``--log-format json``."""
    if not masked:
        line = mask_text(line)
    click.echo(json_line("ERROR", line) if json_logs() else line, err=True)
