"""Quantization parameters far outside what TF usually emits (log-uniform scales over 5 decades,
any zero point), all 256 int8 inputs: elementwise/table ops, SOFTMAX, ADD, MUL and FC against
tflite-micro. Cases TFLM itself refuses at Prepare are skipped; the converter must then refuse too
or, where TFLM accepts, match bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from factory import exact
from factory.tflite_builder import ModelBuilder, Quant
from factory.tflm import run_tflm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from converters import ConvertError, convert_tflite
from converters.golden import run_bundle

ALL = np.arange(-128, 128, dtype=np.int8).reshape(1, 1, 256)
SCALES = st.floats(-4.0, 1.0).map(lambda e: float(10**e))
ZPS = st.integers(-128, 127)
FIXED_OUT = {"LOGISTIC": Quant(1 / 256, -128), "TANH": Quant(1 / 128, 0),
             "SOFTMAX": Quant(1 / 256, -128)}
SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])




def _compare(model: bytes, x: np.ndarray) -> None:
    try:
        run_tflm(model, x)
    except RuntimeError:  # TFLM refuses the model at Prepare
        with pytest.raises(ConvertError):  # TFLM refuses -> we must refuse at convert time
            convert_tflite(model)
        return
    exact.matches_tflm(run_bundle(convert_tflite(model).bundle, x), model, x, "golden")


@pytest.mark.parametrize("op", ["LOGISTIC", "TANH", "SOFTMAX", "HARD_SWISH", "LEAKY_RELU",
                                "RELU", "RELU6", "QUANTIZE"])
def test_unary_wide(op):
    @SETTINGS
    @given(si=SCALES, zi=ZPS, so=SCALES, zo=ZPS, p=st.sampled_from([0.01, 0.2, 0.5, 1.0, 2.0]))
    def run(si, zi, so, zo, p):
        qo = FIXED_OUT.get(op, Quant(si, zi) if op == "RELU6" else Quant(so, zo))
        mb = ModelBuilder()
        x = mb.tensor((1, 256), quant=Quant(si, zi))
        y = mb.tensor((1, 256), quant=qo)
        opts = None
        if op == "SOFTMAX":
            opts = fb.SoftmaxOptionsT()
            opts.beta = p
        elif op == "LEAKY_RELU":
            opts = fb.LeakyReluOptionsT()
            opts.alpha = p
        mb.op(op, [x], [y], opts)
        _compare(mb.build([x], [y]), ALL)

    run()


@pytest.mark.parametrize("op", ["ADD", "MUL"])
def test_binary_wide(op):
    @SETTINGS
    @given(s1=SCALES, z1=ZPS, s2=SCALES, z2=ZPS, so=SCALES, zo=ZPS,
           act=st.sampled_from(["NONE", "RELU", "RELU6"]))
    def run(s1, z1, s2, z2, so, zo, act):
        mb = ModelBuilder()
        a = mb.tensor((1, 16, 16), quant=Quant(s1, z1))
        b = mb.tensor((1, 16, 1), quant=Quant(s2, z2),
                      data=np.arange(-128, 128, 16, dtype=np.int8).reshape(1, 16, 1))
        y = mb.tensor((1, 16, 16), quant=Quant(so, zo))
        o = fb.AddOptionsT() if op == "ADD" else fb.MulOptionsT()
        o.fusedActivationFunction = {"NONE": 0, "RELU": 1, "RELU6": 3}[act]
        mb.op(op, [a, b], [y], o)
        _compare(mb.build([a], [y]), ALL.reshape(1, 1, 16, 16))

    run()


def test_fully_connected_wide():
    @SETTINGS
    @given(si=SCALES, zi=ZPS, so=SCALES, zo=ZPS, sw=SCALES, per_channel=st.booleans(),
           seed=st.integers(0, 1000))
    def run(si, zi, so, zo, sw, per_channel, seed):
        rng = np.random.default_rng(seed)
        mb = ModelBuilder()
        x = mb.tensor((1, 32), quant=Quant(si, zi))
        scales = list(sw * rng.uniform(0.5, 2.0, 8)) if per_channel else sw
        w = mb.tensor((8, 32), quant=Quant(scales, 0),
                      data=rng.integers(-127, 128, (8, 32)).astype(np.int8))
        bscale = [si * s for s in np.atleast_1d(scales)]
        bias = mb.tensor((8,), "int32", Quant(bscale if per_channel else bscale[0], 0),
                         data=rng.integers(-2000, 2000, 8))
        y = mb.tensor((1, 8), quant=Quant(so, zo))
        mb.op("FULLY_CONNECTED", [x, w, bias], [y], fb.FullyConnectedOptionsT())
        _compare(mb.build([x], [y]), ALL.reshape(8, 1, 32))

    run()
