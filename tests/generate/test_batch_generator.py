"""The customer-drop generator: reproducible files that break exactly the documented rules."""

from __future__ import annotations

import csv
import filecmp
import io
from pathlib import Path

import pytest

from sdpipe.generate.batches import (
    INCOMPLETE_BATCH,
    INVALID_BATCH,
    REQUIRED_TYPES,
    TYPE_COLUMNS,
    VALID_BATCH,
    write_customer_batches,
)


def read_records(path: Path) -> list[list[str]]:
    text = path.read_bytes().decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text, newline="")))


@pytest.fixture(scope="module")
def inbound(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("drop") / "inbound"
    write_customer_batches(folder, seed=2024)
    return folder


def test_bundled_batches_are_reproducible(inbound, repo_root):
    bundled = repo_root / "data" / "sample" / "batches" / "inbound"
    comparison = filecmp.dircmp(inbound, bundled)
    assert comparison.left_only == []
    assert comparison.right_only == []
    for name in comparison.common_files:
        assert filecmp.cmp(inbound / name, bundled / name, shallow=False), name


def test_valid_batch_has_every_type_with_right_widths(inbound):
    for file_type, columns in TYPE_COLUMNS.items():
        records = read_records(inbound / f"{VALID_BATCH}_{file_type}.csv")
        assert records, file_type
        assert {len(record) for record in records} == {columns}, file_type


def test_valid_batch_quotes_every_field(inbound):
    """Writing the parsed records back with every field quoted gives the file's text again."""
    for file_type in TYPE_COLUMNS:
        raw = (inbound / f"{VALID_BATCH}_{file_type}.csv").read_bytes().decode("utf-8-sig")
        buffer = io.StringIO()
        csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(read_records(inbound / f"{VALID_BATCH}_{file_type}.csv"))
        assert buffer.getvalue().removesuffix("\r\n") == raw, file_type


def test_valid_batch_holds_hard_fields(inbound):
    records = read_records(inbound / f"{VALID_BATCH}_type2.csv")
    values = [value for record in records for value in record]
    assert 'says "hello", then leaves' in values
    assert "two\nlines" in values


def test_invalid_batch_breaks_three_rules(inbound):
    type3 = read_records(inbound / f"{INVALID_BATCH}_type3.csv")
    assert [len(r) for r in type3].count(TYPE_COLUMNS["type3"] - 1) == 1

    type4_lines = (inbound / f"{INVALID_BATCH}_type4.csv").read_bytes().split(b"\r\n")
    assert not type4_lines[2].split(b",")[1].startswith(b'"')

    type7 = (inbound / f"{INVALID_BATCH}_type7.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        type7.decode("utf-8")


def test_incomplete_batch_lacks_last_two_types(inbound):
    present = {p.name.rsplit("_", 1)[1].removesuffix(".csv") for p in inbound.glob(f"{INCOMPLETE_BATCH}_*.csv")}
    assert set(REQUIRED_TYPES) - present == {"type9", "type10"}
    assert "type11" in present


def test_pipeline_verdicts_match_generator(inbound):
    import sdpipe

    frame = sdpipe.batch_validation(str(inbound), dry_run=True)
    status = dict(zip(frame["batch"], frame["status"]))
    assert status == {VALID_BATCH: "valid", INVALID_BATCH: "invalid", INCOMPLETE_BATCH: "incomplete"}


def test_json_attempts_are_whole_numbers(inbound):
    import json

    from click.testing import CliRunner

    from sdpipe.cli.main import cli

    result = CliRunner().invoke(cli, ["run", "batch-validation", "-i", str(inbound), "--dry-run", "--json", "-q"])
    assert result.exit_code == 0, result.output
    attempts = {row["batch"]: row["attempt"] for row in json.loads(result.stdout)["result"]}
    assert attempts == {VALID_BATCH: 1, INVALID_BATCH: 1, INCOMPLETE_BATCH: None}
    assert all(type(a) is int for a in attempts.values() if a is not None)
