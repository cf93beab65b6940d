"""Full-integer post-training quantization (int8 in and out) and running the int8 model.

QAT: tensorflow-model-optimization's quantize_model needs tf-keras (Keras 2); with the Keras 3
installed here it does not work, so `qat=True` raises a TrainerError saying so.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import numpy as np

from converters.registry import SUPPORTED_OPS
from trainer.errors import TrainerError

ALLOWED_OPS = frozenset(SUPPORTED_OPS)  # what the converter lowers (converters/registry.py)


@dataclass(frozen=True)
class IOQuant:
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int


def check_qat_available() -> None:
    """QAT needs tensorflow-model-optimization working with the installed Keras."""
    try:
        import tensorflow_model_optimization  # noqa: F401
    except Exception as exc:  # ImportError, or its Keras-2 checks failing under Keras 3
        raise TrainerError(
            "quantization-aware training is not available: tensorflow-model-optimization "
            f"does not work with Keras 3 ({type(exc).__name__}: {exc}); use post-training "
            "quantization (the default)"
        ) from None
    import keras

    if int(keras.__version__.split(".")[0]) >= 3:
        raise TrainerError(
            "quantization-aware training is not available: tensorflow-model-optimization "
            f"supports only Keras 2 (tf-keras), this environment has Keras {keras.__version__}; "
            "use post-training quantization (the default)"
        )


def to_int8(model, representative: np.ndarray, max_samples: int = 500) -> bytes:
    """Convert to a full-int8 .tflite with int8 input/output, calibrated on training windows."""
    import tensorflow as tf

    rep = np.asarray(representative, np.float32)
    if len(rep) > max_samples:
        idx = np.random.default_rng(0).choice(len(rep), max_samples, replace=False)
        rep = rep[np.sort(idx)]

    def gen():
        for i in range(len(rep)):
            yield [rep[i : i + 1]]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)  # batch 1: see zoo.deployable
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = gen
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # keras export chatter; keeps --json clean
            return conv.convert()
    except Exception as exc:
        raise TrainerError(f"int8 conversion of model {model.name!r} failed: {exc}") from exc


def tflite_ops(tflite: bytes) -> list[str]:
    """Builtin op names used by a .tflite (via the tflite schema package)."""
    import tflite as schema

    m = schema.Model.GetRootAsModel(tflite, 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    ops = []
    for i in range(m.OperatorCodesLength()):
        oc = m.OperatorCodes(i)
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        ops.append(names.get(code, str(code)))
    return ops


def check_ops(tflite: bytes) -> None:
    bad = sorted(set(tflite_ops(tflite)) - ALLOWED_OPS)
    if bad:
        raise TrainerError(f"model uses ops the board runtime lacks: {', '.join(bad)}")


def _interpreter(tflite: bytes):
    """Desktop LiteRT: ai-edge-litert, else the legacy tflite_runtime (same Interpreter API).

    tflite-runtime 2.14 (its last release) fails under numpy 2, so it is only the fallback for
    machines where nothing newer installs (e.g. an old Raspberry Pi gateway).
    """
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError as exc:
            raise TrainerError(
                "no desktop TFLite interpreter: pip install ai-edge-litert "
                "(or tflite-runtime where only that exists)"
            ) from exc
    return Interpreter(model_content=bytes(tflite))


def io_quant(tflite: bytes) -> IOQuant:
    it = _interpreter(tflite)
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    if i["dtype"] != np.int8 or o["dtype"] != np.int8:
        raise TrainerError("model is not int8 in and out")
    (si, zi), (so, zo) = i["quantization"], o["quantization"]
    return IOQuant(float(si), int(zi), float(so), int(zo))


def run_int8(tflite: bytes, xq: np.ndarray) -> np.ndarray:
    """Run the int8 model (desktop LiteRT) on int8 inputs [n, ...]; int8 outputs [n, ...]."""
    it = _interpreter(tflite)
    it.allocate_tensors()
    i = it.get_input_details()[0]["index"]
    o = it.get_output_details()[0]["index"]
    xq = np.ascontiguousarray(xq, np.int8)
    outs = []
    for k in range(len(xq)):
        it.set_tensor(i, xq[k : k + 1])
        it.invoke()
        outs.append(it.get_tensor(o)[0].copy())
    return np.stack(outs)
