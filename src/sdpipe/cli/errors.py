"""Translation of library errors into one ``Error:`` line and an exit code."""

from __future__ import annotations

import logging
import sys
import traceback

import click

from sdpipe.errors import EXIT_FAILURE, EXIT_USAGE, SdpipeError

logger = logging.getLogger(__name__)


def run_with_exit_codes(command: click.Command, argv: list[str] | None) -> int:
    """Invoke ``command`` and return the process exit code.

    Library errors print ``Error: <message>`` on stderr (with the traceback
    only when ``--debug`` is among the arguments).  Ctrl-C exits 130.
    """
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
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
            traceback.print_exc()
        click.echo(f"Error: {exc}", err=True)
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
        if debug:
            traceback.print_exc()
        click.echo(f"Error: {type(exc).__name__}: {exc}", err=True)
        click.echo("Run again with --debug for the traceback.", err=True)
        return EXIT_FAILURE
    return result if isinstance(result, int) else 0
