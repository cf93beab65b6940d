"""Small hand-built graphs for paths the single-op sweeps do not reach: PADV2, a float
interface (QUANTIZE in, DEQUANTIZE out), a constant operand, tensors reused across ops."""

from __future__ import annotations

import numpy as np
from factory.tflite_builder import ModelBuilder, Quant
from hypothesis import given, settings
from hypothesis import strategies as st
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb


@settings(max_examples=15, deadline=None, derandomize=True)
@given(value=st.integers(-128, 127), before=st.integers(0, 2), after=st.integers(0, 3),
       c=st.integers(1, 5))
def test_padv2_constant_value(value, before, after, c, check_exact):
    mb = ModelBuilder()
    q = Quant(0.04, -7)
    x = mb.tensor((1, 3, 4, c), quant=q)
    p = mb.const_i32(np.array([[0, 0], [before, after], [after, before], [0, 1]], np.int32))
    v = mb.tensor((), "int8", q, data=np.array(value, np.int8))
    y = mb.tensor((1, 3 + before + after, 4 + before + after, c + 1), quant=q)
    mb.op("PADV2", [x, p, v], [y], fb.PadV2OptionsT())
    check_exact(mb.build([x], [y]), n=4)


def _fc_weights(rng, units, depth):
    return rng.integers(-127, 128, (units, depth)).astype(np.int8)


def test_float_interface_quantize_fc_dequantize(check_exact):
    rng = np.random.default_rng(0)
    mb = ModelBuilder()
    xf = mb.tensor((1, 12), "float32")
    qi = Quant(0.02, 5)
    xq = mb.tensor((1, 12), quant=qi)
    w = mb.tensor((6, 12), quant=Quant([0.01] * 6, [0] * 6), data=_fc_weights(rng, 6, 12))
    b = mb.tensor((6,), "int32", Quant([0.0002] * 6), data=rng.integers(-500, 500, 6))
    yq = mb.tensor((1, 6), quant=Quant(0.3, -3))
    yf = mb.tensor((1, 6), "float32")
    mb.op("QUANTIZE", [xf], [xq])
    mb.op("FULLY_CONNECTED", [xq, w, b], [yq], fb.FullyConnectedOptionsT())
    mb.op("DEQUANTIZE", [yq], [yf])
    check_exact(mb.build([xf], [yf]), n=8)


def test_branches_reuse_and_const_operand(check_exact):
    """x -> RELU -> a; ADD(a, const) -> b; MUL(a, b) -> c; CONCAT(a, c) -> y: `a` stays live
    across three ops, so the arena plan must not reuse it early."""
    rng = np.random.default_rng(1)
    mb = ModelBuilder()
    qx, qa, qb, qc = Quant(0.05, 10), Quant(0.05, -128), Quant(0.08, -20), Quant(0.05, -128)
    x = mb.tensor((1, 4, 4, 3), quant=qx)
    a = mb.tensor((1, 4, 4, 3), quant=qa)
    k = mb.tensor((1, 1, 1, 3), quant=Quant(0.02, 3), data=rng.integers(-128, 128, (1, 1, 1, 3)))
    bt = mb.tensor((1, 4, 4, 3), quant=qb)
    c = mb.tensor((1, 4, 4, 3), quant=qc)
    y = mb.tensor((1, 4, 4, 6), quant=qc)
    mb.op("RELU", [x], [a])
    mb.op("ADD", [a, k], [bt], fb.AddOptionsT())
    mb.op("MUL", [a, bt], [c], fb.MulOptionsT())
    mb.op("CONCATENATION", [a, c], [y], _concat_opts(3))
    check_exact(mb.build([x], [y]), n=6)


def _concat_opts(axis: int):
    o = fb.ConcatenationOptionsT()
    o.axis = axis
    return o
