"""Random multi-op graphs built without TensorFlow (factory.graphs): long-lived tensors, alias
chains, joins of branches, broadcasts between runtime tensors. Golden == TFLM over many draws,
and the virtual board == TFLM over a subset, for both kernel sets."""

from __future__ import annotations

import os

import pytest
from factory import exact, strategies
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

_COMMON = dict(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
N_GOLDEN = int(os.environ.get("EDGELOOP_EXACT_EXAMPLES", "200"))
N_DEVICE = int(os.environ.get("EDGELOOP_EXACT_DEVICE_EXAMPLES", "8")) * 2


@settings(max_examples=N_GOLDEN, **_COMMON)
@given(case=strategies.graph(), data_seed=st.integers(0, 2**16))
def test_golden_equals_tflm(case: tuple[bytes, dict], data_seed: int) -> None:
    model, desc = case
    exact.golden_vs_tflm(model, exact.model_inputs(model, 5, data_seed), desc)


@pytest.mark.parametrize("kernels", ["bytecode", "viper"])
def test_virtual_board_equals_tflm(kernels: str) -> None:
    @settings(max_examples=N_DEVICE, **_COMMON)
    @given(case=strategies.graph(small=kernels == "bytecode"), data_seed=st.integers(0, 2**16))
    def check(case: tuple[bytes, dict], data_seed: int) -> None:
        model, desc = case
        _, stats = exact.device_vs_tflm(model, exact.model_inputs(model, 3, data_seed), desc,
                                        kernels=kernels)  # fmt: skip
        assert stats["kernels"] == kernels

    check()
