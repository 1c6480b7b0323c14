"""Translation of library errors into one ``Error:`` line and an exit code."""

from __future__ import annotations

import logging
import os
import sys
import traceback

import click

from sdpipe.errors import EXIT_FAILURE, EXIT_USAGE, SdpipeError
from sdpipe.io.secrets import mask_text
from sdpipe.io.storage import translate_error
from sdpipe.runlog import json_line, json_logs, set_log_format

logger = logging.getLogger(__name__)


def run_with_exit_codes(command: click.Command, argv: list[str] | None) -> int:
    """Invoke ``command`` and return the process exit code.

    Library errors print ``Error: <message>`` on stderr (with the traceback
    only when ``--debug`` is among the arguments).  Ctrl-C exits 130.
    """
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    set_log_format(_requested_log_format(args))
    try:
        result = command.main(args=args, prog_name="sdpipe", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code if exc.exit_code else EXIT_USAGE
    except click.Abort:
        click.echo("Aborted: nothing was published.", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("Interrupted: nothing was published.", err=True)
        return 130
    except SdpipeError as exc:
        if debug:
            _print_traceback()
        _echo_error(f"Error: {exc}")
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
        if debug:
            _print_traceback()
        storage_error = translate_error(exc)
        if storage_error is not None:
            _echo_error(f"Error: {storage_error}")
            return EXIT_FAILURE
        _echo_error(f"Error: {type(exc).__name__}: {exc}")
        _echo_error("Run again with --debug for the traceback.")
        return EXIT_FAILURE
    return result if isinstance(result, int) else 0


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


def _echo_error(line: str) -> None:
    """Print one error line on stderr, secrets masked, as a JSON log line under ``--log-format json``."""
    line = mask_text(line)
    click.echo(json_line("ERROR", line) if json_logs() else line, err=True)
