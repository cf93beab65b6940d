"""The four benchmark models (benchmarks/models.py): golden executor == TFLM on the host.
(Board timings and board exactness for them are `make bench`, not a timed test.)"""

from __future__ import annotations

import pytest
from factory import exact

from benchmarks.models import RECIPES, benchmark_model


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_golden_equals_tflm(name: str) -> None:
    model = benchmark_model(name)
    exact.golden_vs_tflm(model, exact.model_inputs(model, 4, 0), name)
