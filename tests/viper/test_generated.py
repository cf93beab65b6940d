"""The kv_*.py viper kernel modules are exactly the expansion of their template (so the inlined
blocks agree), and no stale generated module is left behind."""

from __future__ import annotations

import importlib.util

from conftest import KERNEL_MODULES, ROOT


def test_kernel_modules_are_the_expanded_template() -> None:
    spec = importlib.util.spec_from_file_location("kernels_gen", ROOT / "tools" / "gen_kernels.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    expected = gen.render_modules()
    assert sorted(p.name for p in KERNEL_MODULES) == sorted(expected), (
        "elrt/kv_*.py (+ tests/viper/kv_requant.py) are not the modules kernels_viper.tpl defines: "
        "run `make kernels`"
    )
    for name, text in expected.items():
        assert gen.target(name).read_text() == text, (
            f"{name} differs from firmware_micropython/elrt/src/kernels_viper.tpl expanded: edit the "
            "template and run `make kernels`"
        )
