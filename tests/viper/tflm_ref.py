"""TFLM's integer requantization written out in plain Python ints (the reference for tests).

Follows tensorflow/lite/kernels/internal/common.h without TFLITE_SINGLE_ROUNDING, with C's
int32 wrap for `x * (1 << left_shift)`.
"""

from __future__ import annotations

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def wrap32(v: int) -> int:
    """Two's-complement int32 value of v (what an int32 register holds)."""
    return ((v + 2**31) % 2**32) - 2**31


def saturating_rounding_doubling_high_mul(a: int, b: int) -> int:
    if a == INT32_MIN and b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    num = ab + nudge
    # division by 2**31 truncating toward zero, as C does
    q = abs(num) // (1 << 31)
    return q if num >= 0 else -q


def rounding_divide_by_pot(x: int, exponent: int) -> int:
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def multiply_by_quantized_multiplier(x: int, multiplier: int, shift: int) -> int:
    left = shift if shift > 0 else 0
    right = -shift if shift < 0 else 0
    return rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(wrap32(x * (1 << left)), multiplier), right
    )
