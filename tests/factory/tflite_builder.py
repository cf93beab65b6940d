"""A TFLite flatbuffer writer for test models (no TensorFlow): tensors, constant buffers,
operators and their options, with the object API of the TFLite schema generated inside the
`tflite-micro` package (same schema as the `tflite` reader package, file identifier TFL3)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import flatbuffers
import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

ACTIVATIONS = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3}
PADDINGS = {"SAME": 0, "VALID": 1}
_TYPES = {
    "float32": fb.TensorType.FLOAT32,
    "int8": fb.TensorType.INT8,
    "int32": fb.TensorType.INT32,
}
_NP = {"float32": np.float32, "int8": np.int8, "int32": np.int32}


@dataclass(frozen=True)
class Quant:
    """Affine quantization of one tensor: per-tensor (scalars) or per-axis (sequences)."""

    scale: float | Sequence[float]
    zero_point: int | Sequence[int] = 0
    dim: int = 0

    def to_fb(self) -> fb.QuantizationParametersT:
        q = fb.QuantizationParametersT()
        scales = [float(s) for s in np.atleast_1d(self.scale)]
        zps = [int(z) for z in np.atleast_1d(self.zero_point)]
        if len(zps) == 1 and len(scales) > 1:
            zps = zps * len(scales)
        q.scale = scales
        q.zeroPoint = zps
        q.quantizedDimension = self.dim
        return q


class ModelBuilder:
    """Accumulates tensors, constant buffers and operators; `build` packs the flatbuffer."""

    def __init__(self) -> None:
        self.tensors: list[fb.TensorT] = []
        self.buffers: list[fb.BufferT] = [fb.BufferT()]  # buffer 0: the empty sentinel
        self.opcodes: list[int] = []
        self.operators: list[fb.OperatorT] = []

    def tensor(
        self,
        shape: Sequence[int],
        dtype: str = "int8",
        quant: Quant | None = None,
        data: np.ndarray | None = None,
        name: str = "",
    ) -> int:
        t = fb.TensorT()
        t.shape = [int(s) for s in shape]
        t.type = _TYPES[dtype]
        t.name = name or f"t{len(self.tensors)}"
        t.buffer = 0
        if data is not None:
            arr = np.ascontiguousarray(np.asarray(data, dtype=_NP[dtype]))
            if arr.size != math.prod(t.shape):
                raise ValueError(f"tensor {t.name}: data size {arr.size} != shape {t.shape}")
            buf = fb.BufferT()
            buf.data = np.frombuffer(arr.tobytes(), dtype=np.uint8)
            self.buffers.append(buf)
            t.buffer = len(self.buffers) - 1
        else:
            buf = fb.BufferT()
            self.buffers.append(buf)
            t.buffer = len(self.buffers) - 1
        if quant is not None:
            t.quantization = quant.to_fb()
        self.tensors.append(t)
        return len(self.tensors) - 1

    def const_i32(
        self, values: Sequence[int] | np.ndarray, shape: Sequence[int] | None = None
    ) -> int:
        arr = np.asarray(values, dtype=np.int32)
        return self.tensor(arr.shape if shape is None else shape, "int32", data=arr)

    def op(
        self,
        name: str,
        inputs: Sequence[int],
        outputs: Sequence[int],
        options: object | None = None,
        version: int = 1,
    ) -> None:
        code = getattr(fb.BuiltinOperator, name)
        if code not in self.opcodes:
            self.opcodes.append(code)
        o = fb.OperatorT()
        o.opcodeIndex = self.opcodes.index(code)
        o.inputs = [int(i) for i in inputs]
        o.outputs = [int(i) for i in outputs]
        if options is not None:
            opt_name = type(options).__name__[:-1]  # Conv2DOptionsT -> Conv2DOptions
            o.builtinOptionsType = getattr(fb.BuiltinOptions, opt_name)
            o.builtinOptions = options
        self.operators.append(o)

    def build(self, inputs: Sequence[int], outputs: Sequence[int], description: str = "") -> bytes:
        sg = fb.SubGraphT()
        sg.tensors = self.tensors
        sg.inputs = list(inputs)
        sg.outputs = list(outputs)
        sg.operators = self.operators
        sg.name = "main"
        m = fb.ModelT()
        m.version = 3
        m.description = description or "edgeloop test factory"
        codes = []
        for c in self.opcodes:
            oc = fb.OperatorCodeT()
            oc.builtinCode = c
            oc.deprecatedBuiltinCode = min(c, 127)
            oc.version = 1
            codes.append(oc)
        m.operatorCodes = codes
        m.subgraphs = [sg]
        m.buffers = self.buffers
        b = flatbuffers.Builder(1024)
        b.Finish(m.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())
