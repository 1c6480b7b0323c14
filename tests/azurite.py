"""Azurite, the Azure Storage emulator, started on 127.0.0.1 for the tests.

Fixtures (registered in ``tests/conftest.py``, all session-scoped except the
last):

``azurite_blob``
    An :class:`AzuriteService` for the blob service over HTTP.  Use
    ``service.connection_string``, ``service.storage_options`` (for sdpipe
    and adlfs), ``service.endpoint``, ``service.account_name`` and
    ``service.account_key``; ``service.blob_client()`` returns an
    ``azure.storage.blob.BlobServiceClient`` for set-up.
``azurite_blob_https``
    The blob service over HTTPS with OAuth (bearer tokens) enabled, for
    azure-identity tests.  ``service.ca_file`` is the PEM certificate the
    client must trust (for example through ``SSL_CERT_FILE`` in a
    subprocess) and ``service.account_host`` is the value of adlfs's
    ``account_host`` option.
``azurite_queue``
    An :class:`AzuriteService` for the queue service over HTTP; it is started
    only by the tests that request it.  ``service.queue_client()`` returns an
    ``azure.storage.queue.QueueServiceClient``.
``azure_clean_env``
    Function-scoped: removes every ``AZURE_*`` variable from ``os.environ``
    for the test, so that nothing from the developer's shell reaches a
    client, and returns the ``MonkeyPatch`` to set some back.

Each test creates its own containers or queues with a unique name, for
example ``unique_name("trips")``.

The emulator runs from ``node_modules/.bin`` (``npm ci`` installs it from
``package.json``) with the flags the docs give (:data:`DOCUMENTED_FLAGS`), on a
free port.  Its account is the well-known, public development account
``devstoreaccount1``; its key is published in Azurite's documentation and
is no secret.

Outside pytest::

    with AzuriteProcess("blob") as service:
        print(service.connection_string)
"""

from __future__ import annotations

import datetime as dt
import http.client
import ipaddress
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN_DIR = REPO_ROOT / "node_modules" / ".bin"
HOST = "127.0.0.1"

DEV_ACCOUNT_NAME = "devstoreaccount1"
DEV_ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

STARTUP_TIMEOUT_S = 60.0
START_ATTEMPTS = 3  # a free port can be taken by another process before Azurite binds it

SERVICES = ("blob", "queue")
# The flags README.md, docs/azure.md and docs/load-test.md give.  --skipApiVersionCheck is needed
# because Azurite 3.37.0 rejects the API version 2026-10-06 that azure-storage-blob 12.31.1 and
# azure-storage-queue 12.18.1 send.
DOCUMENTED_FLAGS = ("--inMemoryPersistence", "--skipApiVersionCheck", "--disableTelemetry")


@dataclass(frozen=True)
class AzuriteService:
    """How to reach one running Azurite service (blob or queue)."""

    kind: str
    port: int
    scheme: str = "http"
    ca_file: str | None = None
    account_name: str = DEV_ACCOUNT_NAME
    account_key: str = DEV_ACCOUNT_KEY

    @property
    def endpoint(self) -> str:
        """Service URL in Azurite's path style, e.g. ``http://127.0.0.1:PORT/devstoreaccount1``."""
        return f"{self.scheme}://{HOST}:{self.port}/{self.account_name}"

    @property
    def account_host(self) -> str:
        """The endpoint without its scheme: adlfs's ``account_host`` option (HTTPS only)."""
        return f"{HOST}:{self.port}/{self.account_name}"

    @property
    def connection_string(self) -> str:
        endpoint_key = "BlobEndpoint" if self.kind == "blob" else "QueueEndpoint"
        return (
            f"DefaultEndpointsProtocol={self.scheme};AccountName={self.account_name};"
            f"AccountKey={self.account_key};{endpoint_key}={self.endpoint};"
        )

    @property
    def storage_options(self) -> dict[str, Any]:
        """Storage options for sdpipe and adlfs that reach this service with the account key."""
        return {"connection_string": self.connection_string}

    def blob_client(self):
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string, connection_verify=self.ca_file or True)

    def queue_client(self):
        from azure.storage.queue import QueueServiceClient

        return QueueServiceClient.from_connection_string(self.connection_string)


class AzuriteProcess:
    """One Azurite service process; a context manager that starts and stops it.

    ``https=True`` creates a self-signed certificate for 127.0.0.1 and turns on
    OAuth, which Azurite accepts only over HTTPS.  ``account=(name, key)``
    replaces the development account (the key must be base64).
    ``check_api_version=True`` leaves out ``--skipApiVersionCheck``, as a user
    who starts Azurite without it would.
    """

    def __init__(
        self,
        kind: str,
        *,
        https: bool = False,
        workdir: Path | None = None,
        account: tuple[str, str] | None = None,
        check_api_version: bool = False,
    ):
        if kind not in SERVICES:
            raise ValueError(f"unknown Azurite service {kind!r}; choose one of {', '.join(SERVICES)}")
        self.kind = kind
        self.https = https
        self.account = account
        self.flags = [flag for flag in DOCUMENTED_FLAGS if not (check_api_version and flag == "--skipApiVersionCheck")]
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix=f"azurite-{kind}-"))
        self.process: subprocess.Popen | None = None
        self.service: AzuriteService | None = None

    def __enter__(self) -> AzuriteService:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> AzuriteService:
        """Start the service on a free port and return it once it responds to HTTP requests."""
        binary = BIN_DIR / f"azurite-{self.kind}"
        if not binary.exists():
            raise RuntimeError(f"{binary} not found; run `npm ci` in {REPO_ROOT} to install Azurite")

        cert_args: list[str] = []
        ca_file = None
        if self.https:
            cert_file, key_file = write_self_signed_certificate(self.workdir)
            cert_args = ["--cert", str(cert_file), "--key", str(key_file), "--oauth", "basic"]
            ca_file = str(cert_file)

        last_output = ""
        for _ in range(START_ATTEMPTS):
            port = free_port()
            log_path = self.workdir / f"azurite-{self.kind}-{port}.log"
            command = [
                str(binary),
                f"--{self.kind}Host", HOST,
                f"--{self.kind}Port", str(port),
                *self.flags,
                *cert_args,
            ]  # fmt: skip
            env = dict(os.environ)
            if self.account:
                env["AZURITE_ACCOUNTS"] = ":".join(self.account)
            with open(log_path, "wb") as log:
                self.process = subprocess.Popen(
                    command, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir, env=env
                )
            service = AzuriteService(self.kind, port, "https" if self.https else "http", ca_file)
            if self.account:
                service = replace(service, account_name=self.account[0], account_key=self.account[1])
            if _wait_until_answering(self.process, service):
                self.service = service
                return service
            last_output = log_path.read_text(errors="replace")[-2000:]
            self._terminate()
        raise RuntimeError(f"azurite-{self.kind} did not start after {START_ATTEMPTS} attempts:\n{last_output}")

    def stop(self) -> None:
        """Stop the process and delete its working folder."""
        self._terminate()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _terminate(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _wait_until_answering(process: subprocess.Popen, service: AzuriteService) -> bool:
    """Poll the service until it returns any HTTP response; False if the process exits."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            if service.scheme == "https":
                context = ssl.create_default_context(cafile=service.ca_file)
                connection = http.client.HTTPSConnection(HOST, service.port, timeout=2, context=context)
            else:
                connection = http.client.HTTPConnection(HOST, service.port, timeout=2)
            connection.request("GET", f"/{service.account_name}?comp=list")
            connection.getresponse().read()
            connection.close()
            return True
        except OSError:
            time.sleep(0.2)
    return False


def write_self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """Write a certificate and key for 127.0.0.1 and localhost, valid for one day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST)), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file = folder / "azurite-cert.pem"
    key_file = folder / "azurite-key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


def unique_name(prefix: str) -> str:
    """Return a container or queue name that no other test uses (lowercase, 3-63 characters)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def azurite_blob(tmp_path_factory) -> AzuriteService:
    with AzuriteProcess("blob", workdir=tmp_path_factory.mktemp("azurite-blob")) as service:
        yield service


@pytest.fixture(scope="session")
def azurite_blob_https(tmp_path_factory) -> AzuriteService:
    with AzuriteProcess("blob", https=True, workdir=tmp_path_factory.mktemp("azurite-blob-https")) as service:
        yield service


@pytest.fixture(scope="session")
def azurite_queue(tmp_path_factory) -> AzuriteService:
    with AzuriteProcess("queue", workdir=tmp_path_factory.mktemp("azurite-queue")) as service:
        yield service


@pytest.fixture
def azure_clean_env(monkeypatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith(("AZURE_", "IDENTITY_", "MSI_")):
            monkeypatch.delenv(name)
    return monkeypatch
