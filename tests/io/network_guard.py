"""A guard that makes any connection to a host other than 127.0.0.1 fail at once.

The storage tests use it so that a credential or client that would reach
for Microsoft's login hosts, the cloud metadata address or a real storage
account fails loudly instead of leaving the machine.  ``python -m
tests.io.network_guard sdpipe ARGS...`` runs the sdpipe CLI with the guard
installed, for tests that need a fresh process.
"""

from __future__ import annotations

import socket
import sys

ALLOWED_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class NetworkGuardError(ConnectionRefusedError):
    """A test tried to reach a host other than 127.0.0.1."""


def _check(host) -> None:
    if host is None:
        return
    if isinstance(host, bytes):
        host = host.decode()
    if host not in ALLOWED_HOSTS:
        raise NetworkGuardError(f"test network guard: connection to {host!r} blocked; tests reach only 127.0.0.1")


def install(setattr_=setattr) -> None:
    """Patch socket name resolution and connect; ``setattr_`` may be a MonkeyPatch's setattr."""
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host, *args, **kwargs):
        _check(host)
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _check(address[0])
        return real_connect(self, address)

    def connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _check(address[0])
        return real_connect_ex(self, address)

    setattr_(socket, "getaddrinfo", getaddrinfo)
    setattr_(socket.socket, "connect", connect)
    setattr_(socket.socket, "connect_ex", connect_ex)


if __name__ == "__main__":
    install()
    from sdpipe.cli.main import main

    sys.argv = sys.argv[1:]
    main(sys.argv[1:])
