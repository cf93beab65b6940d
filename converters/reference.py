"""The reference interpreters a board's outputs are judged against, imported only when used.

TFLM's own runtime (pip `tflite-micro`) is the bit-exact reference for microcontroller int8
inference. Desktop LiteRT (used by trainer/ to score accuracy) can differ from TFLM by 1 LSB, so
it is never used for exactness.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np

from converters.errors import ConvertError

DEFAULT_TFLM_ARENA = 8 << 20  # generous; print_allocations reports what is really used


def tflm_interpreter(tflite: bytes, arena_size: int = DEFAULT_TFLM_ARENA):
    """A tflite-micro interpreter for a model (TFLM's reference kernels)."""
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConvertError(
            "the TFLM reference needs the 'tflite-micro' package (pip install tflite-micro)"
        ) from exc
    return runtime.Interpreter.from_bytes(bytes(tflite), arena_size=arena_size)


def run_tflm(tflite: bytes, x: np.ndarray, arena_size: int = DEFAULT_TFLM_ARENA) -> np.ndarray:
    """Outputs of a single-input, single-output model for a batch (first axis = batch) in TFLM.

    Each x[i] has the model's input shape; returns an array shaped (len(x), *output_shape).
    """
    interp = tflm_interpreter(tflite, arena_size)
    detail = interp.get_input_details(0)
    shape = tuple(int(d) for d in detail["shape"])
    x = np.asarray(x)
    if x.ndim == len(shape) and shape[0] == 1:  # a batch of samples without the batch-1 axis
        x = x.reshape(len(x), *shape)
    if tuple(x.shape[1:]) != shape:
        raise ConvertError(f"TFLM reference: input batch {x.shape} does not fit model input {shape}")
    outputs = []
    for sample in x:
        interp.set_input(np.ascontiguousarray(sample.astype(detail["dtype"])), 0)
        interp.invoke()
        outputs.append(np.array(interp.get_output(0), copy=True))
    return np.stack(outputs)


def capture_fd_stderr(fn: Callable[[], Any]) -> tuple[Any, str]:
    """Call fn with file descriptor 2 captured: TFLM's C++ prints there, past sys.stderr."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            result = fn()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        return result, tmp.read().decode(errors="replace")


def tflm_arena_bytes(interp) -> dict[str, int]:
    """Arena use TFLM reports after an invoke ('Arena allocation total/head/tail N bytes')."""
    _, text = capture_fd_stderr(interp.print_allocations)
    found = {k: int(v) for k, v in re.findall(r"Arena allocation (\w+) (\d+) bytes", text)}
    if "total" not in found:
        raise ConvertError(f"no 'Arena allocation total' in TFLM's print_allocations:\n{text}")
    return found

