"""The HIL frame link: the board's console byte stream, decoded into frames and console text.

`FrameLink` is the dut (pytest-embedded style): `write()`, `expect(pattern, timeout)` whose
failure shows the board's recent output, `send()` of framed messages and the decoded frames
from the stream's reader thread. It runs on any Transport's `stream()`, so the same bench
drives the virtual board and a real one on a serial port or socket:// URL.
"""

from __future__ import annotations

import queue
import re
import threading
import time

from edgeloop.link import protocol as P
from edgeloop.link.transport import ByteStream, LinkError, StreamClosed, Transport


class HilError(LinkError):
    """A HIL session failed; the message carries the board's recent output."""


class FrameLink:
    """A byte link to a running board with a frame decoder and a console-text log.

    Events (frames, text, corrupt-frame notes) are queued by the stream's reader thread, so a
    board that writes while the host writes never deadlocks the pipes.
    """

    def __init__(self, stream: ByteStream, owner: Transport | None = None) -> None:
        self.stream = stream
        self.name = stream.name
        self._owner = owner  # closed with the link (open() made it)
        self.events: queue.Queue[P.Event | None] = queue.Queue()
        self.decoder = P.FrameDecoder()
        self._text = bytearray()
        self._text_lock = threading.Condition()
        self._expect_pos = 0
        self.tx_seq = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.closed = False
        self.eof = False  # the board's output ended (process exited, port closed)
        self._eof_seen = threading.Event()
        self.hello: P.Hello | None = None  # the board's last HELLO taken by await_hello()
        stream.start(self._on_bytes, self._on_eof, self._on_text)

    @classmethod
    def open(cls, transport: Transport, script: str = "main.py") -> FrameLink:
        """Run `script` on the transport's board and link to it; closing the link closes both."""
        try:
            stream = transport.stream(script)
        except LinkError as exc:
            transport.close()
            raise HilError(str(exc)) from exc
        return cls(stream, owner=transport)

    # reader side -----------------------------------------------------------------------------
    def _on_bytes(self, data: bytes) -> None:
        self.bytes_in += len(data)
        for ev in self.decoder.feed(data):
            self._dispatch(ev)

    def _on_text(self, data: bytes) -> None:
        with self._text_lock:
            self._text += data
            if len(self._text) > 1_000_000:  # keep the tail; expect positions move with it
                cut = len(self._text) - 500_000
                del self._text[:cut]
                self._expect_pos = max(0, self._expect_pos - cut)
            self._text_lock.notify_all()

    def note(self, text: str) -> None:
        """A host remark in the console log (it shows in recent output)."""
        self._on_text(f"[host] {text}\n".encode())

    def _dispatch(self, ev: P.Event) -> None:
        if isinstance(ev, P.Text):
            self._on_text(ev.data)
        elif isinstance(ev, P.Frame) and ev.type == P.MsgType.LOG:
            self._on_text(b"[log] " + ev.payload + b"\n")
        elif isinstance(ev, P.Frame) and ev.type == P.MsgType.HELLO:
            self._on_text(b"[hello] " + ev.payload[12:] + b"\n")
        self.events.put(ev)

    def _on_eof(self) -> None:
        for ev in self.decoder.flush():
            self._dispatch(ev)
        self.eof = True
        self._eof_seen.set()
        self.events.put(None)

    def wait_eof(self, timeout: float) -> bool:
        """Wait for the board's output to end: a board that stopped reading has usually exited,
        and its last words (a traceback) are still on their way."""
        return self._eof_seen.wait(timeout)

    # dut API ---------------------------------------------------------------------------------
    def write(self, data: bytes | str) -> None:
        """Raw bytes (or text) to the board's console."""
        if isinstance(data, str):
            data = data.encode()
        self.bytes_out += len(data)
        try:
            self.stream.write(data)
        except StreamClosed as exc:
            raise HilError(f"{self.name}: {exc}; recent output:\n{self.recent_output()}") from exc

    def send(self, msg_type: int, payload: bytes = b"") -> bytes:
        frame = P.encode_frame(msg_type, self.tx_seq, payload)
        self.tx_seq = (self.tx_seq + 1) & 0xFFFF
        self.write(frame)
        return frame

    def reset(self, hard: bool = False) -> None:
        """Restart the board (its main.py runs again and says HELLO).

        A running HIL agent is asked to QUIT first where the stream cannot stop it itself;
        hard=True on a real board pulses RTS (EN on ESP32 dev boards).
        """
        self.hello = None
        self.decoder = P.FrameDecoder()  # a half-read frame of the old run is void
        quit_frame = P.encode_frame(P.MsgType.CONTROL, self.tx_seq, bytes([P.Control.QUIT]))
        done = self.stream.restart(hard=hard, farewell=quit_frame)
        self._on_text(f"\n[host] {done}\n".encode())

    def recent_output(self, n: int = 3000) -> str:
        with self._text_lock:
            return self._text[-n:].decode("utf-8", "replace")

    def expect(self, pattern: str | bytes, timeout: float = 10.0) -> re.Match:
        """Wait for pattern in the board's console text (LOG frames included)."""
        pat = re.compile(pattern.encode() if isinstance(pattern, str) else pattern)
        deadline = time.monotonic() + timeout
        with self._text_lock:
            while True:
                m = pat.search(self._text, self._expect_pos)
                if m:
                    self._expect_pos = m.end()
                    return m
                left = deadline - time.monotonic()
                if left <= 0 or (self.closed and self.events.empty()):
                    break
                self._text_lock.wait(min(left, 0.2))
        raise HilError(
            f"{self.name}: did not see {pat.pattern!r} within {timeout:.1f} s; "
            f"recent output:\n{self.recent_output()}"
        )

    def next_event(self, timeout: float) -> P.Event | None:
        """The next decoded event, or None on timeout or end of stream."""
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            return None

    def await_hello(self, timeout: float = 30.0) -> P.Hello:
        """Wait for the board's HELLO (it just started its HIL agent) and keep it."""
        self.hello = P.Hello.unpack(self.expect_frame(P.MsgType.HELLO, timeout).payload)
        return self.hello

    def expect_frame(self, msg_type: int, timeout: float = 10.0) -> P.Frame:
        """Skip events until a frame of msg_type arrives (others stay unread only for text)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            ev = self.next_event(left)
            if ev is None and self.closed:
                break
            if isinstance(ev, P.Frame) and ev.type == msg_type:
                return ev
        name = P.MsgType(msg_type).name if msg_type in set(P.MsgType) else hex(msg_type)
        raise HilError(
            f"{self.name}: no {name} frame within {timeout:.1f} s; recent output:\n"
            f"{self.recent_output()}"
        )

    def close(self) -> None:
        self.closed = True
        self.stream.close()
        if self._owner is not None:
            self._owner.close()

    def __enter__(self) -> FrameLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
