"""MEAN over any axes set TFLM accepts (adjacent or not, 1..rank axes, negative, keep_dims or
not) is bit-exact with the tflite-micro runtime: golden executor and the virtual board (both
kernel sets). Non-adjacent axes are lowered to an all-ones CONV_2D / DEPTHWISE_CONV_2D."""

from __future__ import annotations

import pytest
from factory import exact, singleop
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import converters

_COMMON = dict(deadline=None, derandomize=True, database=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def mean_case(draw, max_dim: int = 6) -> dict:
    rank = draw(st.integers(1, 4))
    shape = tuple(draw(st.integers(1, max_dim)) for _ in range(rank))
    axes = draw(st.lists(st.integers(0, rank - 1), min_size=1, max_size=rank, unique=True))
    if draw(st.booleans()):
        axes = [a - rank for a in axes]
    return dict(op="MEAN", shape=shape, axes=tuple(axes), keep_dims=draw(st.booleans()),
                same_quant=draw(st.sampled_from([False, False, True])),
                out_scale_log2=draw(st.sampled_from([0.0, 0.0, -4.0, -9.0, 3.0])),
                seed=draw(st.integers(0, 2**31 - 1)))


@st.composite
def non_adjacent_case(draw, max_dim: int = 5) -> dict:
    """Shapes whose reduced axes are separated by a kept axis of size > 1."""
    pattern = draw(st.sampled_from(["RKR", "KRKR", "RKRK"]))
    rank = len(pattern)
    shape = tuple(draw(st.integers(2, max_dim)) for _ in range(rank))
    axes = tuple(k for k, c in enumerate(pattern) if c == "R")
    case = draw(mean_case())
    return {**case, "shape": shape if rank == 4 else (1, *shape), "axes": axes
            if rank == 4 else tuple(a + 1 for a in axes)}


def _lowered(desc: dict) -> str:
    ops = converters.convert_tflite(singleop.build(**desc)).report["ops"]
    return ops[0].get("lowered", ops[0]["op"]) if ops else "alias"


@settings(max_examples=300, **_COMMON)
@given(desc=mean_case(), data_seed=st.integers(0, 2**16))
def test_golden_equals_tflm_any_axes(desc: dict, data_seed: int) -> None:
    model = singleop.build(**desc)
    exact.golden_vs_tflm(model, exact.model_inputs(model, 6, data_seed), desc)


@settings(max_examples=100, **_COMMON)
@given(desc=non_adjacent_case(), data_seed=st.integers(0, 2**16))
def test_golden_equals_tflm_non_adjacent(desc: dict, data_seed: int) -> None:
    assert _lowered(desc) in ("CONV_2D", "DEPTHWISE_CONV_2D")
    model = singleop.build(**desc)
    exact.golden_vs_tflm(model, exact.model_inputs(model, 6, data_seed), desc)


# wide reductions: n up to 4800 (MEAN's shift clamp), multiplier >= 1 (positive shift)
WIDE = [
    dict(op="MEAN", shape=(1, 40, 3, 40), axes=(1, 3), keep_dims=True, out_scale_log2=3.0, seed=1),
    dict(op="MEAN", shape=(60, 2, 80, 3), axes=(0, 2), keep_dims=False, seed=2),
    dict(op="MEAN", shape=(3, 4, 5, 2), axes=(0, -1, 1), keep_dims=False, seed=3),
    dict(op="MEAN", shape=(7, 3, 2, 5), axes=(1, 3), keep_dims=True, out_scale_log2=-9.0, seed=4),
]


@pytest.mark.parametrize("kernels", ["bytecode", "viper"])
def test_virtual_board_equals_tflm_non_adjacent(kernels: str) -> None:
    @settings(max_examples=6, **_COMMON)
    @given(desc=non_adjacent_case(max_dim=4), data_seed=st.integers(0, 2**16))
    def check(desc: dict, data_seed: int) -> None:
        model = singleop.build(**desc)
        exact.device_vs_tflm(model, exact.model_inputs(model, 3, data_seed), desc,
                             kernels=kernels)

    check()
    for desc in WIDE:
        model = singleop.build(**desc)
        exact.device_vs_tflm(model, exact.model_inputs(model, 2, desc["seed"]), desc,
                             kernels=kernels)
