"""Every op alone, over hypothesis-drawn shapes and parameters: our golden executor and the
virtual board (bytecode and viper kernels, as elrt dispatches them with the bundle's real
parameters: LUTs, folded biases, broadcast strides, softmax tables) return exactly what
tflite-micro returns. This is the single-op sweep; every supported op must have a strategy."""

from __future__ import annotations

import os

import pytest
from factory import exact, singleop, strategies
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from converters import SUPPORTED_OPS

OPS = sorted(strategies.STRATEGIES)


def test_every_supported_op_has_a_sweep() -> None:
    assert set(OPS) | {"PADV2"} >= set(SUPPORTED_OPS)  # PADV2: PAD's builder, constant value

# Sized so tests/exactness stays within ~5 min on 2 cores; deterministic (derandomize, no example
# database) so CI runs are reproducible.
_COMMON = dict(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# EDGELOOP_EXACT_EXAMPLES / EDGELOOP_EXACT_DEVICE_EXAMPLES raise the counts for a deeper sweep.
GOLDEN = settings(max_examples=int(os.environ.get("EDGELOOP_EXACT_EXAMPLES", "200")), **_COMMON)
DEVICE = settings(
    max_examples=int(os.environ.get("EDGELOOP_EXACT_DEVICE_EXAMPLES", "8")), **_COMMON
)


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
    # bytecode kernels run ~100x slower than viper: smaller shapes keep the test short
    @DEVICE
    @given(
        case=strategies.single_op(op, small=kernels == "bytecode"), data_seed=st.integers(0, 2**16)
    )
    def check(case: tuple[bytes, dict], data_seed: int) -> None:
        model, desc = case
        x = exact.model_inputs(model, 4, data_seed)
        _, stats = exact.device_vs_tflm(model, x, desc, kernels=kernels)
        assert stats["kernels"] == kernels
        exact.golden_vs_tflm(model, x, desc)  # the same model and inputs through golden

    check()


# Hand-picked corners that random draws reach rarely: wide reductions and pools (rounding of the
# division), long dot products, extreme activation-input ranges, non-adjacent MEAN axes.
EDGE_CASES = [
    {"op": "MEAN", "shape": (1, 2, 2, 2), "axes": (1, 3), "keep_dims": True, "seed": 0},
    {"op": "MEAN", "shape": (1, 3, 4, 5), "axes": (-3, -1), "keep_dims": False, "seed": 1},
    {"op": "MEAN", "shape": (1, 16, 16, 8), "axes": (1, 2), "keep_dims": True, "seed": 2},
    {"op": "MEAN", "shape": (1, 49, 10, 4), "axes": (1, 2), "keep_dims": False, "seed": 3},
    {"op": "AVERAGE_POOL_2D", "h": 8, "w": 8, "c": 4, "fh": 8, "fw": 8, "stride": (1, 1),
     "padding": "VALID", "seed": 4},
    {"op": "AVERAGE_POOL_2D", "h": 5, "w": 7, "c": 3, "fh": 3, "fw": 3, "stride": (2, 2),
     "padding": "SAME", "seed": 5},
    {"op": "FULLY_CONNECTED", "in_features": 2048, "units": 4, "per_channel": True, "seed": 6},
    {"op": "FULLY_CONNECTED", "in_features": 640, "units": 128, "seed": 7},
    {"op": "CONV_2D", "h": 6, "w": 6, "cin": 64, "cout": 8, "kh": 3, "kw": 3, "seed": 8},
    {"op": "CONV_2D", "h": 9, "w": 9, "cin": 2, "cout": 3, "kh": 3, "kw": 3, "stride": (2, 2),
     "dilation": (2, 2), "padding": "SAME", "activation": "RELU6", "seed": 9},
    {"op": "DEPTHWISE_CONV_2D", "h": 7, "w": 7, "cin": 3, "depth_multiplier": 4, "kh": 5,
     "kw": 5, "padding": "SAME", "out_scale_log2": -14.0, "seed": 10},
    {"op": "SOFTMAX", "shape": (1, 1, 1, 64), "beta": 3.0, "seed": 11},
    {"op": "SOFTMAX", "shape": (1, 200), "beta": 0.1, "seed": 12},
    {"op": "ADD", "shape": (1, 4, 4, 3), "other_shape": (1, 1, 1, 3), "operand": "const",
     "out_scale_log2": -9.0, "seed": 13},
    {"op": "MUL", "shape": (1, 8, 8, 4), "operand": "self", "seed": 14},
    {"op": "CONV_2D", "h": 9, "w": 7, "cin": 2, "cout": 3, "kh": 3, "kw": 2, "stride": (2, 1),
     "dilation": (2, 3), "padding": "SAME", "activation": "RELU6", "seed": 15},
    {"op": "CONV_2D", "h": 1, "w": 20, "cin": 3, "cout": 5, "kh": 1, "kw": 5,
     "padding": "VALID", "seed": 16},  # the Conv1D form
    {"op": "DEPTHWISE_CONV_2D", "h": 7, "w": 7, "cin": 3, "depth_multiplier": 3, "kh": 3,
     "kw": 3, "stride": (2, 2), "dilation": (1, 1), "padding": "SAME", "seed": 17},
    {"op": "DEPTHWISE_CONV_2D", "h": 8, "w": 8, "cin": 2, "kh": 3, "kw": 3, "dilation": (2, 2),
     "padding": "VALID", "per_channel": False, "seed": 18},
    {"op": "FULLY_CONNECTED", "batch": 3, "in_features": 40, "units": 7, "per_channel": False,
     "activation": "RELU", "seed": 19},
    {"op": "FULLY_CONNECTED", "in_features": 33, "units": 5, "use_bias": False, "seed": 20},
    {"op": "AVERAGE_POOL_2D", "h": 7, "w": 5, "fh": 3, "fw": 3, "stride": (2, 2),
     "padding": "SAME", "activation": "RELU", "seed": 21},
    {"op": "MEAN", "shape": (1, 6, 5, 4), "axes": (1, 2), "keep_dims": True, "same_quant": True,
     "seed": 22},
    {"op": "MEAN", "shape": (1, 9, 4), "axes": (1,), "keep_dims": False, "seed": 23},
    {"op": "SOFTMAX", "shape": (3, 37), "beta": 0.7, "seed": 24},
    {"op": "SUB", "shape": (1, 4, 4, 3), "other_shape": (1, 1, 1, 3), "operand": "const",
     "const_first": True, "out_scale_log2": -9.0, "seed": 25},
]  # fmt: skip


def _ids(case: dict) -> str:
    return f"{case['op']}-{case['seed']}"


@pytest.mark.parametrize("desc", EDGE_CASES, ids=_ids)
def test_edge_cases_golden_equals_tflm(desc: dict) -> None:
    model = singleop.build(**desc)
    exact.golden_vs_tflm(model, exact.model_inputs(model, 8, desc["seed"]), desc)


@pytest.mark.parametrize("kernels", ["bytecode", "viper"])
@pytest.mark.parametrize("desc", EDGE_CASES, ids=_ids)
def test_edge_cases_virtual_board_equals_tflm(desc: dict, kernels: str) -> None:
    # S3 heap: the 640x128 fully-connected case (82 KB of weights) exceeds a plain ESP32's
    model = singleop.build(**desc)
    x = exact.model_inputs(model, 3, desc["seed"])
    exact.device_vs_tflm(model, x, desc, kernels=kernels, profile="esp32s3")
