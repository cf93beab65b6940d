"""TFLM requantization arithmetic: QuantizeMultiplier, double-rounding MBQM, fixed-point helpers."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from converters import fixedpoint as fp
from converters.quant import (
    activation_range,
    fc_per_tensor_multiplier,
    mbqm,
    mbqm_scalar,
    quantize_multiplier,
    round_half_away,
)

I32 = st.integers(-(2**31), 2**31 - 1)


@given(st.floats(1e-9, 1e4, allow_nan=False))
def test_quantize_multiplier_normalized_and_close(real):
    m, shift = quantize_multiplier(real)
    assert 2**30 <= m < 2**31
    assert abs(m * 2.0 ** (shift - 31) - real) <= 2.0 ** (shift - 32) * (1 + 1e-12)


@given(st.integers(2**29, 2**30 - 1))
def test_quantize_multiplier_rounds_ties_away_from_zero(k):
    m, shift = quantize_multiplier((2 * (2 * k) + 1) / 2**33)  # q * 2^31 == 2k + 0.5 exactly
    assert (m, shift) == (2 * k + 1, -1)
    assert round(2 * k + 0.5) == 2 * k  # what Python's round would (wrongly) give


def test_quantize_multiplier_edges():
    assert quantize_multiplier(0.0) == (0, 0)
    assert quantize_multiplier(2.0**-40) == (0, 0)  # shift < -31 flushes to zero
    m, s = quantize_multiplier(1.0 - 2.0**-40)  # rounds up to 2^31: halved, shift + 1
    assert (m, s) == (2**30, 1)


def test_round_half_away():
    assert [round_half_away(v) for v in (0.5, 1.5, 2.5, -0.5, -2.5, 2.4999)] == [1, 2, 3, -1, -3, 2]


def test_double_rounding_tie_example():
    m, s = quantize_multiplier(0.25)
    assert mbqm_scalar(-6, m, s) == -2  # -1.5 rounds away from zero; single rounding gives -1
    assert mbqm_scalar(6, m, s) == 2


@settings(max_examples=300)
@given(I32, st.integers(2**30, 2**31 - 1), st.integers(-31, 0))
def test_mbqm_vectorized_equals_scalar_and_is_within_one(x, m, shift):
    v = int(mbqm(np.array([x]), m, shift)[0])
    assert v == mbqm_scalar(x, m, shift)
    assert abs(v - x * m * 2.0 ** (shift - 31)) <= 1.0


@given(st.integers(-(2**16), 2**16), st.integers(2**30, 2**31 - 1), st.integers(1, 10))
def test_mbqm_left_shift(x, m, shift):
    v = int(mbqm(np.array([x]), m, shift)[0])
    assert v == mbqm_scalar(x, m, shift)
    assert abs(v - x * m * 2.0 ** (shift - 31)) <= 1.0


def test_fc_per_tensor_product_in_float32():
    si, sf, so = 0.0123456789, 0.00098765432, 0.0456
    prod32 = float(np.float32(si) * np.float32(sf))
    assert fc_per_tensor_multiplier(si, sf, so) == quantize_multiplier(prod32 / float(np.float32(so)))


def test_activation_ranges():
    assert activation_range("NONE", 0.1, 5) == (-128, 127)
    assert activation_range("RELU", 0.1, 5) == (5, 127)
    assert activation_range("RELU6", 0.05, -128) == (-128, -8)
    assert activation_range("RELU_N1_TO_1", 0.01, 0) == (-100, 100)


@given(st.integers(-(2**31) + 1, 0))
def test_exp_on_negative_values_accuracy(raw):
    a = raw / 2**26  # FixedPoint<int32, 5>
    got = fp.exp_on_negative_values(raw, 5) / 2**31
    assert abs(got - math.exp(a)) < 2e-6


@given(st.integers(0, 2**31 - 1))
def test_one_over_one_plus_x(raw):
    x = raw / 2**31
    assert abs(fp.one_over_one_plus_x_for_x_in_0_1(raw) / 2**31 - 1 / (1 + x)) < 2e-6


def test_fixedpoint_identities():
    assert fp.exp_on_negative_values(0, 5) == 2**31 - 1
    assert fp.logistic(0, 4) == 2**30
    assert fp.tanh(0, 4) == 0
