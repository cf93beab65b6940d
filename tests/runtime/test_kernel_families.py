"""The viper set is imported per op family at load: a model imports only the kv_* modules its
ops need (an ESP32 copies every imported viper module's code into its small executable IRAM),
and a family whose viper module fails to import (MemoryError when IRAM runs out) runs on the
bytecode kernels while the others stay on viper, with the same outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from factory import exact
from factory.graphs import _G, _fc, _softmax
from factory.singleop import input_quant

from converters.golden import run_bundle
from edgeloop.infer import prepare_board


def mlp_model(seed: int, n_in: int = 24) -> bytes:
    """FULLY_CONNECTED x2 + SOFTMAX, the trainer's default MLP shape (no TF needed)."""
    g = _G(np.random.default_rng(seed))
    x = g.new([1, n_in], input_quant(g.rng))
    t = _softmax(g, _fc(g, _fc(g, x)))
    return g.mb.build([x.idx], [t.idx], f"mlp {seed}")


_PROBE = """
import sys, json, binascii
import elrt
def mods():
    return sorted(k for k in sys.modules if k.startswith("elrt"))
res = {"import": mods(), "selected": elrt.KERNELS}
m = elrt.Model()
m.load("mlp.elb")
res["mlp"] = mods()
res["sets"] = m.kernel_sets
res["kernels"] = m.kernels
xs = binascii.unhexlify(X)
n = len(m.input)
outs = []
for i in range(len(xs) // n):
    m.input[:] = xs[i * n:(i + 1) * n]
    m.invoke()
    outs.append(binascii.hexlify(bytes(m.output)).decode())
res["y"] = outs
print("RESULT" + json.dumps(res))
"""


def _run(board, bundle: bytes, x: np.ndarray) -> dict:
    (board.root / "mlp.elb").write_bytes(bundle)
    script = f"X = {x.astype(np.int8).tobytes().hex()!r}\n" + _PROBE
    out = board.run(script).check("kernel family probe").stdout
    return json.loads(out.split("RESULT", 1)[1])


def _expected(tflite: bytes, bundle: bytes, x: np.ndarray) -> list[str]:
    xb = x.reshape(len(x), 1, -1)
    ref = exact.matches_tflm(run_bundle(bundle, xb), tflite, xb, "golden")
    return [r.astype(np.int8).tobytes().hex() for r in ref.reshape(len(x), -1)]


@pytest.fixture(scope="module")
def mlp():
    from converters import convert_tflite

    tflite = mlp_model(3)
    bundle = convert_tflite(tflite).bundle
    x = np.random.default_rng(0).integers(-128, 128, size=(6, 24)).astype(np.int8)
    x[0, :] = -128
    x[1, :] = 127
    return tflite, bundle, x


def test_model_imports_only_its_families(board, viper_usable: bool, mlp) -> None:
    assert viper_usable, "elrt's viper kernels do not import or fail the self-check"
    tflite, bundle, x = mlp
    res = _run(board, bundle, x)
    # the op table, the loader's param checks and the self-check's family only
    assert res["import"] == ["elrt", "elrt.extents", "elrt.kv_fc", "elrt.optable"]
    # no kernels_py, no conv
    assert res["mlp"] == ["elrt", "elrt.extents", "elrt.kv_fc", "elrt.kv_softmax",
                          "elrt.optable"]
    assert res["sets"] == {"fc": "viper", "softmax": "viper"}
    assert res["kernels"] == "viper"
    assert res["y"] == _expected(tflite, bundle, x)


def test_family_failing_to_import_runs_on_bytecode(tmp_path, viper_usable: bool, mlp) -> None:
    assert viper_usable, "elrt's viper kernels do not import or fail the self-check"
    tflite, bundle, x = mlp
    board = prepare_board(tmp_path)
    # what an ESP32 does when executable IRAM is exhausted at import (esp_native_code_commit)
    (tmp_path / "elrt" / "kv_softmax.mpy").unlink()
    (tmp_path / "elrt" / "kv_softmax.py").write_text("raise MemoryError('memory allocation failed')\n")
    res = _run(board, bundle, x)
    assert res["selected"] == "viper"
    assert res["sets"] == {"fc": "viper", "softmax": "bytecode"}
    assert res["kernels"] == "mixed"
    assert "elrt.kernels_py" in res["mlp"]
    assert res["y"] == _expected(tflite, bundle, x)
