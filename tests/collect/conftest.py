"""Fixtures for the collect tests (helpers: tests/factory/collecting.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def board_dir(tmp_path: Path) -> Path:
    """A virtual board folder of the test's own (never build/vboard/collect)."""
    return tmp_path / "vboard"
