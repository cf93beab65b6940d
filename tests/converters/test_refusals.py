"""What the converter must refuse at convert time, with a message naming what and where."""

from __future__ import annotations

import numpy as np
import pytest
from factory import singleop
from factory.tflite_builder import ModelBuilder, Quant
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from converters import SUPPORTED_OPS, ConvertError, convert_tflite


def _float_fc() -> bytes:
    mb = ModelBuilder()
    x = mb.tensor((1, 4), "float32")
    w = mb.tensor((3, 4), "float32", data=np.ones((3, 4), np.float32))
    y = mb.tensor((1, 3), "float32")
    mb.op("FULLY_CONNECTED", [x, w, -1], [y], fb.FullyConnectedOptionsT())
    return mb.build([x], [y])


def _int8_unary(op: str, extra_inputs=()) -> bytes:
    mb = ModelBuilder()
    q = Quant(0.05, 3)
    x = mb.tensor((1, 8), "int8", q)
    ins = [x]
    for arr in extra_inputs:
        ins.append(mb.const_i32(arr))
    y = mb.tensor((1, 8) if op != "GATHER" else (1, 2), "int8", q)
    mb.op(op, ins, [y])
    return mb.build([x], [y])


def test_float_model_refused_with_quantization_advice():
    with pytest.raises(ConvertError) as e:
        convert_tflite(_float_fc())
    msg = str(e.value)
    assert "float model" in msg and "FULLY_CONNECTED" in msg
    assert "representative_dataset" in msg and "TFLITE_BUILTINS_INT8" in msg
    assert "tf.int8" in msg


@pytest.mark.parametrize("op", ["EXP", "SQRT"])
def test_unsupported_op_named_with_index_and_supported_list(op):
    with pytest.raises(ConvertError) as e:
        convert_tflite(_int8_unary(op))
    msg = str(e.value)
    assert f"#0 {op}" in msg
    for name in ("FULLY_CONNECTED", "CONV_2D", "SOFTMAX"):
        assert name in msg


def test_unsupported_op_after_supported_ones_has_its_index():
    mb = ModelBuilder()
    q = Quant(0.05, 3)
    x = mb.tensor((1, 8), "int8", q)
    h = mb.tensor((1, 8), "int8", Quant(0.05, -128))
    idx = mb.const_i32([0, 2], (2,))
    y = mb.tensor((1, 2), "int8", Quant(0.05, -128))
    mb.op("RELU", [x], [h])
    mb.op("GATHER", [h, idx], [y], fb.GatherOptionsT())
    with pytest.raises(ConvertError, match=r"#1 GATHER"):
        convert_tflite(mb.build([x], [y]))


def test_int16_activations_refused():
    mb = ModelBuilder()
    x = mb.tensor((1, 8), "int8", Quant(0.05, 0))
    y = mb.tensor((1, 8), "int8", Quant(0.05, 0))
    mb.op("RELU", [x], [y])
    model = bytearray(mb.build([x], [y]))
    m = fb.ModelT.InitFromPackedBuf(bytes(model), 0)
    m.subgraphs[0].tensors[1].type = fb.TensorType.INT16
    import flatbuffers

    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    with pytest.raises(ConvertError, match="INT16"):
        convert_tflite(bytes(b.Output()))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda m: m[: len(m) // 2],
        lambda m: m[:7],
        lambda m: b"\x00" * len(m),
        lambda m: m[:4] + b"XXXX" + m[8:],
        lambda m: bytes(np.random.default_rng(0).integers(0, 256, len(m), dtype=np.uint8)),
    ],
    ids=["truncated-half", "truncated-header", "zeros", "bad-identifier", "random"],
)
def test_corrupt_tflite_refused(mutate):
    model = singleop.build("CONV_2D", seed=1)
    with pytest.raises(ConvertError):
        convert_tflite(mutate(model))


def test_does_not_fit_reports_figures():
    model = singleop.build("CONV_2D", h=16, w=16, cin=8, cout=16, seed=1)
    ok = convert_tflite(model)
    need = ok.report["estimated_heap_bytes"]
    assert convert_tflite(model, heap_limit=need).report["memory_mode"] == "ram"
    # below the in-RAM need the weights may still be streamed from the bundle file, through
    # smaller buffers (smaller tiles) as the limit falls, down to the smallest streamed need
    limit = need - 1
    for _ in range(8):
        try:
            streamed = convert_tflite(model, heap_limit=limit)
        except ConvertError:
            break
        assert streamed.report["memory_mode"] == "stream"
        assert streamed.report["estimated_heap_bytes"] <= limit
        limit = streamed.report["estimated_heap_bytes"] - 1
    with pytest.raises(ConvertError) as e:
        convert_tflite(model, heap_limit=limit)
    msg = str(e.value)
    assert str(need) in msg and str(limit) in msg and "arena" in msg
    assert e.value.report["fits"] is False


def test_softmax_output_quantization_checked():
    mb = ModelBuilder()
    x = mb.tensor((1, 8), "int8", Quant(0.1, 0))
    y = mb.tensor((1, 8), "int8", Quant(0.01, 0))
    mb.op("SOFTMAX", [x], [y], fb.SoftmaxOptionsT())
    with pytest.raises(ConvertError, match="#0 SOFTMAX.*-128"):
        convert_tflite(mb.build([x], [y]))


def test_no_op_of_the_first_supported_set_is_dropped():
    first_set = set(
        "FULLY_CONNECTED CONV_2D DEPTHWISE_CONV_2D MAX_POOL_2D AVERAGE_POOL_2D MEAN ADD MUL "
        "SOFTMAX LOGISTIC TANH RELU RELU6 LEAKY_RELU HARD_SWISH CONCATENATION PAD RESHAPE "
        "EXPAND_DIMS SQUEEZE QUANTIZE DEQUANTIZE".split()
    )
    assert first_set <= set(SUPPORTED_OPS)
