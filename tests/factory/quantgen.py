"""Realistic quantization for test models: activation, weight and output scales chosen from the
expected value range (outputs spread over int8 instead of all clipped), symmetric weights,
int32 biases on the accumulator's scale, and TF-converter-style range quantization."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from factory.tflite_builder import Quant

_U = 74.0  # std of a uniform int8 value (approx.), used to size output scales


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def input_quant(rng: np.random.Generator, lo: float = -3.5, hi: float = 0.0) -> Quant:
    """A plausible activation quantization: log-uniform scale, zero point anywhere in int8."""
    scale = float(10 ** rng.uniform(lo, hi))
    zp = int(rng.choice([-128, 0, int(rng.integers(-128, 128))], p=[0.2, 0.1, 0.7]))
    return Quant(scale, zp)


def _out_zp(rng: np.random.Generator, activation: str = "NONE") -> int:
    if activation in ("RELU", "RELU6"):
        return int(rng.integers(-128, -90))
    return int(rng.integers(-40, 41))


def _centered_quant(
    rng: np.random.Generator, center: float, std: float, log2: float = 0.0
) -> Quant:
    """Output quantization for a real value of given centre and spread: ~40 codes per std, with
    the zero point placed so the centre lands mid-range (as calibration would place it).
    log2 scales the result by 2**log2 (negative: heavy clipping, large multipliers)."""
    scale = std / 40.0 * 2 ** rng.uniform(-1, 1)
    scale = max(scale, abs(center) / 100.0, 1e-6) * 2.0**log2
    zp = int(np.clip(round(-center / scale) + rng.integers(-20, 21), -128, 127))
    return Quant(float(scale), zp)


def _weights(rng: np.random.Generator, shape: Sequence[int]) -> np.ndarray:
    return rng.integers(-127, 128, size=tuple(shape)).astype(np.int8)


def _weight_scales(rng: np.random.Generator, n: int, per_channel: bool) -> np.ndarray:
    if per_channel:
        return (10 ** rng.uniform(-3.0, -1.5, size=n)).astype(np.float32)
    return np.full(1, 10 ** rng.uniform(-3.0, -1.5), dtype=np.float32)


def _acc_out_quant(
    rng: np.random.Generator,
    in_q: Quant,
    w_scales: np.ndarray,
    k: int,
    activation: str,
    log2: float = 0.0,
) -> Quant:
    """Output scale sized to the accumulator spread (sum of k products), with +-2x jitter,
    times 2**log2 (negative log2: real multipliers >= 1 and heavy clipping)."""
    w_rms = float(np.sqrt(np.mean(np.square(w_scales.astype(np.float64)))))
    acc_std = float(in_q.scale) * w_rms * _U * _U * math.sqrt(k)
    scale = acc_std / 40.0 * 2 ** rng.uniform(-1, 1) * 2.0**log2
    return Quant(scale, _out_zp(rng, activation))


def _bias(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    return rng.normal(0, _U * _U * math.sqrt(k) * 0.5, size=n).astype(np.int32)


def _conv_out(size: int, k: int, stride: int, dilation: int, padding: str) -> int:
    eff = (k - 1) * dilation + 1
    if padding == "SAME":
        return (size + stride - 1) // stride
    return (size - eff + stride) // stride


def _range_quant(rng: np.random.Generator, lo: float, hi: float) -> Quant:
    """Quantization covering the real interval [lo, hi] (lo <= 0 <= hi), as TF's converter does."""
    scale = (hi - lo) / 255.0
    zp = int(np.clip(round(-128 - lo / scale), -128, 127))
    return Quant(float(scale), zp)


def _act_in_quant(rng: np.random.Generator) -> Quant:
    r = float(10 ** rng.uniform(-1.3, 1.8))  # real range about [-r, r], r in 0.05..63
    return _range_quant(rng, -r * rng.uniform(0.3, 1.0), r * rng.uniform(0.3, 1.0))
