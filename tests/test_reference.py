"""The reference interpreters: TFLM for exactness, desktop LiteRT (with its legacy fallback)."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from converters.errors import ConvertError
from converters.reference import run_tflm, tflm_arena_bytes, tflm_interpreter


@pytest.fixture(scope="module")
def fc_model() -> bytes:
    from factory.singleop import fully_connected

    return fully_connected(batch=1, in_features=8, units=3, per_channel=True, seed=3)


def test_run_tflm_runs_a_batch_sample_by_sample(fc_model: bytes) -> None:
    x = np.stack([np.full((1, 8), v, np.int8) for v in (-128, 0, 127)])
    y = run_tflm(fc_model, x)
    assert y.shape == (3, 1, 3) and y.dtype == np.int8
    interp = tflm_interpreter(fc_model)
    interp.set_input(x[2], 0)
    interp.invoke()
    np.testing.assert_array_equal(y[2], interp.get_output(0))
    assert tflm_arena_bytes(interp)["total"] > 0


def test_run_tflm_refuses_a_batch_of_the_wrong_shape(fc_model: bytes) -> None:
    with pytest.raises(ConvertError, match=r"does not fit model input \(1, 8\)"):
        run_tflm(fc_model, np.zeros((2, 1, 9), np.int8))


def test_trainer_falls_back_to_tflite_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    from trainer.quantize import _interpreter

    fake = types.ModuleType("tflite_runtime.interpreter")
    fake.Interpreter = lambda model_content: ("legacy", model_content)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)  # import fails
    monkeypatch.setitem(sys.modules, "tflite_runtime", types.ModuleType("tflite_runtime"))
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", fake)
    assert _interpreter(b"abc") == ("legacy", b"abc")


def test_trainer_says_which_interpreter_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from trainer.errors import TrainerError
    from trainer.quantize import _interpreter

    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", None)
    with pytest.raises(TrainerError, match="pip install ai-edge-litert"):
        _interpreter(b"abc")
