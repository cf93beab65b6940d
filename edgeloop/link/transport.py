"""Talk to a MicroPython board: run code, move files, hash them on the board, reset it, stream.

One small interface in mpremote's spirit: `exec` and everything built on it (`eval`, file
hashes, folders, renames), file put/get, `reset`, the console's lines (`console`) and a raw
byte-stream mode (`stream`) that the HIL frame link runs on. Two implementations:
edgeloop.link.virtual.VirtualTransport (the virtual board: a folder plus MicroPython processes)
and edgeloop.link.serialport.SerialTransport (a real board on a serial port or a socket:// URL,
through mpremote's raw REPL and pyserial). Deploy, infer, monitor and the HIL bench are written
once against `Transport`; errors come out typed so only the CLI turns them into messages.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from edgeloop.boards import get_board
from edgeloop.errors import EdgeLoopError


class LinkError(EdgeLoopError):
    """Base of every failure talking to a board."""


class BoardNotFound(LinkError):
    """The port (or virtual board folder) does not exist."""


class BoardBusy(LinkError):
    """The port exists but cannot be opened (another program holds it, or no permission)."""


class BoardError(LinkError):
    """Code raised on the board; `board_traceback` holds the board's own traceback text."""

    def __init__(self, message: str, board_traceback: str = "") -> None:
        self.board_traceback = board_traceback
        tail = board_traceback.strip().splitlines()[-1] if board_traceback.strip() else ""
        super().__init__(f"{message}: {tail}" if tail else message)


class StreamClosed(LinkError):
    """The board stopped reading its console (its program exited, the port went away)."""


# Hashes many files in one round trip; reads through one preallocated buffer (small heap).
_HASH_CODE = """
import hashlib, binascii
_b = bytearray(512)
_m = memoryview(_b)
def _h(p):
    try:
        f = open(p, 'rb')
    except OSError:
        return None
    h = hashlib.sha256()
    while True:
        n = f.readinto(_b)
        if not n:
            break
        h.update(_m[:n])
    f.close()
    return binascii.hexlify(h.digest()).decode()
print(repr([_h(p) for p in %r]))
"""

_MAKEDIRS_CODE = """
import os
_p = ''
for _d in %r.split('/'):
    _p = _p + '/' + _d if _p else _d
    try:
        os.mkdir(_p)
    except OSError:
        pass
"""

# littlefs renames over an existing file atomically; FAT refuses, so remove then rename there.
_RENAME_CODE = """
import os
try:
    os.rename(%r, %r)
except OSError:
    os.remove(%r)
    os.rename(%r, %r)
"""

_REMOVE_CODE = """
import os
try:
    os.remove(%r)
except OSError:
    if not %r:
        raise
"""


class Transport:
    """What deploy, infer, monitor and the HIL link need from a board. Paths are relative to the
    board's root."""

    name = "board"

    # -- primitives each transport implements -------------------------------------------------
    def exec(self, code: str, timeout: float = 30.0) -> str:
        """Run code on the board and return what it printed; BoardError if it raised."""
        raise NotImplementedError

    def fs_put(self, data: bytes, remote_path: str) -> None:
        """Write bytes to a file on the board (parent folders must exist)."""
        raise NotImplementedError

    def fs_read(self, remote_path: str) -> bytes:
        raise NotImplementedError

    def reset(self) -> None:
        """Restart the board's MicroPython (soft reset), so main.py runs again."""
        raise NotImplementedError

    def console(self, seconds: float | None = None) -> Iterator[str]:
        """Restart the board and yield its console lines (main.py's output) as they come."""
        raise NotImplementedError

    def stream(self, script: str = "main.py") -> ByteStream:
        """The board's console as raw bytes while `script` runs (the HIL link's wire)."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    # -- built on exec --------------------------------------------------------------------------
    def eval(self, expr: str, timeout: float = 30.0) -> Any:
        out = self.exec(f"print(repr({expr}))", timeout)
        text = out.strip().splitlines()[-1] if out.strip() else ""
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError) as exc:
            raise BoardError(
                f"{self.name}: could not parse the value of {expr!r}: {text!r}"
            ) from exc

    def fs_hashes(self, remote_paths: list[str]) -> dict[str, str | None]:
        """sha256 (hex) of each file computed on the board; None where the file is missing."""
        if not remote_paths:
            return {}
        out = self.exec(_HASH_CODE % (list(remote_paths),), timeout=120.0)
        values = ast.literal_eval(out.strip().splitlines()[-1])
        return dict(zip(remote_paths, values, strict=True))

    def fs_hash(self, remote_path: str) -> str | None:
        return self.fs_hashes([remote_path])[remote_path]

    def fs_makedirs(self, remote_dir: str) -> None:
        remote_dir = remote_dir.strip("/")
        if remote_dir:
            self.exec(_MAKEDIRS_CODE % remote_dir)

    def fs_rename(self, src: str, dst: str) -> None:
        self.exec(_RENAME_CODE % (src, dst, dst, src, dst))

    def fs_remove(self, remote_path: str, missing_ok: bool = False) -> None:
        self.exec(_REMOVE_CODE % (remote_path, missing_ok))

    def fs_listdir(self, remote_dir: str = "") -> list[str]:
        arg = repr(remote_dir) if remote_dir else ""
        return sorted(self.eval(f"__import__('os').listdir({arg})"))

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


OnBytes = Callable[[bytes], None]


class ByteStream:
    """Raw console bytes both ways while the board's program runs: what a HIL frame link needs.

    `start` hands every chunk the board writes to `on_bytes` from a reader thread (and, where
    the board has a separate error channel, as the virtual board's stderr, to `on_text`), then
    calls `on_eof` once when the stream ends. A board that writes while the host writes never
    deadlocks the pipes.
    """

    name = "board"

    def start(self, on_bytes: OnBytes, on_eof: Callable[[], None],
              on_text: OnBytes | None = None) -> None:
        raise NotImplementedError

    def write(self, data: bytes) -> None:
        """Bytes to the board's console; StreamClosed when the board no longer reads."""
        raise NotImplementedError

    def restart(self, hard: bool = False, farewell: bytes = b"") -> str:
        """Restart the board's program; returns what was done, for the console log.

        `farewell` asks a running program to end first (a HIL QUIT frame) where the stream cannot
        stop it itself; the virtual board's process is simply replaced.
        """
        raise NotImplementedError

    def close(self) -> None:
        pass


def open_transport(
    port: str | None = None,
    board: str | None = None,
    board_dir: Path | str | None = None,
    profile: str | None = None,
    baudrate: int = 115200,
) -> Transport:
    """A transport from CLI options: `--port PORT` or `--board virtual [--dir DIR]`."""
    if port and board:
        raise LinkError("give either --port (a real board) or --board virtual, not both")
    if port:
        from edgeloop.link.serialport import SerialTransport

        return SerialTransport(port, baudrate=baudrate)
    if board == "virtual":
        from edgeloop.link.virtual import VirtualTransport

        prof = get_board(profile or "virtual")
        root = Path(board_dir) if board_dir else default_virtual_dir(prof.name)
        return VirtualTransport(root, prof)
    if board:
        raise LinkError(
            f"--board {board!r}: only 'virtual' is a board without a port; "
            "for a real board give --port (and --board-profile for its kind)"
        )
    raise LinkError("no board given: use --port PORT (see `edgeloop devices`) or --board virtual")


def default_virtual_dir(profile_name: str) -> Path:
    return Path("build") / "vboard" / profile_name
