"""Hypothesis strategies, one per op: each draws parameters and yields (model_bytes, description).

`description` is a dict (op name plus every parameter, seed included) so a failing example can be
rebuilt exactly with `singleop.build(**description)`. Shapes stay small so that a model also runs
quickly on the virtual board with the bytecode kernels; `small=True` shrinks them further.
"""

from __future__ import annotations

import math

from hypothesis import strategies as st

from factory import singleop

SEEDS = st.integers(0, 2**31 - 1)
ACTS = st.sampled_from(["NONE", "RELU", "RELU6", "RELU_N1_TO_1"])
PADS = st.sampled_from(["SAME", "VALID"])
# output-scale factor (log2): mostly calibrated, sometimes far too fine (multipliers >= 1, heavy
# clipping) or too coarse
OUT_LOG2 = st.sampled_from([0.0, 0.0, 0.0, 0.0, -4.0, -9.0, -14.0, 3.0])


class Case(tuple):
    """(model_bytes, description); shown as the call that rebuilds it, not as raw bytes."""

    def __repr__(self) -> str:
        return f"singleop.build(**{self[1]!r})"


def _model(op: str, params: dict) -> tuple[bytes, dict]:
    return Case((singleop.build(op, **params), {"op": op, **params}))


@st.composite
def _shape(draw, min_rank: int = 1, max_rank: int = 4, max_dim: int = 6, batch1: bool = True):
    rank = draw(st.integers(min_rank, max_rank))
    dims = [draw(st.integers(1, max_dim)) for _ in range(rank)]
    if batch1 and rank >= 2:
        dims[0] = 1
    return tuple(dims)


@st.composite
def fully_connected(draw, small: bool = False):
    m = 16 if small else 64
    mid = draw(st.sampled_from([(), (), (), (2,), (3, 2)]))
    p = dict(
        batch=1 if mid else draw(st.sampled_from([1, 1, 1, 2])),
        in_features=draw(st.integers(1, m)),
        units=draw(st.integers(1, m // 2)),
        per_channel=draw(st.booleans()),
        activation=draw(ACTS),
        use_bias=draw(st.booleans()),
        mid=mid,
        keep_num_dims=draw(st.booleans()) if mid else False,
        out_scale_log2=draw(OUT_LOG2),
        seed=draw(SEEDS),
    )
    return _model("FULLY_CONNECTED", p)


@st.composite
def _window(draw, max_hw: int, max_k: int, dilation: bool):
    """Input size, kernel, stride, dilation and padding with a non-empty output."""
    conv1d = draw(st.booleans())
    h = 1 if conv1d else draw(st.integers(1, max_hw))
    w = draw(st.integers(1, max_hw))
    kh = 1 if conv1d else draw(st.integers(1, max_k))
    kw = draw(st.integers(1, max_k))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dil = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if dilation else (1, 1)
    padding = draw(PADS)
    if padding == "VALID":
        # shrink kernels that do not fit rather than rejecting the draw
        kh = max(1, min(kh, (h - 1) // dil[0] + 1))
        kw = max(1, min(kw, (w - 1) // dil[1] + 1))
    return h, w, kh, kw, stride, dil, padding


@st.composite
def conv_2d(draw, small: bool = False):
    h, w, kh, kw, stride, dil, padding = draw(_window(6 if small else 12, 3 if small else 5, True))
    c = 4 if small else 8
    p = dict(
        h=h, w=w, cin=draw(st.integers(1, c)), cout=draw(st.integers(1, c)), kh=kh, kw=kw,
        stride=stride, dilation=dil, padding=padding, activation=draw(ACTS),
        per_channel=draw(st.booleans()), out_scale_log2=draw(OUT_LOG2), seed=draw(SEEDS),
    )  # fmt: skip
    return _model("CONV_2D", p)


@st.composite
def depthwise_conv_2d(draw, small: bool = False):
    h, w, kh, kw, stride, dil, padding = draw(_window(6 if small else 12, 3 if small else 5, True))
    p = dict(
        h=h, w=w, cin=draw(st.integers(1, 4 if small else 8)),
        depth_multiplier=draw(st.sampled_from([1, 1, 2, 3])), kh=kh, kw=kw, stride=stride,
        dilation=dil, padding=padding, activation=draw(ACTS), per_channel=draw(st.booleans()),
        out_scale_log2=draw(OUT_LOG2), seed=draw(SEEDS),
    )  # fmt: skip
    return _model("DEPTHWISE_CONV_2D", p)


@st.composite
def _pool(draw, op: str, small: bool):
    h, w, fh, fw, stride, _, padding = draw(_window(6 if small else 12, 3 if small else 4, False))
    p = dict(
        h=h, w=w, c=draw(st.integers(1, 4 if small else 8)), fh=fh, fw=fw, stride=stride,
        padding=padding, activation=draw(ACTS), seed=draw(SEEDS),
    )  # fmt: skip
    return _model(op, p)


def max_pool_2d(small: bool = False):
    return _pool("MAX_POOL_2D", small)


def average_pool_2d(small: bool = False):
    return _pool("AVERAGE_POOL_2D", small)


@st.composite
def mean(draw, small: bool = False):
    shape = draw(_shape(2, 4, 4 if small else 6))
    rank = len(shape)
    n_axes = draw(st.integers(1, min(2, rank)))
    axes = draw(st.lists(st.integers(0, rank - 1), min_size=n_axes, max_size=n_axes, unique=True))
    if draw(st.booleans()):
        axes = [a - rank for a in axes]  # negative axes, as some converters emit
    if rank == 4 and draw(st.booleans()):
        axes = [1, 2]  # the global-average-pooling form Keras produces
    p = dict(
        shape=shape, axes=tuple(axes), keep_dims=draw(st.booleans()),
        same_quant=draw(st.sampled_from([False, False, True])), out_scale_log2=draw(OUT_LOG2),
        seed=draw(SEEDS),
    )  # fmt: skip
    return _model("MEAN", p)


@st.composite
def _broadcast_pair(draw, small: bool):
    shape = draw(_shape(1, 4, 4 if small else 6))
    kind = draw(st.sampled_from(["same", "ones", "trailing", "scalar"]))
    if kind == "same":
        other = shape
    elif kind == "ones":  # some dims of the constant are 1
        other = tuple(1 if draw(st.booleans()) else s for s in shape)
    elif kind == "trailing":  # lower-rank constant, numpy-style right alignment
        other = shape[len(shape) - draw(st.integers(1, len(shape))) :]
    else:
        other = (1,)
    return shape, other


@st.composite
def _binary(draw, op: str, small: bool):
    shape, other = draw(_broadcast_pair(small))
    p = dict(
        shape=shape, other_shape=other, activation=draw(ACTS), const_first=draw(st.booleans()),
        operand=draw(st.sampled_from(["const", "const", "const", "self"])),
        out_scale_log2=draw(OUT_LOG2), seed=draw(SEEDS),
    )  # fmt: skip
    return _model(op, p)


def add(small: bool = False):
    return _binary("ADD", small)


def sub(small: bool = False):
    return _binary("SUB", small)


def mul(small: bool = False):
    return _binary("MUL", small)


@st.composite
def softmax(draw, small: bool = False):
    shape = draw(st.one_of(st.tuples(st.just(1), st.integers(1, 16 if small else 40)),
                           _shape(3, 4, 4 if small else 6)))  # fmt: skip
    beta = draw(st.sampled_from([1.0, 1.0, 0.5, 2.0]) | st.integers(1, 30).map(lambda i: i / 10))
    return _model("SOFTMAX", dict(shape=shape, beta=float(beta), seed=draw(SEEDS)))


@st.composite
def _elementwise(draw, op: str, small: bool, **extra):
    p = {"shape": draw(_shape(1, 4, 4 if small else 8)), "seed": draw(SEEDS)}
    for k, v in extra.items():
        p[k] = draw(v)
    return _model(op, p)


def logistic(small: bool = False):
    return _elementwise("LOGISTIC", small)


def tanh(small: bool = False):
    return _elementwise("TANH", small)


def relu(small: bool = False):
    return _elementwise("RELU", small, same_quant=st.booleans())


def relu6(small: bool = False):
    return _elementwise("RELU6", small, same_quant=st.booleans())


def leaky_relu(small: bool = False):
    alphas = st.sampled_from([0.01, 0.1, 0.2, 0.3]) | st.integers(1, 99).map(lambda i: i / 100)
    return _elementwise("LEAKY_RELU", small, alpha=alphas.map(float))


def hard_swish(small: bool = False):
    return _elementwise("HARD_SWISH", small)


@st.composite
def concatenation(draw, small: bool = False):
    shape = draw(_shape(2, 4, 4 if small else 6))
    rank = len(shape)
    parts = draw(st.lists(st.sampled_from(["input", "const"]), min_size=2, max_size=3))
    if "input" not in parts:
        parts[0] = "input"
    p = dict(
        shape=shape, axis=draw(st.integers(-rank, rank - 1)), parts=tuple(parts),
        const_size=draw(st.integers(1, 3)), activation="NONE", seed=draw(SEEDS),
    )  # fmt: skip
    return _model("CONCATENATION", p)


@st.composite
def pad(draw, small: bool = False):
    shape = draw(_shape(1, 4, 4 if small else 6))
    paddings = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in shape)
    if len(shape) == 4 and draw(st.booleans()):
        paddings = ((0, 0), paddings[1], paddings[2], (0, 0))  # ZeroPadding2D form
    return _model("PAD", dict(shape=shape, paddings=paddings, seed=draw(SEEDS)))


@st.composite
def reshape(draw, small: bool = False):
    shape = draw(_shape(1, 4, 4 if small else 6))
    n = math.prod(shape)
    divisors = [d for d in range(1, n + 1) if n % d == 0]
    a = draw(st.sampled_from(divisors))
    b = draw(st.sampled_from([d for d in divisors if (n // a) % d == 0]))
    new = [1, a, b, n // (a * b)][: draw(st.integers(2, 4))]
    new[-1] = n // math.prod(new[:-1])
    if draw(st.booleans()):
        new[draw(st.integers(0, len(new) - 1))] = -1
    p = dict(shape=shape, new_shape=tuple(new), shape_as_tensor=draw(st.booleans()),
             seed=draw(SEEDS))  # fmt: skip
    return _model("RESHAPE", p)


@st.composite
def expand_dims(draw, small: bool = False):
    shape = draw(_shape(1, 3, 4 if small else 6))
    axis = draw(st.integers(-(len(shape) + 1), len(shape)))
    return _model("EXPAND_DIMS", dict(shape=shape, axis=axis, seed=draw(SEEDS)))


@st.composite
def squeeze(draw, small: bool = False):
    shape = list(draw(_shape(2, 4, 4 if small else 6)))
    shape[draw(st.integers(0, len(shape) - 1))] = 1
    ones = [i for i, s in enumerate(shape) if s == 1]
    dims = draw(st.lists(st.sampled_from(ones), unique=True, max_size=len(ones)))
    if len(dims) == len(shape) or (not dims and len(ones) == len(shape)):
        dims = ones[:1]
    return _model("SQUEEZE", dict(shape=tuple(shape), squeeze_dims=tuple(dims), seed=draw(SEEDS)))


@st.composite
def quantize(draw, small: bool = False):
    shape = draw(_shape(1, 4, 4 if small else 8))
    p = dict(shape=shape, from_float=draw(st.sampled_from([False, False, True])), seed=draw(SEEDS))
    return _model("QUANTIZE", p)


def dequantize(small: bool = False):
    return _elementwise("DEQUANTIZE", small)


STRATEGIES = {
    "FULLY_CONNECTED": fully_connected,
    "CONV_2D": conv_2d,
    "DEPTHWISE_CONV_2D": depthwise_conv_2d,
    "MAX_POOL_2D": max_pool_2d,
    "AVERAGE_POOL_2D": average_pool_2d,
    "MEAN": mean,
    "ADD": add,
    "SUB": sub,
    "MUL": mul,
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


def single_op(op: str, small: bool = False) -> st.SearchStrategy[tuple[bytes, dict]]:
    """The strategy for one op (TFLite builtin name); small=True for virtual-board runs."""
    try:
        return STRATEGIES[op](small=small)
    except KeyError:
        raise ValueError(
            f"strategies.single_op: unknown op {op!r}; known: {sorted(STRATEGIES)}"
        ) from None


def any_single_op(small: bool = False) -> st.SearchStrategy[tuple[bytes, dict]]:
    return st.one_of([s(small=small) for s in STRATEGIES.values()])


class GraphCase(tuple):
    """(model_bytes, description) of a random multi-op graph; shown as the rebuilding call."""

    def __repr__(self) -> str:
        return f"graphs.random_graph(**{self[1]!r})"


@st.composite
def graph(draw, small: bool = False) -> GraphCase:
    """A random multi-op graph (factory.graphs): planner, aliases, joins, broadcasts."""
    from factory import graphs

    p = dict(
        seed=draw(SEEDS),
        n_ops=draw(st.integers(2, 6 if small else 10)),
        hw=draw(st.integers(2, 6 if small else 10)),
        channels=draw(st.integers(1, 4)),
    )
    model, _ = graphs.random_graph(**p)
    return GraphCase((model, p))
