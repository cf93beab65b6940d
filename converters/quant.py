"""TFLM's integer requantization arithmetic, exactly (see shared/docs/int8-arithmetic.md).

Scalar versions use Python ints (for precomputation); `mbqm` is the numpy-vectorized
MultiplyByQuantizedMultiplier used by the golden executor.
"""

from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def round_half_away(x: float) -> int:
    """TfLiteRound / std::round: ties away from zero (Python's round() is half-to-even)."""
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLM QuantizeMultiplier: real ~= M * 2^(shift-31), M in [2^30, 2^31)."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    m = round_half_away(q * (1 << 31))
    if m == (1 << 31):
        m //= 2
        shift += 1
    if shift < -31:
        shift, m = 0, 0
    if shift > 30:
        shift, m = 30, (1 << 31) - 1
    return m, shift


def _cdiv(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def wrap32(x: int) -> int:
    return ((x + 2**31) % 2**32) - 2**31


def srdhm(a: int, b: int) -> int:
    """SaturatingRoundingDoublingHighMul on int32 values."""
    if a == INT32_MIN and b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return _cdiv(ab + nudge, 1 << 31)


def rdbp(x: int, exponent: int) -> int:
    """RoundingDivideByPOT: arithmetic shift right, ties away from zero."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def mbqm_scalar(x: int, m: int, shift: int) -> int:
    """MultiplyByQuantizedMultiplier (double rounding), scalar."""
    left = shift if shift > 0 else 0
    right = -shift if shift < 0 else 0
    return rdbp(srdhm(wrap32(x * (1 << left)), m), right)


def mbqm(x: np.ndarray, m, shift) -> np.ndarray:
    """Vectorized MultiplyByQuantizedMultiplier; x int32-range values, m/shift broadcastable."""
    x = np.asarray(x, dtype=np.int64)
    m = np.asarray(m, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    a = x << left
    a = ((a + 2**31) % 2**32) - 2**31  # int32 wrap, as the C code's int32 multiply
    ab = a * m  # |a|,|m| < 2^31 -> fits int64 except both == -2^31 (m is never negative)
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    s = ab + nudge
    hi = np.where(s >= 0, s >> 31, -((-s) >> 31))  # C division by 2^31 (toward zero)
    mask = (np.int64(1) << right) - 1
    rem = hi & mask
    thr = (mask >> 1) + (hi < 0)
    return (hi >> right) + (rem > thr)


def quantize_f32(f: float, scale: float, zero_point: int) -> int:
    """TFLM's activation-range quantize: zero_point + round(f / scale) in float32."""
    q = np.float32(f) / np.float32(scale)
    tmp = round_half_away(float(q)) if math.isfinite(float(q)) else 2**63
    # kernel_util.cc Quantize(): TF_LITE_ENSURE(no_integer_overflow_from_quantization), with the
    # bounds as float32 (float(INT32_MAX) == 2**31): TFLM refuses such a model at Prepare
    if not -(2**31) <= tmp <= 2**31:
        raise ValueError(f"fused activation bound {f:g} / output scale {float(scale):g} = "
                         f"{float(q):g} overflows int32 (TFLM refuses this model)")
    return int(zero_point) + tmp


def activation_range(act: str, scale: float, zero_point: int) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for int8 (act: TFLite fused activation name)."""
    qmin, qmax = -128, 127
    if act in ("NONE", None):
        return qmin, qmax
    if act == "RELU":
        return max(qmin, quantize_f32(0.0, scale, zero_point)), qmax
    if act == "RELU6":
        return (max(qmin, quantize_f32(0.0, scale, zero_point)),
                min(qmax, quantize_f32(6.0, scale, zero_point)))
    if act == "RELU_N1_TO_1":
        return (max(qmin, quantize_f32(-1.0, scale, zero_point)),
                min(qmax, quantize_f32(1.0, scale, zero_point)))
    raise ValueError(f"fused activation {act} unsupported")


def conv_multipliers(input_scale: float, filter_scales: np.ndarray, output_scale: float,
                     n_channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (conv, depthwise, per-channel FC): double(in)*double(f[c])/double(out)."""
    fs = np.asarray(filter_scales, np.float32).reshape(-1)
    if fs.size == 1:
        fs = np.repeat(fs, n_channels)
    mult = np.zeros(n_channels, np.int32)
    shift = np.zeros(n_channels, np.int32)
    for c in range(n_channels):
        real = float(np.float32(input_scale)) * float(fs[c]) / float(np.float32(output_scale))
        mult[c], shift[c] = quantize_multiplier(real)
    return mult, shift


def fc_per_tensor_multiplier(input_scale: float, filter_scale: float,
                             output_scale: float) -> tuple[int, int]:
    """Per-tensor FC: the input*filter product is taken in float32 first (TFLM)."""
    prod = np.float32(input_scale) * np.float32(filter_scale)
    return quantize_multiplier(float(prod) / float(np.float32(output_scale)))
