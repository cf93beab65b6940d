"""A real board as a Transport: a serial port or socket:// URL, via mpremote and pyserial.

exec and the file operations go through mpremote's raw-REPL transport; `console` and `stream`
read the same pyserial port (opened by mpremote, which accepts pyserial URLs such as
socket://host:port) while the board's main.py runs.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator

from edgeloop.link.transport import (
    BoardBusy,
    BoardError,
    BoardNotFound,
    ByteStream,
    LinkError,
    OnBytes,
    StreamClosed,
    Transport,
)


def _is_url(port: str) -> bool:
    return "://" in port


def list_port_names() -> list[str]:
    from serial.tools import list_ports

    return sorted(p.device for p in list_ports.comports())


class SerialTransport(Transport):
    """A real board on a serial port (or socket:// URL) through mpremote's raw REPL.

    raw_repl=True enters the raw REPL at once, so a board without MicroPython is reported here;
    with False it is entered when exec or a file operation first needs it (a HIL bench that only
    streams never interrupts the running app).
    """

    def __init__(
        self, port: str, baudrate: int = 115200, soft_reset: bool = False, raw_repl: bool = True
    ) -> None:
        # No soft reset on connect by default: the app's watchdog keeps running through a soft
        # reset with nothing feeding it, while the app's Ctrl-C handler feeds it from a timer.
        self.port = port
        self.name = f"board on {port}"
        self._soft_reset = soft_reset
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
        self._in_repl = False
        if raw_repl:
            self._repl()

    def _repl(self) -> None:
        """Enter the raw REPL once (Ctrl-C stops the running app first)."""
        if self._in_repl:
            return
        import contextlib
        import io

        from mpremote.transport import TransportError

        heard = io.StringIO()  # mpremote print()s what it read on failure: keep stdout clean
        try:
            with contextlib.redirect_stdout(heard):
                self._t.enter_raw_repl(soft_reset=self._soft_reset)
        except TransportError as exc:
            self._t.close()
            got = heard.getvalue().strip()
            raise BoardError(
                f"no MicroPython REPL answered on {self.port}: is MicroPython flashed "
                "(`edgeloop flash`) and the baud rate right?"
                + (f" (it sent {got[:80]})" if got and got != "b''" else "")
            ) from exc
        self._in_repl = True

    def exec(self, code: str, timeout: float = 30.0) -> str:
        from mpremote.transport import TransportError

        self._repl()
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

        self._repl()
        try:
            self._t.fs_writefile(remote_path, bytes(data), chunk_size=256)
        except TransportError as exc:
            raise BoardError(f"writing {remote_path} on the {self.name} failed", str(exc)) from exc
        except OSError as exc:
            raise LinkError(f"writing {remote_path} on the {self.name} failed: {exc}") from exc

    def fs_read(self, remote_path: str) -> bytes:
        from mpremote.transport import TransportError

        self._repl()
        try:
            return bytes(self._t.fs_readfile(remote_path))
        except TransportError as exc:
            raise BoardError(f"reading {remote_path} on the {self.name} failed", str(exc)) from exc
        except OSError as exc:
            raise BoardError(f"reading {remote_path} on the {self.name} failed: {exc}") from exc

    def reset(self) -> None:
        """Hard reset (machine.reset()): clears the watchdog, then boot.py and main.py run."""
        from mpremote.transport import TransportError

        self._repl()
        try:
            self._t.exec_raw_no_follow("import machine\nmachine.reset()")
        except TransportError as exc:
            raise BoardError(f"could not reset the {self.name}: {exc}") from exc
        self._t.in_raw_repl = False
        self._in_repl = False

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

    def stream(self, script: str = "main.py") -> SerialStream:
        """The port as a byte stream. For main.py, a board this transport holds in the raw REPL
        leaves it and soft-reboots so main.py runs; otherwise whatever runs keeps running.
        Another script (a file already on the board, e.g. collect_run.py) is started from the
        raw REPL and its console is the stream until it returns."""
        if script != "main.py":
            from mpremote.transport import TransportError

            self._repl()
            try:
                self._t.exec_raw_no_follow(f"exec(open({script!r}).read())")
            except TransportError as exc:
                raise BoardError(f"could not start {script} on the {self.name}: {exc}") from exc
            return SerialStream(self._t.serial, self.name)
        if self._in_repl:
            self._t.serial.write(b"\r\x02\x04")  # Ctrl-B: friendly REPL; Ctrl-D: soft reboot
            self._t.in_raw_repl = False
            self._in_repl = False
        return SerialStream(self._t.serial, self.name)

    def close(self) -> None:
        try:
            self._t.close()
        except OSError:
            pass


class SerialStream(ByteStream):
    """The pyserial port as the HIL link's wire; one reader thread polls it every 50 ms."""

    def __init__(self, ser: object, name: str) -> None:
        self.ser = ser
        self.name = name
        self.closed = False
        self._reader: threading.Thread | None = None

    def start(self, on_bytes: OnBytes, on_eof: Callable[[], None],
              on_text: OnBytes | None = None) -> None:
        ser = self.ser
        ser.timeout = 0.05  # so close() is noticed between reads

        def pump() -> None:
            while not self.closed:
                try:
                    data = ser.read(ser.in_waiting or 1)
                except (OSError, AttributeError, TypeError):  # port gone or closed under us
                    break
                if data:
                    on_bytes(data)
            on_eof()

        self._reader = threading.Thread(target=pump, daemon=True)
        self._reader.start()

    def write(self, data: bytes) -> None:
        try:
            self.ser.write(data)
        except OSError as exc:
            raise StreamClosed(f"write failed: {exc}") from exc

    def restart(self, hard: bool = False, farewell: bytes = b"") -> str:
        """Soft (default): `farewell` ends a running HIL agent, then Ctrl-C, Ctrl-B (leave the
        raw REPL, as mpremote leaves it after a deploy) and Ctrl-D (soft reboot: main.py runs).
        Hard: pulse RTS, which drives EN on ESP32 dev boards with a USB-serial bridge."""
        ser = self.ser
        if hard:
            ser.dtr = False
            ser.rts = True
            time.sleep(0.1)
            ser.rts = False
            return "board reset (RTS)"
        if farewell:
            self.write(farewell)
            time.sleep(0.3)
        self.write(b"\r\x03\x03\x02\x04")
        return "board soft reset (Ctrl-D)"

    def close(self) -> None:
        self.closed = True
        if self._reader is not None:
            self._reader.join(timeout=2.0)  # reads time out every 50 ms
