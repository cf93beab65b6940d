"""The host's reader of the board's field file against damaged files (hypothesis): it returns
the windows it can trust or raises FieldError naming the file, never anything else."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeloop.collect.field import HDR, HDR_FMT, FieldError, parse_field_file, slot_bytes

N_OUT, WINDOW, CHANNELS, K, A = 3, 4, 2, 2, 1


def _file(windows: int = 3) -> bytes:
    """A field file as firmware_micropython/field.py lays it out."""
    n = K + A
    base = (HDR + 3 * n + 3) & ~3
    slot = slot_bytes(N_OUT, WINDOW, CHANNELS)
    head = struct.pack(HDR_FMT, b"ELFW", 1, base, slot, K, A, N_OUT, WINDOW, CHANNELS, 0, 0,
                       -128, 7, 1, windows, 1, 0, windows, 0, 1 / 256, 100.0, b"\x11" * 32)
    kinds = bytes([1, 1, 2][:windows] + [0] * (n - windows))
    data = bytearray(head + kinds + bytes(base - HDR - n) + bytes(n * slot))
    for i in range(windows):
        g = i + 1
        meta = np.array([g, 0, kinds[i], 5 * i, 1, 0, i + 1, 0, 100 * i, 0, 8 * (i + 1), 0],
                        "<i2").tobytes()
        outs = bytes([10, 20, 30, 0])
        raw = np.arange(WINDOW * CHANNELS, dtype="<i2").tobytes()
        off = base + i * slot
        data[off:off + slot] = meta + outs + raw + np.array([g, 0], "<i2").tobytes()
    return bytes(data)


def test_a_whole_file_reads_back() -> None:
    parsed = parse_field_file(_file(), "f.bin")
    assert [w.reason for w in parsed.windows] == ["uncertain", "uncertain", "alarm"]
    assert [w.window_index for w in parsed.windows] == [1, 2, 3] and parsed.torn == []
    assert parsed.windows[1].uid == "00000007-1-2" and parsed.windows[2].end == 24


@settings(max_examples=400, deadline=None)
@given(cut=st.integers(0, 400), flips=st.lists(st.tuples(st.integers(0, 399),
                                                        st.integers(1, 255)), max_size=6))
def test_damaged_files_are_field_errors_or_trusted_windows(cut: int, flips: list) -> None:
    data = bytearray(_file())
    for at, x in flips:
        if at < len(data):
            data[at] ^= x
    data = bytes(data[:cut]) if cut < len(data) else bytes(data)
    try:
        parsed = parse_field_file(data, "board: field.bin")
    except FieldError as exc:
        assert str(exc).startswith("board: field.bin: ")
        return
    for w in parsed.windows:  # what it returns is shaped as the header says
        assert w.raw.shape == (parsed.header.window, parsed.header.channels)
        assert len(w.outputs_q) == parsed.header.n_out


@pytest.mark.parametrize("cut", [0, 10, HDR - 1, HDR + 5, len(_file()) - 1])
def test_a_truncated_file_says_so(cut: int) -> None:
    with pytest.raises(FieldError, match=r"^f\.bin: \d+ bytes"):
        parse_field_file(_file()[:cut], "f.bin")
