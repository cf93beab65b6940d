"""Fixtures shared by every test area: the repository root and a fresh virtual board."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeloop.vboard import VirtualBoard

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture
def vboard(tmp_path: Path) -> VirtualBoard:
    """An empty virtual board (ESP32-sized heap) whose filesystem is a temporary folder."""
    return VirtualBoard(tmp_path / "board", "virtual")
