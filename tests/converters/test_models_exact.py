"""Whole models against tflite-micro: random Keras architectures quantized by TensorFlow (from
the shared factory, cached under build/cache/) and the benchmark models (Conv1D vibration CNN,
KWS DS-CNN, ResNet-8, FC autoencoder)."""

from __future__ import annotations

import pytest
from factory.keras_models import keras_tflite, usable_seeds

from benchmarks.models import RECIPES, benchmark_model

N_KERAS = 20


@pytest.fixture(scope="module")
def keras_seeds():
    return usable_seeds(N_KERAS)


@pytest.mark.parametrize("k", range(N_KERAS))
def test_random_keras_model_exact(k, keras_seeds, check_exact):
    report = check_exact(keras_tflite(keras_seeds[k]), n=6, seed=k)
    assert report["arena_bytes"] > 0


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_benchmark_model_exact(name, check_exact):
    model = benchmark_model(name)
    report = check_exact(model, n=4, seed=1)
    assert report["bundle_bytes"] <= report["tflite_bytes"]
