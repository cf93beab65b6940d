"""Fixtures for the boards tests: virtual boards holding the device code, fake hardware images."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeloop.firmware import build_firmware
from edgeloop.vboard import VirtualBoard


@pytest.fixture
def fw_board(tmp_path: Path) -> VirtualBoard:
    """A virtual board with firmware_micropython/ copied as source (no mpy-cross: fast)."""
    board = VirtualBoard(tmp_path / "board", "virtual")
    build_firmware(board.root, None)
    return board


def _esp_image(chip_id: int, size: int = 4096) -> bytes:
    head = bytearray(size)
    head[0] = 0xE9
    head[1] = 3  # segments
    head[12:14] = chip_id.to_bytes(2, "little")
    return bytes(head)


@pytest.fixture
def esp_image():
    """Build a minimal ESP image as a MicroPython .bin starts: magic 0xE9, chip id at byte 12."""
    return _esp_image
