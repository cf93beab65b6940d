"""The one oracle: every test that judges our outputs compares them with the tflite-micro
runtime here.

matches_tflm runs the model in TFLM and asserts equality with numpy.testing.assert_array_equal
(never allclose); golden_vs_tflm and device_vs_tflm are the golden executor's and the virtual
board's use of it. A failure message carries the model description so the case can be rebuilt
with singleop.build(**description) or keras_models.keras_tflite(seed).
"""

from __future__ import annotations

import numpy as np

from factory.tflm import io_details, random_inputs, run_tflm


def _float_input_quant(model: bytes) -> tuple[float, int] | None:
    """(scale, zero point) the float input is quantized to by the QUANTIZE op that reads it."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

    m = fb.Model.GetRootAs(bytes(model), 0)
    sg = m.Subgraphs(0)
    tin = sg.Inputs(0)
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        code = m.OperatorCodes(op.OpcodeIndex())
        is_q = max(code.BuiltinCode(), code.DeprecatedBuiltinCode()) == fb.BuiltinOperator.QUANTIZE
        if is_q and op.Inputs(0) == tin:
            q = sg.Tensors(op.Outputs(0)).Quantization()
            return float(q.Scale(0)), int(q.ZeroPoint(0))
    return None


def model_inputs(model: bytes, n: int, seed: int = 0) -> np.ndarray:
    """A batch of n inputs for the model: int8 with -128/127 planted; for a float input, normal
    values plus the rounding corners of its quantization (exact half-steps, 0, far out of
    range)."""
    ins, _ = io_details(model)
    shape = tuple(int(d) for d in ins[0]["shape"])
    x = random_inputs(shape, n, seed=seed, dtype=ins[0]["dtype"])
    if x.dtype == np.float32:
        quant = _float_input_quant(model)
        if quant is not None:
            scale, zp = quant
            rng = np.random.default_rng(seed + 1)
            flat = x.reshape(n, -1)
            k = rng.integers(-140, 140, size=flat.shape)
            ties = ((k - zp + 0.5) * scale).astype(np.float32)
            pick = rng.random(flat.shape) < 0.3
            flat[pick] = ties[pick]
            flat[:, 0] = 0.0
            if flat.shape[1] > 2:
                # far out of range, yet |x / scale| < 2**31: beyond that TFLM's float->int32
                # cast is undefined behaviour (x86 gives INT32_MIN, so -1e6 quantizes to 127)
                flat[:, 1], flat[:, 2] = 1e5 * scale, -1e5 * scale
    return x


def assert_same(ours: np.ndarray, ref: np.ndarray, what: str, desc: object) -> None:
    """Equal values, batch by batch; our executors may drop the model's leading batch-1 dim."""
    ours = np.asarray(ours)
    assert ours.dtype == ref.dtype, f"{what}: dtype {ours.dtype} != TFLM {ref.dtype} for {desc}"
    assert ours.size == ref.size, f"{what}: shape {ours.shape} != TFLM {ref.shape} for {desc}"
    ours = ours.reshape(ref.shape)
    bad = np.argwhere(ours != ref)
    detail = ""
    if len(bad):
        i = tuple(int(v) for v in bad[0])
        detail = (
            f"; {len(bad)}/{ref.size} differ, first at {i}: ours {ours[i]} vs TFLM {ref[i]}"
            f" (max |diff| {np.max(np.abs(ours.astype(np.float64) - ref.astype(np.float64)))})"
        )
    np.testing.assert_array_equal(ours, ref, err_msg=f"{what} != TFLM for {desc}{detail}")


def matches_tflm(ours: np.ndarray, model: bytes, x: np.ndarray, what: str,
                 desc: object = "") -> np.ndarray:
    """Run x through the tflite-micro runtime and assert `ours` equals it, element for element;
    returns the TFLM output."""
    ref = run_tflm(model, x)
    assert_same(ours, ref, what, desc)
    return ref


def golden_vs_tflm(model: bytes, x: np.ndarray, desc: object) -> np.ndarray:
    """Convert, run the golden executor and TFLM on x, assert equality; returns the TFLM output."""
    import converters
    from converters.golden import run_bundle

    bundle = converters.convert_tflite(model).bundle
    return matches_tflm(run_bundle(bundle, x), model, x, "golden", desc)


def device_vs_tflm(
    model: bytes, x: np.ndarray, desc: object, kernels: str = "auto", profile: str = "virtual"
) -> tuple[np.ndarray, dict]:
    """Convert and run x on the virtual board (edgeloop.infer.run_batch_virtual); assert it equals
    TFLM. Returns (TFLM output, board stats)."""
    import converters
    from edgeloop.infer import run_batch_virtual

    bundle = converters.convert_tflite(model).bundle
    y, stats = run_batch_virtual(bundle, x, profile, kernels=kernels)
    what = f"virtual board ({stats.get('kernels', kernels)} kernels)"
    return matches_tflm(y, model, x, what, desc), stats
