"""End-to-end tests of batch-validation on local folders: outcomes, routing and the CLI."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from batch_validation_helpers import REQUIRED, tree_digest, valid_file, write_batch
from sdpipe.cli.main import cli
from sdpipe.pipelines.batch_validation.api import batch_validation, run_batch_validation

B1 = "cust1_20171010_1112"
B2 = "cust1_20171011_1112"


@pytest.fixture
def sample_inbound(real_data: Path, tmp_path: Path) -> Path:
    inbound = tmp_path / "drop" / "inbound"
    shutil.copytree(real_data / "file-validation-sample", inbound)
    for path in inbound.iterdir():
        path.chmod(0o644)
    inbound.chmod(0o755)
    return inbound


def by_batch(report) -> dict[str, dict]:
    return {entry["batch"]: entry for entry in report.result_records()}


@pytest.mark.realdata
def test_real_sample_verdicts_and_routing(sample_inbound: Path):
    before = {p.name: p.read_bytes() for p in sample_inbound.iterdir()}
    report = run_batch_validation(str(sample_inbound), scheduler="sync")
    result = by_batch(report)

    assert result[B1]["status"] == "invalid"
    assert result[B2]["status"] == "valid"
    assert {e["rule"] for e in result[B1]["errors"]} == {"column_count"}
    assert {e["file"] for e in result[B1]["errors"]} == {f"{B1}_type9.csv"}
    assert list(sample_inbound.iterdir()) == []
    root = sample_inbound.parent
    for batch, area in ((B1, "invalid"), (B2, "valid")):
        folder = root / area / batch / "attempt-1"
        moved = {p.name: p.read_bytes() for p in folder.iterdir() if not p.name.startswith("_")}
        assert moved == {name: data for name, data in before.items() if name.startswith(batch)}
        stored = json.loads((folder / "_report.json").read_text())
        assert stored["status"] == area
        assert "type9" in (folder / "_report.txt").read_text()
    assert (root / "reports" / "latest.json").is_file()


@pytest.mark.realdata
def test_rerun_does_nothing_new(sample_inbound: Path):
    run_batch_validation(str(sample_inbound), scheduler="sync")
    areas = sample_inbound.parent
    before = {k: v for k, v in tree_digest(areas).items() if not k.startswith("reports/")}

    report = run_batch_validation(str(sample_inbound), scheduler="sync")

    after = {k: v for k, v in tree_digest(areas).items() if not k.startswith("reports/")}
    assert report.result_records() == []
    assert after == before
    assert len(list((areas / "reports" / "runs").glob("*.json"))) == 1


@pytest.mark.realdata
def test_dry_run_moves_and_writes_nothing(sample_inbound: Path):
    before = tree_digest(sample_inbound.parent)
    report = run_batch_validation(str(sample_inbound), dry_run=True, scheduler="sync")
    assert {e["batch"]: e["status"] for e in report.result_records()} == {B1: "invalid", B2: "valid"}
    assert all(not e["routed"] for e in report.result_records())
    assert tree_digest(sample_inbound.parent) == before


def test_incomplete_left_in_place_with_missing_and_age(tmp_path: Path):
    inbound = tmp_path / "inbound"
    written = write_batch(inbound, "acme_20240102_0930", types=REQUIRED[:-2], mtime=1_700_000_000)
    report = run_batch_validation(str(inbound), scheduler="sync")
    entry = by_batch(report)["acme_20240102_0930"]
    assert entry["status"] == "incomplete"
    assert entry["missing_types"] == REQUIRED[-2:]
    assert entry["age_seconds"] == pytest.approx(time.time() - 1_700_000_000, abs=60)
    assert sorted(p.name for p in inbound.iterdir()) == sorted(written)


def test_stale_after_marks_old_incomplete(tmp_path: Path):
    inbound = tmp_path / "inbound"
    now = time.time()
    write_batch(inbound, "old_20240101_0000", types=["type1"], mtime=now - 3 * 86400)
    write_batch(inbound, "new_20240101_0000", types=["type1"], mtime=now - 3600)
    statuses = {e["batch"]: e["status"] for e in run_batch_validation(str(inbound), stale_after="2d").result_records()}
    assert statuses == {"old_20240101_0000": "stale", "new_20240101_0000": "incomplete"}
    # Without --stale-after nothing is stale, however old.
    statuses = {e["batch"]: e["status"] for e in run_batch_validation(str(inbound)).result_records()}
    assert statuses == {"old_20240101_0000": "incomplete", "new_20240101_0000": "incomplete"}


def test_unmatched_files_listed_not_in_result(tmp_path: Path):
    inbound = tmp_path / "inbound"
    inbound.mkdir()
    names = ["notes.txt", "acme_20241399_0930_type1.csv", "acme_20240102_0930_type11.csv"]
    for name in names:
        (inbound / name).write_bytes(b'"a"\n')
    report = run_batch_validation(str(inbound))
    assert report.result_records() == []
    unmatched = {item["file"]: item["reason"] for item in report.to_dict()["unmatched"]}
    assert set(unmatched) == set(names)
    assert "does not match the pattern" in unmatched["notes.txt"]
    assert "not a valid yyyyMMdd" in unmatched["acme_20241399_0930_type1.csv"]
    assert "unknown file type 'type11'" in unmatched["acme_20240102_0930_type11.csv"]
    assert sorted(p.name for p in inbound.iterdir()) == sorted(names)


def test_late_file_reported_and_left(tmp_path: Path):
    inbound = tmp_path / "drop" / "inbound"
    write_batch(inbound, "acme_20240102_0930")
    run_batch_validation(str(inbound))
    late = write_batch(inbound, "acme_20240102_0930", types=["type6"])

    entry = by_batch(run_batch_validation(str(inbound)))["acme_20240102_0930"]

    assert entry["status"] == "late"
    assert entry["previous_attempts"] == 1
    assert sorted(p.name for p in inbound.iterdir()) == sorted(late)
    assert not (tmp_path / "drop" / "valid" / "acme_20240102_0930" / "attempt-2").exists()


def test_resubmission_is_new_attempt_keeping_first(tmp_path: Path):
    inbound = tmp_path / "drop" / "inbound"
    batch = "acme_20240102_0930"
    first = write_batch(inbound, batch, overrides={"type1": b'"a",b,"c","d"\n'})
    assert by_batch(run_batch_validation(str(inbound)))[batch]["status"] == "invalid"
    second = write_batch(inbound, batch)

    entry = by_batch(run_batch_validation(str(inbound)))[batch]

    assert (entry["status"], entry["attempt"]) == ("valid", 2)
    first_folder = tmp_path / "drop" / "invalid" / batch / "attempt-1"
    second_folder = tmp_path / "drop" / "valid" / batch / "attempt-2"
    assert {n: (first_folder / n).read_bytes() for n in first} == first
    assert {n: (second_folder / n).read_bytes() for n in second} == second
    assert json.loads((first_folder / "_report.json").read_text())["status"] == "invalid"


def test_output_option_and_python_api_frame(tmp_path: Path):
    inbound = tmp_path / "in"
    write_batch(inbound, "acme_20240102_0930")
    frame = batch_validation(str(inbound), output=str(tmp_path / "areas"))
    assert list(frame["status"]) == ["valid"]
    assert frame.attrs["unmatched"] == []
    assert (tmp_path / "areas" / "valid" / "acme_20240102_0930" / "attempt-1" / "_report.json").is_file()


def test_parallel_threads_same_verdicts(tmp_path: Path):
    inbound = tmp_path / "inbound"
    expected = {}
    for i in range(6):
        batch = f"c{i}_20240102_0930"
        bad = {"type3": b'"x"\n'} if i % 2 else {}
        write_batch(inbound, batch, overrides=bad)
        expected[batch] = "invalid" if i % 2 else "valid"
    report = run_batch_validation(str(inbound), scheduler="threads", dry_run=True)
    assert {e["batch"]: e["status"] for e in report.result_records()} == expected


@pytest.mark.realdata
def test_cli_json_and_fail_on_invalid_exit_3(sample_inbound: Path):
    from sdpipe.cli.errors import run_with_exit_codes

    code = run_with_exit_codes(cli, ["run", "batch-validation", "-i", str(sample_inbound), "--dry-run", "--quiet"])
    assert code == 0
    code = run_with_exit_codes(
        cli, ["run", "batch-validation", "-i", str(sample_inbound), "--dry-run", "--quiet", "--fail-on-invalid"]
    )
    assert code == 3


@pytest.mark.realdata
def test_cli_json_document_shape(sample_inbound: Path, capsys):
    from sdpipe.cli.errors import run_with_exit_codes

    run_with_exit_codes(cli, ["run", "batch-validation", "-i", str(sample_inbound), "--dry-run", "--json", "-q"])
    document = json.loads(capsys.readouterr().out)
    keys = {"batch", "customer", "batch_time", "status", "files", "missing_types", "errors"}
    assert all(keys <= set(entry) for entry in document["result"])
    entry = next(e for e in document["result"] if e["batch"] == B1)
    assert (entry["customer"], entry["batch_time"]) == ("cust1", "2017-10-10T11:12")
    assert {"file", "record", "field", "rule", "message"} <= set(entry["errors"][0])
    assert document["unmatched"] == []


def test_cli_bad_stale_after_is_usage_error(tmp_path: Path, capsys):
    from sdpipe.cli.errors import run_with_exit_codes

    code = run_with_exit_codes(cli, ["run", "batch-validation", "-i", str(tmp_path), "--stale-after", "soon"])
    assert code == 2
    assert "invalid duration 'soon'" in capsys.readouterr().err


def test_missing_inbound_is_error(tmp_path: Path, capsys):
    from sdpipe.cli.errors import run_with_exit_codes

    code = run_with_exit_codes(cli, ["run", "batch-validation", "-i", str(tmp_path / "nope")])
    assert code == 1
    assert f"inbound folder '{tmp_path / 'nope'}' not found" in capsys.readouterr().err


def test_source_changed_after_check_is_not_deleted(tmp_path: Path, monkeypatch):
    from sdpipe.pipelines.batch_validation import routing

    inbound = tmp_path / "drop" / "inbound"
    write_batch(inbound, "acme_20240102_0930")
    target = inbound / "acme_20240102_0930_type4.csv"
    original = routing.route_batch

    def change_then_route(*args, **kwargs):
        target.write_bytes(valid_file("type4", rows=3))
        return original(*args, **kwargs)

    monkeypatch.setattr(routing, "route_batch", change_then_route)
    report = run_batch_validation(str(inbound))
    entry = by_batch(report)["acme_20240102_0930"]
    assert report.exit_code == 1
    assert not entry["routed"]
    assert "changed after it was checked" in entry["routing_error"]
    assert target.read_bytes() == valid_file("type4", rows=3)
