"""Requantization: int32-safe on a 32-bit board and equal to TFLM's arithmetic.

The checked emulation runs the viper kernels' own source with every intermediate bounded to int32;
the same function then runs on the virtual board over the extreme values.
"""

from __future__ import annotations

import json
import random
import shutil
import struct

import pytest
from conftest import HERE
from hypothesis import given, settings
from hypothesis import strategies as st
from viper_emu import Int32Overflow, load_checked

from converters.quant import INT32_MAX, INT32_MIN
from converters.quant import mbqm_scalar as multiply_by_quantized_multiplier
from edgeloop.vboard import VirtualBoard

int32s = st.one_of(
    st.sampled_from([INT32_MIN, INT32_MIN + 1, -1, 0, 1, INT32_MAX - 1, INT32_MAX]),
    st.integers(INT32_MIN, INT32_MAX),
    st.integers(-(2**20), 2**20),
)
multipliers = st.one_of(
    st.sampled_from([1 << 30, (1 << 30) + 1, INT32_MAX - 1, INT32_MAX]),
    st.integers(1 << 30, INT32_MAX),
)
shifts = st.integers(-31, 30)


@settings(max_examples=3000, deadline=None)
@given(x=int32s, mult=multipliers, shift=shifts)
def test_checked_requantize_matches_tflm(checked_kernels, x: int, mult: int, shift: int) -> None:
    expected = multiply_by_quantized_multiplier(x, mult, shift)
    assert checked_kernels.multiply_by_quantized_multiplier(x, mult, shift) == expected


kernel_multipliers = st.one_of(
    st.sampled_from([0, 1, 0x7FFF, 0x8000, 0xFFFF, 0x18000, 1 << 30, INT32_MAX - 0x8000,
                     INT32_MAX - 0x7FFF, INT32_MAX]),
    st.integers(1 << 30, INT32_MAX),
    st.integers(0, INT32_MAX),
)


@pytest.fixture(scope="module")
def checked_requant():
    """The int32-checked emulation of kv_requant, private functions included."""
    return load_checked(HERE / "kv_requant.py")


def _words(m: int, shift: int) -> tuple[bytes, bytes]:
    return struct.pack("<i", m), struct.pack("<i", shift)


@settings(max_examples=3000, deadline=None)
@given(x=int32s, mult=kernel_multipliers, shift=shifts)
def test_checked_inline_requantize_matches_tflm(checked_requant, x: int, mult: int,
                                                shift: int) -> None:
    """The block every kernel inlines (#@RQSETUP + #@RQ: signed 16-bit halves, no abs, no
    branch on the product's sign), for any multiplier a kernel can be given."""
    expected = multiply_by_quantized_multiplier(x, mult, shift)
    assert checked_requant._requantize_inline(x, *_words(mult, shift)) == expected


def test_checker_catches_an_int32_overflow(tmp_path) -> None:
    """The emulation must fail on code that needs a 64-bit product (else it proves nothing)."""
    src = tmp_path / "naive.py"
    src.write_text(
        "import micropython\n"
        "@micropython.viper\n"
        "def srdhm(a: int, b: int) -> int:\n"
        "    return (a * b + (1 << 30)) >> 31\n"
    )
    naive = load_checked(src)
    assert naive.srdhm(3, 5) == 0
    with pytest.raises(Int32Overflow):
        naive.srdhm(1 << 20, 1 << 30)


def _corner_cases() -> list[tuple[int, int, int]]:
    xs = [INT32_MIN, INT32_MIN + 1, -(2**30), -65536, -6, -1, 0, 1, 6, 65535, 2**30, INT32_MAX]
    ms = [1 << 30, (1 << 30) + 1, 1518500250, INT32_MAX - 1, INT32_MAX]
    cases = [(x, m, s) for x in xs for m in ms for s in range(-31, 31)]
    rng = random.Random(7)
    for _ in range(3000):
        cases.append(
            (
                rng.randint(INT32_MIN, INT32_MAX),
                rng.randint(1 << 30, INT32_MAX),
                rng.randint(-31, 30),
            )
        )
    return cases


def _inline_corner_cases() -> list[tuple[int, int, int]]:
    ms = [0, 1, 0x7FFF, 0x8000, 0xFFFF, 0x18000, INT32_MAX - 0x8000, INT32_MAX - 0x7FFF]
    cases = _corner_cases()
    xs = [INT32_MIN, INT32_MIN + 65535, INT32_MIN + 65536, -1, 0, 65535, 65536, INT32_MAX]
    return cases + [(x, m, s) for x in xs for m in ms for s in range(-31, 31)]


def test_viper_inline_requantize_on_virtual_board(tmp_path) -> None:
    cases = _inline_corner_cases()
    shutil.copyfile(HERE / "kv_requant.py", tmp_path / "kv_requant.py")
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    code = (
        "import json, struct\n"
        "from kv_requant import _requantize_inline as requantize\n"
        "cases = json.load(open('cases.json'))\n"
        "print(json.dumps([requantize(x, struct.pack('<i', m), struct.pack('<i', s))"
        " for x, m, s in cases]))\n"
    )
    res = VirtualBoard(tmp_path).run(code, timeout=60, heap_bytes=8 * 1024 * 1024).check()
    got = json.loads(res.stdout)
    expected = [multiply_by_quantized_multiplier(x, m, s) for x, m, s in cases]
    bad = [(c, g, e) for c, g, e in zip(cases, got, expected, strict=True) if g != e]
    assert not bad, f"{len(bad)} mismatches, first: {bad[:5]}"


def test_viper_requantize_on_virtual_board(tmp_path) -> None:
    cases = _corner_cases()
    shutil.copyfile(HERE / "kv_requant.py", tmp_path / "kv_requant.py")
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    code = (
        "import json\n"
        "from kv_requant import multiply_by_quantized_multiplier as requantize\n"
        "cases = json.load(open('cases.json'))\n"
        "print(json.dumps([requantize(x, m, s) for x, m, s in cases]))\n"
    )
    res = VirtualBoard(tmp_path).run(code, timeout=60, heap_bytes=8 * 1024 * 1024).check()
    got = json.loads(res.stdout)
    expected = [multiply_by_quantized_multiplier(x, m, s) for x, m, s in cases]
    bad = [(c, g, e) for c, g, e in zip(cases, got, expected, strict=True) if g != e]
    assert not bad, f"{len(bad)} mismatches, first: {bad[:5]}"
