"""Byte ranges of CSV files: the memory-mapped and the streamed reader return the same lines."""

from __future__ import annotations

import fsspec
import pytest

from sdpipe.io.trips import _map_block, _read_block


@pytest.fixture
def lines_file(tmp_path):
    lines = [b"a,b,c\n"] + [b"%d,%s,x\n" % (i, b"y" * (i % 37)) for i in range(3000)]
    lines[1500] = b"long," + b"z" * 70_000 + b"\n"  # longer than the 64 KiB search window
    path = tmp_path / "lines.csv"
    path.write_bytes(b"".join(lines) + b"last,line,without newline")
    return path


def _line_starts(data: bytes) -> list[int]:
    return [0] + [i + 1 for i, byte in enumerate(data) if byte == 0x0A and i + 1 < len(data)]


def _expected(data: bytes, starts: list[int], offset: int, length: int) -> bytes:
    """Join the lines whose first byte lies in ``[offset, offset + length)``."""
    chosen = [s for s in starts if offset <= s < offset + length]
    if not chosen:
        return b""
    following = [s for s in starts if s >= offset + length]
    return data[chosen[0] : following[0] if following else len(data)]


@pytest.mark.parametrize("length", [1, 100, 4096, 70_000, 300_000])
def test_byte_ranges_match_lines(lines_file, length):
    data = lines_file.read_bytes()
    starts = _line_starts(data)
    fs = fsspec.filesystem("file")
    offsets = sorted({0, 1, 5, 6, len(data) // 2, len(data) - 30, len(data) - 1, *range(0, len(data), 9_973)})
    for offset in offsets:
        expected = _expected(data, starts, offset, length)
        with fs.open(str(lines_file), "rb") as handle:
            streamed = bytes(_read_block(handle, offset, length))
        mapped = bytes(_map_block(str(lines_file), offset, length))
        assert streamed == expected, (offset, length)
        assert mapped == expected, (offset, length)
