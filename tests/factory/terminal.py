"""A command on a pseudo-terminal, as a user at a keyboard runs it: what it draws is collected,
keys are typed into it, and it is killed if the test ends first."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from pathlib import Path


class Terminal:
    def __init__(self, args: list[str], cwd: Path | None = None) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, cwd=cwd,
                                     close_fds=True)
        os.close(slave)
        self.seen = bytearray()

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)

    def read_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if select.select([self.master], [], [], 0.1)[0]:
                try:
                    self.seen.extend(os.read(self.master, 65536))
                except OSError:  # the command ended and its side of the terminal closed
                    return

    def wait_for(self, text: bytes, timeout: float) -> None:
        """Read until `text` is on the screen; fail with the screen's tail if it never comes."""
        deadline = time.monotonic() + timeout
        while text not in self.seen and time.monotonic() < deadline:
            self.read_for(0.3)
        assert text in self.seen, bytes(self.seen[-2000:])

    def type(self, keys: bytes | str, then: float = 0.5) -> None:
        self.read_for(0)
        os.write(self.master, keys.encode() if isinstance(keys, str) else keys)
        self.read_for(then)

    def finish(self, timeout: float) -> int:
        """Wait for the command to end (reading on, so it never blocks on a full terminal)."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self.read_for(0.2)
        self.read_for(0.3)
        if self.proc.poll() is None:
            raise AssertionError(f"still running after {timeout:.0f} s: "
                                 f"{bytes(self.seen[-2000:])!r}")
        return self.proc.returncode

    @property
    def text(self) -> str:
        return self.seen.decode(errors="replace")
