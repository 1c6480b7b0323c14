"""The Python API of taxi-speed: arguments as the CLI takes them, and clear errors."""

from __future__ import annotations

import pandas as pd
import pytest

import sdpipe
from sdpipe.errors import ConfigError

SAMPLE = "data/sample/csv/*.csv"


@pytest.fixture(autouse=True)
def in_repo_root(repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)


def test_blocksize_as_size_string_same_result():
    whole = sdpipe.taxi_speed(SAMPLE)
    small = sdpipe.taxi_speed(SAMPLE, blocksize="64KiB")
    pd.testing.assert_frame_equal(whole, small, check_exact=False, rtol=1e-9)
    assert small.attrs["counts"] == whole.attrs["counts"]


def test_invalid_blocksize_named():
    with pytest.raises(ConfigError, match=r"invalid blocksize 'lots'; give bytes or a size such as '64MiB'"):
        sdpipe.taxi_speed(SAMPLE, blocksize="lots")


@pytest.mark.parametrize("name", ["start", "end"])
def test_invalid_date_names_argument(name):
    with pytest.raises(ConfigError, match=rf"invalid {name} '2017-13-01': .*give a date as YYYY-MM-DD"):
        sdpipe.taxi_speed(SAMPLE, **{name: "2017-13-01"})


def test_default_input_is_bundled_sample():
    default = sdpipe.taxi_speed()
    explicit = sdpipe.taxi_speed(SAMPLE)
    pd.testing.assert_frame_equal(default, explicit)
