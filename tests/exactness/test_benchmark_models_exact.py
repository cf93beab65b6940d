"""The benchmark models (benchmarks/models.py): golden executor == TFLM on the host.
(Board timings and board exactness for them are `make bench`, not a timed test.)"""

from __future__ import annotations

import pytest
from factory import exact

from benchmarks.models import RECIPES, benchmark_model


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_golden_equals_tflm(name: str) -> None:
    import converters

    model = benchmark_model(name)
    exact.golden_vs_tflm(model, exact.model_inputs(model, 4, 0), name)
    report = converters.convert_tflite(model).report
    assert report["bundle_bytes"] <= report["tflite_bytes"]


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_virtual_board_viper_equals_tflm(name: str) -> None:
    """Viper kernels at benchmark sizes (long dot products, wide layers, unroll remainders).
    The heap is the ESP32-S3 profile's: ResNet-8 and the autoencoder exceed a plain ESP32's."""
    model = benchmark_model(name)
    _, stats = exact.device_vs_tflm(model, exact.model_inputs(model, 3, 1), name,
                                    kernels="viper", profile="esp32s3")  # fmt: skip
    assert stats["kernels"] == "viper"
