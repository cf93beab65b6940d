"""The virtual board as a Transport: its folder is the filesystem, MicroPython runs the code.

Each exec is a fresh MicroPython unix-port process with the board profile's heap (nothing
persists between execs, as after a soft reset). `console` and `stream` run main.py (or another
script) as a live process whose stdin/stdout play the serial console.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from edgeloop.boards import BoardProfile
from edgeloop.link.transport import (
    BoardError,
    ByteStream,
    LinkError,
    OnBytes,
    StreamClosed,
    Transport,
)
from edgeloop.vboard import VirtualBoard, VirtualBoardError


class BoardNotDeployed(BoardError):
    """The virtual board's folder has no program to run."""


class VirtualTransport(Transport):
    """The virtual board: its folder is the filesystem; each exec is a fresh MicroPython process."""

    def __init__(self, root: Path | str, profile: BoardProfile | str = "virtual",
                 realtime: bool = False) -> None:
        self.board = VirtualBoard(root, profile)
        self.root = self.board.root
        self.name = f"virtual board at {self.root}"
        self._proc: subprocess.Popen | None = None
        self.realtime = realtime  # console() runs the board in its own session (vboard.spawn)

    def _local(self, remote_path: str) -> Path:
        path = (self.root / remote_path.lstrip("/")).resolve()
        if self.root not in path.parents and path != self.root:
            raise LinkError(f"{remote_path!r} is outside the virtual board's filesystem")
        return path

    def exec(self, code: str, timeout: float = 30.0) -> str:
        try:
            result = self.board.run(code, timeout=timeout)
        except VirtualBoardError as exc:
            raise BoardError(f"{self.name}: {exc}") from exc
        if result.returncode != 0:
            raise BoardError(
                f"code raised on the {self.name}", (result.stdout + "\n" + result.stderr)[-3000:]
            )
        return result.stdout

    def fs_put(self, data: bytes, remote_path: str) -> None:
        path = self._local(remote_path)
        if not path.parent.is_dir():
            raise BoardError(f"{self.name}: no folder for {remote_path!r}")
        with open(path, "wb") as f:
            for i in range(0, len(data), 4096):
                f.write(data[i : i + 4096])

    def fs_read(self, remote_path: str) -> bytes:
        path = self._local(remote_path)
        if not path.is_file():
            raise BoardError(f"{self.name}: no file {remote_path!r}")
        return path.read_bytes()

    def reset(self) -> None:
        # Nothing persists between execs; a live console process is stopped.
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def console(self, seconds: float | None = None) -> Iterator[str]:
        self.reset()
        if not (self.root / "main.py").exists():
            raise BoardError(f"{self.name}: no main.py (run `edgeloop deploy ... --board virtual`)")
        self._proc = proc = self.board.spawn("main.py", own_session=self.realtime)
        deadline = None if seconds is None else time.monotonic() + seconds
        assert proc.stdout is not None
        try:
            while deadline is None or time.monotonic() < deadline:
                line = proc.stdout.readline()
                if not line:
                    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                    code = proc.wait()
                    if code != 0:
                        how = f"signal {-code}" if code < 0 else f"exit status {code}"
                        raise BoardError(f"main.py stopped on the {self.name} ({how})", err)
                    return
                yield line.decode(errors="replace").rstrip("\r\n")
        finally:
            self.reset()

    def stream(self, script: str = "main.py") -> VirtualStream:
        if not (self.root / script).exists():
            raise BoardNotDeployed(f"{self.root / script} does not exist: deploy the board first")
        return VirtualStream(self.board, script, self.name)

    def close(self) -> None:
        self.reset()


class VirtualStream(ByteStream):
    """A script spawned in the board's folder; stdout is the console, stderr the error text."""

    def __init__(self, board: VirtualBoard, script: str, name: str) -> None:
        self.board = board
        self.script = script
        self.name = name
        self.proc: subprocess.Popen | None = None
        self._wlock = threading.Lock()
        self._handlers: tuple[OnBytes, Callable[[], None], OnBytes | None] | None = None

    def start(self, on_bytes: OnBytes, on_eof: Callable[[], None],
              on_text: OnBytes | None = None) -> None:
        self._handlers = (on_bytes, on_eof, on_text)
        self._spawn()

    def _spawn(self) -> None:
        assert self._handlers is not None, "start() first"
        on_bytes, on_eof, on_text = self._handlers
        self.proc = proc = self.board.spawn(self.script)
        assert proc.stdout is not None and proc.stderr is not None

        def pump(stream: Any, on_data: OnBytes, after: threading.Thread | None) -> None:
            while True:
                data = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
                if not data:
                    break
                on_data(data)
            if after is not None:  # stdout: the end once stderr (a traceback) is in too
                after.join(timeout=5)
                if proc is self.proc:  # a replaced process's end is no end of the stream
                    on_eof()

        err = threading.Thread(target=pump, args=(proc.stderr, on_text or on_bytes, None),
                               daemon=True)
        err.start()
        threading.Thread(target=pump, args=(proc.stdout, on_bytes, err), daemon=True).start()

    def write(self, data: bytes) -> None:
        proc = self.proc
        assert proc is not None and proc.stdin is not None
        with self._wlock:
            try:
                proc.stdin.write(data)
            except (BrokenPipeError, ValueError) as exc:
                raise StreamClosed(
                    f"board stopped reading (exit code {proc.poll()})"
                ) from exc

    def restart(self, hard: bool = False, farewell: bytes = b"") -> str:
        old = self.proc
        self.proc = None
        if old is not None:
            old.kill()
            old.wait()
        self._spawn()
        return "board reset"

    def close(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            try:
                assert proc.stdin is not None
                proc.stdin.close()
                proc.wait(timeout=5)
            except (subprocess.TimeoutExpired, BrokenPipeError, OSError):
                proc.kill()
                proc.wait()
