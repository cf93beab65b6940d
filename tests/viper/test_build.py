"""kernels_viper compiles for every board architecture and mirrors kernels_py's API exactly."""

from __future__ import annotations

import ast

import pytest
from conftest import KERNELS_VIPER, ROOT

from edgeloop.firmware import compile_file

KERNELS_PY = ROOT / "firmware_micropython" / "elrt" / "kernels_py.py"


@pytest.mark.parametrize("arch", ["xtensawin", "rv32imc", "x64"])
def test_mpy_cross_compiles_viper_kernels(arch, tmp_path) -> None:
    # mpy-cross type-checks viper code (e.g. a literal >= 2**30 is an object, not an int)
    out = tmp_path / f"kernels_viper_{arch}.mpy"
    compile_file(KERNELS_VIPER, out, arch)
    assert out.stat().st_size > 1000


def _public_functions(path) -> dict[str, list[str]]:
    tree = ast.parse(path.read_text())
    return {
        node.name: [a.arg for a in node.args.args]
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")
    }


def test_same_names_and_signatures_as_bytecode_kernels() -> None:
    assert _public_functions(KERNELS_VIPER) == _public_functions(KERNELS_PY)
