"""Every op of the supported set alone, over hypothesis-drawn shapes and parameters, against the
tflite-micro runtime: golden (= the device's arithmetic read from the bundle) must be bit-equal."""

from __future__ import annotations

import pytest
from factory import singleop
from factory.strategies import STRATEGIES, single_op
from hypothesis import HealthCheck, given, settings

from converters import SUPPORTED_OPS

EXAMPLES = 25


@pytest.mark.parametrize("op", sorted(STRATEGIES))
def test_op_exact_vs_tflm(op, check_exact):
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(single_op(op))
    def run(case):
        model, desc = case
        check_exact(model, n=5, seed=desc.get("seed", 0))

    run()


def test_every_supported_op_has_a_sweep():
    assert set(STRATEGIES) | {"PADV2"} >= set(SUPPORTED_OPS)


@pytest.mark.parametrize(
    "op,params",
    [
        ("CONV_2D", dict(h=9, w=7, cin=2, cout=3, kh=3, kw=2, stride=(2, 1), dilation=(2, 3),
                         padding="SAME", activation="RELU6")),
        ("CONV_2D", dict(h=1, w=20, cin=3, cout=5, kh=1, kw=5, padding="VALID")),  # Conv1D form
        ("DEPTHWISE_CONV_2D", dict(h=7, w=7, cin=3, depth_multiplier=3, kh=3, kw=3,
                                   stride=(2, 2), dilation=(1, 1), padding="SAME")),
        ("DEPTHWISE_CONV_2D", dict(h=8, w=8, cin=2, kh=3, kw=3, dilation=(2, 2),
                                   padding="VALID", per_channel=False)),
        ("FULLY_CONNECTED", dict(batch=3, in_features=40, units=7, per_channel=False,
                                 activation="RELU")),
        ("FULLY_CONNECTED", dict(in_features=33, units=5, use_bias=False)),
        ("AVERAGE_POOL_2D", dict(h=7, w=5, fh=3, fw=3, stride=(2, 2), padding="SAME",
                                 activation="RELU")),
        ("MEAN", dict(shape=(1, 6, 5, 4), axes=(1, 2), keep_dims=True, same_quant=True)),
        ("MEAN", dict(shape=(1, 9, 4), axes=(1,), keep_dims=False)),
        ("SOFTMAX", dict(shape=(3, 37), beta=0.7)),
    ],
)
def test_edge_cases_exact(op, params, check_exact):
    check_exact(singleop.build(op, seed=3, **params), n=6, seed=3)
