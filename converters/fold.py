"""Fold shape arithmetic into constants at convert time (batch 1, as on the board).

A Keras model with an unspecified batch (the TensorFlow docs' full-integer recipe) computes its
Flatten/Reshape targets at run time: SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE. Every tensor
shape in the file is static (the batch dimension is stored as 1), so these ops have one possible
result; it is computed here and stored as a constant, and the ops disappear from the graph. What
cannot be folded stays in the graph and is refused by validation, naming the op.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from converters.errors import ConvertError
from converters.tflite_reader import TModel, TOp, TTensor

_INT_TYPES = {"INT32": np.int32, "INT64": np.int64}


def _const(model: TModel, idx: int) -> np.ndarray | None:
    if idx < 0:
        return None
    t = model.tensors[idx]
    return None if t.data is None else np.asarray(t.data).reshape(t.shape)


def _shape(model: TModel, op: TOp) -> np.ndarray:
    t = model.tensors[op.inputs[0]]
    if any(d < 0 for d in t.shape):
        raise ValueError("input shape is not static")
    return np.asarray(t.shape, np.int64)


def _strided_slice(model: TModel, op: TOp) -> np.ndarray:
    x, begin, end, strides = (_const(model, i) for i in op.inputs[:4])
    if x is None or begin is None or end is None or strides is None:
        raise ValueError("non-constant input")
    o = op.options
    if o.get("EllipsisMask", 0) or o.get("NewAxisMask", 0):
        raise ValueError("ellipsis/new-axis masks")
    bmask, emask, smask = o.get("BeginMask", 0), o.get("EndMask", 0), o.get("ShrinkAxisMask", 0)
    offset = bool(o.get("Offset", False))
    index: list[slice | int] = []
    for ax in range(len(begin)):
        b, e, s = int(begin[ax]), int(end[ax]), int(strides[ax])
        if offset:
            e = b + e
        if smask >> ax & 1:
            index.append(b)
            continue
        index.append(slice(None if bmask >> ax & 1 else b, None if emask >> ax & 1 else e, s))
    return np.asarray(x[tuple(index)])


def _pack(model: TModel, op: TOp) -> np.ndarray:
    vals = [_const(model, i) for i in op.inputs]
    if any(v is None for v in vals):
        raise ValueError("non-constant input")
    return np.stack(vals, axis=int(op.options.get("Axis", 0)))


def _concat(model: TModel, op: TOp) -> np.ndarray:
    vals = [_const(model, i) for i in op.inputs]
    if any(v is None for v in vals):
        raise ValueError("non-constant input")
    return np.concatenate(vals, axis=int(op.options.get("Axis", 0)))


def _gather(model: TModel, op: TOp) -> np.ndarray:
    x, idx = _const(model, op.inputs[0]), _const(model, op.inputs[1])
    if x is None or idx is None:
        raise ValueError("non-constant input")
    return np.take(x, idx, axis=int(op.options.get("Axis", 0)))


def _binary(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]):
    def fold(model: TModel, op: TOp) -> np.ndarray:
        a, b = _const(model, op.inputs[0]), _const(model, op.inputs[1])
        if a is None or b is None:
            raise ValueError("non-constant input")
        if op.options.get("FusedActivationFunction", "NONE") != "NONE":
            raise ValueError("fused activation")
        return fn(a, b)
    return fold


def _reduce_prod(model: TModel, op: TOp) -> np.ndarray:
    x, axes = _const(model, op.inputs[0]), _const(model, op.inputs[1])
    if x is None or axes is None:
        raise ValueError("non-constant input")
    keep = bool(op.options.get("KeepDims", False))
    return np.prod(x, axis=tuple(int(a) for a in np.atleast_1d(axes)), keepdims=keep)


def _reshape(model: TModel, op: TOp) -> np.ndarray:
    x = _const(model, op.inputs[0])
    if x is None:
        raise ValueError("non-constant input")
    return x.reshape(model.tensors[op.outputs[0]].shape)


# Integer shape-arithmetic ops that fold when all their inputs are known. SHAPE needs only its
# input's static shape; the others need constant inputs (after folding what feeds them).
FOLDERS: dict[str, Callable[[TModel, TOp], np.ndarray]] = {
    "SHAPE": _shape,
    "STRIDED_SLICE": _strided_slice,
    "PACK": _pack,
    "CONCATENATION": _concat,
    "GATHER": _gather,
    "MUL": _binary(np.multiply),
    "ADD": _binary(np.add),
    "SUB": _binary(np.subtract),
    "REDUCE_PROD": _reduce_prod,
    "RESHAPE": _reshape,
    "SQUEEZE": _reshape,
    "EXPAND_DIMS": _reshape,
}


def _foldable(model: TModel, op: TOp) -> bool:
    """Integer-valued ops only: int8/float ops are the model's computation, never folded."""
    if op.name not in FOLDERS or len(op.outputs) != 1:
        return False
    out = model.tensors[op.outputs[0]]
    if out.dtype not in _INT_TYPES or out.quantized:
        return False
    if op.name == "SHAPE":
        return True
    data_inputs = op.inputs[:1] if op.name in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS") else op.inputs
    return all(i >= 0 and model.tensors[i].dtype in _INT_TYPES for i in data_inputs)


def fold_shape_ops(model: TModel) -> list[dict]:
    """Fold every foldable integer shape op of `model` in place (its output becomes a constant,
    the op is removed); returns one report entry per folded op. Repeats until nothing changes,
    so chains (SHAPE -> STRIDED_SLICE -> PACK) fold whatever their order in the file."""
    folded: list[dict] = []
    changed = True
    while changed:
        changed = False
        keep: list[TOp] = []
        for op in model.ops:
            if _foldable(model, op):
                try:
                    value = FOLDERS[op.name](model, op)
                except (ValueError, IndexError, TypeError):
                    keep.append(op)
                    continue
                out: TTensor = model.tensors[op.outputs[0]]
                value = np.asarray(value).astype(_INT_TYPES[out.dtype])
                if out.shape and int(np.prod(out.shape)) != value.size:
                    raise ConvertError(
                        f"op #{op.index} {op.name}: folded value has {value.size} elements, its "
                        f"output tensor {out.index} ({out.name}) declares shape {out.shape}")
                out.data = value.reshape(out.shape) if out.shape else value.reshape(())
                folded.append({"index": op.index, "op": op.name, "folded": True,
                               "value": value.reshape(-1).tolist()})
                changed = True
            else:
                keep.append(op)
        model.ops = keep
    return folded
