"""The same device package imported in CPython: elrt.Model with the bytecode kernels gives the
tflite-micro outputs for every op (a fast check that needs no MicroPython)."""

from __future__ import annotations

import numpy as np
import pytest
from factory import exact, random_inputs, strategies
from factory.singleop import build
from factory.tflm import io_details


@pytest.mark.parametrize("op", sorted(strategies.STRATEGIES))
def test_model_in_cpython(cpython_elrt, to_bundle, op: str) -> None:
    model = build(op, seed=21)
    ins, outs = io_details(model)
    x = random_inputs(tuple(ins[0]["shape"]), 3, seed=2, dtype=ins[0]["dtype"])
    m = cpython_elrt.Model()
    m.load(to_bundle(model))
    assert cpython_elrt.KERNELS == "bytecode"
    ys = []
    for sample in x:
        m.input[:] = sample.tobytes()
        m.invoke()
        ys.append(np.frombuffer(bytes(m.output), dtype=outs[0]["dtype"]))
    exact.matches_tflm(np.stack(ys), model, x, "elrt in CPython (bytecode kernels)", op)


def test_bundle_error_in_cpython(cpython_elrt, to_bundle) -> None:
    good = to_bundle(build("RELU", seed=1))
    m = cpython_elrt.Model()
    m.load(good)
    with pytest.raises(cpython_elrt.BundleError, match="CRC32"):
        m.load(good[:-1] + bytes([good[-1] ^ 1]))
    assert m.input_shape == (1, 16)


def test_table_crc_matches_zlib(cpython_elrt) -> None:
    """The CRC used on ports without binascii.crc32 is zlib's CRC-32."""
    import zlib

    data = bytes(range(256)) * 5 + b"ELMB"
    assert cpython_elrt.crc32_table(data) == zlib.crc32(data)
    assert cpython_elrt.crc32_table(b"") == 0


def test_self_check_known_answer_is_the_bytecode_result(cpython_elrt) -> None:
    """elrt accepts a kernel set by a known-answer FC; the bytecode set must produce it."""
    from elrt import kernels_py

    assert cpython_elrt._self_check(kernels_py)
