"""At least 20 random Keras architectures quantized by TensorFlow: golden executor == TFLM and
virtual board == TFLM, on random inputs that include -128 and 127."""

from __future__ import annotations

import pytest
from factory import exact, keras_models

N_MODELS = 20
SEEDS = keras_models.usable_seeds(N_MODELS)


def _desc(seed: int) -> str:
    return f"keras_models.keras_tflite({seed}) ops={keras_models.tflite_ops(keras_models.keras_tflite(seed))}"


@pytest.mark.parametrize("seed", SEEDS)
def test_golden_equals_tflm(seed: int) -> None:
    model = keras_models.keras_tflite(seed)
    exact.golden_vs_tflm(model, exact.model_inputs(model, 16, seed), _desc(seed))


@pytest.mark.parametrize("kernels", ["bytecode", "viper"])
@pytest.mark.parametrize("seed", SEEDS)
def test_virtual_board_equals_tflm(seed: int, kernels: str) -> None:
    model = keras_models.keras_tflite(seed)
    _, stats = exact.device_vs_tflm(model, exact.model_inputs(model, 6, seed), _desc(seed),
                                    kernels=kernels)  # fmt: skip
    assert stats["kernels"] == kernels


def test_enough_architectures() -> None:
    assert len(SEEDS) == N_MODELS
