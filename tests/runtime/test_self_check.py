"""elrt's known-answer self-check (the probe that decides whether the viper set is used) is
TFLM's answer: its FULLY_CONNECTED record is what the converter writes for a per-channel model,
and its expected bytes are what the tflite-micro runtime returns for that model and input."""

from __future__ import annotations

import ast
import struct

import numpy as np
from factory import exact
from factory.tflite_builder import ModelBuilder, Quant
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

import converters
from converters.bundle import parse_bundle
from edgeloop.firmware import FIRMWARE_DIR

# in, filter and output scales giving multipliers of both kinds: a plain one, one just under
# 2**31 at shift -13, and INT32_MAX itself (a*f2 falls within 2**-31 below a power of two)
IN_SCALE = float(np.float32(1 - 300 * 2**-24))
FILTER_SCALES = np.array([0.70710678 * 2**-9, 2**-13, 2**-5 * (1 + 150 * 2**-23)], np.float32)
OUT_ZERO_POINT = -3


def _self_check_call() -> dict:
    """The literals of elrt._self_check: its fully_connected arguments and expected output."""
    tree = ast.parse((FIRMWARE_DIR / "elrt" / "__init__.py").read_text())
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "_self_check")
    call = next(n for n in ast.walk(fn) if isinstance(n, ast.Call)
                and getattr(n.func, "attr", "") == "fully_connected")
    ret = next(n for n in ast.walk(fn) if isinstance(n, ast.Return))

    def value(node):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "bytes":
            return bytes(ast.literal_eval(node.args[0]))
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "pack":
            return struct.pack(*[ast.literal_eval(a) for a in node.args])
        if isinstance(node, ast.Name):
            return None  # the output buffer
        return ast.literal_eval(node)

    args = [value(a) for a in call.args]
    names = ["input", "filter", "bias", "multiplier", "shift", "output", "batches", "depth",
             "units", "output_offset", "act_min", "act_max"]
    return dict(zip(names, args, strict=True)) | {"expected": ast.literal_eval(
        ret.value.comparators[0])}


def _model(c: dict) -> bytes:
    mb = ModelBuilder()
    w = np.frombuffer(c["filter"], np.int8).reshape(c["units"], c["depth"])
    bias = np.frombuffer(c["bias"], np.int32)
    x = mb.tensor([1, c["depth"]], quant=Quant(IN_SCALE, 0), name="input")
    wt = mb.tensor(list(w.shape), quant=Quant(FILTER_SCALES, 0, 0), data=w)
    bt = mb.tensor([c["units"]], "int32",
                   Quant((np.float32(IN_SCALE) * FILTER_SCALES).astype(np.float32), 0, 0), bias)
    y = mb.tensor([1, c["units"]], quant=Quant(1.0, OUT_ZERO_POINT), name="output")
    mb.op("FULLY_CONNECTED", [x, wt, bt], [y], fb.FullyConnectedOptionsT())
    return mb.build([x], [y], "elrt self-check")


def test_self_check_record_is_the_converters_and_its_answer_tflms() -> None:
    c = _self_check_call()
    model = _model(c)
    bun = parse_bundle(converters.convert_tflite(model).bundle)
    (op,) = bun.ops
    assert op.name == "FULLY_CONNECTED"
    data = [bun.tensors[t].data for t in op.tensors[1:5]]
    assert data == [c["filter"], c["bias"], c["multiplier"], c["shift"]]
    assert op.params == [1, c["depth"], c["units"], c["output_offset"], c["act_min"],
                         c["act_max"]]
    assert 2147483647 in struct.unpack("<3i", c["multiplier"])
    x = np.frombuffer(c["input"], np.int8).reshape(1, 1, c["depth"])
    expected = np.frombuffer(c["expected"], np.int8).reshape(1, 1, c["units"])
    ref = exact.matches_tflm(expected, model, x, "elrt._self_check's expected bytes", c)
    assert len(set(np.sign(ref.reshape(-1)))) > 1  # both signs


def test_self_check_passes_on_the_bytecode_kernels(cpython_elrt) -> None:
    from elrt import kernels_py

    assert cpython_elrt._self_check(kernels_py)
