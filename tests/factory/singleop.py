"""Single-op int8 .tflite models built directly as flatbuffers (no TensorFlow), for fast sweeps.

Every builder takes plain parameters plus a `seed` (weights, constants and quantization are drawn
from it) and returns the model bytes. Quantization is realistic: activation scales are chosen from
the expected value range so outputs are spread over int8 instead of all clipped, weights are
symmetric (zero point 0), biases int32 with scale input_scale * filter_scale, and LOGISTIC,
SOFTMAX, TANH use the fixed output quantization TFLM requires.

The flatbuffers are written by factory.tflite_builder.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from factory.quantgen import (
    _U,
    _acc_out_quant,
    _act_in_quant,
    _bias,
    _centered_quant,
    _conv_out,
    _range_quant,
    _rng,
    _weight_scales,
    _weights,
    input_quant,
)
from factory.tflite_builder import ACTIVATIONS, PADDINGS, ModelBuilder, Quant

__all__ = ["ACTIVATIONS", "BUILDERS", "ModelBuilder", "Quant", "build", "input_quant"]


# ---------------------------------------------------------------- builders


def fully_connected(
    batch: int = 1,
    in_features: int = 16,
    units: int = 8,
    per_channel: bool = False,
    activation: str = "NONE",
    use_bias: bool = True,
    mid: Sequence[int] = (),
    keep_num_dims: bool = False,
    out_scale_log2: float = 0.0,
    seed: int = 0,
) -> bytes:
    """y = x W^T + b. With `mid` dims the input is [1, *mid, in_features] (TFLM folds all but
    the last dim into the batch); keep_num_dims keeps them in the output shape."""
    rng = _rng(seed)
    mb = ModelBuilder()
    in_q = input_quant(rng)
    ws = _weight_scales(rng, units, per_channel)
    out_q = _acc_out_quant(rng, in_q, ws, in_features, activation, out_scale_log2)
    mid = [int(m) for m in mid]
    in_shape = [1, *mid, in_features] if mid else [batch, in_features]
    if not mid:
        out_shape = [batch, units]
    elif keep_num_dims:
        out_shape = [1, *mid, units]
    else:
        out_shape = [math.prod(mid), units]
    x = mb.tensor(in_shape, quant=in_q, name="input")
    w = mb.tensor(
        [units, in_features], quant=Quant(ws, 0, 0), data=_weights(rng, (units, in_features))
    )
    ins = [x, w]
    if use_bias:
        bs = (np.float32(in_q.scale) * ws).astype(np.float32)
        ins.append(mb.tensor([units], "int32", Quant(bs, 0, 0), _bias(rng, units, in_features)))
    else:
        ins.append(-1)
    y = mb.tensor(out_shape, quant=out_q, name="output")
    opt = fb.FullyConnectedOptionsT()
    opt.fusedActivationFunction = ACTIVATIONS[activation]
    opt.keepNumDims = bool(keep_num_dims and mid)
    mb.op("FULLY_CONNECTED", ins, [y], opt)
    return mb.build([x], [y])


def conv_2d(
    h: int = 8,
    w: int = 8,
    cin: int = 3,
    cout: int = 4,
    kh: int = 3,
    kw: int = 3,
    stride: tuple[int, int] = (1, 1),
    dilation: tuple[int, int] = (1, 1),
    padding: str = "SAME",
    activation: str = "NONE",
    per_channel: bool = True,
    out_scale_log2: float = 0.0,
    seed: int = 0,
) -> bytes:
    rng = _rng(seed)
    oh = _conv_out(h, kh, stride[0], dilation[0], padding)
    ow = _conv_out(w, kw, stride[1], dilation[1], padding)
    if oh < 1 or ow < 1:
        raise ValueError(f"conv_2d: empty output for input {h}x{w}, kernel {kh}x{kw}")
    mb = ModelBuilder()
    in_q = input_quant(rng)
    ws = _weight_scales(rng, cout, per_channel)
    k = kh * kw * cin
    out_q = _acc_out_quant(rng, in_q, ws, k, activation, out_scale_log2)
    x = mb.tensor([1, h, w, cin], quant=in_q, name="input")
    wt = mb.tensor(
        [cout, kh, kw, cin], quant=Quant(ws, 0, 0), data=_weights(rng, (cout, kh, kw, cin))
    )
    bs = (float(in_q.scale) * ws.astype(np.float64)).astype(np.float32)
    b = mb.tensor([cout], "int32", Quant(bs, 0, 0), _bias(rng, cout, k))
    y = mb.tensor([1, oh, ow, cout], quant=out_q, name="output")
    opt = fb.Conv2DOptionsT()
    opt.padding = PADDINGS[padding]
    opt.strideH, opt.strideW = stride
    opt.dilationHFactor, opt.dilationWFactor = dilation
    opt.fusedActivationFunction = ACTIVATIONS[activation]
    mb.op("CONV_2D", [x, wt, b], [y], opt)
    return mb.build([x], [y])


def depthwise_conv_2d(
    h: int = 8,
    w: int = 8,
    cin: int = 3,
    depth_multiplier: int = 1,
    kh: int = 3,
    kw: int = 3,
    stride: tuple[int, int] = (1, 1),
    dilation: tuple[int, int] = (1, 1),
    padding: str = "SAME",
    activation: str = "NONE",
    per_channel: bool = True,
    out_scale_log2: float = 0.0,
    seed: int = 0,
) -> bytes:
    rng = _rng(seed)
    oh = _conv_out(h, kh, stride[0], dilation[0], padding)
    ow = _conv_out(w, kw, stride[1], dilation[1], padding)
    if oh < 1 or ow < 1:
        raise ValueError(f"depthwise_conv_2d: empty output for input {h}x{w}, kernel {kh}x{kw}")
    cout = cin * depth_multiplier
    mb = ModelBuilder()
    in_q = input_quant(rng)
    ws = _weight_scales(rng, cout, per_channel)
    out_q = _acc_out_quant(rng, in_q, ws, kh * kw, activation, out_scale_log2)
    x = mb.tensor([1, h, w, cin], quant=in_q, name="input")
    wt = mb.tensor([1, kh, kw, cout], quant=Quant(ws, 0, 3), data=_weights(rng, (1, kh, kw, cout)))
    bs = (float(in_q.scale) * ws.astype(np.float64)).astype(np.float32)
    b = mb.tensor([cout], "int32", Quant(bs, 0, 0), _bias(rng, cout, kh * kw))
    y = mb.tensor([1, oh, ow, cout], quant=out_q, name="output")
    opt = fb.DepthwiseConv2DOptionsT()
    opt.padding = PADDINGS[padding]
    opt.strideH, opt.strideW = stride
    opt.dilationHFactor, opt.dilationWFactor = dilation
    opt.depthMultiplier = depth_multiplier
    opt.fusedActivationFunction = ACTIVATIONS[activation]
    mb.op("DEPTHWISE_CONV_2D", [x, wt, b], [y], opt)
    return mb.build([x], [y])


def _pool(
    op: str,
    h: int,
    w: int,
    c: int,
    fh: int,
    fw: int,
    stride: tuple[int, int],
    padding: str,
    activation: str,
    seed: int,
) -> bytes:
    rng = _rng(seed)
    oh = _conv_out(h, fh, stride[0], 1, padding)
    ow = _conv_out(w, fw, stride[1], 1, padding)
    if oh < 1 or ow < 1:
        raise ValueError(f"{op}: empty output for input {h}x{w}, filter {fh}x{fw}")
    mb = ModelBuilder()
    q = input_quant(rng)  # TFLM int8 pooling keeps the input quantization
    x = mb.tensor([1, h, w, c], quant=q, name="input")
    y = mb.tensor([1, oh, ow, c], quant=q, name="output")
    opt = fb.Pool2DOptionsT()
    opt.padding = PADDINGS[padding]
    opt.strideH, opt.strideW = stride
    opt.filterHeight, opt.filterWidth = fh, fw
    opt.fusedActivationFunction = ACTIVATIONS[activation]
    mb.op(op, [x], [y], opt)
    return mb.build([x], [y])


def max_pool_2d(
    h: int = 8, w: int = 8, c: int = 3, fh: int = 2, fw: int = 2,
    stride: tuple[int, int] = (2, 2), padding: str = "VALID", activation: str = "NONE",
    seed: int = 0,
) -> bytes:  # fmt: skip
    return _pool("MAX_POOL_2D", h, w, c, fh, fw, stride, padding, activation, seed)


def average_pool_2d(
    h: int = 8, w: int = 8, c: int = 3, fh: int = 2, fw: int = 2,
    stride: tuple[int, int] = (2, 2), padding: str = "VALID", activation: str = "NONE",
    seed: int = 0,
) -> bytes:  # fmt: skip
    return _pool("AVERAGE_POOL_2D", h, w, c, fh, fw, stride, padding, activation, seed)


def mean(
    shape: Sequence[int] = (1, 4, 4, 3),
    axes: Sequence[int] = (1, 2),
    keep_dims: bool = True,
    same_quant: bool = False,
    out_scale_log2: float = 0.0,
    seed: int = 0,
) -> bytes:
    rng = _rng(seed)
    rank = len(shape)
    norm = sorted({a % rank for a in axes})
    if keep_dims:
        out_shape = [1 if i in norm else s for i, s in enumerate(shape)]
    else:
        out_shape = [s for i, s in enumerate(shape) if i not in norm]
    mb = ModelBuilder()
    in_q = input_quant(rng)
    n = math.prod(shape[i] for i in norm)  # a mean of n values spreads 1/sqrt(n) as wide
    centre = -float(in_q.scale) * int(in_q.zero_point)
    out_q = (
        in_q
        if same_quant
        else _centered_quant(rng, centre, in_q.scale * _U / math.sqrt(n), out_scale_log2)
    )
    x = mb.tensor(shape, quant=in_q, name="input")
    ax = mb.const_i32(list(axes))
    y = mb.tensor(out_shape, quant=out_q, name="output")
    opt = fb.ReducerOptionsT()
    opt.keepDims = keep_dims
    mb.op("MEAN", [x, ax], [y], opt)
    return mb.build([x], [y])


def binary(
    op: str,
    shape: Sequence[int] = (1, 4, 4, 3),
    other_shape: Sequence[int] | None = None,
    activation: str = "NONE",
    const_first: bool = False,
    operand: str = "const",
    out_scale_log2: float = 0.0,
    seed: int = 0,
) -> bytes:
    """x op constant for op ADD, SUB or MUL (constant op x with const_first; x op x with
    operand="self"), the constant broadcast to x's shape or beyond, as numpy broadcasting."""
    other_shape = other_shape or shape
    rng = _rng(seed)
    mb = ModelBuilder()
    q1, q2 = input_quant(rng), input_quant(rng)
    if operand == "self":  # x op x: both operands read the same arena tensor
        q2, other_shape = q1, shape
    out_shape = list(np.broadcast_shapes(tuple(shape), tuple(other_shape)))
    s1, z1, s2, z2 = float(q1.scale), int(q1.zero_point), float(q2.scale), int(q2.zero_point)
    if op in ("ADD", "SUB"):
        sign = 1 if op == "ADD" else -1
        centre, std = -s1 * z1 - sign * s2 * z2, math.hypot(s1, s2) * _U
    else:
        centre = s1 * s2 * z1 * z2
        std = s1 * s2 * math.sqrt((_U**2 + z1**2) * (_U**2 + z2**2) - (z1 * z2) ** 2)
    if operand == "self" and op == "MUL":
        centre, std = s1 * s1 * (_U**2 + z1**2), s1 * s1 * _U * (_U + 2 * abs(z1))
    elif operand == "self" and op == "SUB":  # x - x: exactly 0
        centre, std = 0.0, 2 * s1 * _U
    elif operand == "self":
        centre, std = -2 * s1 * z1, 2 * s1 * _U
    out_q = _centered_quant(rng, centre, std, out_scale_log2)
    x = mb.tensor(shape, quant=q1, name="input")
    if operand == "self":
        c = x
    else:
        c = mb.tensor(other_shape, quant=q2, data=_weights(rng, other_shape))
    y = mb.tensor(out_shape, quant=out_q, name="output")
    opt = {"ADD": fb.AddOptionsT, "SUB": fb.SubOptionsT, "MUL": fb.MulOptionsT}[op]()
    opt.fusedActivationFunction = ACTIVATIONS[activation]
    mb.op(op, [c, x] if const_first else [x, c], [y], opt)
    return mb.build([x], [y])


def _unary(
    op: str,
    shape: Sequence[int],
    in_q: Quant,
    out_q: Quant,
    options: object | None = None,
    in_dtype: str = "int8",
    out_dtype: str = "int8",
) -> bytes:
    mb = ModelBuilder()
    x = mb.tensor(shape, in_dtype, quant=in_q, name="input")
    y = mb.tensor(shape, out_dtype, quant=out_q, name="output")
    mb.op(op, [x], [y], options)
    return mb.build([x], [y])


def softmax(shape: Sequence[int] = (1, 10), beta: float = 1.0, seed: int = 0) -> bytes:
    rng = _rng(seed)
    opt = fb.SoftmaxOptionsT()
    opt.beta = float(beta)
    return _unary("SOFTMAX", shape, _act_in_quant(rng), Quant(1 / 256, -128), opt)


def logistic(shape: Sequence[int] = (1, 16), seed: int = 0) -> bytes:
    rng = _rng(seed)
    return _unary("LOGISTIC", shape, _act_in_quant(rng), Quant(1 / 256, -128))


def tanh(shape: Sequence[int] = (1, 16), seed: int = 0) -> bytes:
    rng = _rng(seed)
    return _unary("TANH", shape, _act_in_quant(rng), Quant(1 / 128, 0))


def relu(shape: Sequence[int] = (1, 16), same_quant: bool = False, seed: int = 0) -> bytes:
    rng = _rng(seed)
    in_q = _act_in_quant(rng)
    hi = float(in_q.scale) * (127 - int(in_q.zero_point))
    out_q = in_q if same_quant else _range_quant(rng, 0.0, max(hi, 1e-3) * rng.uniform(0.5, 1.2))
    return _unary("RELU", shape, in_q, out_q)


def relu6(shape: Sequence[int] = (1, 16), same_quant: bool = False, seed: int = 0) -> bytes:
    rng = _rng(seed)
    in_q = _act_in_quant(rng)
    out_q = in_q if same_quant else _range_quant(rng, 0.0, 6.0)
    return _unary("RELU6", shape, in_q, out_q)


def leaky_relu(shape: Sequence[int] = (1, 16), alpha: float = 0.2, seed: int = 0) -> bytes:
    rng = _rng(seed)
    in_q = _act_in_quant(rng)
    lo = float(in_q.scale) * (-128 - int(in_q.zero_point))
    hi = float(in_q.scale) * (127 - int(in_q.zero_point))
    out_q = _range_quant(rng, min(lo * alpha, 0.0) - 1e-3, max(hi, 1e-3))
    opt = fb.LeakyReluOptionsT()
    opt.alpha = float(alpha)
    return _unary("LEAKY_RELU", shape, in_q, out_q, opt)


def hard_swish(shape: Sequence[int] = (1, 16), seed: int = 0) -> bytes:
    rng = _rng(seed)
    in_q = _act_in_quant(rng)
    hi = float(in_q.scale) * (127 - int(in_q.zero_point))
    out_q = _range_quant(rng, -0.375, max(hi, 0.5))
    return _unary("HARD_SWISH", shape, in_q, out_q)


def concatenation(
    shape: Sequence[int] = (1, 4, 4, 3),
    axis: int = -1,
    parts: Sequence[str] = ("input", "const"),
    const_size: int = 2,
    activation: str = "NONE",
    seed: int = 0,
) -> bytes:
    """Concatenate the input with itself and/or constants (sized const_size along axis).

    All parts share one quantization (what TF's converter produces for int8 concatenation)."""
    rng = _rng(seed)
    mb = ModelBuilder()
    q = input_quant(rng)
    rank = len(shape)
    ax = axis % rank
    x = mb.tensor(shape, quant=q, name="input")
    ins, total = [], 0
    for p in parts:
        if p == "input":
            ins.append(x)
            total += shape[ax]
        else:
            cshape = list(shape)
            cshape[ax] = const_size
            ins.append(mb.tensor(cshape, quant=q, data=_weights(rng, cshape)))
            total += const_size
    out_shape = list(shape)
    out_shape[ax] = total
    y = mb.tensor(out_shape, quant=q, name="output")
    opt = fb.ConcatenationOptionsT()
    opt.axis = axis
    opt.fusedActivationFunction = ACTIVATIONS[activation]
    mb.op("CONCATENATION", ins, [y], opt)
    return mb.build([x], [y])


def pad(
    shape: Sequence[int] = (1, 4, 4, 3),
    paddings: Sequence[tuple[int, int]] = ((0, 0), (1, 1), (1, 1), (0, 0)),
    seed: int = 0,
) -> bytes:
    rng = _rng(seed)
    mb = ModelBuilder()
    q = input_quant(rng)
    x = mb.tensor(shape, quant=q, name="input")
    p = mb.const_i32(np.asarray(paddings, dtype=np.int32))
    out_shape = [s + a + b for s, (a, b) in zip(shape, paddings, strict=True)]
    y = mb.tensor(out_shape, quant=q, name="output")
    mb.op("PAD", [x, p], [y], fb.PadOptionsT())
    return mb.build([x], [y])


def reshape(
    shape: Sequence[int] = (1, 4, 4, 3),
    new_shape: Sequence[int] = (1, 48),
    shape_as_tensor: bool = True,
    seed: int = 0,
) -> bytes:
    rng = _rng(seed)
    mb = ModelBuilder()
    q = input_quant(rng)
    out_shape = list(new_shape)
    if -1 in out_shape:
        known = math.prod(s for s in out_shape if s != -1)
        out_shape[out_shape.index(-1)] = math.prod(shape) // known
    if math.prod(out_shape) != math.prod(shape):
        raise ValueError(f"reshape: {shape} cannot become {new_shape}")
    x = mb.tensor(shape, quant=q, name="input")
    ins = [x]
    if shape_as_tensor:
        ins.append(mb.const_i32(list(new_shape)))
    y = mb.tensor(out_shape, quant=q, name="output")
    opt = fb.ReshapeOptionsT()
    opt.newShape = [int(s) for s in new_shape]
    mb.op("RESHAPE", ins, [y], opt)
    return mb.build([x], [y])


def expand_dims(shape: Sequence[int] = (1, 8, 3), axis: int = 1, seed: int = 0) -> bytes:
    rng = _rng(seed)
    mb = ModelBuilder()
    q = input_quant(rng)
    out_shape = list(shape)
    out_shape.insert(axis % (len(shape) + 1), 1)
    x = mb.tensor(shape, quant=q, name="input")
    a = mb.const_i32([axis], shape=[1])
    y = mb.tensor(out_shape, quant=q, name="output")
    mb.op("EXPAND_DIMS", [x, a], [y], fb.ExpandDimsOptionsT())
    return mb.build([x], [y])


def squeeze(
    shape: Sequence[int] = (1, 1, 8, 3), squeeze_dims: Sequence[int] = (1,), seed: int = 0
) -> bytes:
    rng = _rng(seed)
    mb = ModelBuilder()
    q = input_quant(rng)
    rank = len(shape)
    dims = (
        {d % rank for d in squeeze_dims}
        if squeeze_dims
        else {i for i, s in enumerate(shape) if s == 1}
    )
    out_shape = [s for i, s in enumerate(shape) if i not in dims]
    x = mb.tensor(shape, quant=q, name="input")
    y = mb.tensor(out_shape, quant=q, name="output")
    opt = fb.SqueezeOptionsT()
    opt.squeezeDims = [int(d) for d in squeeze_dims]
    mb.op("SQUEEZE", [x], [y], opt)
    return mb.build([x], [y])


def quantize(shape: Sequence[int] = (1, 16), from_float: bool = False, seed: int = 0) -> bytes:
    """int8 -> int8 requantization, or float32 -> int8 (a float model input)."""
    rng = _rng(seed)
    out_q = input_quant(rng)
    if from_float:
        return _unary("QUANTIZE", shape, None, out_q, in_dtype="float32")
    in_q = input_quant(rng)
    out_q = _centered_quant(rng, -float(in_q.scale) * int(in_q.zero_point), in_q.scale * _U)
    return _unary("QUANTIZE", shape, in_q, out_q)


def dequantize(shape: Sequence[int] = (1, 16), seed: int = 0) -> bytes:
    rng = _rng(seed)
    return _unary("DEQUANTIZE", shape, input_quant(rng), None, out_dtype="float32")


BUILDERS: dict[str, Callable[..., bytes]] = {
    "FULLY_CONNECTED": fully_connected,
    "CONV_2D": conv_2d,
    "DEPTHWISE_CONV_2D": depthwise_conv_2d,
    "MAX_POOL_2D": max_pool_2d,
    "AVERAGE_POOL_2D": average_pool_2d,
    "MEAN": mean,
    "ADD": partial(binary, "ADD"),
    "SUB": partial(binary, "SUB"),
    "MUL": partial(binary, "MUL"),
    "SOFTMAX": softmax,
    "LOGISTIC": logistic,
    "TANH": tanh,
    "RELU": relu,
    "RELU6": relu6,
    "LEAKY_RELU": leaky_relu,
    "HARD_SWISH": hard_swish,
    "CONCATENATION": concatenation,
    "PAD": pad,
    "RESHAPE": reshape,
    "EXPAND_DIMS": expand_dims,
    "SQUEEZE": squeeze,
    "QUANTIZE": quantize,
    "DEQUANTIZE": dequantize,
}


def build(op: str, **params) -> bytes:
    """Build the single-op model for `op` (a TFLite builtin name) with the given parameters."""
    try:
        fn = BUILDERS[op]
    except KeyError:
        raise ValueError(f"singleop.build: unknown op {op!r}; known: {sorted(BUILDERS)}") from None
    return fn(**params)
