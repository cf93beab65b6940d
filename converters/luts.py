"""Tables and op parameters that TFLM derives at Prepare time, computed on the host.

Elementwise int8 -> int8 ops become a 256-entry table built by running TFLM's exact integer kernel
arithmetic on every possible input, so the device's table lookup is bit-exact by construction.
"""

from __future__ import annotations

import math

import numpy as np

from converters import fixedpoint as fp
from converters.errors import ConvertError
from converters.quant import (
    mbqm_scalar,
    quantize_multiplier,
    rdbp,
    round_half_away,
    srdhm,
)
from converters.tflite_reader import TTensor

INPUTS = np.arange(-128, 128)


def _s(t: TTensor) -> np.float32:
    return np.float32(t.scale[0])


def _z(t: TTensor) -> int:
    return int(t.zero_point[0])


def _clamp8(v: int) -> int:
    return max(-128, min(127, v))


# -- MEAN ------------------------------------------------------------------------------------

MEAN_QUANTIZED = 0  # reference_ops::QuantizedMeanOrSum (integer, 1/n folded in multiplier)
MEAN_INT_4D = 1  # reference_integer_ops::Mean (4-D, axes 1 and 2, keep_dims)
MEAN_SAME_QUANT = 2  # reference_ops::Mean: int32 sum / n


def mean_mode(n: int, m: int, s: int) -> tuple[int, int, int]:
    """TFLM's int8 MEAN: (mode, multiplier, shift) as the device uses them.

    The tflite-micro runtime runs reference_ops::QuantizedMeanOrSum for every int8 MEAN (checked:
    the 4-D keep_dims and equal-quantization special paths of older TFLM do not match it), which
    folds 1/n into the multiplier like this.
    """
    shift = 63 - (64 - int(n).bit_length())  # 63 - CountLeadingZeros(uint64 n)
    shift = min(shift, 32, 31 + s)
    mult = (m << shift) // n  # int64 division of non-negatives
    return MEAN_QUANTIZED, int(mult), int(s - shift)


# -- SOFTMAX ---------------------------------------------------------------------------------

SCALED_DIFF_INTEGER_BITS = 5
ACCUMULATION_INTEGER_BITS = 12


def softmax_params(input_scale: float, beta: float) -> tuple[int, int, int]:
    """PreprocessSoftmaxScaling + CalculateInputRadius: (input_multiplier, left_shift, diff_min)."""
    ib = SCALED_DIFF_INTEGER_BITS
    real = min(beta * float(input_scale) * (1 << (31 - ib)), (1 << 31) - 1.0)
    mult, left = quantize_multiplier(real)
    if left < 0:
        raise ConvertError("softmax input multiplier < 1 unsupported")
    radius = math.floor(((1 << ib) - 1) * (1 << (31 - ib)) / (1 << left))
    return mult, left, -radius


def softmax_luts(input_scale: float, beta: float) -> tuple[np.ndarray, np.ndarray]:
    """exp_lut[d] (Q0.31) and exp_acc_lut[d] (Q12.19) for diff = -d, d in 0..255."""
    mult, left, diff_min = softmax_params(input_scale, beta)
    exp_lut = np.zeros(256, np.int32)
    acc_lut = np.zeros(256, np.int32)
    for d in range(256):
        diff = -d
        if diff < diff_min:
            continue
        rescaled = srdhm(diff * (1 << left), mult)
        e = fp.exp_on_negative_values(rescaled, SCALED_DIFF_INTEGER_BITS)
        exp_lut[d] = e
        acc_lut[d] = fp.rescale(e, 0, ACCUMULATION_INTEGER_BITS)
    return exp_lut, acc_lut


def softmax_row(x: np.ndarray, exp_lut: np.ndarray, acc_lut: np.ndarray) -> np.ndarray:
    """One row of the device's int8 softmax (scalar reciprocal, vectorized elements)."""
    d = int(x.max()) - x.astype(np.int64)
    total = int(acc_lut[d].astype(np.int64).sum())
    total = ((total + 2**31) % 2**32) - 2**31
    scale, nbits = fp.get_reciprocal(total, ACCUMULATION_INTEGER_BITS)
    e = exp_lut[d].astype(np.int64)
    prod = scale * e
    nudge = np.where(prod >= 0, 1 << 30, 1 - (1 << 30))
    s = prod + nudge
    hi = np.where(s >= 0, s >> 31, -((-s) >> 31))
    exp_ = nbits + 31 - 8
    mask = (1 << exp_) - 1
    out = (hi >> exp_) + ((hi & mask) > ((mask >> 1) + (hi < 0)))
    return np.clip(out - 128, -128, 127).astype(np.int8)


# -- elementwise tables ----------------------------------------------------------------------


def _frexp_multiplier(real: float) -> tuple[int, int]:
    """LOGISTIC/TANH's own quantization: frexp + TfLiteRound, no normalization of 2^31."""
    q, shift = math.frexp(real)
    return round_half_away(q * (1 << 31)), shift


def _input_radius(int_bits: int, left_shift: int, total_bits: int = 31) -> int:
    return math.floor(((1 << int_bits) - 1) * (1 << (total_bits - int_bits)) / (1 << left_shift))


def _saturating_table(it: TTensor, fn, out_shift: int, out_zp: int) -> np.ndarray:
    """TFLM's int8 LOGISTIC/TANH: inputs beyond the radius saturate, the rest go through the
    Q4 fixed-point fn, rounded down to int8 by out_shift and offset by the output zero point."""
    mult, left = _frexp_multiplier(float(_s(it)) * (1 << 27))
    radius = _input_radius(4, left)
    zp = _z(it)
    out = []
    for x in INPUTS:
        v = int(x) - zp
        if v <= -radius:
            out.append(-128)
        elif v >= radius:
            out.append(127)
        else:
            q4 = mbqm_scalar(v, mult, left)
            out.append(_clamp8(rdbp(fn(q4, 4), out_shift) + out_zp))
    return np.array(out, np.int8)


def logistic_table(it: TTensor, ot: TTensor) -> np.ndarray:
    if _z(ot) != -128:
        raise ConvertError(f"int8 LOGISTIC output zero point must be -128, got {_z(ot)}")
    return _saturating_table(it, fp.logistic, 23, -128)


def tanh_table(it: TTensor, ot: TTensor) -> np.ndarray:
    if _z(ot) != 0:
        raise ConvertError(f"int8 TANH output zero point must be 0, got {_z(ot)}")
    return _saturating_table(it, fp.tanh, 24, 0)


def relu_table(it: TTensor, ot: TTensor) -> np.ndarray:
    real = float(_s(it)) / float(_s(ot))
    m, s = quantize_multiplier(real)
    zpo = _z(ot)
    amin = max(-128, zpo + round_half_away(float(np.float32(0.0) / _s(ot))))
    return np.array([min(127, max(amin, zpo + mbqm_scalar(int(x) - _z(it), m, s)))
                     for x in INPUTS], np.int8)


def relu6_table(it: TTensor, ot: TTensor) -> np.ndarray:
    zero = _z(it)
    six = round_half_away(float(np.float32(6.0) / _s(it))) + zero
    six = max(-128, min(127, six))
    return np.array([six if x > six else zero if x < zero else x for x in INPUTS], np.int8)


def leaky_relu_table(it: TTensor, ot: TTensor, alpha: float) -> np.ndarray:
    ma, sa = quantize_multiplier(float(_s(it) * np.float32(alpha) / _s(ot)))
    mi, si = quantize_multiplier(float(_s(it) / _s(ot)))
    out = []
    for x in INPUTS:
        v = int(x) - _z(it)
        r = mbqm_scalar(v, mi, si) if v >= 0 else mbqm_scalar(v, ma, sa)
        out.append(_clamp8(_z(ot) + r))
    return np.array(out, np.int8)


def _w16(v: int) -> int:
    return ((v + 2**15) % 2**16) - 2**15


def _srdhm16(a: int, b: int) -> int:
    if a == b == -(2**15):
        return 2**15 - 1
    ab = a * b
    nudge = (1 << 14) if ab >= 0 else 1 - (1 << 14)
    s = ab + nudge
    return s // (1 << 15) if s >= 0 else -((-s) // (1 << 15))


def _sat_left16(v: int, amount: int) -> int:
    return max(-(2**15), min(2**15 - 1, v * (1 << amount)))


def _sdhm16(a: int, b: int) -> int:
    """SaturatingDoublingHighMul (no rounding) on int16."""
    if a == b == -(2**15):
        return 2**15 - 1
    ab = a * b
    return ab // (1 << 15) if ab >= 0 else -((-ab) // (1 << 15))


def _rdbp16(x: int, exponent: int) -> int:
    """gemmlowp RoundingDivideByPOT on int16 lanes: the mask (2^e - 1) is itself an int16, so
    for exponents >= 16 it wraps to -1 (TFLM's HARD_SWISH hits this with large output scales)."""
    mask = _w16((1 << exponent) - 1)
    remainder = _w16(x & mask)
    threshold = _w16((mask >> 1) + (1 if x < 0 else 0))
    return _w16((x >> exponent) + (1 if remainder > threshold else 0))


def _downscale16(m: int) -> int:
    if m >= 2**31 - 1 - (1 << 15):
        return 2**15 - 1
    return (m + (1 << 15)) >> 16


def hard_swish_table(it: TTensor, ot: TTensor) -> np.ndarray:
    hires = np.float32(1.0 / 128.0) * _s(it)
    relu_scale = np.float32(3.0 / 32768.0)
    om32, oexp = quantize_multiplier(float(hires / _s(ot)))
    om = _downscale16(om32)
    if oexp > 0:
        raise ConvertError("HARD_SWISH output multiplier exponent > 0 unsupported (as TFLM)")
    rm32, rexp = quantize_multiplier(float(hires / relu_scale))
    rm = _downscale16(rm32)
    out = []
    for x in INPUTS:
        v = _w16(int(x) - _z(it))
        hi = _w16(v * 128)
        pre_out = _srdhm16(hi, om)
        rel = hi
        if rexp > 0:
            rel = _sat_left16(rel, rexp - 1)
        rel = _srdhm16(rel, rm)
        if rexp > 0:
            rel = _sat_left16(rel, 1)
        if rexp < 0:
            rel = _rdbp16(rel, -rexp)
        rel = _w16((rel + (1 << 15)) >> 1)
        pre = _sdhm16(rel, pre_out)
        o = _rdbp16(pre, -oexp) + _z(ot)
        out.append(_clamp8(o))
    return np.array(out, np.int8)


def requantize_table(it: TTensor, ot: TTensor) -> np.ndarray:
    m, s = quantize_multiplier(float(_s(it)) / float(_s(ot)))
    return np.array([_clamp8(mbqm_scalar(int(x) - _z(it), m, s) + _z(ot)) for x in INPUTS],
                    np.int8)


def dequantize_table(scale: float, zp: int) -> np.ndarray:
    return np.array([np.float32(float(np.float32(scale)) * (int(x) - zp)) for x in INPUTS],
                    np.float32)


def elementwise_table(name: str, it: TTensor, ot: TTensor, options: dict) -> np.ndarray:
    if name == "LOGISTIC":
        return logistic_table(it, ot)
    if name == "TANH":
        return tanh_table(it, ot)
    if name == "RELU":
        return relu_table(it, ot)
    if name == "RELU6":
        return relu6_table(it, ot)
    if name == "LEAKY_RELU":
        return leaky_relu_table(it, ot, float(options.get("Alpha", 0.2)))
    if name == "HARD_SWISH":
        return hard_swish_table(it, ot)
    if name == "QUANTIZE":
        return requantize_table(it, ot)
    raise ConvertError(f"no table for {name}")
