"""Host side of the preprocessing: the exact integer arithmetic firmware_micropython/preprocess.py
runs on the board, vectorised with numpy over windows.

Why integers: an ESP32's MicroPython has 32-bit floats, the virtual board 64-bit, numpy 64-bit.
Integer arithmetic with floor shifts is the same everywhere, so host and board produce the same
int8 model input bit for bit. Every intermediate stays within +-2**30 (MicroPython's small-int
range on a 32-bit board, so the board never allocates a long int); `check_bounds` asserts it.

Pipeline for a window of int16 sensor counts x[t, c] (any T in WINDOW_MIN..WINDOW_MAX samples;
every "/" below is floor division, a shift when the divisor is a power of two):
  mean_c   = sum_t x / T                                   (|sum| < 2**28)
  dc:      x = x - mean_c                                  (if "dc" is in the chain)
  y        = clamp(x >> shift, -8192, 8191)                (14-bit working signal)
  blocks (rows of the [rows, C] feature matrix, in chain order):
    mean:  mean_c                                          1 row
    rms:   isqrt(sum_t y^2 / T)                            1 row
           (the sum reaches 2**39: the board keeps it in two words, hi * 2**28 + lo, and
           divides by long division in 14-bit steps, every step below 2**30)
    peak:  max_t |y|                                       1 row
    raw:   sum of `decimate` samples / decimate            T / decimate rows (decimate divides T)
    fft:   y zero-padded to N = fft_size(T) (the next power of two >= T; N = T for a power of
           two), radix-2 DIT FFT, Q14 twiddles, every stage halves with floor shifts;
           |X_k| = isqrt(re^2 + im^2) for k = 1..N/2, averaged over `bins` equal bands
           (floor), optionally compressed: isqrt(v << 13)  `bins` rows (bins divides N/2)
  quantize: q = clamp(((clamp(F - off, +-32767) * M + 2**(sh-1)) >> sh) + zp, -128, 127)
The float model input the network trains on is (F - off) * unit, and M / 2**sh = unit / s_in
(s_in, zp: the int8 model's input quantization), so q is that input quantized.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from trainer.errors import TrainerError

Y_MAX = 8191
Q14 = 14
SMALL_INT = 1 << 30
# Window sizes the integer design is proven for: |sum of T int16 counts| < 2**28 and the rms
# long division's 14-bit steps (remainder < T <= 2**13) stay small ints on a 32-bit board.
WINDOW_MIN = 8
WINDOW_MAX = 8192
SIGNAL_BLOCKS = ("raw", "rms", "peak", "fft")
BLOCKS = ("mean", *SIGNAL_BLOCKS)


@dataclass(frozen=True)
class FeatureSpec:
    """What the config's [features] table declares."""

    chain: tuple[str, ...] = ("dc", "rms", "peak", "fft")
    fft_bins: int = 16
    fft_compress: str = "sqrt"
    raw_decimate: int = 1
    shift: int | None = None  # None: fitted on the training windows

    @property
    def dc(self) -> bool:
        return "dc" in self.chain

    @property
    def blocks(self) -> tuple[str, ...]:
        return tuple(b for b in self.chain if b != "dc")

    def rows(self, window: int) -> list[tuple[str, int]]:
        out = []
        for b in self.blocks:
            n = {"mean": 1, "rms": 1, "peak": 1, "fft": self.fft_bins}.get(b)
            out.append((b, window // self.raw_decimate if b == "raw" else n))
        return out

    def n_rows(self, window: int) -> int:
        return sum(n for _, n in self.rows(window))


def fft_size(window: int) -> int:
    """The FFT length for a window: the next power of two >= window (zero-padded)."""
    return 1 << max(0, int(window) - 1).bit_length()


def fft_bins_problem(window: int, bins: int) -> str | None:
    """Why `bins` FFT bands cannot split a window's spectrum evenly, in the user's terms."""
    nf = fft_size(window)
    if bins >= 1 and (nf // 2) % bins == 0:
        return None
    pad = f" (the FFT pads the window to {nf} samples)" if nf != window else ""
    ok = [b for b in (4, 8, 16, 32, 64) if b <= nf // 2]
    return (f"window {window} gives {nf // 2} FFT magnitudes{pad}, which fft_bins = {bins} "
            f"cannot split evenly: use a divisor of {nf // 2}"
            + (f" ({', '.join(map(str, ok))})" if ok else ""))


def decimate_problem(window: int, decimate: int) -> str | None:
    """Why raw_decimate cannot cut a window into equal rows, naming the divisors that can."""
    if 1 <= decimate <= window and window % decimate == 0:
        return None
    near = sorted((d for d in range(1, window + 1) if window % d == 0),
                  key=lambda d: (abs(d - decimate), d))[:3]
    return (f"raw_decimate = {decimate} must divide the window {window} into equal rows: "
            f"try {', '.join(map(str, sorted(near)))}")


def floor_div(a: np.ndarray, d: int) -> np.ndarray:
    """floor(a / d) as the board computes it: a shift when d is a power of two, else //."""
    if d & (d - 1) == 0:
        return a >> (d.bit_length() - 1)
    return a // d


def twiddles(n: int) -> np.ndarray:
    """cos(2 pi k / n) in Q14 for k < n/2; the board gets this table in config.json."""
    k = np.arange(n // 2)
    return np.rint(np.cos(2 * np.pi * k / n) * (1 << Q14)).astype(np.int64)


def isqrt(v: np.ndarray) -> np.ndarray:
    """Exact floor(sqrt(v)) elementwise for 0 <= v < 2**52 (the board computes it bitwise)."""
    v = np.asarray(v, dtype=np.int64)
    if v.size and v.min() < 0:
        raise ValueError("isqrt of a negative number")
    r = np.floor(np.sqrt(v.astype(np.float64))).astype(np.int64)
    r -= (r * r > v).astype(np.int64)
    r += ((r + 1) * (r + 1) <= v).astype(np.int64)
    return r


def check_bounds(name: str, a: np.ndarray) -> None:
    """Every intermediate must be a small int on a 32-bit board."""
    if a.size and (a.max() >= SMALL_INT or a.min() < -SMALL_INT):
        raise AssertionError(f"{name} leaves the 32-bit small-int range: [{a.min()}, {a.max()}]")


def fft_q14(y: np.ndarray, tw: np.ndarray, check: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The board's in-place radix-2 DIT FFT, vectorised over the leading axes of y [..., n]."""
    n = y.shape[-1]
    bits = n.bit_length() - 1
    rev = np.array([int(f"{i:0{bits}b}"[::-1], 2) for i in range(n)])
    re = y[..., rev].astype(np.int64)
    im = np.zeros_like(re)
    half = 1
    while half < n:
        size = 2 * half
        step = n // size
        wr = tw[np.arange(half) * step]
        k = np.arange(half) * step
        # sin(2 pi k/n) from the cos table: k < n/4 -> cos[n/4 - k], else cos[k - n/4]
        s = np.where(k < n // 4, tw[np.abs(n // 4 - k) % (n // 2)], tw[(k - n // 4) % (n // 2)])
        wi = -s
        shp = (*re.shape[:-1], n // size, size)
        r4, i4 = re.reshape(shp), im.reshape(shp)
        ar, ai = r4[..., :half], i4[..., :half]
        br, bi = r4[..., half:], i4[..., half:]
        p1, p2, p3, p4 = br * wr, bi * wi, br * wi, bi * wr
        tr = (p1 - p2 + (1 << (Q14 - 1))) >> Q14
        ti = (p3 + p4 + (1 << (Q14 - 1))) >> Q14
        if check:
            for nm, a in (("fft products", p1), ("fft products", p2), ("fft sum", p1 - p2),
                          ("fft sum", p3 + p4)):
                check_bounds(nm, a)
        nr = np.concatenate([(ar + tr) >> 1, (ar - tr) >> 1], axis=-1)
        ni = np.concatenate([(ai + ti) >> 1, (ai - ti) >> 1], axis=-1)
        re, im = nr.reshape(re.shape), ni.reshape(im.shape)
        half = size
    return re, im


def compute_features(
    counts: np.ndarray, spec: FeatureSpec, shift: int, check: bool = False
) -> np.ndarray:
    """int16 count windows [n, T, C] -> integer feature matrix [n, rows, C] (int64)."""
    x = np.asarray(counts)
    if x.ndim != 3:
        raise TrainerError(f"windows must be [n, window, channels], got shape {x.shape}")
    if x.dtype.kind not in "iu":
        raise TrainerError("preprocessing works on integer sensor counts; use to_counts() first")
    x = x.astype(np.int64)
    n, t, c = x.shape
    if not WINDOW_MIN <= t <= WINDOW_MAX:
        raise TrainerError(f"window must be {WINDOW_MIN}..{WINDOW_MAX} samples, got {t}")
    if x.min(initial=0) < -32768 or x.max(initial=0) > 32767:
        raise TrainerError("sensor counts must be int16 (-32768..32767)")
    mean = floor_div(x.sum(axis=1), t)  # [n, c]
    xd = x - mean[:, None, :] if spec.dc else x
    y = np.clip(xd >> shift, -Y_MAX - 1, Y_MAX)
    y = np.transpose(y, (0, 2, 1))  # [n, c, t]
    parts = []
    for block, rows in spec.rows(t):
        if block == "mean":
            parts.append(mean[:, None, :])
        elif block == "rms":
            parts.append(isqrt(floor_div((y * y).sum(axis=-1), t))[:, None, :])
        elif block == "peak":
            parts.append(np.abs(y).max(axis=-1)[:, None, :])
        elif block == "raw":
            d = spec.raw_decimate
            if t % d:
                raise TrainerError(f"raw_decimate {d} must divide the window {t}")
            r = floor_div(y.reshape(n, c, rows, d).sum(axis=-1), d)
            parts.append(np.transpose(r, (0, 2, 1)))
        elif block == "fft":
            nf = fft_size(t)
            if (nf // 2) % spec.fft_bins:
                raise TrainerError(f"fft_bins {spec.fft_bins} must divide fft_size/2 = {nf // 2}")
            yp = y if nf == t else np.concatenate([y, np.zeros((n, c, nf - t), y.dtype)], -1)
            re, im = fft_q14(yp, twiddles(nf), check=check)
            mag = isqrt(re * re + im * im)[..., 1 : nf // 2 + 1]  # [n, c, nf/2]
            w = (nf // 2) // spec.fft_bins
            band = mag.reshape(n, c, spec.fft_bins, w).sum(axis=-1) // w
            if spec.fft_compress == "sqrt":
                band = isqrt(band << 13)
            if check:
                check_bounds("fft magnitude^2", re * re + im * im)
            parts.append(np.transpose(band, (0, 2, 1)))
    return np.concatenate(parts, axis=1)


def fit_shift(counts: np.ndarray, spec: FeatureSpec) -> int:
    """Smallest right shift that keeps 99.9% of |x - dc| within the 14-bit working signal."""
    x = np.asarray(counts).astype(np.int64)
    xd = x - floor_div(x.sum(axis=1, keepdims=True), x.shape[1]) if spec.dc else x
    p = float(np.percentile(np.abs(xd), 99.9)) if xd.size else 0.0
    s = 0
    while (p / (1 << s)) > Y_MAX and s < 8:
        s += 1
    return s


def quant_multiplier(ratio: float) -> tuple[int, int]:
    """ratio ~= M / 2**sh with M in [2**13, 2**14): (F-off)*M stays below 2**29."""
    if not (ratio > 0 and math.isfinite(ratio)):
        raise TrainerError(f"bad input quantization ratio {ratio}")
    m, e = math.frexp(ratio)  # ratio = m * 2**e, m in [0.5, 1)
    sh = 14 - e
    mult = int(round(m * (1 << 14)))
    if mult == 1 << 14:
        mult //= 2
        sh -= 1
    if not 1 <= sh <= 30:
        raise TrainerError(f"input quantization ratio {ratio:g} is out of the board's range")
    return mult, sh


@dataclass
class Calibration:
    """What the training data fixed: the input shift, per-element offset and unit (float scale),
    and (after quantization) the model input's int8 scale and zero point."""

    shift: int
    offset: np.ndarray  # [rows, C] int64
    unit: np.ndarray  # [rows, C] float64
    input_scale: float | None = None
    input_zero_point: int | None = None
    mult: np.ndarray | None = field(default=None)
    sh: np.ndarray | None = field(default=None)

    def to_dict(self) -> dict:
        d = {
            "shift": int(self.shift),
            "offset": self.offset.astype(int).tolist(),
            "unit": self.unit.astype(float).tolist(),
        }
        if self.input_scale is not None:
            d["input_scale"] = float(self.input_scale)
            d["input_zero_point"] = int(self.input_zero_point)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Calibration:
        c = cls(int(d["shift"]), np.asarray(d["offset"], np.int64), np.asarray(d["unit"], float))
        if d.get("input_scale") is not None:
            c.set_input_quant(float(d["input_scale"]), int(d["input_zero_point"]))
        return c

    def set_input_quant(self, scale: float, zero_point: int) -> None:
        self.input_scale, self.input_zero_point = float(scale), int(zero_point)
        pairs = [quant_multiplier(u / scale) for u in self.unit.ravel()]
        self.mult = np.array([p[0] for p in pairs], np.int64).reshape(self.unit.shape)
        self.sh = np.array([p[1] for p in pairs], np.int64).reshape(self.unit.shape)


def fit_calibration(counts: np.ndarray, spec: FeatureSpec) -> Calibration:
    """Fit the shift, then per-element offset/unit mapping training features to about [-1, 1]."""
    shift = spec.shift if spec.shift is not None else fit_shift(counts, spec)
    feats = compute_features(counts, spec, shift)
    t = counts.shape[1]
    rows, c = feats.shape[1:]
    offset = np.zeros((rows, c), np.int64)
    unit = np.ones((rows, c))
    r0 = 0
    for block, n in spec.rows(t):
        f = feats[:, r0 : r0 + n, :].astype(np.float64)
        if block == "raw":  # one scale per channel, centred signal
            span = np.percentile(np.abs(f), 99.9, axis=(0, 1))
            unit[r0 : r0 + n] = 1.0 / np.maximum(span, 1.0)
        else:  # per element: [p0.1, p99.9] -> [-1, 1]
            lo = np.percentile(f, 0.1, axis=0)
            hi = np.percentile(f, 99.9, axis=0)
            offset[r0 : r0 + n] = np.clip(np.rint((lo + hi) / 2), -32768, 32767).astype(np.int64)
            unit[r0 : r0 + n] = 1.0 / np.maximum((hi - lo) / 2, 1.0)
        r0 += n
    return Calibration(shift, offset, unit)


def centred(feats: np.ndarray, cal: Calibration) -> np.ndarray:
    return np.clip(feats - cal.offset, -32767, 32767)


def float_input(feats: np.ndarray, cal: Calibration) -> np.ndarray:
    """The float model input [n, rows, C] (float32) the network trains on."""
    return (centred(feats, cal) * cal.unit).astype(np.float32)


def quantize_input(feats: np.ndarray, cal: Calibration, check: bool = False) -> np.ndarray:
    """The int8 model input exactly as the board computes it."""
    if cal.mult is None:
        raise TrainerError("calibration has no input quantization yet (quantize the model first)")
    d = centred(feats, cal)
    p = d * cal.mult
    if check:
        check_bounds("quantize product", p)
    q = ((p + (np.int64(1) << (cal.sh - 1))) >> cal.sh) + cal.input_zero_point
    return np.clip(q, -128, 127).astype(np.int8)
