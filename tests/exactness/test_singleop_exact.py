"""Every op alone, over hypothesis-drawn shapes and parameters: our golden executor and the
virtual board (bytecode and viper kernels) return exactly what tflite-micro returns."""

from __future__ import annotations

import pytest
from factory import exact, strategies
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

OPS = sorted(strategies.STRATEGIES)

# Sized so tests/exactness stays within ~5 min on 2 cores; deterministic (derandomize, no example
# database) so CI runs are reproducible.
_COMMON = dict(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
GOLDEN = settings(max_examples=40, **_COMMON)  # host only, cheap
DEVICE = settings(max_examples=5, **_COMMON)  # one MicroPython process per example


@pytest.mark.parametrize("op", OPS)
def test_golden_equals_tflm(op: str) -> None:
    @GOLDEN
    @given(case=strategies.single_op(op), data_seed=st.integers(0, 2**16))
    def check(case: tuple[bytes, dict], data_seed: int) -> None:
        model, desc = case
        exact.golden_vs_tflm(model, exact.model_inputs(model, 6, data_seed), desc)

    check()


@pytest.mark.parametrize("kernels", ["bytecode", "viper"])
@pytest.mark.parametrize("op", OPS)
def test_virtual_board_equals_tflm(op: str, kernels: str) -> None:
    @DEVICE
    @given(case=strategies.single_op(op, small=True), data_seed=st.integers(0, 2**16))
    def check(case: tuple[bytes, dict], data_seed: int) -> None:
        model, desc = case
        _, stats = exact.device_vs_tflm(model, exact.model_inputs(model, 4, data_seed), desc,
                                        kernels=kernels)  # fmt: skip
        assert stats["kernels"] == kernels

    check()
