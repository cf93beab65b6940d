"""Models straight from TensorFlow's converter: the trainer's Conv1D shape (full-integer PTQ) is
compiled exactly; a float model, a dynamic-range model and an int8 model with an unsupported op
are refused with the right message. Converted once, cached under build/cache/."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from benchmarks.models import _quiet, cached_tflite, quantize_keras
from converters import ConvertError, convert_tflite

SPEC = {"test": "converters-tf", "version": 1}


def _keras_conv1d():
    import keras

    keras.utils.set_random_seed(0)
    L = keras.layers
    inp = keras.Input((64, 3), batch_size=1)
    x = L.Conv1D(8, 5, padding="same", activation="relu")(inp)
    x = L.MaxPooling1D(2)(x)
    x = L.Conv1D(12, 3, strides=2, activation="relu6")(x)
    x = L.GlobalAveragePooling1D()(x)
    x = L.Dense(4, activation="softmax")(x)
    return keras.Model(inp, x)


def _rep(n=32):
    return np.random.default_rng(0).normal(size=(n, 64, 3)).astype(np.float32)


def _tf_convert(kind: str) -> bytes:
    with _quiet():
        import tensorflow as tf

    model = _keras_conv1d()
    if kind == "int8":
        return quantize_keras(model, _rep())
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if kind == "dynamic":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    with _quiet():
        return bytes(conv.convert())


def _unsupported_int8() -> bytes:
    with _quiet():
        import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((16,), batch_size=1)
    x = keras.layers.Dense(8)(inp)
    x = keras.layers.Lambda(lambda t: keras.ops.exp(t))(x)
    x = keras.layers.Dense(2)(x)
    rep = np.random.default_rng(0).normal(size=(16, 16)).astype(np.float32)
    return quantize_keras(keras.Model(inp, x), rep)


def _model(kind: str) -> bytes:
    if importlib.util.find_spec("tensorflow") is None:  # cheap: cached runs never import TF
        pytest.skip("needs TensorFlow to build the model")
    if kind == "exp":
        return cached_tflite("convtest", {**SPEC, "kind": kind}, _unsupported_int8)
    return cached_tflite("convtest", {**SPEC, "kind": kind}, lambda: _tf_convert(kind))


def test_tf_conv1d_int8_exact(check_exact):
    model = _model("int8")
    report = check_exact(model, n=8)
    ops = [r["op"] for r in report["ops"]]
    assert {"CONV_2D", "MAX_POOL_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"} <= set(ops)
    assert {"EXPAND_DIMS", "RESHAPE"} & set(ops)  # Conv1D plumbing: free aliases
    assert all(r["macs"] == 0 for r in report["ops"] if r.get("alias"))


@pytest.mark.parametrize("kind", ["float", "dynamic"])
def test_tf_float_models_refused(kind):
    with pytest.raises(ConvertError, match="float model.*representative_dataset"):
        convert_tflite(_model(kind))


def test_tf_unsupported_op_refused():
    with pytest.raises(ConvertError, match=r"#\d+ EXP.*Supported: FULLY_CONNECTED"):
        convert_tflite(_model("exp"))
