"""Reference runner: the `tflite-micro` interpreter, one sample at a time, and input generators.

TFLM (not desktop LiteRT) is the reference for bit-exactness; see shared/docs/int8-arithmetic.md.
"""

from __future__ import annotations

import numpy as np

from converters import reference

_DTYPES = {
    "int8": np.int8,
    "float32": np.float32,
}


def _arena_size(model: bytes, io_bytes: int) -> int:
    # TFLM's default (10x model size) is too small for tiny models with big activations.
    return max(len(model) * 10, 8 * io_bytes + 256 * 1024)


def tflm_interpreter(model: bytes, arena_size: int | None = None):
    """A tflite-micro interpreter with an arena big enough for our test models."""
    return reference.tflm_interpreter(model, arena_size or _arena_size(model, 0))


def io_details(model: bytes) -> tuple[list[dict], list[dict]]:
    """Input and output tensor details (shape, dtype, quantization) as the TFLM runtime sees them."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

    sg = fb.Model.GetRootAs(bytes(model), 0).Subgraphs(0)
    interp = tflm_interpreter(model)
    ins = [interp.get_input_details(i) for i in range(sg.InputsLength())]
    outs = [interp.get_output_details(i) for i in range(sg.OutputsLength())]
    return ins, outs


def run_tflm(model: bytes, x: np.ndarray, arena_size: int | None = None) -> np.ndarray:
    """converters.reference.run_tflm with an arena sized for the batch's samples."""
    x = np.asarray(x)
    return reference.run_tflm(model, x, arena_size or _arena_size(model, x[0].nbytes * 4))


def random_inputs(shape: tuple[int, ...], n: int, seed: int = 0, dtype=np.int8) -> np.ndarray:
    """n random samples of `shape`; int8 batches always contain -128 and 127 (saturation edges).

    With n >= 3, sample 0 is all -128 and sample 1 all 127; the other samples are uniform with
    -128 planted at their first element and 127 at their last.
    """
    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in shape)
    if np.dtype(dtype) == np.float32:
        return rng.normal(0.0, 2.0, size=(n, *shape)).astype(np.float32)
    x = rng.integers(-128, 128, size=(n, *shape), dtype=np.int16).astype(np.int8)
    flat = x.reshape(n, -1)
    first = 2 if n >= 3 else 0
    if n >= 3:
        flat[0] = -128
        flat[1] = 127
    flat[first:, 0] = -128
    flat[first:, -1] = 127
    return x
