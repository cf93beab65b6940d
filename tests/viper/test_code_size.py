"""Executable-memory budget of the viper set on an ESP32 (xtensawin): an MLP-style model
(FULLY_CONNECTED + SOFTMAX / LUT activations, the trainer's default) imports at most ~16 KB of
native code, and every op family of the registry has its kernel module."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import KERNEL_MODULES
from factory.graphs import _G, _fc, _softmax, _unary
from factory.singleop import input_quant

from benchmarks.codesize import OP_FAMILY, bundle_families, family_code, model_code_bytes
from converters import convert_tflite
from converters.registry import FAMILY_KERNELS

MLP_CODE_BUDGET = 16 * 1024


@pytest.fixture(scope="module")
def xtensa_code():
    return family_code("xtensawin")


def test_every_registry_family_has_its_module() -> None:
    families = set(FAMILY_KERNELS)
    assert families == set(OP_FAMILY.values())
    # every family has its module; kv_requant is the tests' reference copy, never imported
    assert {p.stem[3:] for p in KERNEL_MODULES} == families | {"requant"}


def test_every_module_is_native_code(xtensa_code) -> None:
    for fam, code in xtensa_code.items():
        assert code.native_functions >= 1, fam
        # the module's own bytecode, names and tables are small next to its machine code
        assert code.native_code_bytes > 0.6 * code.file_bytes, (fam, code)


def _mlp_bundle(seed: int) -> bytes:
    g = _G(np.random.default_rng(seed))
    x = g.new([1, 40], input_quant(g.rng))
    t = _unary(g, _fc(g, x))  # a standalone activation: a LUT op in the bundle
    t = _softmax(g, _fc(g, t))
    return convert_tflite(g.mb.build([x.idx], [t.idx], "mlp")).bundle


def test_mlp_style_model_imports_at_most_16k_of_xtensa_code(xtensa_code) -> None:
    bundle = _mlp_bundle(1)
    assert bundle_families(bundle) == {"fc", "lut", "softmax"}
    code = model_code_bytes(bundle, xtensa_code)
    assert code <= MLP_CODE_BUDGET, f"{code} bytes of xtensawin viper code for an MLP"
    # and well under what the single kernels_viper module cost (every op's code, ~57 KB)
    total = sum(c.native_code_bytes for f, c in xtensa_code.items() if f != "requant")
    assert code < total / 3
