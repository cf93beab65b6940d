"""Fixtures for the field-window tests: a virtual board holding the device code as source."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeloop.firmware import build_firmware
from edgeloop.vboard import VirtualBoard


@pytest.fixture
def fw_board(tmp_path: Path) -> VirtualBoard:
    """A virtual board (ESP32-sized heap) with firmware_micropython/ copied as source."""
    board = VirtualBoard(tmp_path / "board", "esp32")
    build_firmware(board.root, None)
    return board
