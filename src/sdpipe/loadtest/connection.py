"""Connection settings for Azure Storage queues, with every secret kept out of text.

The settings mirror those of blob storage: a connection string, an account
name with an account key, or a SAS token.  The CLI reads them from the
environment variables that the pipelines' storage options read:
``AZURE_STORAGE_CONNECTION_STRING``, ``AZURE_STORAGE_ACCOUNT``,
``AZURE_STORAGE_KEY`` and ``AZURE_STORAGE_SAS_TOKEN``, with
``AZURE_STORAGE_ACCOUNT_NAME`` and ``AZURE_STORAGE_ACCOUNT_KEY`` accepted as
other spellings.  Error messages built here pass through
:meth:`QueueSettings.mask`, so a key or signature never reaches a log line,
an exception or a report; the values are also registered with
:mod:`sdpipe.io.secrets`, whose log filter masks them in every log line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sdpipe.errors import ConfigError, MissingDependencyError
from sdpipe.io.secrets import MASK, mask_text, register_secret
from sdpipe.io.storage import unsupported_api_version

DEFAULT_POOL_SIZE = 64


@dataclass(frozen=True)
class QueueSettings:
    """The queue endpoint and credentials; ``repr`` shows no secret.

    Exactly one way to authenticate is used, in this order: connection string,
    account key, SAS token.  ``queue_endpoint`` overrides the account's public
    endpoint ``https://{account_name}.queue.core.windows.net`` (Azurite:
    ``http://127.0.0.1:PORT/devstoreaccount1``).
    """

    account_name: str | None = None
    queue_endpoint: str | None = None
    connection_string: str | None = field(default=None, repr=False)
    account_key: str | None = field(default=None, repr=False)
    sas_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # Registered values are masked by sdpipe's log filter and error printer too.
        for secret in self.secrets():
            register_secret(secret)
        if not (self.connection_string or self.account_key or self.sas_token):
            raise ConfigError(
                "no queue credentials: pass --connection-string or set AZURE_STORAGE_CONNECTION_STRING, "
                "or give an account name with AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN"
            )
        if not self.connection_string and not (self.account_name or self.queue_endpoint):
            raise ConfigError(
                "no queue account: pass --account-name (or set AZURE_STORAGE_ACCOUNT) or --queue-endpoint URL"
            )
        if self.queue_endpoint and not re.match(r"^https?://", self.queue_endpoint):
            raise ConfigError(
                f"invalid queue endpoint {self.mask(self.queue_endpoint)!r}: use an http:// or https:// URL, "
                "e.g. https://ACCOUNT.queue.core.windows.net"
            )

    @property
    def auth_method(self) -> str:
        """The way of authenticating in use: ``connection-string``, ``account-key`` or ``sas``."""
        if self.connection_string:
            return "connection-string"
        return "account-key" if self.account_key else "sas"

    @property
    def account_url(self) -> str:
        """The queue service URL without credentials."""
        if self.queue_endpoint:
            return self.queue_endpoint.split("?", 1)[0].rstrip("/")
        if self.account_name:
            return f"https://{self.account_name}.queue.core.windows.net"
        return self._client().url.split("?", 1)[0].rstrip("/")

    def secrets(self) -> list[str]:
        """Return the secret values, longest first, for masking."""
        values = [self.connection_string, self.account_key, self.sas_token]
        if self.sas_token:
            values.append(self.sas_token.lstrip("?"))
        return sorted({value for value in values if value}, key=len, reverse=True)

    def mask(self, text: str) -> str:
        """Return ``text`` with every secret value and secret URL or connection-string part masked."""
        for secret in self.secrets():
            text = text.replace(secret, MASK)
        return mask_text(text)

    def error_text(self, exc: BaseException) -> str:
        """Return the masked first line of an SDK error, or what to do when the service rejects the API version."""
        unsupported = unsupported_api_version(exc)
        if unsupported is not None:
            return f"the queue service at {self.describe()['queue_endpoint']} {unsupported}"
        lines = str(exc).strip().splitlines()
        return self.mask(f"{type(exc).__name__}: {lines[0] if lines else ''}")

    def describe(self) -> dict[str, Any]:
        """Return the settings for reports: endpoint and method, no secret."""
        return {"queue_endpoint": self.mask(self.account_url), "auth": self.auth_method}

    def service_client(self, pool_size: int = DEFAULT_POOL_SIZE) -> Any:
        """Return a ``QueueServiceClient`` whose own retries are off: sdpipe retries with backoff itself.

        ``pool_size`` caps the open HTTP connections; it should cover every
        thread that talks to the queues at once, or connections are dropped
        and opened again.
        """
        return self._client(pool_size)

    def _client(self, pool_size: int = DEFAULT_POOL_SIZE) -> Any:
        try:
            from azure.storage.queue import QueueServiceClient
        except ImportError as exc:
            raise MissingDependencyError(
                "the queue load test needs azure-storage-queue: pip install 'sdpipe[queue]'"
            ) from exc
        import requests
        from azure.core.pipeline.transport import RequestsTransport

        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        options: dict[str, Any] = {"retry_total": 0, "transport": RequestsTransport(session=session, session_owner=True)}
        if self.connection_string:
            try:
                return QueueServiceClient.from_connection_string(self.connection_string, **options)
            except ValueError as exc:
                raise ConfigError(f"invalid queue connection string: {self.mask(str(exc))}") from None

        url = self.account_url
        if self.account_key:
            from azure.core.credentials import AzureNamedKeyCredential

            name = self.account_name or _account_from_url(url)
            return QueueServiceClient(url, credential=AzureNamedKeyCredential(name, self.account_key), **options)
        from azure.core.credentials import AzureSasCredential

        return QueueServiceClient(url, credential=AzureSasCredential(self.sas_token.lstrip("?")), **options)

    def __repr__(self) -> str:
        return f"QueueSettings(endpoint={self.describe()['queue_endpoint']!r}, auth={self.auth_method!r})"


def _account_from_url(url: str) -> str:
    """Return the account name of a queue URL: the host's first label, or the first path part on an emulator."""
    match = re.match(r"^https?://([^/:]+)(?::\d+)?(?:/([^/?]+))?", url)
    if match is None:
        raise ConfigError(f"cannot tell the account name from {url!r}; pass --account-name")
    host, path_account = match.groups()
    if re.fullmatch(r"[\d.]+|localhost|\[[0-9a-f:]+\]", host) and path_account:
        return path_account
    return host.split(".", 1)[0]
