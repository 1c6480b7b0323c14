"""Storage options for Azure Blob storage (``az://``, ``abfs://``, ``abfss://``) and its errors.

sdpipe passes storage options to adlfs in adlfs's own terms and completes
them from the environment once, on the client, so that Dask workers receive
plain, picklable options.  One credential kind is used per run:

=================  ===========================================  =====================================
kind               storage options                              environment variables
=================  ===========================================  =====================================
connection string  ``connection_string``                        ``AZURE_STORAGE_CONNECTION_STRING``
account key        ``account_name`` + ``account_key``            ``AZURE_STORAGE_ACCOUNT`` (or
                                                                ``AZURE_STORAGE_ACCOUNT_NAME``) +
                                                                ``AZURE_STORAGE_KEY`` (or
                                                                ``AZURE_STORAGE_ACCOUNT_KEY``)
SAS token          ``account_name`` + ``sas_token``              ``AZURE_STORAGE_SAS_TOKEN``
anonymous          ``account_name`` + ``anon=true``              ``AZURE_STORAGE_ANON=true``
Azure AD           ``account_name`` + ``credential=KIND``        ``AZURE_STORAGE_AUTH_MODE=login``
                   (default, managed-identity,                  (means ``credential=default``)
                   service-principal)
=================  ===========================================  =====================================

Options given on the command line or in code win; environment variables
fill in credentials only when the options give none.  Without any
credential sdpipe raises :class:`ConfigError` instead of letting adlfs fall
back to ``DefaultAzureCredential``, which would contact Microsoft's login
hosts and the cloud metadata address without being asked to.

``blob_endpoint`` (or ``AZURE_STORAGE_SERVICE_ENDPOINT``) names the blob
service URL of an emulator or a private endpoint, for example
``http://127.0.0.1:10000/devstoreaccount1``.  sdpipe turns it into the
connection string or ``account_host`` that adlfs expects.

Azure AD credentials are live objects, so the options carry only the kind's
name; :func:`adlfs_kwargs` builds the azure-identity credential in each
process that opens the filesystem.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import threading
import time
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from sdpipe.errors import ConfigError, MissingDependencyError, NoInputError, StorageError
from sdpipe.io.secrets import StorageOptions, mask_text, register_secret

logger = logging.getLogger(__name__)

AZURE_PROTOCOLS = ("az", "abfs", "abfss")
CREDENTIAL_KINDS = ("default", "managed-identity", "service-principal")
CREDENTIAL_OPTIONS = ("connection_string", "account_key", "sas_token", "anon", "credential")

BOOLEAN_OPTIONS = frozenset(
    {"anon", "version_aware", "assume_container_exists", "default_fill_cache", "skip_instance_cache", "use_listings_cache"}
)
INTEGER_OPTIONS = frozenset({"blocksize", "max_concurrency", "timeout", "connection_timeout", "read_timeout", "max_paths"})
FLOAT_OPTIONS = frozenset({"listings_expiry_time"})
# adlfs's AzureBlobFileSystem arguments (adlfs 2024.7 to 2026.8) plus sdpipe's blob_endpoint.
KNOWN_OPTIONS = frozenset(
    {
        "account_name",
        "account_key",
        "connection_string",
        "credential",
        "sas_token",
        "client_id",
        "client_secret",
        "tenant_id",
        "anon",
        "account_host",
        "location_mode",
        "default_cache_type",
        "blob_endpoint",
    }
    | BOOLEAN_OPTIONS
    | INTEGER_OPTIONS
    | FLOAT_OPTIONS
)

TRUE_WORDS = ("true", "1", "yes", "on", "t", "y")
FALSE_WORDS = ("false", "0", "no", "off", "f", "n", "")

# Azurite's message for a request whose x-ms-version header it does not know.
UNSUPPORTED_API_VERSION = re.compile(r"API version (\S+) is not supported", re.IGNORECASE)

PROBE_ATTEMPTS = 3
PROBE_TIMEOUT_S = 5.0
PROBE_BACKOFF_S = 0.5  # doubled after each failed attempt
_reachable: set[tuple[str, int]] = set()
_reachable_lock = threading.Lock()
_credentials: dict[tuple, Any] = {}
_credentials_lock = threading.Lock()


def protocol_of(urlpath: str) -> str:
    """Return the URL's scheme in lowercase, ``file`` for a local path."""
    scheme, sep, _ = urlpath.partition("://")
    return scheme.lower() if sep else "file"


def is_azure_url(urlpath: str) -> bool:
    return protocol_of(urlpath) in AZURE_PROTOCOLS


def resolve_storage_options(
    urlpath: str, storage_options: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> StorageOptions:
    """Return the complete, picklable storage options for ``urlpath``.

    Only Azure URLs are changed: option values are converted to their types,
    credentials are completed from the environment and checked (see the
    module docstring).  Calling it again on its own result returns equal
    options, so library functions may call it on options a caller resolved.
    """
    options = StorageOptions(storage_options or {})
    if not is_azure_url(urlpath):
        return options
    import os

    resolved = _resolve_azure(options, os.environ if environ is None else environ)
    for name in ("account_key", "sas_token", "connection_string", "client_secret"):
        register_secret(resolved.get(name))
    return resolved


def resolve_for_urls(urlpaths: Sequence[str | None], storage_options: Mapping[str, Any] | None = None) -> StorageOptions:
    """Resolve storage options once, on the client, for a run that touches ``urlpaths``.

    The first Azure URL among them decides (a run's options serve all its
    URLs).  Pipelines call this before building their task graph, so that
    workers on other machines get complete options instead of reading
    their own environment.
    """
    for urlpath in urlpaths:
        if urlpath and is_azure_url(urlpath):
            return resolve_storage_options(urlpath, storage_options)
    return StorageOptions(storage_options or {})


def _resolve_azure(options: StorageOptions, environ: Mapping[str, str]) -> StorageOptions:
    unknown = sorted(set(options) - KNOWN_OPTIONS)
    if unknown:
        raise ConfigError(
            f"unknown Azure storage option(s) {', '.join(map(repr, unknown))}; "
            f"known options: {', '.join(sorted(KNOWN_OPTIONS))}"
        )
    resolved = StorageOptions({name: _typed(name, value) for name, value in options.items() if value is not None})

    _set_from_env(resolved, "account_name", environ, "AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_ACCOUNT_NAME")
    _set_from_env(resolved, "blob_endpoint", environ, "AZURE_STORAGE_SERVICE_ENDPOINT")
    if not _given_credentials(resolved):
        _credentials_from_env(resolved, environ)
    if resolved.get("credential") == "service-principal":
        _set_from_env(resolved, "tenant_id", environ, "AZURE_STORAGE_TENANT_ID", "AZURE_TENANT_ID")
        _set_from_env(resolved, "client_id", environ, "AZURE_STORAGE_CLIENT_ID", "AZURE_CLIENT_ID")
        _set_from_env(resolved, "client_secret", environ, "AZURE_STORAGE_CLIENT_SECRET", "AZURE_CLIENT_SECRET")

    _check_credentials(resolved)
    return resolved


def _typed(name: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        if name in BOOLEAN_OPTIONS:
            if text.lower() in TRUE_WORDS:
                return True
            if text.lower() in FALSE_WORDS:
                return False
            raise ValueError(text)
        if name in INTEGER_OPTIONS:
            return int(text)
        if name in FLOAT_OPTIONS:
            return float(text)
    except ValueError:
        kind = "true or false" if name in BOOLEAN_OPTIONS else "a number"
        raise ConfigError(f"invalid value {value!r} for storage option {name!r}; give {kind}") from None
    if name == "credential":
        return text.lower()
    return value


def _set_from_env(options: dict[str, Any], name: str, environ: Mapping[str, str], *variables: str) -> None:
    if options.get(name) not in (None, ""):
        return
    for variable in variables:
        if environ.get(variable):
            options[name] = environ[variable]
            return


def _given_credentials(options: Mapping[str, Any]) -> list[str]:
    given = [name for name in CREDENTIAL_OPTIONS if options.get(name) not in (None, "", False)]
    if options.get("client_secret") and "credential" not in given:
        given.append("client_secret")
    return given


def _credentials_from_env(options: dict[str, Any], environ: Mapping[str, str]) -> None:
    """Take the first credential the environment offers, in adlfs's order of precedence."""
    if environ.get("AZURE_STORAGE_CONNECTION_STRING"):
        options["connection_string"] = environ["AZURE_STORAGE_CONNECTION_STRING"]
    elif environ.get("AZURE_STORAGE_KEY") or environ.get("AZURE_STORAGE_ACCOUNT_KEY"):
        options["account_key"] = environ.get("AZURE_STORAGE_KEY") or environ["AZURE_STORAGE_ACCOUNT_KEY"]
    elif environ.get("AZURE_STORAGE_SAS_TOKEN"):
        options["sas_token"] = environ["AZURE_STORAGE_SAS_TOKEN"]
    elif _typed("anon", environ.get("AZURE_STORAGE_ANON", "false")) is True:
        options["anon"] = True
    elif environ.get("AZURE_STORAGE_AUTH_MODE", "").lower() == "login":
        options["credential"] = "default"


def _check_credentials(options: StorageOptions) -> None:
    given = _given_credentials(options)
    if options.get("client_secret") and options.get("credential") in (None, ""):
        options["credential"] = "service-principal"
        given = _given_credentials(options)
    if len(given) > 1:
        raise ConfigError(
            f"conflicting Azure credentials: {', '.join(given)}; give only one of connection_string, "
            "account_key, sas_token, anon=true or credential=KIND"
        )
    if not given:
        raise ConfigError(
            f"no credentials for Azure storage account {account_name_of(options) or '(none given)'!r}; "
            "pass --storage-option account_key=KEY, sas_token=TOKEN, connection_string=STRING, "
            "anon=true (public container) or credential=default|managed-identity|service-principal, "
            "or set AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN"
        )

    kind = given[0]
    if kind != "connection_string" and not options.get("account_name") and not options.get("blob_endpoint"):
        raise ConfigError(
            "no Azure storage account named; pass --storage-option account_name=ACCOUNT "
            "or set AZURE_STORAGE_ACCOUNT"
        )
    if kind == "connection_string" and "=" not in str(options["connection_string"]):
        raise ConfigError("invalid Azure connection string: expected KEY=VALUE pairs separated by ';'")
    if kind == "credential":
        _check_credential_kind(options)


def _check_credential_kind(options: Mapping[str, Any]) -> None:
    credential = options["credential"]
    if not isinstance(credential, str):
        raise ConfigError(
            f"storage option 'credential' must name a credential kind ({', '.join(CREDENTIAL_KINDS)}), "
            f"not a {type(credential).__name__} object: Dask workers receive the options and build "
            "the credential themselves"
        )
    if credential not in CREDENTIAL_KINDS:
        raise ConfigError(f"unknown credential kind {credential!r}; choose one of {', '.join(CREDENTIAL_KINDS)}")
    if credential == "service-principal":
        missing = [name for name in ("tenant_id", "client_id", "client_secret") if not options.get(name)]
        if missing:
            raise ConfigError(
                f"credential=service-principal needs {', '.join(missing)}; pass them as storage options "
                "or set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET"
            )
    endpoint = options.get("blob_endpoint")
    if endpoint and urlsplit(endpoint).scheme != "https":
        raise ConfigError(
            f"blob_endpoint {endpoint!r} is not https; Azure AD tokens are sent only over https, "
            "so use an https endpoint or an account key or SAS token"
        )


def account_name_of(options: Mapping[str, Any]) -> str | None:
    """Return the storage account name the options address, or None if they do not name one."""
    if options.get("account_name"):
        return str(options["account_name"])
    fields = parse_connection_string(options.get("connection_string") or "")
    if fields.get("accountname"):
        return fields["accountname"]
    endpoint = options.get("blob_endpoint") or fields.get("blobendpoint")
    if endpoint:
        parts = urlsplit(endpoint)
        path = parts.path.strip("/")
        return path.split("/")[0] if path else (parts.hostname or "").split(".")[0]
    if fields.get("usedevelopmentstorage", "").lower() == "true":
        return "devstoreaccount1"
    return None


def blob_endpoint_of(options: Mapping[str, Any]) -> str:
    """Return the blob service URL the options address."""
    if options.get("blob_endpoint"):
        return str(options["blob_endpoint"]).rstrip("/")
    fields = parse_connection_string(options.get("connection_string") or "")
    if fields.get("blobendpoint"):
        return fields["blobendpoint"].rstrip("/")
    if fields.get("usedevelopmentstorage", "").lower() == "true":
        return "http://127.0.0.1:10000/devstoreaccount1"
    if options.get("account_host"):
        return f"https://{options['account_host']}"
    account = account_name_of(options) or "ACCOUNT"
    scheme = fields.get("defaultendpointsprotocol", "https")
    suffix = fields.get("endpointsuffix", "core.windows.net")
    return f"{scheme}://{account}.blob.{suffix}"


def parse_connection_string(text: str) -> dict[str, str]:
    """Split ``Key=Value;...`` into a dict with lowercase keys (values keep their ``=``)."""
    fields = {}
    for part in text.split(";"):
        key, sep, value = part.partition("=")
        if sep and key.strip():
            fields[key.strip().lower()] = value.strip()
    return fields


def adlfs_kwargs(options: Mapping[str, Any]) -> dict[str, Any]:
    """Turn resolved options into ``AzureBlobFileSystem`` arguments, building live credentials here."""
    kwargs = dict(options)
    endpoint = kwargs.pop("blob_endpoint", None)
    credential = kwargs.get("credential")

    if isinstance(credential, str):
        kwargs["credential"] = _identity_credential(kwargs)
        kwargs["anon"] = False
        for name in ("client_id", "client_secret", "tenant_id"):
            kwargs.pop(name, None)  # used by the credential; adlfs would build a second one
        if endpoint:
            kwargs["account_host"] = endpoint.split("://", 1)[1].rstrip("/")
    elif endpoint and not kwargs.get("connection_string"):
        kwargs["connection_string"] = _endpoint_connection_string(endpoint, kwargs)
        for name in ("account_key", "sas_token", "anon"):
            kwargs.pop(name, None)
    elif not credential and not kwargs.get("connection_string"):
        kwargs.setdefault("anon", not (kwargs.get("account_key") or kwargs.get("sas_token")))
    return kwargs


def _endpoint_connection_string(endpoint: str, options: Mapping[str, Any]) -> str:
    endpoint = endpoint.rstrip("/")
    if options.get("account_key"):
        account = options.get("account_name") or account_name_of({"blob_endpoint": endpoint})
        scheme = urlsplit(endpoint).scheme or "https"
        return (
            f"DefaultEndpointsProtocol={scheme};AccountName={account};"
            f"AccountKey={options['account_key']};BlobEndpoint={endpoint};"
        )
    if options.get("sas_token"):
        return f"BlobEndpoint={endpoint};SharedAccessSignature={str(options['sas_token']).lstrip('?')};"
    return f"BlobEndpoint={endpoint};"


def _identity_credential(options: Mapping[str, Any]):
    """Return one azure-identity async credential per process for the options' kind."""
    kind = options["credential"]
    key = (kind, options.get("tenant_id"), options.get("client_id"), options.get("client_secret"))
    with _credentials_lock:
        if key in _credentials:
            return _credentials[key]
        try:
            from azure.identity import aio as identity
        except ImportError as exc:
            raise MissingDependencyError(
                f"credential={kind} needs azure-identity; install it with `pip install 'sdpipe[identity]'`"
            ) from exc
        if kind == "managed-identity":
            credential = identity.ManagedIdentityCredential(client_id=options.get("client_id"))
        elif kind == "service-principal":
            credential = identity.ClientSecretCredential(
                options["tenant_id"], options["client_id"], options["client_secret"]
            )
        else:
            extra = {"managed_identity_client_id": options["client_id"]} if options.get("client_id") else {}
            credential = identity.DefaultAzureCredential(**extra)
        _credentials[key] = credential
        return credential


def check_endpoint_reachable(options: Mapping[str, Any]) -> None:
    """Raise :class:`StorageError` if the blob endpoint does not accept TCP connections.

    adlfs leaves retries to the Azure SDK, whose back-off takes minutes
    before it reports an unreachable host; this check tries
    :data:`PROBE_ATTEMPTS` times with short timeouts first.  A reachable
    endpoint is checked once per process.  Behind an HTTP proxy the check is
    skipped, because only the proxy can connect to the endpoint.
    """
    endpoint = blob_endpoint_of(options)
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    with _reachable_lock:
        if (host, port) in _reachable:
            return
    if _behind_proxy(parts.scheme, host):
        return

    delay = PROBE_BACKOFF_S
    error: OSError | None = None
    for attempt in range(1, PROBE_ATTEMPTS + 1):
        try:
            with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
                pass
        except OSError as exc:
            error = exc
            logger.info("blob endpoint %s not reachable (attempt %d of %d): %s", endpoint, attempt, PROBE_ATTEMPTS, exc)
            if attempt < PROBE_ATTEMPTS:
                time.sleep(delay)
                delay *= 2
            continue
        with _reachable_lock:
            _reachable.add((host, port))
        return
    raise StorageError(
        f"cannot reach the Azure Blob endpoint {endpoint} after {PROBE_ATTEMPTS} attempts ({error}); "
        "check the account name, blob_endpoint and the network"
    )


def _behind_proxy(scheme: str, host: str) -> bool:
    proxies = urllib.request.getproxies()
    return bool(proxies.get(scheme) or proxies.get("all")) and not urllib.request.proxy_bypass(host)


def translate_error(
    exc: BaseException, urlpath: str | None = None, options: Mapping[str, Any] | None = None
) -> Exception | None:
    """Return the sdpipe error for an Azure SDK exception, or ``None`` for any other exception.

    adlfs sometimes wraps the SDK's exception (``RuntimeError(...) from
    exc``), so the chain of causes is searched.  The account, endpoint and
    blob are taken from the failed request where the exception carries it,
    otherwise from ``urlpath`` and ``options``.  Messages name them and the
    fix; the server's own message is kept (masked) for what the mapping
    cannot tell.
    """
    azure_exc = _azure_cause(exc)
    if azure_exc is None:
        return None
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

    where = _Where.of(azure_exc, urlpath, options or {})
    reason = _first_line(azure_exc)
    unsupported = unsupported_api_version(azure_exc)
    if unsupported is not None:
        return StorageError(f"the Azure Storage endpoint {where.endpoint} {unsupported}")
    if isinstance(azure_exc, ServiceRequestError):
        return StorageError(f"cannot reach the Azure Storage endpoint {where.endpoint}: {reason}")
    if not isinstance(azure_exc, HttpResponseError):
        if isinstance(azure_exc, ClientAuthenticationError):
            return StorageError(f"authentication failed for account {where.account!r}: {reason}")
        return StorageError(f"Azure Storage request for {where.url} failed: {reason}")

    code = str(getattr(azure_exc.error_code, "value", azure_exc.error_code) or "")
    status = azure_exc.status_code
    if code in ("AuthenticationFailed", "AuthorizationFailure", "InvalidAuthenticationInfo") or status == 401:
        return StorageError(
            f"authentication failed for account {where.account!r} at {where.endpoint} ({code or status}: {reason}); "
            "check the account key, renew the SAS token if it expired, or check the Azure AD credential"
        )
    if code.startswith("Authorization") or status == 403:
        return StorageError(
            f"permission denied on {where.url} in account {where.account!r} ({code or status}: {reason}); "
            "the credential lacks the permission: a SAS token needs read and list to read inputs, "
            "and read, list, write, create and delete to publish outputs"
        )
    if code == "ContainerNotFound":
        return NoInputError(f"container {where.container!r} not found in account {where.account!r} at {where.endpoint}")
    if code == "BlobNotFound" or status == 404:
        return NoInputError(f"{where.url} not found in account {where.account!r} ({reason})")
    return StorageError(f"Azure Storage request for {where.url} failed ({code or status}: {reason})")


def unsupported_api_version(exc: BaseException) -> str | None:
    """Return what to do when a storage service rejects the SDK's API version, or ``None`` for other errors.

    Azurite rejects every API version newer than its own release knows of,
    and the Azure SDKs send the newest one they support; the text starts with
    "does not support", for the caller to prefix with the service it
    addressed.
    """
    match = UNSUPPORTED_API_VERSION.search(str(getattr(exc, "reason", None) or "") + " " + str(exc))
    if match is None:
        return None
    return (
        f"does not support the Azure Storage API version {match.group(1)} that the installed Azure SDK sends; "
        "start Azurite with --skipApiVersionCheck, or upgrade Azurite (or the storage emulator) to a release "
        "that supports this version"
    )


def _azure_cause(exc: BaseException) -> BaseException | None:
    try:
        from azure.core.exceptions import AzureError
    except ImportError:  # pragma: no cover - azure-core comes with adlfs
        return None
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, AzureError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


class _Where:
    """Account, endpoint, container and URL that a failed Azure request addressed."""

    def __init__(self, account: str, endpoint: str, container: str, url: str):
        self.account = account
        self.endpoint = endpoint
        self.container = container
        self.url = url

    @classmethod
    def of(cls, exc: BaseException, urlpath: str | None, options: Mapping[str, Any]) -> _Where:
        request_url = _request_url(exc)
        if request_url:
            parts = urlsplit(request_url)
            segments = [segment for segment in parts.path.split("/") if segment]
            path_style = _is_ip_or_localhost(parts.hostname or "")
            if path_style and segments:
                account, segments = segments[0], segments[1:]
                endpoint = f"{parts.scheme}://{parts.netloc}/{account}"
            else:
                account = (parts.hostname or "").split(".")[0]
                endpoint = f"{parts.scheme}://{parts.netloc}"
            container = segments[0] if segments else ""
            url = urlpath or "az://" + "/".join(unquote(segment) for segment in segments)
            return cls(account, endpoint, container, url)
        return cls(
            account_name_of(options) or "(unknown)",
            blob_endpoint_of(options) if options else "(unknown endpoint)",
            container_of(urlpath or ""),
            urlpath or "(unknown blob)",
        )


def _request_url(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    request = getattr(response, "request", None)
    url = getattr(request, "url", None)
    return str(url) if url else None


def _is_ip_or_localhost(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def container_of(urlpath: str) -> str:
    """Return the container name of an ``az://container/path`` URL."""
    rest = urlpath.split("://", 1)[-1]
    container = rest.split("/", 1)[0]
    return container.split("@", 1)[0]


def _first_line(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or str(exc)
    lines = str(reason).strip().splitlines()
    return mask_text(lines[0] if lines else type(exc).__name__)
