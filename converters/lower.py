"""Per-op lowering: TFLite op -> bundle op record with everything TFLM precomputes in Prepare.

Each function reads the TFLite op, checks dtypes/quantization (ConvertError otherwise), adds the
constant tensors (weights, folded bias, multipliers, shifts, tables) and emits one record in the
layout of docs/bundle-format.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from converters import luts, registry
from converters.errors import ConvertError
from converters.quant import (
    activation_range,
    conv_multipliers,
    fc_per_tensor_multiplier,
    quantize_multiplier,
)
from converters.tflite_reader import TOp, TTensor

if TYPE_CHECKING:
    from converters.compile import Builder


def _int8(b: Builder, op: TOp, idx: int, role: str) -> TTensor:
    tt = b.t(idx)
    if tt.dtype != "INT8":
        raise ConvertError(f"{role} tensor {idx} ({tt.name}) is {tt.dtype}, only int8 is supported")
    if not tt.quantized:
        raise ConvertError(f"{role} tensor {idx} ({tt.name}) has no quantization parameters")
    if role != "filter" and tt.per_channel:
        raise ConvertError(f"{role} tensor {idx} ({tt.name}) is per-channel quantized")
    return tt


def _scale(tt: TTensor) -> float:
    return float(tt.scale[0])


def _zp(tt: TTensor) -> int:
    return int(tt.zero_point[0])


def _act(op: TOp, out: TTensor) -> tuple[int, int]:
    act = op.options.get("FusedActivationFunction", "NONE")
    try:
        return activation_range(act, _scale(out), _zp(out))
    except ValueError as e:
        raise ConvertError(str(e)) from None


def _bias(b: Builder, op: TOp, n: int) -> np.ndarray:
    if len(op.inputs) < 3 or op.inputs[2] < 0:
        return np.zeros(n, np.int64)
    bt = b.t(op.inputs[2])
    if bt.dtype != "INT32" or bt.data is None:
        raise ConvertError(f"bias tensor {op.inputs[2]} must be a constant int32 tensor, "
                           f"got {bt.dtype}")
    return np.asarray(bt.data, np.int64).reshape(-1)


def _check_bias_scale(b: Builder, op: TOp, it: TTensor, ft: TTensor, ot: TTensor) -> None:
    """TFLM refuses (at Prepare) a bias whose scale is off input_scale * filter_scale by more
    than 2 % of the output scale; refuse the same models here."""
    if len(op.inputs) < 3 or op.inputs[2] < 0:
        return
    bt = b.t(op.inputs[2])
    bias_scale = float(bt.scale[0]) if bt.quantized else 0.0
    prod = float(np.float32(_scale(it)) * np.float32(ft.scale[0]))
    if abs(prod - bias_scale) / float(np.float32(_scale(ot))) > 0.02:
        raise ConvertError(f"bias tensor {op.inputs[2]} scale {bias_scale:g} does not match "
                           f"input_scale * filter_scale = {prod:g} (TFLM refuses this model)")


def _fold(bias: np.ndarray, input_zp: int, filt_sums: np.ndarray, what: str) -> np.ndarray:
    folded = bias - int(input_zp) * filt_sums.astype(np.int64)
    if folded.min(initial=0) < -(2**31) or folded.max(initial=0) >= 2**31:
        raise ConvertError(f"{what}: folded bias overflows int32")
    return folded.astype(np.int32)


def _filter(b: Builder, op: TOp, channel_dim: int) -> tuple[TTensor, np.ndarray]:
    ft = _int8(b, op, op.inputs[1], "filter")
    if ft.data is None:
        raise ConvertError(f"filter tensor {op.inputs[1]} is not constant")
    if ft.per_channel:
        n = ft.shape[channel_dim]
        if ft.scale.size != n or ft.quantized_dimension != channel_dim % len(ft.shape):
            raise ConvertError(
                f"filter tensor {op.inputs[1]}: per-channel quantization over dim "
                f"{ft.quantized_dimension} with {ft.scale.size} scales, expected dim "
                f"{channel_dim % len(ft.shape)} with {n}")
    if np.any(ft.zero_point != 0):
        raise ConvertError(f"filter tensor {op.inputs[1]} has a non-zero zero point "
                           "(TFLM int8 weights are symmetric)")
    return ft, np.asarray(ft.data, np.int8)


def _report(op: TOp, macs: int, params: int, out: TTensor, **extra) -> dict:
    return {"index": op.index, "op": op.name, "macs": int(macs), "params": int(params),
            "output_shape": list(out.shape), **extra}


def fully_connected(b: Builder, op: TOp) -> None:
    it = _int8(b, op, op.inputs[0], "input")
    ft, w = _filter(b, op, 0)
    ot = _int8(b, op, op.outputs[0], "output")
    if w.ndim != 2:
        raise ConvertError(f"weights must be 2-D, got shape {w.shape}")
    out_depth, depth = w.shape
    n_in = int(np.prod(it.shape))
    if n_in % depth:
        raise ConvertError(f"input size {n_in} is not a multiple of accum depth {depth}")
    batches = n_in // depth
    bias = _bias(b, op, out_depth)
    _check_bias_scale(b, op, it, ft, ot)
    if ft.per_channel:
        mult, shift = conv_multipliers(_scale(it), ft.scale, _scale(ot), out_depth)
    else:
        m, s = fc_per_tensor_multiplier(_scale(it), _scale(ft), _scale(ot))
        mult = np.full(out_depth, m, np.int32)
        shift = np.full(out_depth, s, np.int32)
    folded = _fold(bias, _zp(it), w.astype(np.int64).sum(axis=1), "FULLY_CONNECTED")
    amin, amax = _act(op, ot)
    ids = [b.act(op.inputs[0]), b.const(w, ft.name), b.const(folded, "bias"),
           b.const(mult, "mult"), b.const(shift, "shift"), b.act(op.outputs[0])]
    b.emit("FULLY_CONNECTED", ids, [batches, depth, out_depth, _zp(ot), amin, amax],
           _report(op, batches * depth * out_depth, w.size + out_depth, ot))


def _same_padding(stride: int, dil: int, in_size: int, k: int, out_size: int) -> int:
    eff = (k - 1) * dil + 1
    total = max((out_size - 1) * stride + eff - in_size, 0)
    return total // 2


def _out_size(padding: str, in_size: int, k: int, stride: int, dil: int) -> int:
    eff = (k - 1) * dil + 1
    if padding == "SAME":
        return (in_size + stride - 1) // stride
    return (in_size + stride - eff) // stride


def _geometry(op: TOp, in_shape, k_h: int, k_w: int, out_shape) -> dict:
    o = op.options
    sh, sw = int(o.get("StrideH", 1)), int(o.get("StrideW", 1))
    dh, dw = int(o.get("DilationHFactor", 1)), int(o.get("DilationWFactor", 1))
    pad = o.get("Padding", "VALID")
    if pad not in ("SAME", "VALID"):
        raise ConvertError(f"padding {pad} unsupported")
    _, ih, iw, _ = in_shape
    oh, ow = _out_size(pad, ih, k_h, sh, dh), _out_size(pad, iw, k_w, sw, dw)
    if (oh, ow) != tuple(out_shape[1:3]):
        raise ConvertError(f"output shape {tuple(out_shape)} does not match {pad} geometry "
                           f"({oh}, {ow})")
    pt = _same_padding(sh, dh, ih, k_h, oh) if pad == "SAME" else 0
    pl = _same_padding(sw, dw, iw, k_w, ow) if pad == "SAME" else 0
    return {"sh": sh, "sw": sw, "dh": dh, "dw": dw, "pt": pt, "pl": pl, "oh": oh, "ow": ow}


def _need4d(tt: TTensor, what: str) -> None:
    if len(tt.shape) != 4:
        raise ConvertError(f"{what} tensor {tt.index} must be 4-D NHWC, got {tt.shape}")


def conv_2d(b: Builder, op: TOp) -> None:
    it = _int8(b, op, op.inputs[0], "input")
    ft, w = _filter(b, op, 0)
    ot = _int8(b, op, op.outputs[0], "output")
    _need4d(it, "input")
    _need4d(ot, "output")
    oc, kh, kw, ic = w.shape
    n, ih, iw, c = it.shape
    if ic != c:
        raise ConvertError(f"grouped convolution (filter in_c {ic} != input channels {c}) "
                           "unsupported")
    g = _geometry(op, it.shape, kh, kw, ot.shape)
    bias = _bias(b, op, oc)
    _check_bias_scale(b, op, it, ft, ot)
    mult, shift = conv_multipliers(_scale(it), ft.scale, _scale(ot), oc)
    folded = _fold(bias, _zp(it), w.astype(np.int64).reshape(oc, -1).sum(axis=1), "CONV_2D")
    amin, amax = _act(op, ot)
    ids = [b.act(op.inputs[0]), b.const(w, ft.name), b.const(folded, "bias"),
           b.const(mult, "mult"), b.const(shift, "shift"), b.act(op.outputs[0])]
    params = [n, ih, iw, c, g["oh"], g["ow"], oc, kh, kw, g["sh"], g["sw"], g["dh"], g["dw"],
              g["pt"], g["pl"], _zp(it), _zp(ot), amin, amax]
    macs = n * g["oh"] * g["ow"] * oc * kh * kw * ic
    b.emit("CONV_2D", ids, params, _report(op, macs, w.size + oc, ot))


def depthwise_conv_2d(b: Builder, op: TOp) -> None:
    it = _int8(b, op, op.inputs[0], "input")
    ft, w = _filter(b, op, -1)
    ot = _int8(b, op, op.outputs[0], "output")
    _need4d(it, "input")
    _need4d(ot, "output")
    if w.ndim != 4 or w.shape[0] != 1:
        raise ConvertError(f"depthwise filter must be [1, kh, kw, oc], got {w.shape}")
    _, kh, kw, oc = w.shape
    n, ih, iw, c = it.shape
    if oc % c:
        raise ConvertError(f"output channels {oc} not a multiple of input channels {c}")
    dm = oc // c
    g = _geometry(op, it.shape, kh, kw, ot.shape)
    bias = _bias(b, op, oc)
    _check_bias_scale(b, op, it, ft, ot)
    mult, shift = conv_multipliers(_scale(it), ft.scale, _scale(ot), oc)
    w3 = w.reshape(kh, kw, oc)
    folded = _fold(bias, _zp(it), w3.astype(np.int64).sum(axis=(0, 1)), "DEPTHWISE_CONV_2D")
    amin, amax = _act(op, ot)
    ids = [b.act(op.inputs[0]), b.const(w3, ft.name), b.const(folded, "bias"),
           b.const(mult, "mult"), b.const(shift, "shift"), b.act(op.outputs[0])]
    params = [n, ih, iw, c, g["oh"], g["ow"], oc, kh, kw, g["sh"], g["sw"], g["dh"], g["dw"],
              g["pt"], g["pl"], dm, _zp(it), _zp(ot), amin, amax]
    macs = n * g["oh"] * g["ow"] * oc * kh * kw
    b.emit("DEPTHWISE_CONV_2D", ids, params, _report(op, macs, w.size + oc, ot))


def _pool(b: Builder, op: TOp, opname: str) -> None:
    it = _int8(b, op, op.inputs[0], "input")
    ot = _int8(b, op, op.outputs[0], "output")
    _need4d(it, "input")
    if _zp(it) != _zp(ot) or _scale(it) != _scale(ot):
        raise ConvertError("pooling with different input/output quantization unsupported")
    o = op.options
    fh, fw = int(o.get("FilterHeight", 1)), int(o.get("FilterWidth", 1))
    g = _geometry(op, it.shape, fh, fw, ot.shape)
    n, ih, iw, c = it.shape
    amin, amax = _act(op, ot)
    params = [n, ih, iw, c, g["oh"], g["ow"], fh, fw, g["sh"], g["sw"], g["pt"], g["pl"],
              amin, amax]
    b.emit(opname, [b.act(op.inputs[0]), b.act(op.outputs[0])], params,
           _report(op, n * g["oh"] * g["ow"] * c * fh * fw, 0, ot))


def max_pool_2d(b: Builder, op: TOp) -> None:
    _pool(b, op, "MAX_POOL_2D")


def average_pool_2d(b: Builder, op: TOp) -> None:
    _pool(b, op, "AVERAGE_POOL_2D")


def _mean_groups(shape, axes: set[int]) -> list[tuple[int, bool]]:
    """(size, reduced) runs of the input shape: size-1 dims dropped (they do not affect the
    memory order), neighbours of the same kind merged."""
    groups: list[tuple[int, bool]] = []
    for k, d in enumerate(shape):
        if d == 1:
            continue
        red = k in axes
        if groups and groups[-1][1] == red:
            groups[-1] = (groups[-1][0] * int(d), red)
        else:
            groups.append((int(d), red))
    return groups


def mean(b: Builder, op: TOp) -> None:
    it = _int8(b, op, op.inputs[0], "input")
    ot = _int8(b, op, op.outputs[0], "output")
    at = b.t(op.inputs[1])
    if at.data is None:
        raise ConvertError("MEAN axis must be constant")
    nd = len(it.shape)
    axes = {int(a) % nd for a in np.asarray(at.data).reshape(-1)}
    groups = _mean_groups(it.shape, axes)
    red = int(np.prod([d for d, r in groups if r], dtype=np.int64))
    m, s = quantize_multiplier(float(np.float32(_scale(it))) / float(np.float32(_scale(ot))))
    mode, mult, shift = luts.mean_mode(red, m, s)
    if sum(r for _, r in groups) > 1:
        _mean_strided(b, op, it, ot, groups, red, mult, shift)
        return
    sizes = [d for d, _ in groups]
    first = next((k for k, (_, r) in enumerate(groups) if r), len(groups))
    outer = int(np.prod(sizes[:first], dtype=np.int64))
    inner = int(np.prod(sizes[first + 1 :], dtype=np.int64))
    params = [outer, red, inner, mode, _zp(it), _zp(ot), mult, shift]
    b.emit("MEAN", [b.act(op.inputs[0]), b.act(op.outputs[0])], params,
           _report(op, outer * red * inner, 0, ot, mode=mode))


def _mean_strided(b: Builder, op: TOp, it: TTensor, ot: TTensor, groups: list[tuple[int, bool]],
                  n: int, mult: int, shift: int) -> None:
    """MEAN over non-adjacent axes as a VALID convolution with an all-ones filter, read in place.

    TFLM's QuantizedMeanOrSum computes clamp(MBQM(sum - zp_in * n, mult, shift) + zp_out), which
    is exactly a CONV_2D / DEPTHWISE_CONV_2D whose filter is all ones, whose folded bias is
    -zp_in * n and whose per-channel multiplier/shift are MEAN's. With size-1 axes dropped and
    neighbouring axes merged, a rank <= 4 input reduced over non-adjacent axes is one of
    R K R, K R K R (CONV_2D: reduce over full height and all channels, keep batch and width) or
    R K R K (DEPTHWISE_CONV_2D: full height, width windows of c with stride c, keep channels).
    """
    pattern = "".join("R" if r else "K" for _, r in groups)
    sizes = [d for d, _ in groups]
    x, y = b.act(op.inputs[0]), b.act(op.outputs[0])
    if pattern in ("RKR", "KRKR"):
        nb, a, w, c = ([1] + sizes) if pattern == "RKR" else sizes
        ids = [x, b.const(np.ones((1, a, 1, c), np.int8), "mean_ones"),
               b.const(np.full(1, -_zp(it) * n, np.int32), "mean_bias"),
               b.const(np.full(1, mult, np.int32), "mult"),
               b.const(np.full(1, shift, np.int32), "shift"), y]
        params = [nb, a, w, c, 1, w, 1, a, 1, 1, 1, 1, 1, 0, 0, _zp(it), _zp(ot), -128, 127]
        b.emit("CONV_2D", ids, params,
               _report(op, nb * a * w * c, 0, ot, mode=luts.MEAN_QUANTIZED, lowered="CONV_2D"))
    elif pattern == "RKRK":
        a, w, k, c = sizes
        ids = [x, b.const(np.ones((a, k, c), np.int8), "mean_ones"),
               b.const(np.full(c, -_zp(it) * n, np.int32), "mean_bias"),
               b.const(np.full(c, mult, np.int32), "mult"),
               b.const(np.full(c, shift, np.int32), "shift"), y]
        params = [1, a, w * k, c, 1, w, c, a, k, 1, k, 1, 1, 0, 0, 1, _zp(it), _zp(ot),
                  -128, 127]
        b.emit("DEPTHWISE_CONV_2D", ids, params,
               _report(op, a * w * k * c, 0, ot, mode=luts.MEAN_QUANTIZED,
                       lowered="DEPTHWISE_CONV_2D"))
    else:  # unreachable for rank <= 4 (validated earlier); a clear error if that ever changes
        raise ConvertError(f"MEAN of shape {it.shape}: reduction pattern {pattern} "
                           "(R reduced, K kept axes) unsupported")


def softmax(b: Builder, op: TOp) -> None:
    it = _int8(b, op, op.inputs[0], "input")
    ot = _int8(b, op, op.outputs[0], "output")
    if _zp(ot) != -128 or np.float32(_scale(ot)) != np.float32(1 / 256):
        raise ConvertError("int8 SOFTMAX output must have zero_point -128 and scale 1/256 "
                           f"(TFLM requirement), got {_zp(ot)} and {_scale(ot)}")
    beta = float(op.options.get("Beta", 1.0))
    exp_lut, acc_lut = luts.softmax_luts(_scale(it), beta)
    depth = int(it.shape[-1])
    # TFLM sums a row's exponentials (Q12.19, the row maximum's is 2**19) in int32: from 4096
    # classes up the sum can wrap there, and it wraps on a 32-bit board but not on a 64-bit
    # one. Refused, so that every SOFTMAX we accept is exact on any word size.
    max_depth = ((1 << 31) - 1) // max(int(acc_lut.max()), 1)
    if depth > max_depth:
        raise ConvertError(f"SOFTMAX over {depth} values per row: at most {max_depth} are "
                           "supported (TFLM's int32 sum of exponentials can overflow beyond, "
                           "and the result would differ between 32- and 64-bit boards)")
    n = int(np.prod(it.shape))
    ids = [b.act(op.inputs[0]), b.const(exp_lut, "exp_lut"), b.const(acc_lut, "exp_acc_lut"),
           b.act(op.outputs[0])]
    b.emit("SOFTMAX", ids, [n // depth, depth], _report(op, n, 0, ot))


def _lut_op(b: Builder, op: TOp, table: np.ndarray) -> None:
    ot = b.t(op.outputs[0])
    n = int(np.prod(ot.shape))
    ids = [b.act(op.inputs[0]), b.const(table.astype(np.int8), f"{op.name.lower()}_lut"),
           b.act(op.outputs[0])]
    b.emit("LUT", ids, [n], _report(op, n, 0, ot))


def elementwise(b: Builder, op: TOp) -> None:
    it = _int8(b, op, op.inputs[0], "input")
    ot = _int8(b, op, op.outputs[0], "output")
    table = luts.elementwise_table(op.name, it, ot, op.options)
    _lut_op(b, op, table)


def quantize(b: Builder, op: TOp) -> None:
    it, ot = b.t(op.inputs[0]), b.t(op.outputs[0])
    if it.dtype == "INT8" and ot.dtype == "INT8":
        elementwise(b, op)
        return
    if it.dtype == "FLOAT32" and ot.dtype == "INT8":
        _int8(b, op, op.outputs[0], "output")
        n = int(np.prod(ot.shape))
        bits = int(np.array([_scale(ot)], np.float32).view(np.int32)[0])
        b.emit("QUANTIZE_F32", [b.act(op.inputs[0]), b.act(op.outputs[0])],
               [n, _zp(ot), bits], _report(op, n, 0, ot))
        return
    raise ConvertError(f"QUANTIZE {it.dtype} -> {ot.dtype} unsupported (int8->int8 and "
                       "float32->int8 are)")


def dequantize(b: Builder, op: TOp) -> None:
    it, ot = b.t(op.inputs[0]), b.t(op.outputs[0])
    if it.dtype != "INT8" or ot.dtype != "FLOAT32":
        raise ConvertError(f"DEQUANTIZE {it.dtype} -> {ot.dtype} unsupported (int8->float32 is)")
    _int8(b, op, op.inputs[0], "input")
    table = luts.dequantize_table(_scale(it), _zp(it))
    n = int(np.prod(ot.shape))
    ids = [b.act(op.inputs[0]), b.const(table, "dequant_lut"), b.act(op.outputs[0])]
    b.emit("DEQUANTIZE", ids, [n], _report(op, n, 0, ot))


def _broadcast(b: Builder, op: TOp) -> list[int]:
    """[d0..d3, s1_0..s1_3, s2_0..s2_3] for a 4-D broadcast of inputs 0 and 1."""
    out = list(b.t(op.outputs[0]).shape)
    if len(out) > 4:
        raise ConvertError(f"broadcast rank {len(out)} > 4 unsupported")
    d = [1] * (4 - len(out)) + out
    res = list(d)
    for idx in op.inputs[:2]:
        s = list(b.t(idx).shape)
        s = [1] * (4 - len(s)) + s
        strides = []
        acc = 1
        for k in range(3, -1, -1):
            if s[k] not in (1, d[k]):
                raise ConvertError(f"input {idx} shape {b.t(idx).shape} does not broadcast to "
                                   f"{tuple(out)}")
            strides.append(0 if s[k] == 1 and d[k] != 1 else acc)
            acc *= s[k]
        res += strides[::-1]
    return res


def add(b: Builder, op: TOp) -> None:
    _add_sub(b, op, "ADD")


def sub(b: Builder, op: TOp) -> None:
    """TFLM computes SUB's multipliers, shifts and offsets exactly as ADD's (sub_common.cc)."""
    _add_sub(b, op, "SUB")


def _add_sub(b: Builder, op: TOp, name: str) -> None:
    t1 = _int8(b, op, op.inputs[0], "input1")
    t2 = _int8(b, op, op.inputs[1], "input2")
    ot = _int8(b, op, op.outputs[0], "output")
    left_shift = 20
    s1, s2, so = (np.float32(_scale(t)) for t in (t1, t2, ot))
    twice_max = 2.0 * float(max(s1, s2))
    m1, sh1 = quantize_multiplier(float(s1) / twice_max)
    m2, sh2 = quantize_multiplier(float(s2) / twice_max)
    mo, sho = quantize_multiplier(twice_max / ((1 << left_shift) * float(so)))
    amin, amax = _act(op, ot)
    params = [left_shift, -_zp(t1), m1, sh1, -_zp(t2), m2, sh2, _zp(ot), mo, sho, amin, amax]
    params += _broadcast(b, op)
    n = int(np.prod(ot.shape))
    b.emit(name, [b.act(op.inputs[0]), b.act(op.inputs[1]), b.act(op.outputs[0])], params,
           _report(op, n, 0, ot))


def mul(b: Builder, op: TOp) -> None:
    t1 = _int8(b, op, op.inputs[0], "input1")
    t2 = _int8(b, op, op.inputs[1], "input2")
    ot = _int8(b, op, op.outputs[0], "output")
    real = float(np.float32(_scale(t1)) * np.float32(_scale(t2))) / float(np.float32(_scale(ot)))
    m, s = quantize_multiplier(real)
    amin, amax = _act(op, ot)
    params = [-_zp(t1), -_zp(t2), _zp(ot), m, s, amin, amax] + _broadcast(b, op)
    n = int(np.prod(ot.shape))
    b.emit("MUL", [b.act(op.inputs[0]), b.act(op.inputs[1]), b.act(op.outputs[0])], params,
           _report(op, n, 0, ot))


def concatenation(b: Builder, op: TOp) -> None:
    ot = _int8(b, op, op.outputs[0], "output")
    if op.options.get("FusedActivationFunction", "NONE") != "NONE":
        raise ConvertError("CONCATENATION with a fused activation unsupported")
    nd = len(ot.shape)
    axis = int(op.options.get("Axis", 0)) % nd
    outer = int(np.prod(ot.shape[:axis], dtype=np.int64))
    copies = []
    for idx in op.inputs:
        t = _int8(b, op, idx, "input")
        if _zp(t) != _zp(ot) or np.float32(_scale(t)) != np.float32(_scale(ot)):
            raise ConvertError(f"input {idx} quantization differs from the output's "
                               "(TFLM int8 CONCATENATION requires equal scale/zero point)")
        copies.append(int(np.prod(t.shape[axis:], dtype=np.int64)))
    ids = [b.act(i) for i in op.inputs] + [b.act(op.outputs[0])]
    b.emit("CONCATENATION", ids, [len(op.inputs), outer, *copies],
           _report(op, 0, 0, ot))


def pad(b: Builder, op: TOp) -> None:
    it = _int8(b, op, op.inputs[0], "input")
    ot = _int8(b, op, op.outputs[0], "output")
    pt = b.t(op.inputs[1])
    if pt.data is None:
        raise ConvertError("PAD paddings must be constant")
    pads = np.asarray(pt.data, np.int64).reshape(-1, 2)
    nd = len(it.shape)
    if nd > 4:
        raise ConvertError(f"PAD of a rank-{nd} tensor unsupported")
    dims = [1] * (4 - nd) + list(it.shape)
    before = [0] * (4 - nd) + [int(p) for p in pads[:, 0]]
    after = [0] * (4 - nd) + [int(p) for p in pads[:, 1]]
    value = _zp(ot)
    if op.name == "PADV2" and len(op.inputs) > 2 and op.inputs[2] >= 0:
        vt = b.t(op.inputs[2])
        if vt.data is None:
            raise ConvertError("PADV2 constant value must be constant")
        value = int(np.asarray(vt.data).reshape(-1)[0])
    if _zp(it) != _zp(ot) or np.float32(_scale(it)) != np.float32(_scale(ot)):
        raise ConvertError("PAD with different input/output quantization unsupported")
    b.emit("PAD", [b.act(op.inputs[0]), b.act(op.outputs[0])],
           dims + before + after + [value], _report(op, 0, 0, ot))


# TFLite builtin -> its lowering function, as the op registry names them
LOWER = {name: globals()[registry.lowering(name)]
         for name in registry.SUPPORTED_OPS if name not in registry.ALIAS_OPS}
