"""Device (firmware_micropython/) modules imported in CPython, for host-side checks of their code.

They import `micropython` for const/viper decorators; a stand-in module is put in sys.modules
only while they execute, so no other test ever sees it.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def stand_in_micropython(fake: types.ModuleType | None = None) -> Iterator[types.ModuleType]:
    """sys.modules["micropython"] = fake (default: one with an identity const) for the block."""
    if fake is None:
        fake = types.ModuleType("micropython")
        fake.const = lambda v: v
    saved = sys.modules.get("micropython")
    sys.modules["micropython"] = fake
    try:
        yield fake
    finally:
        if saved is None:
            sys.modules.pop("micropython", None)
        else:
            sys.modules["micropython"] = saved


def import_device_file(path: Path, name: str) -> types.ModuleType:
    """A plain-Python device module (e.g. elrt/kernels_py.py) imported in CPython as `name`."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path} as {name}")
    mod = importlib.util.module_from_spec(spec)
    with stand_in_micropython():
        spec.loader.exec_module(mod)
    return mod
