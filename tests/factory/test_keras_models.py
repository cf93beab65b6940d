"""The random Keras architectures: enough of them quantize to our op set, run in TFLM, and are
served from build/cache on later runs."""

from __future__ import annotations

import json

import numpy as np

from factory import keras_models as km
from factory import random_inputs, run_tflm
from factory.tflm import io_details

N_SEEDS = 20


def test_architecture_is_deterministic_and_jsonable() -> None:
    for seed in range(30):
        spec = km.architecture(seed)
        assert json.loads(json.dumps(spec)) == spec == km.architecture(seed)
    families = {km.architecture(s)["family"] for s in range(30)}
    assert families == {"dense", "1d", "2d"}


def test_twenty_seeds_quantize_to_our_op_set_and_run_in_tflm() -> None:
    seeds = km.usable_seeds(N_SEEDS)
    ops: set[str] = set()
    for seed in seeds:
        model = km.keras_tflite(seed)
        assert km.cache_path_for(seed).read_bytes() == model
        ops |= set(km.tflite_ops(model))
        ins, outs = io_details(model)
        assert ins[0]["dtype"] == np.int8 and outs[0]["dtype"] == np.int8
        y = run_tflm(model, random_inputs(tuple(ins[0]["shape"]), 4, seed=seed))
        assert y.shape == (4, *tuple(outs[0]["shape"]))
    # the generated set must exercise the layers the converter supports
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MEAN", "ADD", "MUL",
            "CONCATENATION", "SOFTMAX", "PAD"} <= ops, ops  # fmt: skip
    assert ops <= km.SUPPORTED_OPS


def test_unsupported_ops_are_detected() -> None:
    from factory import singleop

    model = singleop.build("CONV_2D")
    assert km.tflite_ops(model) == ["CONV_2D"] and km.is_supported(model)
    assert not km.SUPPORTED_OPS >= {"REDUCE_MAX"}
