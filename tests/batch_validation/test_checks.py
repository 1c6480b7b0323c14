"""Unit tests of the per-file checks: each problem kind, on bytes written in the test."""

from __future__ import annotations

import codecs
import csv
import hashlib
import io

import pytest

from sdpipe.pipelines.batch_validation.checks import check_blocks
from sdpipe.pipelines.batch_validation.spec import ColumnRule, TypeSpec

SPEC = TypeSpec(name="t3", required=True, columns=3)


def check(data: bytes, spec: TypeSpec = SPEC, block: int = 5, **kwargs):
    blocks = [data[i : i + block] for i in range(0, len(data), block)]
    return check_blocks(blocks, "f.csv", spec, **kwargs)


def rules_of(result) -> list[str]:
    return [e["rule"] for e in result.errors]


def test_valid_file_with_quoted_commas_quotes_newlines():
    rows = [["a,b", 'say "hi"', "two\nlines"], ["x", "", "crlf\r\ninside"]]
    data = b"\n".join(",".join('"' + v.replace('"', '""') + '"' for v in row).encode() for row in rows)
    result = check(data, block=3)
    expected_records = list(csv.reader(io.StringIO(data.decode(), newline="")))
    assert result.errors == []
    assert result.valid
    assert result.records == len(expected_records)


def test_bom_optional_accepted_and_checksum():
    data = codecs.BOM_UTF8 + b'"a","b","c"\r\n"d","e","f"'
    result = check(data, block=1)
    assert result.valid
    assert result.size == len(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()


def test_bom_required_and_forbidden():
    required = TypeSpec(name="t", required=True, columns=1, bom="required")
    forbidden = TypeSpec(name="t", required=True, columns=1, bom="forbidden")
    assert rules_of(check(b'"a"\n', required)) == ["wrong_encoding"]
    assert rules_of(check(codecs.BOM_UTF8 + b'"a"\n', forbidden)) == ["wrong_encoding"]


def test_column_count_wrong_reports_each_record():
    data = b'"a","b","c"\n"a","b"\n"a","b","c","d"\n'
    result = check(data)
    assert rules_of(result) == ["column_count", "column_count"]
    assert [(e["record"], e["field"]) for e in result.errors] == [(2, None), (3, 4)]
    assert "has 2 fields; t3 files have 3" in result.errors[0]["message"]


def test_unquoted_field_reports_field_number():
    result = check(b'"a",b,"c"\n"a","b",7\n')
    assert rules_of(result) == ["unquoted_field", "unquoted_field"]
    assert [(e["record"], e["field"], e["value"]) for e in result.errors] == [(1, 2, "b"), (2, 3, "7")]


def test_quoting_any_accepts_unquoted():
    spec = TypeSpec(name="t", required=True, columns=3, quoting="any")
    assert check(b'"a",b,"c"\n', spec).valid


def test_record_numbers_follow_multiline_records():
    data = b'"a","b\nc","d"\n"e",f,"g"\n'
    result = check(data)
    assert [(e["record"], e["line"], e["field"]) for e in result.errors] == [(2, 3, 2)]


def test_undecodable_bytes_with_byte_offset():
    data = b'"abc","d\xe9f","x"\n"ok","ok","\xff"\n'
    result = check(data, block=4)
    errors = [e for e in result.errors if e["rule"] == "undecodable_bytes"]
    assert [e["byte_offset"] for e in errors] == [data.index(b"\xe9"), data.index(b"\xff")]
    assert [(e["record"], e["field"]) for e in errors] == [(1, 2), (2, 3)]
    assert errors[0]["value"] == "e9"


@pytest.mark.parametrize(
    "data",
    [
        codecs.BOM_UTF16_LE + '"a","b","c"\n'.encode("utf-16-le"),
        codecs.BOM_UTF16_BE + '"a","b","c"\n'.encode("utf-16-be"),
        '"a","b","c"\n"d","e","f"\n'.encode("utf-16-le"),
        '"a","b","c"\n"d","e","f"\n'.encode("utf-16-be"),
        codecs.BOM_UTF32_LE + '"a","b","c"\n'.encode("utf-32-le"),
    ],
    ids=["utf16le-bom", "utf16be-bom", "utf16le-nobom", "utf16be-nobom", "utf32le-bom"],
)
def test_utf16_and_utf32_are_wrong_encoding(data):
    result = check(data)
    assert rules_of(result) == ["wrong_encoding"]
    assert result.sha256 == hashlib.sha256(data).hexdigest()


def test_utf8_bom_on_latin1_spec_is_wrong_encoding():
    spec = TypeSpec(name="t", required=True, columns=1, encoding="latin-1")
    assert rules_of(check(codecs.BOM_UTF8 + b'"a"\n', spec)) == ["wrong_encoding"]


@pytest.mark.parametrize("data", [b"", codecs.BOM_UTF8], ids=["zero-bytes", "only-bom"])
def test_empty_file(data):
    assert rules_of(check(data)) == ["empty_file"]


def test_header_only_counts_as_empty():
    spec = TypeSpec(name="t", required=True, columns=2, header=True, names=("a", "b"))
    assert rules_of(check(b'"a","b"\n', spec)) == ["empty_file"]


def test_header_mismatch():
    spec = TypeSpec(name="t", required=True, columns=2, header=True, names=("id", "name"))
    result = check(b'"id","nom"\n"1","x"\n', spec)
    assert [(e["rule"], e["record"], e["field"]) for e in result.errors] == [("header_mismatch", 1, 2)]


def test_malformed_quote_then_parsing_resumes():
    data = b'"a","b","c" "\n"d",e,"f"\n'
    result = check(data)
    assert [(e["rule"], e["record"]) for e in result.errors] == [("malformed_csv", 1), ("unquoted_field", 2)]


def test_unterminated_quote_at_end():
    result = check(b'"a","b","c\n')
    assert rules_of(result) == ["malformed_csv"]
    assert "unexpected end of data" in result.errors[0]["message"]


def test_blank_line_reported():
    result = check(b'"a","b","c"\n\n"d","e","f"\n')
    assert [(e["rule"], e["record"], e["line"]) for e in result.errors] == [("blank_line", 2, 2)]


def test_cr_only_line_endings_parse():
    result = check(b'"a","b","c"\r"d","e","f"\r')
    assert result.valid
    assert result.records == 2


def test_error_cap_counts_the_rest():
    data = b"".join(b'"a","b"\n' for _ in range(250))
    result = check(data, max_errors=10)
    assert len(result.errors) == 10
    assert result.error_count == 250
    assert result.errors_not_listed == 240
    assert result.errors_by_rule == {"column_count": 250}


def test_long_value_is_shortened():
    result = check(b'"a","b",' + b"x" * 500 + b"\n")
    assert len(result.errors[0]["value"]) == 40
    assert result.errors[0]["value"].endswith("...")


def test_schema_checks_lazy_all_failures():
    spec = TypeSpec(
        name="orders", required=True, columns=3, header=True, quoting="any",
        schema=(
            ColumnRule(name="id", dtype="int", unique=True, nullable=False),
            ColumnRule(name="amount", dtype="float", min=0),
            ColumnRule(name="state", isin=("open", "closed")),
        ),
    )
    data = b"id,amount,state\n1,2.5,open\nx,3,open\n1,-4,closed\n,1,weird\n"
    result = check(data, spec)
    found = sorted((e["record"], e["field"]) for e in result.errors)
    # Record 3: id "x" is no int. Records 2 and 4 share id 1. Record 4: amount < 0.
    # Record 5: id empty (not nullable), state not allowed.
    assert found == [(2, 1), (3, 1), (4, 1), (4, 2), (5, 1), (5, 3)]
    assert set(rules_of(result)) == {"schema"}


def test_schema_unique_across_chunks():
    spec = TypeSpec(name="t", required=True, columns=1, quoting="any", schema=(ColumnRule(name="column_1", unique=True),))
    data = b"a\nb\nc\na\n"
    result = check(data, spec, chunk_records=2)
    assert [(e["record"], e["rule"]) for e in result.errors] == [(4, "schema")]


def test_line_too_long_is_skipped(monkeypatch):
    from sdpipe.pipelines.batch_validation import checks

    monkeypatch.setattr(checks, "MAX_LINE_BYTES", 64)
    data = b'"a","b","c"\n"' + b"x" * 200 + b'","b","c"\n"d","e","f"\n'
    result = check(data, block=16)
    assert rules_of(result) == ["line_too_long"]
    assert result.records == 2
