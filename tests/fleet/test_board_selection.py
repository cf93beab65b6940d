"""Fleet boards are the one selected virtual board (EDGELOOP_MICROPYTHON, edgeloop.vboard), as
every other board test: `make test-esp32sem` runs tests/fleet on the ESP32's arithmetic."""

from __future__ import annotations

from pathlib import Path

from edgeloop.boards import SIM_HEAP, get_board
from edgeloop.vboard import identify


def test_fleet_boards_follow_the_board_selection(make_board, tmp_path: Path,
                                                 monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # a stand-in that answers only vboard's identify() protocol: a 32-bit x86 MicroPython
    stub = tmp_path / "mp32"
    stub.write_text("#!/bin/sh\necho EDGELOOP-ID 1798 32 32 1.29.0\n")
    stub.chmod(0o755)
    monkeypatch.setenv("EDGELOOP_MICROPYTHON", str(stub))
    board = make_board("d1")  # laid out, not started
    assert board.exe == str(stub.resolve())
    assert identify(board.exe).mpy_arch == "x86"
    # a 32-bit board: the profile's heap, and the simulated chips' share
    assert board.heap == get_board("virtual").heap_bytes + SIM_HEAP
    mpy = (board.root / "preprocess.mpy").read_bytes()  # viper code: its header names the arch
    assert mpy[0] == ord("M") and mpy[2] >> 2 == 1  # compiled for x86 (mpy-cross -march=x86)
