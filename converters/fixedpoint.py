"""gemmlowp fixed-point functions TFLM's int8 SOFTMAX/LOGISTIC/TANH use, on int32 raw values.

A FixedPoint<int32, I> is represented by its raw int; the caller tracks I (integer bits).
Products are SaturatingRoundingDoublingHighMul; sums are plain int32 adds, as in gemmlowp.
"""

from __future__ import annotations

from converters.quant import INT32_MAX, INT32_MIN, rdbp, srdhm, wrap32


def sat_mul_pot(x: int, exponent: int) -> int:
    """SaturatingRoundingMultiplyByPOT<exponent>."""
    if exponent == 0:
        return x
    if exponent < 0:
        return rdbp(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    if x > threshold:
        return INT32_MAX
    if x < -threshold:
        return INT32_MIN
    return x << exponent


def rescale(x: int, src_bits: int, dst_bits: int) -> int:
    """Rescale<dst>(FixedPoint<src>)."""
    return sat_mul_pot(x, src_bits - dst_bits)


def one(int_bits: int) -> int:
    return INT32_MAX if int_bits == 0 else 1 << (31 - int_bits)


def rounding_half_sum(a: int, b: int) -> int:
    s = a + b
    s += 1 if s >= 0 else -1
    return s // 2 if s >= 0 else -((-s) // 2)


def exp_on_interval_between_negative_one_quarter_and_0_excl(a: int) -> int:
    """F0 -> F0."""
    constant_term = 1895147668
    constant_1_over_3 = 715827883
    x = wrap32(a + (1 << 28))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = sat_mul_pot(x4, -2)
    inner = wrap32(srdhm(wrap32(x4_over_4 + x3), constant_1_over_3) + x2)
    poly = sat_mul_pot(inner, -1)
    return wrap32(constant_term + srdhm(constant_term, wrap32(x + poly)))


_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
           (2, 39332535), (3, 720401), (4, 242))


def exp_on_negative_values(a: int, int_bits: int) -> int:
    """exp(a) for a <= 0 given as FixedPoint<int32, int_bits>; returns F0 raw."""
    frac_bits = 31 - int_bits
    one_quarter = 1 << (frac_bits - 2)
    mask = one_quarter - 1
    a_mod_q_minus_q = wrap32((a & mask) - one_quarter)
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        rescale(a_mod_q_minus_q, int_bits, 0)
    )
    remainder = wrap32(a_mod_q_minus_q - a)
    for exponent, mult in _BARREL:
        if int_bits > exponent:
            shift_amount = frac_bits + exponent
            if remainder & (1 << shift_amount):
                result = srdhm(result, mult)
    if int_bits > 5:
        clamp = -(1 << (36 - int_bits))
        if a < clamp:
            result = 0
    if a == 0:
        result = INT32_MAX
    return result


def _newton_reciprocal(half_denominator: int) -> int:
    """The 3-step Newton-Raphson of gemmlowp's one_over_one_plus_x_*; returns F2 raw x."""
    c48_17 = 1515870810
    cn32_17 = -1010580540
    x = wrap32(c48_17 + srdhm(half_denominator, cn32_17))
    one_f2 = one(2)
    for _ in range(3):
        hdx = srdhm(half_denominator, x)
        one_minus = wrap32(one_f2 - hdx)
        x = wrap32(x + rescale(srdhm(x, one_minus), 4, 2))
    return x


def one_over_one_plus_x_for_x_in_0_1(a: int) -> int:
    """F0 -> F0: 1/(1+a)."""
    half_den = rounding_half_sum(a, INT32_MAX)
    x = _newton_reciprocal(half_den)
    return rescale(x, 1, 0)  # ExactMulByPot<-1>: F2 -> F1 with the same raw, then Rescale<0>


def one_minus_x_over_one_plus_x_for_x_in_0_1(a: int) -> int:
    """F0 -> F0: (1-a)/(1+a)."""
    half_den = rounding_half_sum(a, INT32_MAX)
    x = _newton_reciprocal(half_den)
    return rescale(wrap32(x - one(2)), 2, 0)


def logistic(a: int, int_bits: int) -> int:
    """gemmlowp::logistic, FixedPoint<int_bits> -> F0 raw."""
    if a == 0:
        return 1 << 30
    abs_a = a if a > 0 else wrap32(-a)
    pos = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(wrap32(-abs_a), int_bits))
    return pos if a > 0 else wrap32(INT32_MAX - pos)


def tanh(a: int, int_bits: int) -> int:
    """gemmlowp::tanh, FixedPoint<int_bits> -> F0 raw."""
    if a == 0:
        return 0
    n = a if a < 0 else wrap32(-a)
    # ExactMulByPot<1>: same raw, one more integer bit
    t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, int_bits + 1))
    return wrap32(-t) if a < 0 else t


def get_reciprocal(x: int, x_integer_digits: int) -> tuple[int, int]:
    """TFLM GetReciprocal: (F0 raw of 1/(x as F<digits>) normalized, num_bits_over_unit)."""
    ux = x & 0xFFFFFFFF
    headroom_plus_one = 32 - ux.bit_length()
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted_minus_one = wrap32(((ux << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31))
    return one_over_one_plus_x_for_x_in_0_1(shifted_minus_one), num_bits_over_unit
