"""Read a .tflite flatbuffer through the maintained `tflite` schema package into plain Python data.

The rest of the converter works on these small dataclasses, so it never touches flatbuffer
accessors and its errors can name tensors and ops by index.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import tflite

from converters.errors import ConvertError


def _enum_names(cls: type) -> dict[int, str]:
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


BUILTIN_NAMES = _enum_names(tflite.BuiltinOperator)
TENSOR_TYPE_NAMES = _enum_names(tflite.TensorType)
OPTIONS_NAMES = _enum_names(tflite.BuiltinOptions)
PADDING_NAMES = _enum_names(tflite.Padding)
ACTIVATION_NAMES = _enum_names(tflite.ActivationFunctionType)

NP_TYPES = {
    "FLOAT32": np.float32, "FLOAT16": np.float16, "INT32": np.int32, "UINT8": np.uint8,
    "INT64": np.int64, "INT16": np.int16, "INT8": np.int8, "FLOAT64": np.float64,
    "BOOL": np.bool_, "UINT32": np.uint32, "UINT16": np.uint16,
}

_SKIP_SUFFIXES = ("AsNumpy", "Length", "IsNone", "BufferHasIdentifier")


@dataclass
class TTensor:
    index: int
    name: str
    dtype: str  # TFLite TensorType name: "INT8", "FLOAT32", ...
    shape: tuple[int, ...]
    scale: np.ndarray  # float32, empty when not quantized
    zero_point: np.ndarray  # int64
    quantized_dimension: int
    data: np.ndarray | None  # constant data (shaped), None for activations

    @property
    def quantized(self) -> bool:
        return self.scale.size > 0

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1


@dataclass
class TOp:
    index: int
    name: str  # builtin op name, e.g. "CONV_2D" (custom ops: "CUSTOM:<code>")
    inputs: list[int]  # -1 = optional input absent
    outputs: list[int]
    options: dict = field(default_factory=dict)


@dataclass
class TModel:
    tensors: list[TTensor]
    ops: list[TOp]
    inputs: list[int]
    outputs: list[int]
    n_subgraphs: int
    version: int


def _read_options(op: tflite.Operator) -> dict:
    """All scalar fields of the op's builtin options table, by schema field name."""
    otype = op.BuiltinOptionsType()
    if otype == 0:
        return {}
    cname = OPTIONS_NAMES.get(otype)
    cls = getattr(tflite, cname, None) if cname else None
    table = op.BuiltinOptions()
    if cls is None or table is None:
        return {}
    obj = cls()
    obj.Init(table.Bytes, table.Pos)
    out: dict = {}
    for name in dir(cls):
        if name.startswith(("_", "GetRootAs", "Init")) or name.endswith(_SKIP_SUFFIXES):
            continue
        try:
            val = getattr(obj, name)()
        except TypeError:  # vector accessor needing an index
            continue
        if isinstance(val, (int, float, bool, np.integer, np.floating)):
            out[name] = val.item() if hasattr(val, "item") else val
    if "Padding" in out:
        out["Padding"] = PADDING_NAMES.get(out["Padding"], out["Padding"])
    if "FusedActivationFunction" in out:
        out["FusedActivationFunction"] = ACTIVATION_NAMES.get(
            out["FusedActivationFunction"], out["FusedActivationFunction"]
        )
    return out


def _buffer_data(model: tflite.Model, raw: bytes, idx: int) -> bytes | None:
    if idx <= 0 or idx >= model.BuffersLength():
        return None
    buf = model.Buffers(idx)
    if buf.Offset() > 1:  # large model: data stored after the flatbuffer
        off, size = buf.Offset(), buf.Size()
        if off + size > len(raw):
            raise ConvertError(f"buffer {idx} points past the end of the file (truncated?)")
        return raw[off : off + size]
    if buf.DataLength() == 0:
        return None
    return buf.DataAsNumpy().tobytes()


def read_tflite(raw: bytes) -> TModel:
    """Parse the first subgraph of a .tflite model; ConvertError on anything malformed."""
    raw = bytes(raw)
    if len(raw) < 8 or raw[4:8] != b"TFL3":
        raise ConvertError(
            "not a .tflite flatbuffer (missing 'TFL3' identifier): file corrupt or wrong format"
        )
    try:
        model = tflite.Model.GetRootAs(raw, 0)
        return _read(model, raw)
    except ConvertError:
        raise
    except Exception as e:  # flatbuffer accessors raise assorted errors on bad offsets
        raise ConvertError(f"malformed or truncated .tflite file ({type(e).__name__}: {e})") from e


def _read(model: tflite.Model, raw: bytes) -> TModel:
    if model.SubgraphsLength() < 1:
        raise ConvertError("model has no subgraph")
    sg = model.Subgraphs(0)
    tensors = []
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        dtype = TENSOR_TYPE_NAMES.get(t.Type(), f"TYPE{t.Type()}")
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        q = t.Quantization()
        scale = np.zeros(0, np.float32)
        zp = np.zeros(0, np.int64)
        qdim = 0
        if q is not None and q.ScaleLength() > 0:
            scale = q.ScaleAsNumpy().astype(np.float32)
            zp = (q.ZeroPointAsNumpy().astype(np.int64) if q.ZeroPointLength()
                  else np.zeros(scale.size, np.int64))
            qdim = q.QuantizedDimension()
        data = None
        blob = _buffer_data(model, raw, t.Buffer())
        if blob is not None:
            npt = NP_TYPES.get(dtype)
            if npt is None:
                data = np.frombuffer(blob, np.uint8)
            else:
                data = np.frombuffer(blob, npt)
                if int(np.prod(shape, dtype=np.int64)) == data.size:
                    data = data.reshape(shape)
        name = t.Name().decode("utf-8", "replace") if t.Name() else f"t{i}"
        tensors.append(TTensor(i, name, dtype, shape, scale, zp, qdim, data))
    ops = []
    for k in range(sg.OperatorsLength()):
        o = sg.Operators(k)
        oc = model.OperatorCodes(o.OpcodeIndex())
        code = max(oc.DeprecatedBuiltinCode(), oc.BuiltinCode())
        name = BUILTIN_NAMES.get(code, f"BUILTIN_{code}")
        if name == "CUSTOM":
            cc = oc.CustomCode()
            name = f"CUSTOM:{cc.decode() if cc else '?'}"
        ins = [int(x) for x in o.InputsAsNumpy()] if o.InputsLength() else []
        outs = [int(x) for x in o.OutputsAsNumpy()] if o.OutputsLength() else []
        ops.append(TOp(k, name, ins, outs, _read_options(o)))
    inputs = [int(x) for x in sg.InputsAsNumpy()] if sg.InputsLength() else []
    outputs = [int(x) for x in sg.OutputsAsNumpy()] if sg.OutputsLength() else []
    return TModel(tensors, ops, inputs, outputs, model.SubgraphsLength(), model.Version())
