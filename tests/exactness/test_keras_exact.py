"""At least 20 random Keras architectures quantized by TensorFlow: golden executor == TFLM and
virtual board == TFLM, on random inputs that include -128 and 127."""

from __future__ import annotations

import numpy as np
import pytest
from factory import exact, keras_models

N_MODELS = 20
SEEDS = keras_models.usable_seeds(N_MODELS)


def _desc(seed: int) -> str:
    return f"keras_models.keras_tflite({seed}) ops={keras_models.tflite_ops(keras_models.keras_tflite(seed))}"


@pytest.mark.parametrize("seed", SEEDS)
def test_golden_equals_tflm(seed: int) -> None:
    import converters

    model = keras_models.keras_tflite(seed)
    exact.golden_vs_tflm(model, exact.model_inputs(model, 16, seed), _desc(seed))
    assert converters.convert_tflite(model).report["arena_bytes"] > 0


@pytest.mark.parametrize("kernels", ["bytecode", "viper"])
@pytest.mark.parametrize("seed", SEEDS)
def test_virtual_board_equals_tflm(seed: int, kernels: str) -> None:
    model = keras_models.keras_tflite(seed)
    _, stats = exact.device_vs_tflm(model, exact.model_inputs(model, 6, seed), _desc(seed),
                                    kernels=kernels)  # fmt: skip
    assert stats["kernels"] == kernels


FLOAT_IO_SEEDS = SEEDS[:4]


@pytest.mark.parametrize("seed", FLOAT_IO_SEEDS)
def test_float_io_models_golden_and_board_equal_tflm(seed: int) -> None:
    """Float32 in/out models: the QUANTIZE/DEQUANTIZE edges in a real graph, host and board."""
    model = keras_models.keras_tflite(seed, float_io=True)
    ops = keras_models.tflite_ops(model)
    assert ops[0] == "QUANTIZE" and ops[-1] == "DEQUANTIZE", ops
    x = exact.model_inputs(model, 6, seed)
    assert x.dtype == np.float32
    desc = f"keras_models.keras_tflite({seed}, float_io=True)"
    exact.golden_vs_tflm(model, x, desc)
    exact.device_vs_tflm(model, x, desc, kernels="viper")


def test_enough_architectures() -> None:
    """usable_seeds returns N_MODELS seeds or raises; what counts is that they are different
    architectures, not the same graph with other weights: their op sequences all differ."""
    op_lists = {tuple(keras_models.tflite_ops(keras_models.keras_tflite(s))) for s in SEEDS}
    assert len(SEEDS) == N_MODELS and len(op_lists) == N_MODELS, sorted(op_lists)
