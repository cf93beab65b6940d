"""The vibration 1D-CNN and the keyword-spotting DS-CNN on the virtual board within the ESP32's
100 KB heap profile, == tflite-micro with each kernel set (random Keras architectures on the
board: tests/exactness/test_keras_exact.py)."""

from __future__ import annotations

import pytest
from factory import exact, random_inputs
from factory.tflm import io_details

from benchmarks.models import benchmark_model
from edgeloop.infer import run_batch_virtual


@pytest.mark.parametrize("name", ["vibration_cnn1d", "kws_dscnn"])
def test_benchmark_model_on_esp32_profile(name: str, kernels: str, to_bundle) -> None:
    tflite = benchmark_model(name)
    ins, _ = io_details(tflite)
    x = random_inputs(tuple(ins[0]["shape"]), 3, seed=1)
    y, stats = run_batch_virtual(to_bundle(tflite), x, profile="esp32", kernels=kernels)
    exact.matches_tflm(y, tflite, x, f"virtual board, esp32 profile ({kernels} kernels)", name)
    assert 0 < stats["model_heap_bytes"] < 100 * 1024
