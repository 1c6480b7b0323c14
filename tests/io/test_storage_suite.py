"""The same input and output tests on local files and on Azurite (see ``backend`` in conftest)."""

from __future__ import annotations

import json

import pytest

from sdpipe.errors import NoInputError, StorageError
from sdpipe.io.files import expand_inputs, filesystem_for
from sdpipe.io.publish import SUCCESS_MARKER, OutputFolder, published_files

pytestmark = pytest.mark.azurite


def _names(files, backend) -> list[str]:
    """Return the input files' paths relative to the backend's root."""
    root = backend.url().split("://", 1)[-1].rstrip("/")
    return [f.url.split("://", 1)[-1][len(root) + 1 :] for f in files]


def test_glob_matches_only_pattern(backend):
    backend.put("trips/2019-01.csv", b"a\n")
    backend.put("trips/2019-02.csv", b"bb\n")
    backend.put("trips/notes.txt", b"x\n")
    backend.put("other/2019-03.csv", b"c\n")

    files = expand_inputs(backend.url("trips/*.csv"), backend.storage_options)

    assert _names(files, backend) == ["trips/2019-01.csv", "trips/2019-02.csv"]
    assert [f.size for f in files] == [2, 3]


def test_folder_input_skips_hidden_and_staging(backend):
    backend.put("drop/a.csv", b"1\n")
    backend.put("drop/sub/b.csv", b"2\n")
    backend.put("drop/_staging/run1/c.csv", b"3\n")
    backend.put("drop/.hidden.csv", b"4\n")
    backend.put("drop/_SUCCESS", b"{}")

    files = expand_inputs(backend.url("drop"), backend.storage_options)

    assert _names(files, backend) == ["drop/a.csv", "drop/sub/b.csv"]


def test_several_patterns_deduplicated(backend):
    backend.put("in/a.csv", b"1\n")
    backend.put("in/b.csv", b"2\n")

    files = expand_inputs([backend.url("in/*.csv"), backend.url("in/a.csv")], backend.storage_options)

    assert _names(files, backend) == ["in/a.csv", "in/b.csv"]


def test_read_back_exact_bytes(backend):
    payload = bytes(range(256)) * 40
    backend.put("bin/data.bin", payload)

    (found,) = expand_inputs(backend.url("bin/data.bin"), backend.storage_options)
    fs, path = filesystem_for(found.url, backend.storage_options)
    with fs.open(path, "rb") as handle:
        assert handle.read() == payload
    assert found.size == len(payload)


def test_spaces_and_brackets_in_names(backend):
    backend.put("in put/2019 [01].csv", b"one\n")
    backend.put("in put/2019 [02].csv", b"two\n")

    literal = expand_inputs(backend.url("in put/2019 [01].csv"), backend.storage_options)
    pattern = expand_inputs(backend.url("in put/*.csv"), backend.storage_options)

    assert _names(literal, backend) == ["in put/2019 [01].csv"]
    assert _names(pattern, backend) == ["in put/2019 [01].csv", "in put/2019 [02].csv"]
    fs, path = filesystem_for(pattern[1].url, backend.storage_options)
    assert fs.cat_file(path) == b"two\n"


def test_glob_in_folder_with_brackets(backend):
    backend.put("run [2019]/a.csv", b"1\n")
    backend.put("run [2019]/b.txt", b"2\n")

    files = expand_inputs(backend.url("run [2019]/*.csv"), backend.storage_options)

    assert _names(files, backend) == ["run [2019]/a.csv"]


def test_no_match_raises_no_input(backend):
    backend.put("in/a.csv", b"1\n")

    with pytest.raises(NoInputError, match=r"no input file matches .*in/\*\.parquet"):
        expand_inputs(backend.url("in/*.parquet"), backend.storage_options)


def test_publish_writes_files_and_marker(backend):
    with OutputFolder(backend.url("out"), backend.storage_options, run_id="run1") as folder:
        folder.write_text("result.csv", "a,b\n1,2\n")
        folder.write_bytes("parts/p0.bin", b"\x00\x01")
        folder.publish()

    assert backend.read("out/result.csv") == b"a,b\n1,2\n"
    assert backend.read("out/parts/p0.bin") == b"\x00\x01"
    marker = json.loads(backend.read(f"out/{SUCCESS_MARKER}"))
    assert marker == {"run_id": "run1", "files": ["parts/p0.bin", "result.csv"]}
    assert backend.files("out") == ["out/_SUCCESS", "out/parts/p0.bin", "out/result.csv"]
    assert published_files(backend.url("out"), backend.storage_options) == ["parts/p0.bin", "result.csv"]


def test_publish_output_in_folder_with_spaces(backend):
    with OutputFolder(backend.url("my out [v2]"), backend.storage_options) as folder:
        folder.write_text("result file.csv", "x\n")
        folder.publish()

    assert backend.read("my out [v2]/result file.csv") == b"x\n"


def test_republish_replaces_previous_files(backend):
    _publish(backend, "out", {"result.csv": b"old\n", "extra.csv": b"only in run 1\n"}, "run1")
    _publish(backend, "out", {"result.csv": b"new\n"}, "run2")

    assert backend.files("out") == ["out/_SUCCESS", "out/result.csv"]
    assert backend.read("out/result.csv") == b"new\n"
    assert json.loads(backend.read("out/_SUCCESS"))["run_id"] == "run2"


def test_error_before_publish_keeps_previous(backend):
    _publish(backend, "out", {"result.csv": b"previous\n"}, "run1")

    with pytest.raises(RuntimeError, match="compute failed"):
        with OutputFolder(backend.url("out"), backend.storage_options, run_id="run2") as folder:
            folder.write_text("result.csv", "half\n")
            raise RuntimeError("compute failed")

    assert backend.read("out/result.csv") == b"previous\n"
    assert json.loads(backend.read("out/_SUCCESS"))["run_id"] == "run1"
    assert backend.files("out") == ["out/_SUCCESS", "out/result.csv"]


def test_failure_halfway_through_publish_keeps_previous(backend, monkeypatch):
    _publish(backend, "out", {"a.csv": b"old a\n", "b.csv": b"old b\n"}, "run1")

    folder = OutputFolder(backend.url("out"), backend.storage_options, run_id="run2")
    with pytest.raises(StorageError, match="publishing the output .* failed"):
        with folder:
            folder.write_text("a.csv", "new a\n")
            folder.write_text("b.csv", "new b\n")
            _fail_second_call(monkeypatch, folder)
            folder.publish()

    assert backend.read("out/a.csv") == b"old a\n"
    assert backend.read("out/b.csv") == b"old b\n"
    assert json.loads(backend.read("out/_SUCCESS"))["run_id"] == "run1"
    assert backend.files("out") == ["out/_SUCCESS", "out/a.csv", "out/b.csv"]


def test_remote_interrupted_publish_restored(azurite_backend):
    backend = azurite_backend
    _publish(backend, "out", {"a.csv": b"old a\n"}, "run1")

    folder = OutputFolder(backend.url("out"), backend.storage_options, run_id="run2")
    real_copy = folder.fs.cp_file

    def copy_only_to_backup(source, destination, **kwargs):
        # The old files reach _previous/, then the store goes away: the copy and the roll-back fail.
        if "/_previous/" in destination:
            return real_copy(source, destination, **kwargs)
        raise OSError("connection lost")

    with pytest.raises(StorageError, match="connection lost"), pytest.MonkeyPatch.context() as patch:
        with folder:
            folder.write_text("a.csv", "new a\n")
            patch.setattr(folder.fs, "cp_file", copy_only_to_backup)
            folder.publish()
    assert not backend.exists("out/_SUCCESS")
    assert not backend.exists("out/a.csv")
    assert published_files(backend.url("out"), backend.storage_options) is None

    with OutputFolder(backend.url("out"), backend.storage_options, run_id="run3"):
        pass

    assert backend.read("out/a.csv") == b"old a\n"
    assert json.loads(backend.read("out/_SUCCESS"))["run_id"] == "run1"
    assert backend.files("out") == ["out/_SUCCESS", "out/a.csv"]


def test_publish_never_replaces_inputs(backend):
    backend.put("data/trips.csv", b"input row\n")

    with pytest.raises(StorageError, match=r"contains 1 file\(s\) that no sdpipe run wrote \('trips.csv'\)"):
        with OutputFolder(backend.url("data"), backend.storage_options) as folder:
            folder.write_text("result.csv", "x\n")
            folder.publish()

    assert backend.read("data/trips.csv") == b"input row\n"
    assert backend.files("data") == ["data/trips.csv"]


def test_publish_never_deletes_foreign_file_added_later(backend):
    _publish(backend, "out", {"result.csv": b"r1\n"}, "run1")
    backend.put("out/notes.txt", b"a person's notes\n")

    with pytest.raises(StorageError, match="notes.txt"):
        _publish(backend, "out", {"result.csv": b"r2\n"}, "run2")

    assert backend.read("out/notes.txt") == b"a person's notes\n"
    assert backend.read("out/result.csv") == b"r1\n"


def test_output_that_is_a_file_rejected(backend):
    backend.put("speed", b"a file, not a folder\n")
    expected = rf"^the output {backend.url('speed')} is a file, not a folder; sdpipe never replaces it, so choose another --output$"

    with pytest.raises(StorageError, match=expected):
        with OutputFolder(backend.url("speed"), backend.storage_options) as folder:
            folder.write_text("result.csv", "x\n")
            folder.publish()

    assert backend.read("speed") == b"a file, not a folder\n"
    assert backend.files() == ["speed"]


def test_output_file_created_during_run_rejected(backend):
    with pytest.raises(StorageError, match=r"is a file, not a folder"):
        with OutputFolder(backend.url("speed"), backend.storage_options) as folder:
            folder.write_text("result.csv", "x\n")
            backend.put("speed", b"written by someone else meanwhile\n")
            folder.publish()

    assert backend.read("speed") == b"written by someone else meanwhile\n"
    assert backend.files() == ["speed"]


def test_reserved_output_name_rejected(backend):
    with OutputFolder(backend.url("out"), backend.storage_options) as folder:
        with pytest.raises(ValueError, match="reserved"):
            folder.write_text("_SUCCESS", "forged")
        with pytest.raises(ValueError, match="'..' parts"):
            folder.write_text("../escape.csv", "x")


def test_local_crash_between_renames(tmp_path):
    import os

    from sdpipe.io import publish as publish_module

    target = tmp_path / "out"
    backend_dir = str(target)
    with OutputFolder(backend_dir, run_id="run1") as folder:
        folder.write_text("a.csv", "old\n")
        folder.publish()

    calls = []
    real_replace = os.replace

    def replace_then_fail(source, destination):
        calls.append(destination)
        if len(calls) == 2:
            raise OSError("disk went away")
        return real_replace(source, destination)

    with pytest.raises(StorageError, match="disk went away"), pytest.MonkeyPatch.context() as patch:
        patch.setattr(publish_module.os, "replace", replace_then_fail)
        with OutputFolder(backend_dir, run_id="run2") as folder:
            folder.write_text("a.csv", "new\n")
            folder.publish()

    assert (target / "a.csv").read_text() == "old\n"
    assert json.loads((target / "_SUCCESS").read_text())["run_id"] == "run1"


def _publish(backend, relative: str, files: dict[str, bytes], run_id: str) -> None:
    with OutputFolder(backend.url(relative), backend.storage_options, run_id=run_id) as folder:
        for name, data in files.items():
            folder.write_bytes(name, data)
        folder.publish()


def _fail_second_call(monkeypatch, folder: OutputFolder) -> None:
    """Make the second file operation of the publication fail, as a dropped connection would."""
    import os

    from sdpipe.io import publish as publish_module

    calls = []
    if folder.is_local:
        real = os.replace

        def replace(source, destination):
            calls.append(destination)
            if len(calls) == 2:
                raise OSError("connection lost")
            return real(source, destination)

        monkeypatch.setattr(publish_module.os, "replace", replace)
        return

    real_copy = folder.fs.cp_file

    def copy(source, destination, **kwargs):
        calls.append(destination)
        if "_staging" in source and len([c for c in calls if "_previous" not in c]) == 2:
            raise OSError("connection lost")
        return real_copy(source, destination, **kwargs)

    monkeypatch.setattr(folder.fs, "cp_file", copy)


def _raise_connection_lost(*args, **kwargs):
    raise OSError("connection lost")
