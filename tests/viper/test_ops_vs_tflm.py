"""Every op as a converted single-op model: viper kernels == bytecode kernels == golden == TFLM
on the virtual board (the kernels as elrt dispatches them, with the bundle's real parameters:
LUTs, folded biases, broadcast strides, softmax tables)."""

from __future__ import annotations

import numpy as np
import pytest
from factory import exact, strategies
from factory.tflm import run_tflm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import converters
from converters.golden import run_bundle
from edgeloop.infer import run_batch_virtual

OPS = sorted(strategies.STRATEGIES)


def _flat(y) -> np.ndarray:
    y = y[0] if isinstance(y, list) else y
    y = np.asarray(y)
    return y.reshape(len(y), -1)


@pytest.mark.parametrize("op", OPS)
def test_viper_bytecode_golden_tflm_agree(op: str) -> None:
    @settings(
        max_examples=2,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(case=strategies.single_op(op, small=True), data_seed=st.integers(0, 2**16))
    def check(case: tuple[bytes, dict], data_seed: int) -> None:
        model, desc = case
        x = exact.model_inputs(model, 4, data_seed)
        bundle = converters.convert_tflite(model).bundle
        ref = _flat(run_tflm(model, x))
        golden = _flat(run_bundle(bundle, x))
        yv, sv = run_batch_virtual(bundle, x, "virtual", kernels="viper")
        yb, sb = run_batch_virtual(bundle, x, "virtual", kernels="bytecode")
        assert (sv["kernels"], sb["kernels"]) == ("viper", "bytecode")
        np.testing.assert_array_equal(_flat(yv), _flat(yb), err_msg=f"viper != bytecode {desc}")
        np.testing.assert_array_equal(_flat(yv), golden, err_msg=f"viper != golden {desc}")
        np.testing.assert_array_equal(_flat(yv), ref, err_msg=f"viper != TFLM {desc}")

    check()
