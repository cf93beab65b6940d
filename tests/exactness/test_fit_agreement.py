"""The convert-time fit check and the board agree: a model the converter accepts for a board's
heap (convert_tflite(heap_limit=...)) must load and run on that board, exactly as TFLM
(issue 3: refuse at convert time, never at run time on a board)."""

from __future__ import annotations

import pytest
from factory import exact, keras_models

from benchmarks.models import benchmark_model
from edgeloop.boards import get_board

# random architectures whose activations and weights come close to a 100 KB heap
NEAR_LIMIT_SEEDS = [26, 55]


def _check(model: bytes, desc: str) -> None:
    import converters
    from converters.errors import ConvertError

    board = get_board("virtual")
    try:
        converters.convert_tflite(model, heap_limit=board.heap_bytes)
    except ConvertError:
        pytest.skip(f"{desc}: refused at convert time for {board.heap_bytes} B (consistent)")
    exact.device_vs_tflm(model, exact.model_inputs(model, 2, 0), desc, kernels="viper")


@pytest.mark.parametrize("name", ["vibration_cnn1d", "kws_dscnn"])
def test_benchmark_model_accepted_means_runs(name: str) -> None:
    _check(benchmark_model(name), name)


@pytest.mark.parametrize("seed", NEAR_LIMIT_SEEDS)
def test_keras_model_accepted_means_runs(seed: int) -> None:
    _check(keras_models.keras_tflite(seed), f"keras_models.keras_tflite({seed})")
