"""``sdpipe load-test``: help, usage errors, credentials of each kind, masking, timeout and idle exit."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from sdpipe.errors import ConfigError
from sdpipe.loadtest import QueueSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
SDPIPE = [sys.executable, "-m", "sdpipe.cli.main"]
# A made-up key in the form of a real one (88 characters of base64); it must never be printed.
PLANTED_KEY = "Zm9yLXRlc3RzLW9ubHk" + "A" * 67 + "=="


def sdpipe(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*SDPIPE, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT)


@pytest.fixture
def base_env() -> dict[str, str]:
    """This process's environment without Azure credentials or a queue endpoint from the developer's shell."""
    return {name: value for name, value in os.environ.items() if not name.startswith(("AZURE_", "SDPIPE_QUEUE"))}


@pytest.mark.parametrize("command", [["load-test"], ["load-test", "queue"], ["load-test", "produce"], ["load-test", "consume"]],
                         ids=["group", "queue", "produce", "consume"])
def test_help_of_each_command(command, base_env):
    result = sdpipe([*command, "--help"], base_env)
    assert result.returncode == 0
    assert "Usage: python -m sdpipe.cli.main" in result.stdout or "Usage: sdpipe" in result.stdout


def test_missing_credentials_is_usage_error(base_env, tmp_path):
    result = sdpipe(["load-test", "produce", "-n", "1", "--output", str(tmp_path)], base_env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: no queue credentials: pass --connection-string or set AZURE_STORAGE_CONNECTION_STRING, "
        "or give an account name with AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN"
    )


def test_invalid_queue_prefix_is_usage_error(base_env, tmp_path):
    env = base_env | {"AZURE_STORAGE_ACCOUNT_NAME": "acct", "AZURE_STORAGE_ACCOUNT_KEY": PLANTED_KEY}
    result = sdpipe(["load-test", "produce", "-n", "1", "--queue-prefix", "Bad_Name", "--output", str(tmp_path)], env)
    assert result.returncode == 2
    assert "Error: invalid queue name 'Bad_Name-0'" in result.stderr


def test_consumer_without_end_is_usage_error(base_env, tmp_path):
    env = base_env | {"AZURE_STORAGE_ACCOUNT_NAME": "acct", "AZURE_STORAGE_ACCOUNT_KEY": PLANTED_KEY}
    result = sdpipe(["load-test", "consume", "--queue-endpoint", "http://127.0.0.1:9/acct", "--output", str(tmp_path)], env)
    assert result.returncode == 2
    assert "Error: the consumer would never stop: give an expected count, an idle exit or a timeout" in result.stderr


def test_unreachable_endpoint_fails_without_key(base_env, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: nothing listens there
    env = base_env | {"AZURE_STORAGE_ACCOUNT_NAME": "acct", "AZURE_STORAGE_ACCOUNT_KEY": PLANTED_KEY}
    result = sdpipe(["load-test", "produce", "-n", "3", "--queue-endpoint", f"http://127.0.0.1:{port}/acct",
                     "--output", str(tmp_path), "--debug"], env)
    assert result.returncode == 1
    assert "Error: preparing queue 'sdpipe-load-0' failed: ServiceRequestError" in result.stderr
    assert PLANTED_KEY not in result.stderr + result.stdout


def test_settings_repr_and_mask_hide_secrets():
    settings = QueueSettings(account_name="acct", account_key=PLANTED_KEY, queue_endpoint="https://acct.example.test")
    assert PLANTED_KEY not in repr(settings)
    assert repr(settings) == "QueueSettings(endpoint='https://acct.example.test', auth='account-key')"
    assert settings.mask(f"key {PLANTED_KEY} in url ?sv=1&sig=abcdef123") == "key *** in url ?sv=1&sig=***"
    sas = QueueSettings(account_name="acct", sas_token="?sv=2024&sig=secretsig0001")
    assert sas.account_url == "https://acct.queue.core.windows.net"
    assert sas.describe() == {"queue_endpoint": "https://acct.queue.core.windows.net", "auth": "sas"}
    assert "secretsig0001" not in sas.mask("token sv=2024&sig=secretsig0001 used")
    with pytest.raises(ConfigError, match=r"invalid queue endpoint 'ftp://x': use an http:// or https:// URL"):
        QueueSettings(account_name="acct", account_key=PLANTED_KEY, queue_endpoint="ftp://x")
    with pytest.raises(ConfigError, match=r"no queue account: pass --account-name"):
        QueueSettings(account_key=PLANTED_KEY)


@pytest.mark.azurite
def test_key_and_sas_runs_leave_no_secret(azurite_queue, base_env, queue_prefix, tmp_path):
    from azure.storage.queue import AccountSasPermissions, ResourceTypes, generate_account_sas

    sas = generate_account_sas(azurite_queue.account_name, azurite_queue.account_key,
                               ResourceTypes(service=True, container=True, object=True),
                               AccountSasPermissions(read=True, write=True, delete=True, list=True, add=True,
                                                     create=True, update=True, process=True),
                               expiry=datetime.now(timezone.utc) + timedelta(hours=1))
    signature = sas.split("sig=", 1)[1].split("&", 1)[0]
    common = ["--queue-endpoint", azurite_queue.endpoint, "--queues", "2", "--queue-prefix", queue_prefix,
              "--output", str(tmp_path), "--json", "--debug"]
    # The documented variables for the key, the other spelling of the account name with the SAS token.
    key_env = base_env | {"AZURE_STORAGE_ACCOUNT": azurite_queue.account_name, "AZURE_STORAGE_KEY": azurite_queue.account_key}
    sas_env = base_env | {"AZURE_STORAGE_ACCOUNT_NAME": azurite_queue.account_name, "AZURE_STORAGE_SAS_TOKEN": sas}

    produced = sdpipe(["load-test", "produce", "-n", "30", "--test-run", "keyrun", *common], key_env)
    consumed = sdpipe(["load-test", "consume", "--test-run", "keyrun", "--expected", "30", "--timeout", "60", *common],
                      sas_env)

    assert produced.returncode == 0, produced.stderr
    assert consumed.returncode == 0, consumed.stderr
    assert json.loads(produced.stdout)["connection"] == {"queue_endpoint": azurite_queue.endpoint, "auth": "account-key"}
    report = json.loads(consumed.stdout)
    assert report["connection"]["auth"] == "sas"
    assert report["ended"] == "expected-count"
    assert report["counts"]["consumer"]["handled"] == 30
    written = "".join(path.read_text() for path in tmp_path.rglob("*.jsonl"))
    for text in (produced.stdout, produced.stderr, consumed.stdout, consumed.stderr, written):
        assert azurite_queue.account_key not in text
        assert signature not in text


@pytest.mark.azurite
def test_consume_timeout_and_idle_exit(azurite_queue, base_env, queue_prefix, tmp_path):
    env = base_env | {"AZURE_STORAGE_CONNECTION_STRING": azurite_queue.connection_string}
    common = ["--queues", "1", "--queue-prefix", queue_prefix, "--output", str(tmp_path), "--json"]
    created = sdpipe(["load-test", "produce", "-n", "2", "--test-run", "short", *common], env)
    assert created.returncode == 0, created.stderr

    timed_out = sdpipe(["load-test", "consume", "--test-run", "short", "--expected", "5", "--timeout", "3", *common], env)
    drained = sdpipe(["load-test", "consume", "--idle-exit", "1", "--timeout", "60", *common], env)

    assert timed_out.returncode == 1
    timed_out_report = json.loads(timed_out.stdout)
    assert timed_out_report["status"] == "timeout"
    assert timed_out_report["ended"] == "timeout"
    assert timed_out_report["counts"]["consumer"]["handled"] == 2
    assert drained.returncode == 0
    assert json.loads(drained.stdout)["ended"] == "queues-drained"
