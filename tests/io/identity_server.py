"""A stand-in for Azure AD token endpoints, served on 127.0.0.1 for azure-identity tests.

It serves the two token sources sdpipe's credential kinds use, so that no
credential ever contacts Microsoft's login hosts or the metadata address:

* the App Service managed-identity endpoint (``IDENTITY_ENDPOINT`` with
  ``IDENTITY_HEADER``), over HTTP, for ``credential=managed-identity`` and
  ``credential=default``;
* the OAuth 2.0 client-credentials endpoint of an authority
  (``AZURE_AUTHORITY_HOST``), over HTTPS, for ``credential=service-principal``.

Tokens are unsigned JWTs with the issuer, audience and lifetime that
Azurite checks with ``--oauth basic`` (it does not check signatures).
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

TENANT_ID = "00000000-0000-0000-0000-000000000001"
IDENTITY_HEADER = "sdpipe-test-identity-header"


def fake_storage_token(lifetime_s: int = 3600) -> str:
    """Return an unsigned JWT for https://storage.azure.com that Azurite accepts."""
    now = int(time.time())
    header = {"alg": "none", "typ": "JWT"}
    claims = {
        "aud": "https://storage.azure.com",
        "iss": f"https://sts.windows.net/{TENANT_ID}/",
        "iat": now - 60,
        "nbf": now - 60,
        "exp": now + lifetime_s,
        "oid": str(uuid.uuid4()),
        "tid": TENANT_ID,
    }
    return ".".join(_b64(part) for part in (header, claims)) + ".c2ln"


def _b64(part: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()


class TokenServer:
    """Token endpoints on 127.0.0.1; a context manager.  ``requests`` lists what it served."""

    def __init__(self, cert_file: str | None = None, key_file: str | None = None):
        self.requests: list[dict] = []
        handler = _handler_for(self)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.https = cert_file is not None
        if self.https:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert_file, key_file)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        scheme = "https" if self.https else "http"
        return f"{scheme}://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> TokenServer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def _handler_for(owner: TokenServer):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # managed identity (App Service protocol)
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            owner.requests.append({"kind": "managed-identity", "path": parts.path, "query": query})
            if self.headers.get("X-IDENTITY-HEADER") != IDENTITY_HEADER:
                self._reply(401, {"error": "missing or wrong X-IDENTITY-HEADER"})
                return
            self._reply(
                200,
                {
                    "access_token": fake_storage_token(),
                    "expires_on": str(int(time.time()) + 3600),
                    "resource": query.get("resource", ""),
                    "token_type": "Bearer",
                    "client_id": query.get("client_id", "system-assigned"),
                },
            )

        def do_POST(self) -> None:  # client credentials grant of a service principal
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            owner.requests.append({"kind": "client-credentials", "path": self.path, "form": form})
            self._reply(
                200,
                {"access_token": fake_storage_token(), "expires_in": 3600, "ext_expires_in": 3600, "token_type": "Bearer"},
            )

        def _reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args) -> None:  # keep test output clean
            pass

    return Handler
