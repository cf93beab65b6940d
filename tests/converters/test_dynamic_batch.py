"""The TensorFlow docs' full-integer recipe on Keras models with an unspecified batch: the export
computes its Flatten/Reshape targets with SHAPE -> STRIDED_SLICE -> PACK, which the converter
folds at batch 1. The int8 models convert and run bit-exact (golden and both kernel sets on the
virtual board vs TFLM); the float model built the same way gets the float-model help; a shape
op that cannot be folded is refused naming it and how to avoid it."""

from __future__ import annotations

import numpy as np
import pytest
from factory import exact

from benchmarks.models import _quiet, cached_tflite, quantize_keras
from converters import ConvertError, convert_tflite
from converters.fold import fold_shape_ops
from converters.tflite_reader import read_tflite

SPEC = {"test": "dynamic-batch", "version": 1}


def _keras(kind: str):
    with _quiet():
        import keras

    keras.utils.set_random_seed(0)
    L = keras.layers
    if kind == "conv":
        inp = keras.Input((16, 16, 3))  # no batch_size: the batch stays dynamic
        x = L.Conv2D(8, 3, activation="relu")(inp)
        x = L.MaxPooling2D(2)(x)
        x = L.Flatten()(x)
        x = L.Dense(10, activation="softmax")(x)
    else:  # Conv1D trunk and an explicit Reshape, as sensor models are often written
        inp = keras.Input((32, 3))
        x = L.Conv1D(6, 3, padding="same", activation="relu")(inp)
        x = L.Reshape((16, 12))(x)
        x = L.Flatten()(x)
        x = L.Dense(4)(x)
    return keras.Model(inp, x)


def _rep(kind: str) -> np.ndarray:
    shape = (16, 16, 3) if kind == "conv" else (32, 3)
    return np.random.default_rng(0).normal(size=(32, *shape)).astype(np.float32)


def _tflite(kind: str, flavour: str = "int8") -> bytes:
    def build() -> bytes:
        model = _keras(kind)
        if flavour == "int8":
            return quantize_keras(model, _rep(kind))
        if flavour == "float_io":
            return quantize_keras(model, _rep(kind), int8_io=False)
        with _quiet():
            import tensorflow as tf

            return bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())

    return cached_tflite("dynbatch", dict(SPEC, kind=kind, flavour=flavour), build)


@pytest.fixture(scope="module", params=["conv", "reshape"])
def kind(request) -> str:
    return request.param


def test_export_has_shape_arithmetic(kind) -> None:
    ops = [op.name for op in read_tflite(_tflite(kind)).ops]
    assert {"SHAPE", "STRIDED_SLICE", "PACK"} <= set(ops), ops


def test_folds_and_runs_exact(kind) -> None:
    model = _tflite(kind)
    conv = convert_tflite(model)
    folded = [r for r in conv.report["ops"] if r.get("folded") is not None]
    assert {r["op"] for r in folded} >= {"SHAPE", "STRIDED_SLICE", "PACK"}
    assert all(r["macs"] == 0 for r in folded)
    x = exact.model_inputs(model, 4, 0)
    exact.golden_vs_tflm(model, x, f"dynamic-batch {kind}")
    for kernels in ("viper", "bytecode"):
        exact.device_vs_tflm(model, x, f"dynamic-batch {kind}", kernels=kernels)


def test_float_io_export_runs_exact(kind) -> None:
    model = _tflite(kind, "float_io")
    x = exact.model_inputs(model, 3, 1)
    exact.golden_vs_tflm(model, x, f"dynamic-batch {kind} float io")
    exact.device_vs_tflm(model, x, f"dynamic-batch {kind} float io", kernels="viper")


def test_float_model_gets_float_help(kind) -> None:
    with pytest.raises(ConvertError, match="float model.*full-integer post-training"):
        convert_tflite(_tflite(kind, "float"))


def test_unfoldable_shape_op_is_named_with_a_fix() -> None:
    model = read_tflite(_tflite("conv"))
    shape_op = next(op for op in model.ops if op.name == "SHAPE")
    model.tensors[shape_op.inputs[0]].shape = (-1, 7, 7, 8)  # as if the batch were unknown
    fold_shape_ops(model)
    assert any(op.name == "SHAPE" for op in model.ops)
    from converters.compile import validate

    with pytest.raises(ConvertError, match=r"#2 SHAPE.*batch_size=1"):
        validate(model)
