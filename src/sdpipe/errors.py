"""Exceptions raised by sdpipe and the exit codes the CLI maps them to.

Every exception derives from :class:`SdpipeError` and also from the builtin
that fits it, so callers can catch either.  Each one must survive pickling,
because Dask re-raises exceptions from worker processes in the client.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_VERDICT = 3
EXIT_LOCKED = 75


class SdpipeError(Exception):
    """Root of all sdpipe errors; the CLI prints the message and exits 1."""

    exit_code = EXIT_FAILURE

    def __reduce__(self):
        # Rebuild from the message alone: subclasses take one string argument.
        return (type(self), (str(self),))


class InputError(SdpipeError, ValueError):
    """An input file is missing, unreadable or does not have the expected content."""


class NoInputError(InputError, FileNotFoundError):
    """A path or glob pattern matched no file."""


class ConfigError(SdpipeError, ValueError):
    """An option, job file or spec has an invalid value; the CLI exits 2."""

    exit_code = EXIT_USAGE


class StorageError(SdpipeError, OSError):
    """Reading from or writing to a storage backend failed."""


class MissingDependencyError(SdpipeError, ImportError):
    """An optional package that a URL scheme or feature needs is not installed."""


class LockHeldError(SdpipeError, RuntimeError):
    """Another run holds the lock on the same output; the CLI exits 75."""

    exit_code = EXIT_LOCKED


class VerdictError(SdpipeError):
    """The run worked but found what the user asked to fail on; the CLI exits 3."""

    exit_code = EXIT_VERDICT
