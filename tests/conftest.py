"""Fixtures shared by every test area: the repository root and a fresh virtual board.

The virtual board is $EDGELOOP_MICROPYTHON when set (`make test-esp32sem`: a 32-bit float32
build, an ESP32's arithmetic), else the PyPI unix port; the header of the run says which.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgeloop import vboard as vb
from edgeloop.vboard import VirtualBoard

REPO = Path(__file__).resolve().parent.parent


def pytest_configure(config) -> None:
    # A relative path stays valid where boards run (their cwd is their filesystem folder).
    chosen = os.environ.get(vb.ENV_VAR, "").strip()
    if chosen and os.sep in chosen:
        os.environ[vb.ENV_VAR] = str(Path(chosen).resolve())
    try:
        vb.identify()
    except vb.VirtualBoardError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_report_header(config) -> str:
    b = vb.identify()
    return (f"virtual board: {b.executable} (MicroPython {b.version}, .mpy {b.mpy_arch}, "
            f"{b.word_bits}-bit words, {b.smallint_bits}-bit small ints, float{b.float_bits})")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture
def vboard(tmp_path: Path) -> VirtualBoard:
    """An empty virtual board (ESP32-sized heap) whose filesystem is a temporary folder."""
    return VirtualBoard(tmp_path / "board", "virtual")
