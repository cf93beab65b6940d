"""Fixtures for the viper kernel tests: the checked emulation and a virtual board with elrt."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

ROOT = HERE.parent.parent
ELRT = ROOT / "firmware_micropython" / "elrt"
# The viper kernel set: one generated module per op family (tools/gen_kernels.py).
# The board's kernel modules plus the tests' reference requantization (generated beside us).
KERNEL_MODULES = [*sorted(ELRT.glob("kv_*.py")), HERE / "kv_requant.py"]
# What the tests import as the whole set: the families' public functions in one module.
AGGREGATE = "".join(f"from {p.stem} import *\n" for p in KERNEL_MODULES)


@pytest.fixture(scope="session")
def checked_kernels():
    """Every family's int32-checked emulation, merged into one namespace."""
    import types

    from viper_emu import load_checked

    merged = types.SimpleNamespace()
    for path in KERNEL_MODULES:
        mod = load_checked(path)
        for name, value in vars(mod).items():
            if not name.startswith("_") and getattr(value, "__module__", "") == mod.__name__:
                setattr(merged, name, value)
    return merged


@pytest.fixture(scope="session")
def kernel_board(tmp_path_factory):
    """A virtual board holding both kernel sets compiled to .mpy for the board's arch (as `make` deploys),
    plus kernels_viper.py importing every viper family (the whole set as one module)."""
    from edgeloop.firmware import compile_file
    from edgeloop.vboard import mpy_arch

    root = tmp_path_factory.mktemp("kernel_board")
    for path in [*KERNEL_MODULES, ELRT / "kernels_py.py"]:
        compile_file(path, root / f"{path.stem}.mpy", mpy_arch())
    (root / "kernels_viper.py").write_text(AGGREGATE)
    return root


@pytest.fixture(scope="session")
def kernels_py_host():
    """kernels_py imported in CPython (it is plain Python apart from micropython.const)."""
    from factory.hostimport import import_device_file

    return import_device_file(ELRT / "kernels_py.py", "kernels_py_host")
