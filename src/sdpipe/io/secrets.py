"""Masking of storage secrets in text, mappings, reprs and log records.

Account keys, SAS signatures, connection strings, client secrets and bearer
tokens are replaced by ``***`` wherever sdpipe prints or logs text that
could hold them.  Two mechanisms work together:

* patterns that recognise a secret by its form (``AccountKey=...``,
  ``sig=...``, an 88-character base64 account key, a JWT, a value under a
  secret option name such as ``account_key``), and
* exact values registered with :func:`register_secret` when sdpipe resolves
  storage options, so that a secret in an unusual form is masked too.

NOTE: registered values live in a process-wide set.  Values shorter than
:data:`MIN_SECRET_LENGTH` characters are not registered, because masking
them would garble ordinary text; the patterns still mask them where they
appear as ``name=value``.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from typing import Any

MASK = "***"
MIN_SECRET_LENGTH = 6

# Option names whose values are secrets in fsspec/adlfs storage options.
SECRET_OPTION_NAMES = frozenset(
    {
        "account_key",
        "sas_token",
        "connection_string",
        "client_secret",
        "password",
        "secret",
        "token",
        "key",
        "credential",
    }
)
# Values of ``credential`` that name a credential kind and are no secret.
PUBLIC_CREDENTIAL_VALUES = frozenset({"default", "managed-identity", "service-principal"})

# Each pattern has three groups: a prefix and a separator that stay, and the secret.
_SECRET_PATTERNS = (
    # Connection-string fields.
    re.compile(r"(?i)\b(AccountKey|SharedAccessSignature|SharedAccessKey|ClientSecret)(=)([^;\s'\"]+)"),
    # SAS signature in a query string or SAS token (plain or percent-encoded).
    re.compile(r"(?i)\b(sig)(=|%3D)([^&\s'\";]+)"),
    # "name=value", "name: value" or "'name': 'value'" for secret option names.
    re.compile(
        r"(?i)\b(account_key|sas_token|connection_string|client_secret|AZURE_STORAGE_KEY|"
        r"AZURE_STORAGE_ACCOUNT_KEY|AZURE_STORAGE_SAS_TOKEN|AZURE_STORAGE_CONNECTION_STRING|"
        r"AZURE_CLIENT_SECRET|AZURE_STORAGE_CLIENT_SECRET)(['\"]?\s*[:=]\s*['\"]?)([^'\"\s,}]+)"
    ),
    # Bearer tokens and bare JWTs.
    re.compile(r"(?i)\b(Bearer)(\s+)([A-Za-z0-9._~+/=-]+)"),
    re.compile(r"()()(\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)"),
    # A storage account key: 64 random bytes in base64 (88 characters ending in "==").
    re.compile(r"()()((?<![A-Za-z0-9+/])[A-Za-z0-9+/]{86}==(?![A-Za-z0-9+/=]))"),
)

_registered: set[str] = set()
_registered_lock = threading.Lock()


def register_secret(value: Any) -> None:
    """Remember ``value`` so that :func:`mask_text` masks it wherever it appears."""
    if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH:
        return
    with _registered_lock:
        _registered.add(value)
        # A SAS token is also written without its leading "?" and inside connection strings.
        if value.startswith("?") and len(value) > MIN_SECRET_LENGTH:
            _registered.add(value[1:])


def mask_text(text: str) -> str:
    """Return ``text`` with every recognised or registered secret replaced by ``***``."""
    if not text:
        return text
    with _registered_lock:
        known = sorted(_registered, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, MASK)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(_masked_match, text)
    return text


def _masked_match(match: re.Match) -> str:
    return f"{match.group(1)}{match.group(2)}{MASK}"


def is_secret_option(name: str, value: Any) -> bool:
    """Tell whether a storage option contains a secret, judged by its name."""
    lowered = name.lower()
    if lowered == "credential":
        return not (isinstance(value, str) and value in PUBLIC_CREDENTIAL_VALUES)
    return lowered in SECRET_OPTION_NAMES or lowered.endswith(("_key", "_secret", "_token", "password"))


def mask_mapping(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of ``mapping`` with secret values masked, recursively."""
    masked: dict[str, Any] = {}
    for key, value in mapping.items():
        if is_secret_option(str(key), value) and value not in (None, ""):
            masked[key] = MASK
        else:
            masked[key] = mask_value(value)
    return masked


def mask_value(value: Any) -> Any:
    """Mask secrets in a string, mapping or list; return other values unchanged."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return mask_mapping(value)
    if isinstance(value, (list, tuple)):
        return type(value)(mask_value(item) for item in value)
    return value


class StorageOptions(dict):
    """A storage-options dict whose ``repr`` and ``str`` mask secret values.

    It is an ordinary ``dict`` otherwise, so it pickles to Dask workers and
    passes to fsspec unchanged.
    """

    def __repr__(self) -> str:
        return repr(mask_mapping(self))

    __str__ = __repr__

    def __reduce__(self):
        return (StorageOptions, (dict(self),))


class SecretMaskingFilter(logging.Filter):
    """Logging filter that masks secrets in the message and the traceback of a record.

    Attach it to handlers: a filter on a logger does not see records that
    propagate from its child loggers.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_text(message)
        if masked != message or record.args:
            record.msg = masked
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_text(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        return True


def install_logging_filter(logger: logging.Logger | None = None) -> None:
    """Attach a :class:`SecretMaskingFilter` to every handler of ``logger`` (the root by default)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(existing, SecretMaskingFilter) for existing in handler.filters):
            handler.addFilter(SecretMaskingFilter())
