"""Every op alone, over hypothesis-drawn shapes and parameters, on the virtual board with each
kernel set: board outputs == golden executor == tflite-micro, element for element."""

from __future__ import annotations

import pytest
from factory import random_inputs, strategies
from factory.tflm import io_details
from hypothesis import HealthCheck, given, settings

OPS = sorted(strategies.STRATEGIES)


@pytest.mark.parametrize("op", OPS)
def test_single_op_exact(op: str, kernels: str, three_way) -> None:
    @settings(max_examples=5, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])
    @given(strategies.single_op(op, small=True))
    def check(drawn) -> None:
        model, desc = drawn
        ins, _ = io_details(model)
        x = random_inputs(tuple(ins[0]["shape"]), 4, seed=desc["seed"] & 0xFFFF,
                          dtype=ins[0]["dtype"])
        three_way(model, x, kernels)

    check()
