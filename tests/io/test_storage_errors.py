"""Every storage error path: the sdpipe error class and the text the user reads."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from azure.storage.blob import ContainerSasPermissions, generate_container_sas

from sdpipe.cli.main import cli
from sdpipe.cli.errors import run_with_exit_codes
from sdpipe.errors import ConfigError, MissingDependencyError, NoInputError, StorageError
from sdpipe.io.files import expand_inputs
from sdpipe.io.publish import OutputFolder
from tests.azurite import AzuriteProcess, unique_name

pytestmark = pytest.mark.azurite

WRONG_KEY = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXlXcm9uZ0tleQ=="


@pytest.fixture
def container(azurite_blob, azure_clean_env) -> str:
    name = unique_name("err")
    azurite_blob.blob_client().create_container(name).upload_blob("in/a.csv", b"x\n")
    return name


def _key_options(service, key: str) -> dict:
    return {"account_name": service.account_name, "account_key": key, "blob_endpoint": service.endpoint}


def _sas_options(service, container: str, expiry: dt.datetime, **permissions) -> dict:
    sas = generate_container_sas(
        service.account_name,
        container,
        account_key=service.account_key,
        permission=ContainerSasPermissions(**permissions),
        expiry=expiry,
    )
    return {"account_name": service.account_name, "sas_token": sas, "blob_endpoint": service.endpoint}


def test_wrong_key_authentication_failed(azurite_blob, container):
    options = _key_options(azurite_blob, WRONG_KEY)

    with pytest.raises(StorageError) as caught:
        expand_inputs(f"az://{container}/in/*.csv", options)

    message = str(caught.value)
    assert message.startswith(f"authentication failed for account 'devstoreaccount1' at {azurite_blob.endpoint} (")
    assert "check the account key, renew the SAS token if it expired" in message
    assert WRONG_KEY not in message


def test_expired_sas_authentication_failed(azurite_blob, container):
    expired = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    options = _sas_options(azurite_blob, container, expired, read=True, list=True)

    with pytest.raises(StorageError, match=r"^authentication failed for account 'devstoreaccount1' at "):
        expand_inputs(f"az://{container}/in/a.csv", options)


def test_read_only_sas_cannot_publish(azurite_blob, container):
    valid = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    options = _sas_options(azurite_blob, container, valid, read=True, list=True)

    with pytest.raises(StorageError, match=r"failed: permission denied on .* in account 'devstoreaccount1' "):
        with OutputFolder(f"az://{container}/out", options) as folder:
            folder.write_text("result.csv", "x\n")
            folder.publish()

    assert [b.name for b in azurite_blob.blob_client().get_container_client(container).list_blobs()] == ["in/a.csv"]


def test_missing_container_named(azurite_blob, azure_clean_env):
    with pytest.raises(NoInputError) as caught:
        expand_inputs("az://no-such-container/in/*.csv", azurite_blob.storage_options)

    assert str(caught.value) == (
        "container 'no-such-container' not found for 'az://no-such-container/in/*.csv' "
        f"in account 'devstoreaccount1' at {azurite_blob.endpoint}"
    )


def test_no_blob_matches(azurite_blob, container):
    with pytest.raises(NoInputError, match=rf"^no input file matches 'az://{container}/in/\*\.parquet'; check"):
        expand_inputs(f"az://{container}/in/*.parquet", azurite_blob.storage_options)


def test_unreachable_endpoint_named(closed_port, azure_clean_env):
    endpoint = f"http://127.0.0.1:{closed_port}/devstoreaccount1"
    options = {"account_name": "devstoreaccount1", "account_key": WRONG_KEY, "blob_endpoint": endpoint}

    with pytest.raises(StorageError) as caught:
        expand_inputs("az://any/in/*.csv", options)

    assert str(caught.value).startswith(f"cannot reach the Azure Blob endpoint {endpoint} after 3 attempts (")


def test_unreachable_endpoint_cli_line(closed_port, azure_clean_env, capsys):
    endpoint = f"http://127.0.0.1:{closed_port}/devstoreaccount1"

    code = run_with_exit_codes(
        cli,
        [
            "run", "taxi-speed", "--input", "az://any/*.csv", "--output", "az://any/out",
            "--storage-option", "account_name=devstoreaccount1",
            "--storage-option", f"account_key={WRONG_KEY}",
            "--storage-option", f"blob_endpoint={endpoint}",
        ],
    )  # fmt: skip

    stderr = capsys.readouterr().err
    assert code == 1
    assert f"Error: cannot reach the Azure Blob endpoint {endpoint} after 3 attempts" in stderr
    assert WRONG_KEY not in stderr


def test_wrong_key_cli_line(azurite_blob, container, capsys):
    code = run_with_exit_codes(
        cli,
        [
            "run", "taxi-speed", "--input", f"az://{container}/in/*.csv", "--output", f"az://{container}/out",
            "--storage-option", "account_name=devstoreaccount1",
            "--storage-option", f"account_key={WRONG_KEY}",
            "--storage-option", f"blob_endpoint={azurite_blob.endpoint}",
        ],
    )  # fmt: skip

    stderr = capsys.readouterr().err
    assert code == 1
    assert stderr.startswith(f"Error: authentication failed for account 'devstoreaccount1' at {azurite_blob.endpoint}")
    assert WRONG_KEY not in stderr


def test_missing_credentials_cli_exit_2(azure_clean_env, capsys, tmp_path):
    code = run_with_exit_codes(
        cli,
        ["run", "taxi-speed", "-i", "az://c/*.csv", "-o", str(tmp_path / "out"), "--storage-option", "account_name=acct"],
    )

    assert code == 2
    assert "Error: no credentials for Azure storage account 'acct'" in capsys.readouterr().err


def test_uninstalled_backend_names_package():
    with pytest.raises(MissingDependencyError, match=r"cannot open 's3://bucket/x\.csv': .*\(pip install s3fs\)"):
        expand_inputs("s3://bucket/x.csv")


def test_unknown_scheme_rejected():
    with pytest.raises(MissingDependencyError, match=r"no fsspec backend is known for 'nosuch'://"):
        expand_inputs("nosuch://bucket/x.csv")


def test_storage_errors_survive_pickling(azurite_blob, container):
    import pickle

    with pytest.raises(StorageError) as caught:
        expand_inputs(f"az://{container}/in/*.csv", _key_options(azurite_blob, WRONG_KEY))

    copy = pickle.loads(pickle.dumps(caught.value))
    assert type(copy) is StorageError
    assert str(copy) == str(caught.value)


def test_config_error_for_bad_option_value(azure_clean_env):
    with pytest.raises(ConfigError, match=r"invalid value 'lots' for storage option 'max_concurrency'; give a number"):
        expand_inputs("az://c/x.csv", {"account_name": "a", "anon": "true", "max_concurrency": "lots"})


def test_wrapped_connection_error_translated():
    from azure.core.exceptions import ServiceRequestError

    from sdpipe.io.storage import translate_error

    options = {"account_name": "acct", "account_key": WRONG_KEY, "blob_endpoint": "http://127.0.0.1:9/acct"}
    try:
        try:
            raise ServiceRequestError("Cannot connect to host 127.0.0.1:9")
        except ServiceRequestError as inner:
            raise RuntimeError("Failed to fetch range") from inner
    except RuntimeError as outer:
        translated = translate_error(outer, "az://c/x.csv", options)

    assert isinstance(translated, StorageError)
    assert str(translated) == "cannot reach the Azure Storage endpoint http://127.0.0.1:9/acct: Cannot connect to host 127.0.0.1:9"
    assert translate_error(ValueError("not azure"), "az://c/x.csv", options) is None


@pytest.fixture(scope="module")
def azurite_checking_api_version(tmp_path_factory):
    """Azurite's blob service started without --skipApiVersionCheck, as a user might start it."""
    with AzuriteProcess("blob", workdir=tmp_path_factory.mktemp("azurite-strict"), check_api_version=True) as service:
        yield service


def test_unsupported_api_version_names_flag(azurite_checking_api_version, azure_clean_env):
    service = azurite_checking_api_version

    with pytest.raises(StorageError) as caught:
        expand_inputs("az://trips/*.csv", service.storage_options)

    assert re.fullmatch(
        rf"the Azure Storage endpoint {re.escape(service.endpoint)} does not support the Azure Storage API version "
        r"\d{4}-\d{2}-\d{2} that the installed Azure SDK sends; start Azurite with --skipApiVersionCheck, "
        r"or upgrade Azurite \(or the storage emulator\) to a release that supports this version",
        str(caught.value),
    ), str(caught.value)
