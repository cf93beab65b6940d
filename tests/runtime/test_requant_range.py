"""The bytecode requantization never needs more than 32 bits, and for realistic operands stays
in MicroPython's 31-bit small-int range (no big-int allocation on an ESP32).

The helpers run on `Checked` ints that record every intermediate value; results must equal TFLM's
SaturatingRoundingDoublingHighMul + RoundingDivideByPOT as converters.quant computes them."""

from __future__ import annotations

import struct

import pytest
from factory.hostimport import import_device_file
from factory.intlog import LoggedInt as Checked
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from converters.quant import mbqm_scalar, rdbp, srdhm
from edgeloop.firmware import FIRMWARE_DIR

I32_MIN, I32_MAX = -(2**31), 2**31 - 1
SMALL_MIN, SMALL_MAX = -(2**30), 2**30 - 1  # MicroPython small int on a 32-bit port


INT32 = st.one_of(st.sampled_from([I32_MIN, I32_MIN + 1, -(2**30), -1, 0, 1, 2**30 - 1, 2**30,
                                   I32_MAX - 1, I32_MAX]),
                  st.integers(I32_MIN, I32_MAX))


def _fits(x: int, shift: int) -> bool:
    # TFLM computes x * (1 << shift) in int32: larger products are undefined behaviour there.
    return I32_MIN <= x * (1 << max(shift, 0)) <= I32_MAX


@settings(max_examples=3000, deadline=None)
@given(x=INT32, m=INT32, shift=st.integers(-31, 30))
@example(x=I32_MIN, m=I32_MIN, shift=0)
@example(x=I32_MIN, m=I32_MAX, shift=-31)
@example(x=I32_MAX, m=I32_MIN + 1, shift=0)
def test_requant_exact_and_within_int32(kernels_py, x: int, m: int, shift: int) -> None:
    assume(_fits(x, shift))
    Checked.seen = []
    got = kernels_py.multiply_by_quantized_multiplier(Checked(x), Checked(m), Checked(shift))
    assert int(got) == mbqm_scalar(x, m, shift)
    widest = max(Checked.seen, key=abs, default=0)
    assert I32_MIN <= widest <= I32_MAX, f"intermediate {widest} leaves int32"


@settings(max_examples=3000, deadline=None)
@given(acc=st.integers(SMALL_MIN, SMALL_MAX), m=st.integers(2**30, I32_MAX),
       shift=st.integers(-29, 8))
@example(acc=SMALL_MIN, m=I32_MAX, shift=-1)
@example(acc=SMALL_MAX, m=I32_MAX, shift=0)
def test_kernel_requant_stays_small(kernels_py, acc: int, m: int, shift: int) -> None:
    """The path kernels use (multiplier read from its bytes): a small-int accumulator and a
    normalized multiplier give only small-int intermediates."""
    assume(_fits(acc, shift) and SMALL_MIN <= acc * (1 << max(shift, 0)) <= SMALL_MAX)
    mbuf = struct.pack("<i", m)
    sbuf = struct.pack("<i", shift)
    Checked.seen = []
    got = kernels_py._requant(Checked(acc), mbuf, sbuf, 0)
    assert int(got) == mbqm_scalar(acc, m, shift)
    widest = max(Checked.seen, key=abs, default=0)
    assert SMALL_MIN <= widest <= SMALL_MAX, f"intermediate {widest} would be a big int"


def test_checker_catches_a_wide_product(kernels_py) -> None:
    """The instrument itself: a naive 64-bit high-mul is flagged."""
    Checked.seen = []
    _ = (Checked(I32_MAX) * Checked(I32_MAX) + Checked(1 << 30)) >> 31
    assert max(map(abs, Checked.seen)) > I32_MAX


@pytest.fixture(scope="module")
def kernels_py():
    """kernels_py.py loaded in CPython under its own name (stand-in `micropython.const`)."""
    return import_device_file(FIRMWARE_DIR / "elrt" / "kernels_py.py", "elrt_kernels_py_host")


@settings(max_examples=2000, deadline=None)
@given(total=st.one_of(st.sampled_from([2**19, 2**19 + 1, 2**20, 2**29, 2**30 - 1]),
                       st.integers(2**19, 2**30 - 1)),
       ex=st.one_of(st.sampled_from([0, 1, 2**30, I32_MAX]), st.integers(0, I32_MAX)))
def test_softmax_reciprocal_small_and_exact(kernels_py, total: int, ex: int) -> None:
    """Softmax's 1/sum (gemmlowp Newton-Raphson) and output step, on small ints only, equal the
    converter's reference fixed-point (itself checked against TFLM by the converter tests)."""
    from converters.fixedpoint import get_reciprocal

    Checked.seen = []
    out = [0, 0, 0, 0]
    kernels_py._reciprocal(Checked(total), out)
    nbits, top, mh, ml = (int(v) for v in out)
    scale, want_bits = get_reciprocal(total, 12)
    assert (top * 2**30 + mh * 2**15 + ml, nbits) == (scale, want_bits)
    e = nbits + 23
    out = kernels_py._softmax_out(Checked(ex >> 30), Checked((ex >> 15) & 0x7FFF),
                                  Checked(ex & 0x7FFF), top, mh, ml, e)
    assert (int(out) ^ 128) - 128 == max(-128, min(127, rdbp(srdhm(scale, ex), e) - 128))
    widest = max(Checked.seen, key=abs, default=0)
    assert SMALL_MIN <= widest <= SMALL_MAX, f"intermediate {widest} would be a big int"
