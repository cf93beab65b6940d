"""Fixtures for the viper kernel tests: the checked emulation and a virtual board with elrt."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

ROOT = HERE.parent.parent
KERNELS_VIPER = ROOT / "firmware_micropython" / "elrt" / "kernels_viper.py"


@pytest.fixture(scope="session")
def checked_kernels():
    from viper_emu import load_checked

    return load_checked(KERNELS_VIPER)


@pytest.fixture(scope="session")
def kernel_board(tmp_path_factory):
    """A virtual board holding both kernel sets compiled to .mpy for x64 (as `make` deploys)."""
    from edgeloop.firmware import compile_file

    root = tmp_path_factory.mktemp("kernel_board")
    elrt = ROOT / "firmware_micropython" / "elrt"
    for name in ("kernels_viper", "kernels_py"):
        compile_file(elrt / f"{name}.py", root / f"{name}.mpy", "x64")
    return root


@pytest.fixture(scope="session")
def kernels_py_host():
    """kernels_py imported in CPython (it is plain Python apart from micropython.const)."""
    import importlib.util
    import types

    fake = types.ModuleType("micropython")
    fake.const = lambda v: v
    saved = sys.modules.get("micropython")
    sys.modules["micropython"] = fake
    try:
        path = ROOT / "firmware_micropython" / "elrt" / "kernels_py.py"
        spec = importlib.util.spec_from_file_location("kernels_py_host", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        if saved is None:
            sys.modules.pop("micropython", None)
        else:
            sys.modules["micropython"] = saved
    return mod
