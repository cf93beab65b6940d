"""Runtime test fixtures: a virtual board with elrt laid out once, bundle helpers, the three-way
comparison (board == golden == TFLM) and a CPython import of the device package."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest

from edgeloop.firmware import FIRMWARE_DIR
from edgeloop.infer import prepare_board, run_batch_virtual

KERNEL_SETS = ("bytecode", "viper")


def to_bundle(tflite: bytes) -> bytes:
    from converters import convert_tflite

    return convert_tflite(tflite).bundle


def three_way(tflite: bytes, x: np.ndarray, kernels: str) -> dict:
    """Run x on the virtual board, in the golden executor and in TFLM; assert all equal."""
    from factory import exact

    from converters.golden import run_bundle

    bundle = to_bundle(tflite)
    y, stats = run_batch_virtual(bundle, x, kernels=kernels)
    assert stats["kernels"] == kernels
    exact.matches_tflm(y, tflite, x, f"virtual board ({kernels} kernels)")
    exact.matches_tflm(run_bundle(bundle, x), tflite, x, "golden")
    return stats


@pytest.fixture(name="three_way")
def three_way_fixture():
    return three_way


@pytest.fixture(name="to_bundle")
def to_bundle_fixture():
    return to_bundle


@pytest.fixture(scope="session")
def board(tmp_path_factory):
    """A virtual board whose filesystem holds elrt compiled for its arch, as after a deploy."""
    return prepare_board(tmp_path_factory.mktemp("elrt-board"))


@pytest.fixture(scope="session")
def viper_usable(board) -> bool:
    res = board.run("import elrt\nprint(elrt.use_kernels('viper'))")
    return res.returncode == 0 and "viper" in res.stdout


@pytest.fixture(params=KERNEL_SETS)
def kernels(request, viper_usable) -> str:
    if request.param == "viper":  # a failure, never a skip: the kernels are ours
        assert viper_usable, "elrt's viper kernels (elrt/kv_*) do not import or fail the self-check"
    return request.param


@pytest.fixture
def cpython_elrt(monkeypatch):
    """The device package imported in CPython (a stand-in `micropython` module), so the same
    kernels also run on the host."""
    fake = types.ModuleType("micropython")
    fake.const = lambda v: v
    monkeypatch.setitem(sys.modules, "micropython", fake)
    for name in [n for n in sys.modules if n == "elrt" or n.startswith("elrt.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(Path(FIRMWARE_DIR)))
    monkeypatch.setenv("ELRT_KERNELS", "bytecode")
    import elrt

    yield elrt
    for name in [n for n in sys.modules if n == "elrt" or n.startswith("elrt.")]:
        sys.modules.pop(name, None)
