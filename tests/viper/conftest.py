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
