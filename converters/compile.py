"""Validate a parsed .tflite model and compile it to a device bundle.

Validation refuses everything the board could not run (float models, unsupported ops, dtypes or
quantization) here, at convert time, with the op name and index; lowering precomputes every
multiplier, shift, folded bias and lookup table; the planner assigns arena offsets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from converters import bundle as B
from converters import lower
from converters.errors import ConvertError
from converters.fold import fold_shape_ops
from converters.plan import Buffer, plan
from converters.registry import ALIAS_OPS, BY_NAME, SUPPORTED_OPS
from converters.tflite_reader import TModel, TTensor

FLOAT_HELP = (
    "EdgeLoop runs int8 models only. Quantize with full-integer post-training quantization: "
    "converter = tf.lite.TFLiteConverter.from_keras_model(model); "
    "converter.optimizations = [tf.lite.Optimize.DEFAULT]; "
    "converter.representative_dataset = <generator yielding ~100 real input samples>; "
    "converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]; "
    "converter.inference_input_type = tf.int8; converter.inference_output_type = tf.int8 "
    "(or `edgeloop train`, which does this)."
)


@dataclass
class Compiled:
    bundle: B.Bundle
    op_reports: list[dict] = field(default_factory=list)


class Builder:
    """Collects bundle tensors/ops while lowering; maps TFLite tensor indices to bundle ids."""

    def __init__(self, model: TModel):
        self.model = model
        self.tensors: list[B.Tensor] = []
        self.ops: list[B.Op] = []
        self.tmap: dict[int, int] = {}
        self.alias_root: dict[int, int] = {}  # bundle id -> root bundle id (arena aliases)
        self.reports: list[dict] = []
        self.alias_reports: list[dict] = []  # RESHAPE/EXPAND_DIMS/SQUEEZE: no op, no cost

    # -- tensors -------------------------------------------------------------------------------
    def t(self, idx: int) -> TTensor:
        return self.model.tensors[idx]

    def act(self, idx: int) -> int:
        """Bundle id of the arena tensor for TFLite tensor idx (created on first use)."""
        if idx in self.tmap:
            return self.tmap[idx]
        tt = self.t(idx)
        dt = {"INT8": B.DT_INT8, "FLOAT32": B.DT_FLOAT32, "INT32": B.DT_INT32}.get(tt.dtype)
        if dt is None:
            raise ConvertError(f"tensor {idx} ({tt.name}): dtype {tt.dtype} unsupported")
        if tt.data is not None:
            if dt != B.DT_INT8:
                raise ConvertError(
                    f"tensor {idx} ({tt.name}): constant {tt.dtype} used as an activation"
                )
            bid = self.const(np.asarray(tt.data, np.int8).reshape(tt.shape), tt.name,
                             *self.qparams(tt))
        else:
            shape = tt.shape if tt.shape else (1,)
            scale, zp = self.qparams(tt)
            bid = len(self.tensors)
            self.tensors.append(
                B.Tensor(dt, B.KIND_ARENA, tuple(shape), 0, B.tensor_nbytes(dt, shape), zp,
                         scale, name=tt.name)
            )
            self.alias_root[bid] = bid
        self.tmap[idx] = bid
        return bid

    @staticmethod
    def qparams(tt: TTensor) -> tuple[float, int]:
        if not tt.quantized:
            return 0.0, 0
        return float(tt.scale[0]), int(tt.zero_point[0])

    def const(self, arr: np.ndarray, name: str, scale: float = 0.0, zp: int = 0) -> int:
        arr = np.ascontiguousarray(arr)
        dt = B.NP_DTYPE[arr.dtype]
        shape = arr.shape if arr.ndim else (1,)
        if len(shape) > B.MAX_DIMS:
            shape = (int(arr.size),)
        bid = len(self.tensors)
        self.tensors.append(
            B.Tensor(dt, B.KIND_CONST, tuple(shape), 0, arr.nbytes, zp, scale,
                     data=arr.tobytes(), name=name)
        )
        return bid

    def alias(self, src_idx: int, dst_idx: int) -> None:
        src = self.act(src_idx)
        st = self.tensors[src]
        dt = self.t(dst_idx)
        shape = dt.shape if dt.shape else (1,)
        scale, zp = self.qparams(dt)
        if st.kind == B.KIND_CONST:
            bid = len(self.tensors)
            self.tensors.append(B.Tensor(st.dtype, B.KIND_CONST, tuple(shape), 0, st.nbytes, zp,
                                         scale, data=st.data, name=dt.name))
        else:
            bid = len(self.tensors)
            self.tensors.append(B.Tensor(st.dtype, B.KIND_ARENA, tuple(shape), 0, st.nbytes, zp,
                                         scale, name=dt.name))
            self.alias_root[bid] = self.alias_root[src]
        self.tmap[dst_idx] = bid

    def emit(self, name: str, ids: list[int], params: list[int], report: dict) -> None:
        """Append a bundle record of the registry op `name` (its tensor and param counts are
        checked here, so a lowering that disagrees with the registry fails at convert time)."""
        spec = BY_NAME[name]
        if spec.params is not None and (len(ids), len(params)) != (spec.tensors, len(spec.params)):
            raise ConvertError(f"{name} record with {len(ids)} tensors/{len(params)} params, "
                               f"the registry says {spec.tensors}/{len(spec.params)}")
        self.ops.append(B.Op(spec.opcode, ids, [int(p) for p in params]))
        self.reports.append(report)


def _is_float(tt: TTensor) -> bool:
    return tt.dtype in ("FLOAT32", "FLOAT16", "FLOAT64")


# How to avoid an unsupported op, for the ones users meet most.
_SHAPE_HELP = ("shape arithmetic the converter could not fold to constants (it folds SHAPE, "
               "STRIDED_SLICE, PACK, ... at batch 1 when every shape is static): build the "
               "model with a fixed batch, keras.Input(shape, batch_size=1)")
UNSUPPORTED_HELP = {
    **{k: _SHAPE_HELP for k in ("SHAPE", "STRIDED_SLICE", "PACK", "GATHER", "REDUCE_PROD",
                                "FILL", "BROADCAST_TO", "RANGE")},
    "TRANSPOSE": "keep tensors channels-last (NHWC) instead of Permute/transpose layers",
    "BATCH_MATMUL": "use Dense on a flattened input instead of a batched matmul",
    "CAST": "keep the graph int8 end to end (no tf.cast inside the model)",
}


def validate(model: TModel) -> None:
    """Refuse at convert time what the board cannot run, naming the op and where it is."""
    bad = [op for op in model.ops if op.name not in SUPPORTED_OPS]
    if bad:
        names = [f"#{op.index} {op.name}" for op in bad]
        hints = []
        for op in bad:
            h = UNSUPPORTED_HELP.get(op.name)
            if h and h not in hints:
                hints.append(h)
        raise ConvertError(
            f"unsupported op(s): {', '.join(names)} (op index in the .tflite subgraph 0). "
            + (f"To avoid: {'; '.join(hints)}. " if hints else "")
            + f"Supported: {', '.join(SUPPORTED_OPS)}."
        )
    for op in model.ops:
        if op.name in ("QUANTIZE", "DEQUANTIZE"):
            continue
        for i in op.inputs + op.outputs:
            if i < 0:
                continue
            tt = model.tensors[i]
            if _is_float(tt):
                raise ConvertError(
                    f"float model: op #{op.index} {op.name} works on {tt.dtype} tensor "
                    f"{i} ({tt.name}). {FLOAT_HELP}"
                )
    for i in model.inputs + model.outputs:
        tt = model.tensors[i]
        if tt.dtype not in ("INT8", "FLOAT32"):
            raise ConvertError(f"model input/output tensor {i} ({tt.name}) is {tt.dtype}; "
                               "EdgeLoop needs int8 input and output (inference_input_type/"
                               "inference_output_type = tf.int8)")


def compile_model(model: TModel) -> Compiled:
    folded = fold_shape_ops(model)  # batch-1 shape arithmetic (dynamic-batch exports)
    validate(model)
    b = Builder(model)
    for r in folded:  # listed like aliases: no op on the board, no cost
        b.alias_reports.append({"index": r["index"], "op": r["op"], "macs": 0, "params": 0,
                                "output_shape": [len(r["value"])], "alias": True,
                                "folded": r["value"]})
    for i in model.inputs:
        b.act(i)
    for op in model.ops:
        try:
            if op.name in ALIAS_OPS:
                b.alias(op.inputs[0], op.outputs[0])
                b.alias_reports.append({"index": op.index, "op": op.name, "macs": 0, "params": 0,
                                        "output_shape": list(b.t(op.outputs[0]).shape),
                                        "alias": True})
                continue
            lower.LOWER[op.name](b, op)
        except ConvertError as e:
            msg = str(e)
            if not msg.startswith("op #"):
                msg = f"op #{op.index} {op.name}: {msg}"
            raise ConvertError(msg) from None
    ins = [b.act(i) for i in model.inputs]
    outs = [b.act(i) for i in model.outputs]
    arena = _plan_arena(b, ins, outs)
    bun = B.Bundle(b.tensors, b.ops, ins, outs, arena)
    reports = sorted(b.reports + b.alias_reports, key=lambda r: r["index"])
    return Compiled(bun, reports)


def _plan_arena(b: Builder, ins: list[int], outs: list[int]) -> int:
    roots: dict[int, Buffer] = {}
    n = len(b.ops)

    def touch(bid: int, k: int) -> None:
        if b.tensors[bid].kind != B.KIND_ARENA:
            return
        r = b.alias_root[bid]
        buf = roots.get(r)
        if buf is None:
            roots[r] = Buffer(r, b.tensors[r].nbytes, k, k)
        else:
            buf.first = min(buf.first, k)
            buf.last = max(buf.last, k)

    for bid in ins:
        touch(bid, -1)
    for k, op in enumerate(b.ops):
        for bid in op.tensors:
            touch(bid, k)
    for bid in outs:
        touch(bid, n)
    arena = plan(list(roots.values()))
    for bid, t in enumerate(b.tensors):
        if t.kind == B.KIND_ARENA:
            r = b.alias_root[bid]
            t.offset = roots[r].offset if r in roots else 0
    return arena

