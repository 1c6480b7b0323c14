"""Real malformed and oddly encoded CSV files, each as a batch: a precise verdict, never a crash."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from sdpipe.pipelines.batch_validation.api import run_batch_validation

SPEC = """
[naming]
pattern = "{customer}_{yyyyMMdd}_{HHmm}_{type}.csv"
batch = "{customer}_{yyyyMMdd}_{HHmm}"

[types.t]
required = true
columns = 3
"""

# Expected rules per file, from each fixture's name and bytes (read by eye). Three quoted
# columns with any line ending are valid. The others carry unquoted fields, a stray quote,
# a blank line, Latin-1 bytes or no bytes at all.
EXPECTED = {
    "csvlint_rb_fixtures/valid.csv": set(),
    "csvlint_rb_fixtures/crlf-line-endings.csv": set(),
    "csvlint_rb_fixtures/cr-line-endings.csv": set(),
    "csvlint_rb_fixtures/lf-line-endings.csv": set(),
    "csvlint_rb_fixtures/inconsistent-line-endings.csv": set(),
    "csvlint_rb_fixtures/inconsistent-line-endings-unquoted.csv": {"unquoted_field"},
    "csvlint_rb_fixtures/windows-line-endings.csv": {"unquoted_field"},
    "csvlint_rb_fixtures/invalid_many_rows.csv": {"malformed_csv", "blank_line"},
    "csvlint_rb_fixtures/title-row.csv": {"unquoted_field"},
    "csvlint_rb_fixtures/invalid-byte-sequence.csv": {"undecodable_bytes", "column_count", "unquoted_field"},
    "charlesnepote_csv_test_files/CSV-basic-ISO-8859-1.LF.csv": {"undecodable_bytes", "unquoted_field"},
    "pollock_survey_sample/csv/locations-1998.csv": {"empty_file"},
    "csv_spectrum/newlines.csv": {"unquoted_field"},
}
LEGACY_ENCODED = [
    "charlesnepote_csv_test_files/CSV-basic-ISO-8859-1.CRLF.csv",
    "csvlint_rb_fixtures/invalid-byte-sequence.csv",
    "charlesnepote_csv_test_files/CSV-basic-ISO-8859-1.LF.csv",
]
# Labelled CP949 by a detector, but its 8 non-ASCII bytes are valid UTF-8.
UTF8_DESPITE_LABEL = "pollock_survey_sample/csv/Copy_of_2016-17_Q3_Final_V2.csv"


def all_messy_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.csv") if p.is_file())


def build_batches(root: Path, inbound: Path) -> dict[str, Path]:
    """Copy each messy file into the inbound folder as the only file of its own batch."""
    inbound.mkdir(parents=True)
    batches = {}
    for i, path in enumerate(all_messy_files(root)):
        batch = f"m{i:03d}_20240101_0000"
        (inbound / f"{batch}_t.csv").write_bytes(path.read_bytes())
        batches[batch] = path
    return batches


@pytest.fixture(scope="module")
def messy_run(real_data: Path, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("messy")
    root = real_data / "messy_csv"
    batches = build_batches(root, tmp / "inbound")
    spec = tmp / "spec.toml"
    spec.write_text(SPEC)
    report = run_batch_validation(str(tmp / "inbound"), spec=str(spec), max_errors_per_file=1000)
    return root, tmp, batches, {e["batch"]: e for e in report.result_records()}


@pytest.mark.realdata
def test_messy_files_all_get_verdicts(messy_run):
    root, tmp, batches, result = messy_run
    assert set(result) == set(batches)
    for batch, source in batches.items():
        entry = result[batch]
        assert entry["status"] in ("valid", "invalid"), (source, entry)
        assert (entry["status"] == "valid") == (entry["error_count"] == 0)
        moved = tmp / entry["status"] / batch / "attempt-1" / f"{batch}_t.csv"
        assert moved.read_bytes() == source.read_bytes()
    assert list((tmp / "inbound").iterdir()) == []


@pytest.mark.realdata
@pytest.mark.parametrize("relative", sorted(EXPECTED), ids=lambda r: r.rsplit("/", 1)[-1])
def test_messy_file_rules(messy_run, relative):
    root, _, batches, result = messy_run
    batch = next(b for b, path in batches.items() if path == root / relative)
    rules = {e["rule"] for e in result[batch]["errors"]}
    assert rules == EXPECTED[relative]


@pytest.mark.realdata
@pytest.mark.parametrize("relative", LEGACY_ENCODED, ids=lambda r: r.rsplit("/", 1)[-1])
def test_legacy_encoding_first_offset(messy_run, relative):
    root, _, batches, result = messy_run
    data = (root / relative).read_bytes()
    try:
        data.removeprefix(codecs.BOM_UTF8).decode("utf-8")
    except UnicodeDecodeError as exc:
        first_bad = exc.start + (len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0)
    else:
        pytest.fail(f"{relative} decodes as UTF-8; pick another legacy-encoded file")
    batch = next(b for b, path in batches.items() if path == root / relative)
    offsets = [e["byte_offset"] for e in result[batch]["errors"] if e["rule"] == "undecodable_bytes"]
    assert offsets[0] == first_bad
    assert offsets == sorted(offsets)


@pytest.mark.realdata
def test_cp949_labelled_file_is_utf8(messy_run):
    root, _, batches, result = messy_run
    (root / UTF8_DESPITE_LABEL).read_bytes().decode("utf-8")
    batch = next(b for b, path in batches.items() if path == root / UTF8_DESPITE_LABEL)
    assert "undecodable_bytes" not in {e["rule"] for e in result[batch]["errors"]}
    assert "wrong_encoding" not in {e["rule"] for e in result[batch]["errors"]}
