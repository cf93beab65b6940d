"""The link's and HIL agent's viper functions run as a 32-bit ESP32 would run them.

tests/viper/viper_emu.py (the viper kernels' checker) executes viper source in CPython with
every intermediate checked to stay within int32 and ptr8/ptr16 loads unsigned, as on the chip.
The virtual board's viper int is 64 bits, so only this catches code that needs more.
"""

from __future__ import annotations

import binascii
import importlib.util
import sys
from array import array
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeloop.firmware import FIRMWARE_DIR

EMU = Path(__file__).resolve().parent.parent / "viper" / "viper_emu.py"


def _load_emu():
    spec = importlib.util.spec_from_file_location("viper_emu_for_hil", EMU)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def checked():
    emu = _load_emu()
    link = emu.load_checked(FIRMWARE_DIR / "link.py")
    saved = sys.modules.get("link")
    sys.modules["link"] = link  # hil.py imports link at module level
    try:
        hil = emu.load_checked(FIRMWARE_DIR / "hil.py")
    finally:
        if saved is None:
            sys.modules.pop("link", None)
        else:
            sys.modules["link"] = saved
    return link, hil


@given(st.binary(max_size=600))
@settings(max_examples=60, deadline=None)
def test_crc16_int32_and_equal_to_host(checked, data: bytes) -> None:
    link, _ = checked
    buf = bytearray(b"xx" + data)
    got = link.crc16(link.ptr8(buf), 2, len(data), 0xFFFF, link.ptr16(link.CRC_TABLE))
    assert got == binascii.crc_hqx(data, 0xFFFF)


@given(st.lists(st.integers(-32768, 32767), min_size=1, max_size=300), st.integers(0, 50))
@settings(max_examples=60, deadline=None)
def test_copy_in_int32(checked, values: list[int], head: int) -> None:
    _, hil = checked
    size = 384
    ring = array("h", bytes(2 * size))
    src = bytearray(4) + np.array(values, dtype="<i2").tobytes()
    h = hil.copy_in(hil.ptr16(ring), head, size, hil.ptr8(src), 4, len(values))
    idx = [(head + i) % size for i in range(len(values))]
    assert h == (head + len(values)) % size
    assert [ring[i] for i in idx[-size:]] == values[-size:]


@given(st.integers(0, 3), st.integers(1, 40), st.data())
@settings(max_examples=60, deadline=None)
def test_check_window_int32_with_extremes(checked, kind: int, length: int, data) -> None:
    _, hil = checked
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    w, ch = 256, 3
    x = rng.integers(-300, 300, (w, ch)).astype(np.int16)
    at = data.draw(st.integers(0, w - length))
    c = data.draw(st.integers(0, ch - 1))
    fill = {0: -32768, 1: 32767, 2: 0, 3: 1234}[kind]
    x[at : at + length, c] = fill
    # the ring holds the window rotated: its oldest sample (time 0) sits at row `head`, so
    # runs that cross the end of the buffer must still be seen whole, in time order
    head = data.draw(st.integers(0, w - 1))
    ring = array("h", np.roll(x, head, axis=0).reshape(-1).tolist())
    code = hil.check_window(hil.ptr16(ring), w, ch, 16384, 24, 7, head * ch)
    expect_kind = {0: 1, 1: 4, 2: 2 if length >= 24 else 0, 3: 3 if length >= 24 else 0}[kind]
    if expect_kind == 0:
        assert code == 0 or ((code >> 4) & 15) in (2, 3)  # a random run may still be stuck
    else:
        assert (code >> 4) & 15 == expect_kind and code & 15 == c


@given(
    st.lists(st.floats(width=32, allow_nan=True, allow_infinity=True), min_size=1, max_size=64),
    st.sampled_from([1000, 2048, 4096, 16384, 32768]),
)
@settings(max_examples=80, deadline=None)
def test_f32_to_counts_int32(checked, values: list[float], unit: int) -> None:
    _, hil = checked
    vals = np.array(values, dtype=np.float32)
    buf = bytearray(vals.tobytes())
    hil.f32_to_counts(hil.ptr8(buf), 0, len(vals), *hil.f32_unit(unit))
    got = np.frombuffer(bytes(buf[: 2 * len(vals)]), dtype="<i2").astype(np.int64)
    with np.errstate(invalid="ignore", over="ignore"):
        v = vals.astype(np.float64) * unit
        want = np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5), -32767, 32767)
    want = np.where(np.isfinite(vals), want, -32768).astype(np.int64)
    if unit & (unit - 1) == 0:  # power-of-two scale: exact
        np.testing.assert_array_equal(got, want)
    else:  # odd factor: 15 fractional bits, so a value within odd/2**15 of a .5 may round off
        assert np.all(np.abs(got - want) <= 1)
