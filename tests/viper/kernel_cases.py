"""Random argument sets for every kernel, in kernels_py's positional order.

A case is (op, args, out): args holds bytes (buffers) and ints (scalars), out is the index of the
output buffer (bytes of zeros). Multipliers are drawn as TFLM's QuantizeMultiplier makes them,
in [2**30, 2**31); int8 buffers always contain -128 and 127.
"""

from __future__ import annotations

import numpy as np

OPS = (
    "fully_connected",
    "conv_2d",
    "depthwise_conv_2d",
    "max_pool_2d",
    "average_pool_2d",
    "mean",
    "add",
    "mul",
    "softmax",
    "lut",
    "dequantize",
    "quantize_f32",
    "concatenation",
    "pad",
)


def _i8(rng: np.random.Generator, n: int) -> bytes:
    a = rng.integers(-128, 128, size=max(n, 1), dtype=np.int16).astype(np.int8)
    if n >= 2:
        a[rng.integers(0, n)] = -128
        a[rng.integers(0, n)] = 127
    return a[:n].tobytes()


def _i32(values) -> bytes:
    return np.asarray(values, dtype="<i4").tobytes()


def _mult(rng: np.random.Generator, n: int) -> bytes:
    """Multipliers; a third are 2**30 or 3 * 2**29 (power-of-two-like scales), whose products
    land exactly on rounding ties."""
    m = rng.integers(1 << 30, 2**31, size=n)
    special = rng.random(n) < 0.35
    m[special] = rng.choice([1 << 30, 3 << 29, (1 << 30) + (1 << 20)], size=int(special.sum()))
    return _i32(m)


def _shift(rng: np.random.Generator, n: int, lo: int, hi: int) -> bytes:
    return _i32(rng.integers(lo, hi + 1, size=n))


def _act(rng: np.random.Generator) -> tuple[int, int]:
    if rng.random() < 0.5:
        return -128, 127
    lo = int(rng.integers(-128, 0))
    return lo, int(rng.integers(lo, 128))


def _out_size(size: int, k: int, stride: int, dil: int, pad: int) -> int:
    return max(1, (size + 2 * pad - dil * (k - 1) - 1) // stride + 1)


def _broadcast(rng: np.random.Generator) -> tuple[list[int], list[int], list[int]]:
    """4-D output dims and element strides of two inputs (0 on broadcast axes)."""
    dims = [int(rng.integers(1, 4)) for _ in range(4)]
    strides = []
    sizes = []
    for _ in range(2):
        bc = [bool(rng.random() < 0.3) for _ in range(4)]
        st, n = [0, 0, 0, 0], 1
        for k in (3, 2, 1, 0):
            if not bc[k]:
                st[k] = n
                n *= dims[k]
        strides.append(st)
        sizes.append(n)
    return dims, strides[0] + strides[1], sizes


# Filter shapes of the group paths' special cases (3x3 taps in locals, (k, 1) columns) and
# their neighbours.
GROUP_FILTERS = ((3, 3), (3, 3), (5, 1), (3, 1), (1, 1), (2, 3), (1, 3))


def make_case(op: str, seed: int, group: bool = False) -> tuple[str, list, int]:
    """A random call of kernel `op`. group (conv/depthwise): channel counts that are multiples
    of 4, mostly depth_multiplier 1, larger images and the filters of GROUP_FILTERS, so the
    4-channel group paths and their interior/border split are what runs."""
    rng = np.random.default_rng(seed)
    ri = lambda lo, hi: int(rng.integers(lo, hi + 1))  # noqa: E731
    amin, amax = _act(rng)
    ioff, ooff = ri(-127, 128), ri(-128, 127)
    if op == "fully_connected":
        b, d, o = ri(1, 3), ri(1, 40), ri(1, 8)
        args = [
            _i8(rng, b * d),
            _i8(rng, o * d),
            _i32(rng.integers(-40000, 40000, o)),
            _mult(rng, o),
            _shift(rng, o, -14, 1),
            bytes(b * o),
            b,
            d,
            o,
            ooff,
            amin,
            amax,
        ]
        return op, args, 5
    if op in ("conv_2d", "depthwise_conv_2d"):
        # up to 9 channels and mostly depth_multiplier 1: the 4-channel group paths run
        nb, ih, iw, ic = ri(1, 2), ri(1, 7), ri(1, 7), ri(1, 9)
        kh, kw = ri(1, 3), ri(1, 3)
        if group:
            ih, iw, ic = ri(3, 11), ri(1, 11), 4 * ri(1, 3)
            kh, kw = GROUP_FILTERS[ri(0, len(GROUP_FILTERS) - 1)]
        sh, sw, dh, dw, ph, pw = ri(1, 2), ri(1, 2), ri(1, 2), ri(1, 2), ri(0, 1), ri(0, 1)
        oh, ow = _out_size(ih, kh, sh, dh, ph), _out_size(iw, kw, sw, dw, pw)
        dm = 1 if rng.random() < (0.85 if group else 0.6) else ri(2, 3)
        oc = ri(1, 6) if op == "conv_2d" else ic * dm
        fsize = oc * kh * kw * ic if op == "conv_2d" else kh * kw * oc
        if rng.random() < 0.35:
            # transparent requantization (multiplier 0.5, shift 1: scale 1.0) and small values:
            # the output is the accumulator itself, so any accumulation error shows
            ioff = ri(-3, 3)
            x = rng.integers(-6, 7, nb * ih * iw * ic).astype(np.int8).tobytes()
            f = rng.integers(-3, 4, fsize).astype(np.int8).tobytes()
            bias, mult, shift = (
                _i32(rng.integers(-20, 21, oc)),
                _i32([1 << 30] * oc),
                _i32([1] * oc),
            )
            amin, amax = -128, 127
        else:
            x, f = _i8(rng, nb * ih * iw * ic), _i8(rng, fsize)
            bias = _i32(rng.integers(-40000, 40000, oc))
            mult, shift = _mult(rng, oc), _shift(rng, oc, -14, 1)
        args = [
            x,
            f,
            bias,
            mult,
            shift,
            bytes(nb * oh * ow * oc),
            nb,
            ih,
            iw,
            ic,
            oh,
            ow,
            oc,
            kh,
            kw,
            sh,
            sw,
            dh,
            dw,
            ph,
            pw,
        ]
        if op == "depthwise_conv_2d":
            args.append(dm)
        return op, args + [ioff, ooff, amin, amax], 5
    if op in ("max_pool_2d", "average_pool_2d"):
        nb, ih, iw, c = ri(1, 2), ri(1, 8), ri(1, 8), ri(1, 5)
        fh, fw, sh, sw, ph, pw = ri(1, 3), ri(1, 3), ri(1, 2), ri(1, 2), ri(0, 1), ri(0, 1)
        oh, ow = _out_size(ih, fh, sh, 1, ph), _out_size(iw, fw, sw, 1, pw)
        args = [
            _i8(rng, nb * ih * iw * c),
            bytes(nb * oh * ow * c),
            nb,
            ih,
            iw,
            c,
            oh,
            ow,
            fh,
            fw,
            sh,
            sw,
            ph,
            pw,
            amin,
            amax,
        ]
        return op, args, 1
    if op == "mean":
        outer, red, inner = ri(1, 3), ri(1, 30), ri(1, 5)
        args = [
            _i8(rng, outer * red * inner),
            bytes(outer * inner),
            outer,
            red,
            inner,
            ri(0, 2),
            ri(-128, 127),
            ooff,
            _mult(rng, 1),
            ri(-10, 0),
        ]
        return op, args, 1
    if op in ("add", "mul"):
        dims, strides, sizes = _broadcast(rng)
        n = int(np.prod(dims))
        head = [_i8(rng, sizes[0]), _i8(rng, sizes[1]), bytes(n)]
        bc = _i32(dims + strides)
        if op == "add":
            # TFLM's left shift 20 and input shifts < 0 take the kernel's two-product input
            # rescale; other shifts (up to 22, an input shift of +1) the general requantization
            ls = 20 if rng.random() < 0.6 else int(rng.choice([8, 14, 15, 22]))
            lo = 0 if ls <= 14 else -3
            args = head + [
                ls,
                ioff,
                _mult(rng, 1),
                ri(lo, 1 if lo == 0 else -1),
                ri(-127, 128),
                _mult(rng, 1),
                ri(-3, -1),
                ooff,
                _mult(rng, 1),
                ri(-24, -16),
                amin,
                amax,
                bc,
            ]
        else:
            args = head + [ioff, ri(-127, 128), ooff, _mult(rng, 1), ri(-14, -4), amin, amax, bc]
        return op, args, 2
    if op == "softmax":
        outer, depth = ri(1, 3), ri(1, 40)
        k = float(rng.uniform(0.005, 0.3))
        cut = ri(0, 255)
        exp = np.minimum(np.round((2**31 - 1) * np.exp(-k * np.arange(256))), 2**31 - 1)
        exp[np.arange(256) > cut] = 0
        exp = exp.astype(np.int64)
        acc = np.array([(int(v) >> 12) + (int(v) & 4095 > 2047) for v in exp])
        args = [_i8(rng, outer * depth), _i32(exp), _i32(acc), bytes(outer * depth), outer, depth]
        return op, args, 3
    if op == "lut":
        n = ri(1, 60)
        return op, [_i8(rng, n), bytes(rng.permutation(256).astype(np.uint8)), bytes(n), n], 2
    if op == "dequantize":
        n = ri(1, 30)
        table = rng.integers(0, 256, 1024, dtype=np.int64).astype(np.uint8).tobytes()
        return op, [_i8(rng, n), table, bytes(4 * n), n], 2
    if op == "quantize_f32":
        n = ri(1, 40)
        scale = float(np.float32(rng.uniform(0.005, 0.2)))
        zp = ri(-128, 127)
        xf = rng.normal(0.0, 3.0, n).astype("<f4")
        xf[: n // 3] = (np.round(xf[: n // 3] / scale) + 0.5) * scale  # near rounding ties
        return op, [xf.tobytes(), bytes(n), n, zp, scale], 1
    if op == "concatenation":
        outer, cs, extra = ri(1, 4), ri(1, 6), ri(0, 6)
        stride = cs + extra
        start = ri(0, extra)
        return op, [_i8(rng, outer * cs), bytes(outer * stride), outer, cs, stride, start], 1
    if op == "pad":
        d = [ri(1, 3) for _ in range(4)]
        bef = [ri(0, 2) for _ in range(4)]
        aft = [ri(0, 2) for _ in range(4)]
        n_out = int(np.prod([d[k] + bef[k] + aft[k] for k in range(4)]))
        return op, [_i8(rng, int(np.prod(d))), bytes(n_out), *d, *bef, *aft, ooff], 1
    raise ValueError(f"make_case: unknown op {op!r}")
