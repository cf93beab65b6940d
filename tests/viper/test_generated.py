"""kernels_viper.py is exactly the expansion of its template (so the inlined blocks agree)."""

from __future__ import annotations

import importlib.util

from conftest import HERE, KERNELS_VIPER


def test_kernels_viper_is_the_expanded_template() -> None:
    spec = importlib.util.spec_from_file_location("kernels_gen", HERE / "kernels_src" / "gen.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert KERNELS_VIPER.read_text() == gen.render(), (
        "kernels_viper.py differs from kernels_src/kernels_viper.tpl expanded: edit the template "
        "and run `python tests/viper/kernels_src/gen.py`"
    )
