"""Whole Keras models quantized by TensorFlow (the factory's seeded random architectures, cached
under build/cache/) on the virtual board: board == golden == tflite-micro with each kernel set, and
the vibration 1D-CNN and the keyword-spotting DS-CNN within the ESP32's 100 KB heap profile."""

from __future__ import annotations

import pytest
from factory import exact, random_inputs
from factory.tflm import io_details

from benchmarks.models import benchmark_model
from edgeloop.infer import run_batch_virtual

SEEDS = range(0, 6)


@pytest.fixture(scope="module")
def keras_models() -> list[tuple[int, bytes]]:
    from factory import keras_models

    return [(s, keras_models.keras_tflite(s)) for s in keras_models.usable_seeds(len(SEEDS))]


def test_random_keras_models_exact(keras_models, kernels: str, three_way) -> None:
    for seed, model in keras_models:
        ins, _ = io_details(model)
        x = random_inputs(tuple(ins[0]["shape"]), 4, seed=seed)
        three_way(model, x, kernels)


@pytest.mark.parametrize("name", ["vibration_cnn1d", "kws_dscnn"])
def test_benchmark_model_on_esp32_profile(name: str, kernels: str, to_bundle) -> None:
    tflite = benchmark_model(name)
    ins, _ = io_details(tflite)
    x = random_inputs(tuple(ins[0]["shape"]), 3, seed=1)
    y, stats = run_batch_virtual(to_bundle(tflite), x, profile="esp32", kernels=kernels)
    exact.matches_tflm(y, tflite, x, f"virtual board, esp32 profile ({kernels} kernels)", name)
    assert 0 < stats["model_heap_bytes"] < 100 * 1024
