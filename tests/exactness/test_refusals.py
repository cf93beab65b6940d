"""What TFLM refuses to prepare, the converter refuses at convert time (never fail on
the board). Cases: a fused activation whose clamp, round(6 / output_scale), overflows int32
(TFLM: kernel_util.cc `no_integer_overflow_from_quantization`)."""

from __future__ import annotations

import pytest
from factory import singleop
from factory.tflm import tflm_interpreter

REFUSED_BY_TFLM = [
    {"op": "FULLY_CONNECTED", "in_features": 4, "units": 2, "activation": "RELU6",
     "out_scale_log2": -30.0, "seed": 0},
    {"op": "CONV_2D", "activation": "RELU6", "out_scale_log2": -30.0, "seed": 0},
]  # fmt: skip


@pytest.mark.parametrize("desc", REFUSED_BY_TFLM, ids=lambda d: d["op"])
def test_converter_refuses_what_tflm_refuses(desc: dict) -> None:
    import converters
    from converters.errors import ConvertError

    model = singleop.build(**desc)
    with pytest.raises(RuntimeError):
        tflm_interpreter(model)  # the reference really refuses it
    with pytest.raises(ConvertError):
        converters.convert_tflite(model)


@pytest.mark.parametrize("desc", REFUSED_BY_TFLM, ids=lambda d: d["op"])
def test_same_model_without_the_clamp_converts(desc: dict) -> None:
    import converters

    model = singleop.build(**{**desc, "activation": "NONE"})
    tflm_interpreter(model)
    assert converters.convert_tflite(model).bundle
