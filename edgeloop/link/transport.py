"""Talk to a MicroPython board: run code, move files, hash them on the board, reset it.

One small interface in mpremote's spirit with two implementations: VirtualTransport (the virtual
board: a folder plus a fresh MicroPython process per exec) and SerialTransport (a real board over
a serial port or a socket:// URL, through mpremote's raw-REPL transport). Deploy, infer and
monitor are written once against `Transport`; errors come out typed so the CLI can say what to do.
"""

from __future__ import annotations

import ast
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgeloop.boards import BoardProfile, get_board
from edgeloop.errors import EdgeLoopError
from edgeloop.vboard import VirtualBoard, VirtualBoardError


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
    """What deploy/infer/monitor need from a board. Paths are relative to the board's root."""

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


class VirtualTransport(Transport):
    """The virtual board: its folder is the filesystem; each exec is a fresh MicroPython process."""

    def __init__(self, root: Path | str, profile: BoardProfile | str = "virtual") -> None:
        self.board = VirtualBoard(root, profile)
        self.root = self.board.root
        self.name = f"virtual board at {self.root}"
        self._proc: subprocess.Popen | None = None

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
        self._proc = proc = self.board.spawn("main.py")
        deadline = None if seconds is None else time.monotonic() + seconds
        assert proc.stdout is not None
        try:
            while deadline is None or time.monotonic() < deadline:
                line = proc.stdout.readline()
                if not line:
                    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                    if proc.wait() != 0:
                        raise BoardError(f"main.py stopped on the {self.name}", err)
                    return
                yield line.decode(errors="replace").rstrip("\r\n")
        finally:
            self.reset()

    def close(self) -> None:
        self.reset()


def _is_url(port: str) -> bool:
    return "://" in port


def list_port_names() -> list[str]:
    from serial.tools import list_ports

    return sorted(p.device for p in list_ports.comports())


class SerialTransport(Transport):
    """A real board on a serial port (or socket:// URL) through mpremote's raw REPL."""

    def __init__(self, port: str, baudrate: int = 115200, soft_reset: bool = False) -> None:
        # No soft reset on connect by default: the app's watchdog keeps running through a soft
        # reset with nothing feeding it, while the app's Ctrl-C handler feeds it from a timer.
        self.port = port
        self.name = f"board on {port}"
        if not _is_url(port) and not os.path.exists(port):
            known = ", ".join(list_port_names()) or "none found"
            raise BoardNotFound(
                f"serial port {port} does not exist (ports here: {known}; see `edgeloop devices`)"
            )
        from mpremote.transport import TransportError
        from mpremote.transport_serial import SerialTransport as MpSerial

        try:
            self._t = MpSerial(port, baudrate=baudrate)
        except TransportError as exc:
            if _is_url(port):
                raise BoardNotFound(f"could not connect to {port}: {exc}") from exc
            raise BoardBusy(
                f"serial port {port} exists but cannot be opened: another program (a serial monitor,"
                " mpremote, esptool) may hold it, or you lack permission (Linux: join the 'dialout'"
                " group)"
            ) from exc
        try:
            self._t.enter_raw_repl(soft_reset=soft_reset)
        except TransportError as exc:
            self._t.close()
            raise BoardError(
                f"no MicroPython REPL answered on {port}: is MicroPython flashed "
                "(`edgeloop flash`) and the baud rate right?"
            ) from exc

    def exec(self, code: str, timeout: float = 30.0) -> str:
        from mpremote.transport import TransportError

        try:
            out, err = self._t.exec_raw(code, timeout=timeout)
        except TransportError as exc:
            raise BoardError(f"lost the raw REPL of the {self.name}: {exc}") from exc
        except OSError as exc:  # pyserial: cable pulled, board reset
            raise LinkError(f"serial link to {self.port} failed: {exc}") from exc
        if err:
            raise BoardError(f"code raised on the {self.name}", err.decode(errors="replace"))
        return out.decode(errors="replace")

    def fs_put(self, data: bytes, remote_path: str) -> None:
        from mpremote.transport import TransportError

        try:
            self._t.fs_writefile(remote_path, bytes(data), chunk_size=256)
        except TransportError as exc:
            raise BoardError(f"writing {remote_path} on the {self.name} failed", str(exc)) from exc
        except OSError as exc:
            raise LinkError(f"writing {remote_path} on the {self.name} failed: {exc}") from exc

    def fs_read(self, remote_path: str) -> bytes:
        from mpremote.transport import TransportError

        try:
            return bytes(self._t.fs_readfile(remote_path))
        except TransportError as exc:
            raise BoardError(f"reading {remote_path} on the {self.name} failed", str(exc)) from exc
        except OSError as exc:
            raise BoardError(f"reading {remote_path} on the {self.name} failed: {exc}") from exc

    def reset(self) -> None:
        """Hard reset (machine.reset()): clears the watchdog, then boot.py and main.py run."""
        from mpremote.transport import TransportError

        try:
            self._t.exec_raw_no_follow("import machine\nmachine.reset()")
        except TransportError as exc:
            raise BoardError(f"could not reset the {self.name}: {exc}") from exc
        self._t.in_raw_repl = False

    def console(self, seconds: float | None = None) -> Iterator[str]:
        self.reset()
        ser = self._t.serial
        ser.timeout = 0.2  # so the deadline is checked while the board is quiet
        deadline = None if seconds is None else time.monotonic() + seconds
        buf = b""
        while deadline is None or time.monotonic() < deadline:
            chunk = ser.read(ser.in_waiting or 1)
            if not chunk:
                continue
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                yield line.decode(errors="replace").rstrip("\r")

    def close(self) -> None:
        try:
            self._t.close()
        except OSError:
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
        return SerialTransport(port, baudrate=baudrate)
    if board == "virtual":
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
