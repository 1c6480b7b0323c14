"""Unit tests of the spec file, the naming pattern, batch planning, durations and streaming memory."""

from __future__ import annotations

import tracemalloc

import pytest

from sdpipe.errors import ConfigError
from sdpipe.pipelines.batch_validation.batches import Listing, parse_duration, plan_batches
from sdpipe.pipelines.batch_validation.checks import check_blocks
from sdpipe.pipelines.batch_validation.spec import NamingPattern, TypeSpec, load_spec, parse_spec


def test_default_spec_matches_sample_rules():
    spec = load_spec()
    columns = {name: t.columns for name, t in spec.types.items()}
    assert columns == {"type1": 4, "type2": 4, "type3": 14, "type4": 3, "type5": 2, "type6": 15,
                       "type7": 23, "type8": 21, "type9": 5, "type10": 3}
    assert spec.required_types == tuple(t for t in columns if t != "type6")
    assert {(t.header, t.quoting, t.encoding, t.bom) for t in spec.types.values()} == {(False, "all", "utf-8", "optional")}


def test_naming_parse_parts():
    pattern = NamingPattern("{customer}_{yyyyMMdd}_{HHmm}_{type}.csv", "{customer}_{yyyyMMdd}_{HHmm}")
    parsed = pattern.parse("big_co_20171010_1112_type10.csv")
    assert (parsed.batch, parsed.customer, parsed.file_type, parsed.batch_time) == (
        "big_co_20171010_1112", "big_co", "type10", "2017-10-10T11:12")
    assert "does not match" in pattern.parse("cust1_20171010_type1.csv")
    assert "not a valid HHmm" in pattern.parse("cust1_20171010_2599_type1.csv")


@pytest.mark.parametrize(
    "document, message",
    [
        ({"types": {}}, "defines no file type"),
        ({"types": {"a": {"columns": 0}}}, "columns 0 is invalid"),
        ({"types": {"a": {"columns": 2, "quoting": "some"}}}, "quoting 'some' is invalid"),
        ({"types": {"a": {"columns": 2, "encoding": "utf-16"}}}, "encoding 'utf-16' is not supported"),
        ({"types": {"a": {"columns": 2, "encoding": "klingon"}}}, "encoding 'klingon' is not known"),
        ({"types": {"a": {"columns": 2, "colums": 3}}}, "unknown key 'colums'"),
        ({"types": {"a": {"columns": 2, "required": False}}}, "no file type is required"),
        ({"naming": {"pattern": "{customer}_{date}_{type}.csv"}, "types": {"a": {"columns": 1}}}, "unknown placeholder {date}"),
        ({"naming": {"pattern": "{customer}.csv"}, "types": {"a": {"columns": 1}}}, "has no {type} placeholder"),
        ({"types": {"a": {"columns": 2, "schema": {"x": {"dtype": "int"}}}}}, "no column 'x'"),
        ({"types": {"a": {"columns": 1, "schema": {"column_1": {"dtype": "money"}}}}}, "dtype 'money' is invalid"),
    ],
    ids=["no-types", "zero-columns", "quoting", "utf16", "unknown-codec", "typo-key", "none-required",
         "placeholder", "no-type-token", "schema-column", "schema-dtype"],
)
def test_spec_errors_name_the_fix(document, message):
    with pytest.raises(ConfigError, match=message.replace("{", r"\{").replace("}", r"\}").replace("(", r"\(")):
        parse_spec(document, "s.toml")


def test_spec_file_not_found_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the spec file"):
        load_spec(str(tmp_path / "missing.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_text("[types\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_spec(str(bad))


@pytest.mark.parametrize("text, seconds", [("36h", 129600), ("2d", 172800), ("1h30m", 5400), ("90s", 90), ("0.5w", 302400), ("5", 5)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "3x", "h"])
def test_parse_duration_rejects(text):
    with pytest.raises(ConfigError, match="invalid duration"):
        parse_duration(text)


def test_plan_states():
    spec = load_spec()
    required = spec.required_types
    now = 1_000_000.0
    listings = [Listing(f"a_20240101_0000_{t}.csv", "p", 1, now - 10) for t in required]
    listings += [Listing("b_20240101_0000_type1.csv", "p", 1, now - 100)]
    listings += [Listing("c_20240101_0000_type1.csv", "p", 1, now - 5)]
    batches, unmatched = plan_batches(listings, spec, {"a_20240101_0000": 2, "c_20240101_0000": 1}, now, stale_after=50)
    states = {b.batch: (b.status, b.attempt) for b in batches}
    assert states == {"a_20240101_0000": ("complete", 3), "b_20240101_0000": ("stale", 1), "c_20240101_0000": ("late", 2)}
    assert unmatched == []
    b = next(b for b in batches if b.batch == "b_20240101_0000")
    assert b.missing_types == [t for t in required if t != "type1"]
    assert b.age_seconds == 100


def _generated_blocks(records: int):
    row = b'"12345","some text, with comma","x""y","2024-01-01","9.5"\n'
    block = row * 1000
    for _ in range(records // 1000):
        yield block


def _peak_bytes(records: int) -> int:
    spec = TypeSpec(name="t", required=True, columns=5)
    tracemalloc.start()
    try:
        result = check_blocks(_generated_blocks(records), "big.csv", spec)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.valid
    assert result.records == records
    return peak


def test_memory_does_not_grow_with_file_size():
    small = _peak_bytes(10_000)
    large = _peak_bytes(100_000)
    # The large input is 10 times the small one (5.8 MB against 0.58 MB). A checker that
    # kept the file or its records would peak at several times the small run.
    assert large < small * 1.5 + 256 * 1024
