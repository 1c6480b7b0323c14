"""Each Azure credential kind against Azurite, and the resolution of storage options."""

from __future__ import annotations

import datetime as dt
import os
import pickle
import subprocess
import sys

import pytest
from azure.storage.blob import (
    AccountSasPermissions,
    ContainerSasPermissions,
    ResourceTypes,
    generate_account_sas,
    generate_container_sas,
)

from sdpipe.errors import ConfigError
from sdpipe.io.files import expand_inputs, filesystem_for
from sdpipe.io.publish import OutputFolder
from sdpipe.io.storage import adlfs_kwargs, resolve_storage_options
from tests.azurite import REPO_ROOT, unique_name
from tests.io.identity_server import IDENTITY_HEADER, TokenServer

pytestmark = pytest.mark.azurite

URL = "az://trips/2019/*.csv"


@pytest.fixture
def container(azurite_blob, azure_clean_env) -> str:
    """A container holding two small files, reached by each test with its own credential."""
    name = unique_name("cred")
    client = azurite_blob.blob_client().create_container(name)
    client.upload_blob("in/a.csv", b"x,y\n1,2\n")
    client.upload_blob("in/b.csv", b"x,y\n3,4\n")
    return name


def _read_both(container: str, options: dict) -> list[bytes]:
    files = expand_inputs(f"az://{container}/in/*.csv", options)
    contents = []
    for found in files:
        fs, path = filesystem_for(found.url, options)
        contents.append(fs.cat_file(path))
    return contents


def test_connection_string_reads(azurite_blob, container):
    options = {"connection_string": azurite_blob.connection_string}

    assert _read_both(container, options) == [b"x,y\n1,2\n", b"x,y\n3,4\n"]


def test_connection_string_from_environment(azurite_blob, container, azure_clean_env):
    azure_clean_env.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite_blob.connection_string)

    assert _read_both(container, {}) == [b"x,y\n1,2\n", b"x,y\n3,4\n"]


def test_account_key_reads_and_writes(azurite_blob, container):
    options = {
        "account_name": azurite_blob.account_name,
        "account_key": azurite_blob.account_key,
        "blob_endpoint": azurite_blob.endpoint,
    }

    assert _read_both(container, options) == [b"x,y\n1,2\n", b"x,y\n3,4\n"]
    with OutputFolder(f"az://{container}/out", options) as folder:
        folder.write_text("result.csv", "ok\n")
        folder.publish()
    blob = azurite_blob.blob_client().get_blob_client(container, "out/result.csv")
    assert blob.download_blob().readall() == b"ok\n"


def test_account_key_from_cli_variables(azurite_blob, container, azure_clean_env):
    azure_clean_env.setenv("AZURE_STORAGE_ACCOUNT", azurite_blob.account_name)
    azure_clean_env.setenv("AZURE_STORAGE_KEY", azurite_blob.account_key)
    azure_clean_env.setenv("AZURE_STORAGE_SERVICE_ENDPOINT", azurite_blob.endpoint)

    assert _read_both(container, {}) == [b"x,y\n1,2\n", b"x,y\n3,4\n"]


def test_container_sas_reads(azurite_blob, container):
    sas = generate_container_sas(
        azurite_blob.account_name,
        container,
        account_key=azurite_blob.account_key,
        permission=ContainerSasPermissions(read=True, list=True),
        expiry=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1),
    )
    options = {"account_name": azurite_blob.account_name, "sas_token": sas, "blob_endpoint": azurite_blob.endpoint}

    assert _read_both(container, options) == [b"x,y\n1,2\n", b"x,y\n3,4\n"]


def test_account_sas_from_environment_publishes(azurite_blob, container, azure_clean_env):
    sas = generate_account_sas(
        azurite_blob.account_name,
        azurite_blob.account_key,
        resource_types=ResourceTypes(service=True, container=True, object=True),
        permission=AccountSasPermissions(read=True, list=True, write=True, create=True, delete=True),
        expiry=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1),
    )
    azure_clean_env.setenv("AZURE_STORAGE_ACCOUNT", azurite_blob.account_name)
    azure_clean_env.setenv("AZURE_STORAGE_SAS_TOKEN", "?" + sas)
    azure_clean_env.setenv("AZURE_STORAGE_SERVICE_ENDPOINT", azurite_blob.endpoint)

    with OutputFolder(f"az://{container}/out", {}) as folder:
        folder.write_text("result.csv", "via sas\n")
        folder.publish()

    blob = azurite_blob.blob_client().get_blob_client(container, "out/result.csv")
    assert blob.download_blob().readall() == b"via sas\n"


def test_anonymous_public_container(azurite_blob, azure_clean_env):
    name = unique_name("public")
    client = azurite_blob.blob_client().create_container(name, public_access="container")
    client.upload_blob("in/a.csv", b"public\n")
    options = {"account_name": azurite_blob.account_name, "anon": "true", "blob_endpoint": azurite_blob.endpoint}

    files = expand_inputs(f"az://{name}/in/*.csv", options)
    fs, path = filesystem_for(files[0].url, options)

    assert fs.cat_file(path) == b"public\n"


def test_anonymous_private_container_rejected(azurite_blob, container):
    options = {"account_name": azurite_blob.account_name, "anon": "true", "blob_endpoint": azurite_blob.endpoint}

    with pytest.raises(Exception, match="account 'devstoreaccount1'"):
        expand_inputs(f"az://{container}/in/*.csv", options)


@pytest.mark.parametrize("kind", ["managed-identity", "default", "service-principal"])
def test_azure_ad_credential_end_to_end(kind, azurite_blob_https, tmp_path, azure_clean_env):
    """Run the CLI with an azure-identity credential whose tokens come from a server on 127.0.0.1.

    The run is a subprocess because the HTTPS emulator's certificate must be
    trusted (SSL_CERT_FILE) before aiohttp loads its TLS context, and it
    carries the network guard, so any other host would fail the run.
    """
    service = azurite_blob_https
    name = unique_name("aad")
    client = service.blob_client().create_container(name)
    client.upload_blob("in/a.csv", b"x\n")
    cert = service.ca_file
    key = cert.replace("cert", "key")

    with TokenServer() as identity, TokenServer(cert, key) as authority:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "IDENTITY_", "MSI_"))}
        env.update(SSL_CERT_FILE=cert, IDENTITY_ENDPOINT=f"{identity.url}/msi/token", IDENTITY_HEADER=IDENTITY_HEADER)
        # Environment, workload identity and managed identity only: no developer tools, no browser.
        env["AZURE_TOKEN_CREDENTIALS"] = "prod"
        env["AZURE_AUTHORITY_HOST"] = authority.url
        options = ["account_name=devstoreaccount1", f"blob_endpoint={service.endpoint}", f"credential={kind}"]
        if kind == "service-principal":
            env.update(AZURE_TENANT_ID="tenant-1", AZURE_CLIENT_ID="client-1", AZURE_CLIENT_SECRET="s3cret-value-1")
        code = (
            "import sys; from tests.io import network_guard; network_guard.install();"
            "from sdpipe.io.files import expand_inputs, filesystem_for;"
            "opts = dict(o.split('=', 1) for o in sys.argv[1:]);"
            f"(f,) = expand_inputs('az://{name}/in/*.csv', opts);"
            "fs, p = filesystem_for(f.url, opts); sys.stdout.write(fs.cat_file(p).decode())"
        )
        result = subprocess.run(
            [sys.executable, "-c", code, *options], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
        )

    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout == "x\n"
    if kind == "service-principal":
        assert [r["form"]["client_id"] for r in authority.requests] == ["client-1"]
        assert authority.requests[0]["path"] == "/tenant-1/oauth2/v2.0/token"
        assert identity.requests == []
    else:
        assert identity.requests and identity.requests[0]["query"]["resource"] == "https://storage.azure.com"
        assert authority.requests == []


def test_azure_ad_token_needs_https():
    with pytest.raises(ConfigError, match="Azure AD tokens are sent only over https"):
        resolve_storage_options(
            URL, {"account_name": "acct", "credential": "default", "blob_endpoint": "http://127.0.0.1:1/acct"}, environ={}
        )


def test_options_reaching_workers_are_plain(azure_clean_env):
    resolved = resolve_storage_options(
        URL, {"account_name": "acct", "credential": "managed-identity", "client_id": "abc"}, environ={}
    )

    assert dict(resolved) == {"account_name": "acct", "credential": "managed-identity", "client_id": "abc"}
    assert pickle.loads(pickle.dumps(resolved)) == resolved
    assert all(isinstance(value, (str, bool, int, float)) for value in resolved.values())


def test_adlfs_kwargs_build_credential_object():
    from azure.identity.aio import ManagedIdentityCredential

    kwargs = adlfs_kwargs({"account_name": "acct", "credential": "managed-identity", "client_id": "abc"})

    assert isinstance(kwargs["credential"], ManagedIdentityCredential)
    assert kwargs["anon"] is False
    assert "client_id" not in kwargs


def test_live_credential_object_rejected():
    class FakeTokenCredential:
        def get_token(self, *scopes, **kwargs):
            raise AssertionError("never called")

    with pytest.raises(ConfigError, match="must name a credential kind .*not a FakeTokenCredential object"):
        resolve_storage_options(URL, {"account_name": "acct", "credential": FakeTokenCredential()}, environ={})


def test_command_line_wins_over_environment():
    environ = {"AZURE_STORAGE_KEY": "env-key-value", "AZURE_STORAGE_ACCOUNT": "envacct"}

    resolved = resolve_storage_options(URL, {"account_name": "cliacct", "sas_token": "sv=1&sig=abc"}, environ=environ)

    assert resolved["account_name"] == "cliacct"
    assert resolved["sas_token"] == "sv=1&sig=abc"
    assert "account_key" not in resolved


@pytest.mark.parametrize(
    "account_variable, key_variable",
    [("AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_KEY"), ("AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT_KEY")],
    ids=["azure-cli-names", "long-names"],
)
def test_account_key_variables_both_spellings(account_variable, key_variable):
    resolved = resolve_storage_options(URL, {}, environ={account_variable: "envacct", key_variable: "env-key-value"})

    assert resolved == {"account_name": "envacct", "account_key": "env-key-value"}


def test_auth_mode_login_means_default_credential():
    resolved = resolve_storage_options(
        URL, {}, environ={"AZURE_STORAGE_ACCOUNT": "acct", "AZURE_STORAGE_AUTH_MODE": "login"}
    )

    assert resolved == {"account_name": "acct", "credential": "default"}


def test_service_principal_from_azure_variables():
    environ = {"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c", "AZURE_CLIENT_SECRET": "s3cret-value"}

    resolved = resolve_storage_options(URL, {"account_name": "acct", "credential": "service-principal"}, environ=environ)

    assert (resolved["tenant_id"], resolved["client_id"], resolved["client_secret"]) == ("t", "c", "s3cret-value")


@pytest.mark.parametrize(
    ("options", "environ", "message"),
    [
        ({"account_name": "acct"}, {}, r"no credentials for Azure storage account 'acct'; pass --storage-option"),
        ({"account_key": "k"}, {}, r"no Azure storage account named; pass --storage-option account_name"),
        ({"account_name": "a", "account_key": "k", "sas_token": "s"}, {}, r"conflicting Azure credentials: account_key, sas_token"),
        ({"account_name": "a", "credential": "browser"}, {}, r"unknown credential kind 'browser'; choose one of default"),
        ({"account_name": "a", "credential": "service-principal"}, {}, r"needs tenant_id, client_id, client_secret"),
        ({"account_name": "a", "anon": "maybe"}, {}, r"invalid value 'maybe' for storage option 'anon'; give true or false"),
        ({"acount_key": "k"}, {}, r"unknown Azure storage option\(s\) 'acount_key'; known options: "),
        ({"connection_string": "garbage"}, {}, r"invalid Azure connection string"),
    ],
    ids=["no-credential", "no-account", "conflict", "unknown-kind", "sp-incomplete", "bad-bool", "typo", "bad-conn"],
)
def test_invalid_options_rejected(options, environ, message):
    with pytest.raises(ConfigError, match=message):
        resolve_storage_options(URL, options, environ=environ)


def test_local_options_untouched():
    assert resolve_storage_options("/data/x.csv", {"auto_mkdir": True}, environ={"AZURE_STORAGE_KEY": "k"}) == {
        "auto_mkdir": True
    }
