"""Converter test helpers: convert a .tflite, run golden and tflite-micro, compare exactly."""

from __future__ import annotations

import numpy as np
import pytest
from factory import exact
from factory.tflm import io_details, random_inputs

from converters import convert_tflite
from converters.golden import run_bundle


def exact_vs_tflm(model: bytes, n: int = 6, seed: int = 0) -> dict:
    """Convert `model`, run n inputs (incl. all -128 / all 127) through golden and TFLM, assert
    bit-equality; return the convert report."""
    ins, _ = io_details(model)
    shape = tuple(int(d) for d in ins[0]["shape"])
    x = random_inputs(shape, n, seed=seed, dtype=ins[0]["dtype"])
    conv = convert_tflite(model)
    exact.matches_tflm(run_bundle(conv.bundle, x), model, x, "golden", f"n={n} seed={seed}")
    return conv.report


@pytest.fixture(scope="session")
def check_exact():
    """exact_vs_tflm (stateless, so session scope is safe inside hypothesis tests)."""
    return exact_vs_tflm


__all__ = ["exact_vs_tflm", "np"]
