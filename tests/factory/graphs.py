"""Random multi-op int8 graphs built directly as flatbuffers (no TensorFlow), from a seed.

Where the Keras factory gives realistic graphs slowly (TF conversion), these give odd but valid
ones fast, aimed at what single ops cannot reach: the arena planner (tensors that live across
many ops, branches joining late, the input read late), alias chains (RESHAPE / EXPAND_DIMS /
SQUEEZE of aliases, a model output that is an alias), broadcasting between two runtime tensors
(x + mean(x)), CONCATENATION of a tensor with itself, requantization before a join as TF
inserts it. Quantization follows singleop's rules; concatenated parts share the output's
quantization (QUANTIZE inserted when they differ), as TFLM requires.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from factory.quantgen import (
    _acc_out_quant,
    _bias,
    _centered_quant,
    _conv_out,
    _range_quant,
    _weight_scales,
    _weights,
    input_quant,
)
from factory.tflite_builder import ACTIVATIONS, PADDINGS, ModelBuilder, Quant


@dataclass
class T:
    idx: int
    shape: list[int]
    q: Quant


@dataclass
class _G:
    rng: np.random.Generator
    mb: ModelBuilder = field(default_factory=ModelBuilder)
    ops: list[str] = field(default_factory=list)

    def new(self, shape: list[int], q: Quant) -> T:
        return T(self.mb.tensor(shape, quant=q), list(shape), q)

    def op(self, name: str, ins: list[int], out: T, opt=None) -> T:
        self.mb.op(name, ins, [out.idx], opt)
        self.ops.append(name)
        return out

    def choice(self, items):
        return items[int(self.rng.integers(len(items)))]


def _real_range(q: Quant) -> tuple[float, float]:
    s, z = float(q.scale), int(q.zero_point)
    return s * (-128 - z), s * (127 - z)


def _std_q(g: _G, t: T) -> Quant:
    lo, hi = _real_range(t.q)
    return _centered_quant(g.rng, (lo + hi) / 2, (hi - lo) / 4)


# ------------------------------------------------------------------ op emitters


def _conv(g: _G, t: T) -> T:
    _, h, w, cin = t.shape
    cout = int(g.rng.integers(1, 9))
    k = g.choice([1, 3])
    stride = g.choice([1, 1, 2]) if min(h, w) >= 4 else 1
    padding = "SAME" if k > min(h, w) or g.rng.random() < 0.6 else "VALID"
    oh, ow = _conv_out(h, k, stride, 1, padding), _conv_out(w, k, stride, 1, padding)
    ws = _weight_scales(g.rng, cout, True)
    act = g.choice(list(ACTIVATIONS))
    out = g.new([1, oh, ow, cout], _acc_out_quant(g.rng, t.q, ws, k * k * cin, act))
    wt = g.mb.tensor(
        [cout, k, k, cin], quant=Quant(ws, 0, 0), data=_weights(g.rng, (cout, k, k, cin))
    )
    bs = (float(t.q.scale) * ws.astype(np.float64)).astype(np.float32)
    b = g.mb.tensor([cout], "int32", Quant(bs, 0, 0), _bias(g.rng, cout, k * k * cin))
    opt = fb.Conv2DOptionsT()
    opt.padding, opt.strideH, opt.strideW = PADDINGS[padding], stride, stride
    opt.dilationHFactor = opt.dilationWFactor = 1
    opt.fusedActivationFunction = ACTIVATIONS[act]
    return g.op("CONV_2D", [t.idx, wt, b], out, opt)


def _dw(g: _G, t: T) -> T:
    _, h, w, c = t.shape
    dm = g.choice([1, 1, 2])
    k = 3 if min(h, w) >= 3 else 1
    cout = c * dm
    ws = _weight_scales(g.rng, cout, True)
    act = g.choice(list(ACTIVATIONS))
    out = g.new([1, h, w, cout], _acc_out_quant(g.rng, t.q, ws, k * k, act))
    wt = g.mb.tensor([1, k, k, cout], quant=Quant(ws, 0, 3), data=_weights(g.rng, (1, k, k, cout)))
    bs = (float(t.q.scale) * ws.astype(np.float64)).astype(np.float32)
    b = g.mb.tensor([cout], "int32", Quant(bs, 0, 0), _bias(g.rng, cout, k * k))
    opt = fb.DepthwiseConv2DOptionsT()
    opt.padding, opt.strideH, opt.strideW, opt.depthMultiplier = PADDINGS["SAME"], 1, 1, dm
    opt.dilationHFactor = opt.dilationWFactor = 1
    opt.fusedActivationFunction = ACTIVATIONS[act]
    return g.op("DEPTHWISE_CONV_2D", [t.idx, wt, b], out, opt)


def _pool(g: _G, t: T) -> T:
    _, h, w, c = t.shape
    if min(h, w) < 2:
        return _unary(g, t)
    name = g.choice(["MAX_POOL_2D", "AVERAGE_POOL_2D"])
    padding = g.choice(["SAME", "VALID"])
    out = g.new([1, _conv_out(h, 2, 2, 1, padding), _conv_out(w, 2, 2, 1, padding), c], t.q)
    opt = fb.Pool2DOptionsT()
    opt.padding, opt.strideH, opt.strideW = PADDINGS[padding], 2, 2
    opt.filterHeight = opt.filterWidth = 2
    return g.op(name, [t.idx], out, opt)


def _pad(g: _G, t: T) -> T:
    pads = [[0, 0]] + [[int(g.rng.integers(0, 2)), int(g.rng.integers(0, 2))] for _ in t.shape[1:3]]
    pads += [[0, 0]] * (len(t.shape) - 3)
    p = g.mb.const_i32(np.asarray(pads, dtype=np.int32))
    out = g.new([s + a + b for s, (a, b) in zip(t.shape, pads, strict=True)], t.q)
    return g.op("PAD", [t.idx, p], out, fb.PadOptionsT())


def _unary(g: _G, t: T) -> T:
    name = g.choice(["RELU", "RELU6", "LEAKY_RELU", "HARD_SWISH", "LOGISTIC", "TANH", "QUANTIZE"])
    lo, hi = _real_range(t.q)
    opt = None
    if name == "RELU":
        q = _range_quant(g.rng, 0.0, max(hi, 1e-3))
    elif name == "RELU6":
        q = _range_quant(g.rng, 0.0, 6.0)
    elif name == "LEAKY_RELU":
        opt = fb.LeakyReluOptionsT()
        opt.alpha = float(g.choice([0.1, 0.2, 0.3]))
        q = _range_quant(g.rng, min(lo * opt.alpha, 0.0) - 1e-3, max(hi, 1e-3))
    elif name == "HARD_SWISH":
        q = _range_quant(g.rng, -0.375, max(hi, 0.5))
    elif name == "LOGISTIC":
        q = Quant(1 / 256, -128)
    elif name == "TANH":
        q = Quant(1 / 128, 0)
    else:
        q = _std_q(g, t)
    return g.op(name, [t.idx], g.new(t.shape, q), opt)


def _join(g: _G, t: T, earlier: list[T]) -> T:
    """ADD / MUL with an earlier tensor of a broadcast-compatible shape, or CONCATENATION."""
    same = [e for e in earlier if e.shape == t.shape]
    pooled = [e for e in earlier if len(e.shape) == 4 and len(t.shape) == 4
              and e.shape[1:3] == [1, 1] and e.shape[3] == t.shape[3]]  # fmt: skip
    other = g.choice(same + pooled) if same or pooled else t
    kind = g.choice(["ADD", "MUL", "CONCATENATION"])
    if kind == "CONCATENATION" and other.shape == t.shape:
        axis = g.choice([-1, len(t.shape) - 1, 1 if len(t.shape) > 2 else -1])
        if other.q != t.q:
            other = g.op("QUANTIZE", [other.idx], g.new(other.shape, t.q))
        shape = list(t.shape)
        shape[axis] *= 2
        opt = fb.ConcatenationOptionsT()
        opt.axis = axis
        return g.op("CONCATENATION", [t.idx, other.idx], g.new(shape, t.q), opt)
    if kind == "CONCATENATION":
        kind = "ADD"
    lo1, hi1 = _real_range(t.q)
    lo2, hi2 = _real_range(other.q)
    if kind == "ADD":
        q = _centered_quant(g.rng, (lo1 + hi1 + lo2 + hi2) / 2, (hi1 - lo1 + hi2 - lo2) / 5)
        opt = fb.AddOptionsT()
    else:
        ext = [lo1 * lo2, lo1 * hi2, hi1 * lo2, hi1 * hi2]
        q = _centered_quant(g.rng, (min(ext) + max(ext)) / 2, (max(ext) - min(ext)) / 6)
        opt = fb.MulOptionsT()
    opt.fusedActivationFunction = ACTIVATIONS[g.choice(["NONE", "NONE", "RELU"])]
    ins = [t.idx, other.idx] if g.rng.random() < 0.5 else [other.idx, t.idx]
    return g.op(kind, ins, g.new(t.shape, q), opt)


def _mean(g: _G, t: T) -> T:
    _, h, w, c = t.shape
    ax = g.mb.const_i32([1, 2])
    lo, hi = _real_range(t.q)
    q = _centered_quant(g.rng, (lo + hi) / 2, (hi - lo) / 4 / math.sqrt(h * w))
    opt = fb.ReducerOptionsT()
    opt.keepDims = True
    return g.op("MEAN", [t.idx, ax], g.new([1, 1, 1, c], q), opt)


def _alias_hop(g: _G, t: T) -> T:
    """RESHAPE to [1, h*w, c], then EXPAND_DIMS/RESHAPE back: an alias of an alias."""
    _, h, w, c = t.shape
    mid = g.new([1, h * w, c], t.q)
    shape_t = g.mb.const_i32([1, h * w, c])
    opt = fb.ReshapeOptionsT()
    opt.newShape = [1, h * w, c]
    g.op("RESHAPE", [t.idx, shape_t], mid, opt)
    if h == 1:
        ax = g.mb.const_i32([1], shape=[1])
        return g.op("EXPAND_DIMS", [mid.idx, ax], g.new([1, 1, w, c], t.q), fb.ExpandDimsOptionsT())
    back = g.mb.const_i32([1, h, w, c])
    opt2 = fb.ReshapeOptionsT()
    opt2.newShape = [1, h, w, c]
    return g.op("RESHAPE", [mid.idx, back], g.new([1, h, w, c], t.q), opt2)


def _flatten(g: _G, t: T) -> T:
    n = math.prod(t.shape)
    shape_t = g.mb.const_i32([1, n])
    opt = fb.ReshapeOptionsT()
    opt.newShape = [1, n]
    return g.op("RESHAPE", [t.idx, shape_t], g.new([1, n], t.q), opt)


def _fc(g: _G, t: T) -> T:
    k = t.shape[1]
    units = int(g.rng.integers(2, 17))
    per_channel = bool(g.rng.random() < 0.5)
    ws = _weight_scales(g.rng, units, per_channel)
    act = g.choice(list(ACTIVATIONS))
    out = g.new([1, units], _acc_out_quant(g.rng, t.q, ws, k, act))
    w = g.mb.tensor([units, k], quant=Quant(ws, 0, 0), data=_weights(g.rng, (units, k)))
    bs = (np.float32(t.q.scale) * ws).astype(np.float32)
    b = g.mb.tensor([units], "int32", Quant(bs, 0, 0), _bias(g.rng, units, k))
    opt = fb.FullyConnectedOptionsT()
    opt.fusedActivationFunction = ACTIVATIONS[act]
    return g.op("FULLY_CONNECTED", [t.idx, w, b], out, opt)


def _softmax(g: _G, t: T) -> T:
    # TFLM's int8 softmax aborts (RoundingDivideByPOT exponent > 31 assertion in the pip
    # build) once about 512+ near-equal logits share the sum of exps: keep the depth small
    if t.shape[-1] > 256:
        return _fc(g, t)
    opt = fb.SoftmaxOptionsT()
    opt.beta = float(g.choice([1.0, 0.5, 2.0]))
    return g.op("SOFTMAX", [t.idx], g.new(t.shape, Quant(1 / 256, -128)), opt)


def random_graph(
    seed: int, n_ops: int = 6, hw: int = 8, channels: int = 3
) -> tuple[bytes, list[str]]:
    """A random valid int8 graph with about n_ops ops; returns (model bytes, op names)."""
    g = _G(np.random.default_rng(seed))
    shape = [1, hw, hw, channels]
    x = g.new(shape, input_quant(g.rng))
    inp, t, earlier = x, x, [x]
    for _ in range(n_ops):
        if len(t.shape) == 4:
            emit = g.choice([_conv, _conv, _dw, _pool, _pad, _unary, _join, _join, _mean,
                             _alias_hop, _flatten])  # fmt: skip
            t = emit(g, t, earlier) if emit is _join else emit(g, t)
        else:
            emit = g.choice([_fc, _fc, _unary, _join, _softmax])
            t = emit(g, t, earlier) if emit is _join else emit(g, t)
        earlier.append(t)
    if g.rng.random() < 0.3 and len(t.shape) == 4:
        t = _flatten(g, t)  # the model output is an alias
    return g.mb.build([inp.idx], [t.idx], f"random graph {seed}"), g.ops
