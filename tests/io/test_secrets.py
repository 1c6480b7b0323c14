"""Secrets never appear in logs, errors, --json output, manifest.json or a repr."""

from __future__ import annotations

import base64
import json
import logging
import pickle

import pytest

from sdpipe.cli.errors import run_with_exit_codes
from sdpipe.cli.main import cli
from sdpipe.cli.options import parse_storage_options
from sdpipe.io.publish import OutputFolder
from sdpipe.io.secrets import MASK, SecretMaskingFilter, StorageOptions, mask_mapping, mask_text, register_secret
from tests.azurite import AzuriteProcess, unique_name

# A valid base64 account key whose text is easy to search for.
PLANTED_KEY = base64.b64encode(b"sdpipe-planted-fake-account-key!" * 2).decode()
PLANTED_FRAGMENTS = (PLANTED_KEY, PLANTED_KEY[:24], PLANTED_KEY[-30:])
ACCOUNT = "sdpipesecrets"

TRIPS_CSV = (
    "pickup_datetime,dropoff_datetime,trip_distance\n"
    "2019-01-01 10:00:00,2019-01-01 10:30:00,5.0\n"
    "2019-01-01 11:00:00,2019-01-01 11:15:00,2.5\n"
    "2019-01-02 09:00:00,2019-01-02 10:00:00,12.0\n"
)


def _assert_no_secret(text: str, where: str) -> None:
    for fragment in PLANTED_FRAGMENTS:
        assert fragment not in text, f"planted key found in {where}"


@pytest.fixture(scope="module")
def planted_azurite(tmp_path_factory):
    """Azurite whose only account has the planted key, so runs with it succeed."""
    with AzuriteProcess("blob", workdir=tmp_path_factory.mktemp("azurite-planted"), account=(ACCOUNT, PLANTED_KEY)) as service:
        yield service


@pytest.mark.azurite
def test_planted_key_absent_everywhere(planted_azurite, azure_clean_env, capsys, tmp_path):
    service = planted_azurite
    container = unique_name("secrets")
    service.blob_client().create_container(container).upload_blob("in/trips.csv", TRIPS_CSV.encode())
    options = ["--storage-option", f"connection_string={service.connection_string}"]

    ok = run_with_exit_codes(
        cli,
        ["run", "taxi-speed", "-i", f"az://{container}/in/*.csv", "-o", f"az://{container}/out", "--json", "--debug", *options],
    )
    ok_output = capsys.readouterr()
    failed = run_with_exit_codes(
        cli, ["run", "taxi-speed", "-i", f"az://{container}/missing/*.csv", "-o", str(tmp_path / "a"), "--debug", *options]
    )
    failed_output = capsys.readouterr()
    unreadable = run_with_exit_codes(
        cli, ["run", "taxi-speed", "-i", "az://c/x.csv", "-o", str(tmp_path / "b"), "--storage-option", f"sas_token=sv=1&sig={PLANTED_KEY}", "--storage-option", "account_name=a", "--storage-option", "blob_endpoint=nonsense"]
    )
    unreadable_output = capsys.readouterr()

    assert ok == 0, ok_output.err[-2000:]
    document = json.loads(ok_output.out)
    assert document["counts"]["read"] == 3
    _assert_no_secret(ok_output.out, "--json output")
    _assert_no_secret(ok_output.err, "stderr of a successful run")
    manifest = service.blob_client().get_blob_client(container, "out/manifest.json").download_blob().readall()
    _assert_no_secret(manifest.decode(), "manifest.json")
    assert failed == 1
    assert "Error: " in failed_output.err
    _assert_no_secret(failed_output.err, "error output")
    assert unreadable != 0
    _assert_no_secret(unreadable_output.err, "error of a bad endpoint")
    # The CLI sends its log records to stderr, checked above; with --debug there are some.
    assert "DEBUG sdpipe" in ok_output.err


def test_planted_key_absent_from_reprs(tmp_path):
    options = parse_storage_options((f"account_key={PLANTED_KEY}", "account_name=acct"))
    connection = parse_storage_options((f"connection_string=AccountName=a;AccountKey={PLANTED_KEY}",))

    _assert_no_secret(repr(options), "repr of parsed options")
    _assert_no_secret(str(options), "str of parsed options")
    _assert_no_secret(repr(connection), "repr of a connection string option")
    _assert_no_secret(repr(pickle.loads(pickle.dumps(options))), "repr after pickling")
    assert options["account_key"] == PLANTED_KEY
    with OutputFolder(str(tmp_path / "out"), {}) as folder:
        _assert_no_secret(repr(folder), "repr of an output folder")


def test_planted_key_absent_from_usage_error(capsys, tmp_path):
    code = run_with_exit_codes(cli, ["run", "taxi-speed", "-o", str(tmp_path / "out"), "--storage-option", PLANTED_KEY.rstrip("=")])

    assert code == 2
    _assert_no_secret(capsys.readouterr().err, "usage error")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"AccountName=a;AccountKey={PLANTED_KEY};BlobEndpoint=x", f"AccountName=a;AccountKey={MASK};BlobEndpoint=x"),
        ("BlobEndpoint=x;SharedAccessSignature=sv=2021&sig=abc%2Fdef", f"BlobEndpoint=x;SharedAccessSignature={MASK}"),
        ("https://a.blob.core.windows.net/c/b?sv=2021&se=2030-01-01&sig=abc%2Bdef&sp=r", f"https://a.blob.core.windows.net/c/b?sv=2021&se=2030-01-01&sig={MASK}&sp=r"),
        ("{'account_key': 'short', 'account_name': 'a'}", f"{{'account_key': '{MASK}', 'account_name': 'a'}}"),
        ("client_secret=abc123 tenant_id=t", f"client_secret={MASK} tenant_id=t"),
        ("Authorization: Bearer eyJhbGciOi.eyJhdWQiOi.c2ln", f"Authorization: Bearer {MASK}"),
        (f"key {PLANTED_KEY} end", f"key {MASK} end"),
        ("nothing secret here: account_name=acct", "nothing secret here: account_name=acct"),
    ],
    ids=["account-key", "sas-field", "sas-url", "dict-repr", "client-secret", "bearer", "bare-key", "no-secret"],
)
def test_mask_text_cases(text, expected):
    assert mask_text(text) == expected


def test_registered_secret_masked_in_any_form():
    register_secret("?odd-token-format-123456")

    assert mask_text("token=odd-token-format-123456;") == f"token={MASK};"
    assert mask_text("url?odd-token-format-123456") == f"url{MASK}"


def test_mask_mapping_nested():
    masked = mask_mapping({"account_key": "k", "nested": {"sas_token": "s"}, "credential": "default", "n": 3})

    assert masked == {"account_key": MASK, "nested": {"sas_token": MASK}, "credential": "default", "n": 3}


def test_logging_filter_masks_message_and_traceback():
    record_handler = _ListHandler()
    record_handler.addFilter(SecretMaskingFilter())
    record_handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("sdpipe.tests.secrets")
    logger.addHandler(record_handler)
    logger.propagate = False
    try:
        logger.warning("options %s", StorageOptions(account_key=PLANTED_KEY))
        logger.warning("plain %s", f"AccountKey={PLANTED_KEY}")
        try:
            raise RuntimeError(f"failed with key {PLANTED_KEY}")
        except RuntimeError:
            logger.exception("request failed")
    finally:
        logger.removeHandler(record_handler)
        logger.propagate = True

    text = "\n".join(record_handler.lines)
    _assert_no_secret(text, "formatted log lines")
    assert "RuntimeError: failed with key ***" in text
    assert "options {'account_key': '***'}" in text


class _ListHandler(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))
