"""Host side of a HIL session: a live link to a board, and the closed loop with a sensor twin.

`BoardConnection` is the dut (pytest-embedded style): `write()`, `expect(pattern, timeout)` whose
failure shows the board's recent output, plus decoded frames from a reader thread.
`HilSession.run()` streams a twin in simulated time, applies the board's actuator commands to it
(stop -> twin.stop()), and accounts for every window: answered, skipped for a sensor fault, or
lost with a reason. `run_closed_loop()` is the one-call form the demo uses.
"""

from __future__ import annotations

import json
import queue
import re
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeloop.errors import EdgeLoopError
from edgeloop.link import protocol as P

NAN_MARK = -32768  # int16 value meaning "no sample" (NaN) on the link; see firmware hil.py
# MicroPython's banner after a (soft) reboot, the ESP32 ROM's reset line, a soft reboot note
BOOT_BANNER = re.compile(rb"MicroPython v\d|rst:0x[0-9a-f]+ \(|soft reboot")
PAD = bytes(P.MAX_PAYLOAD + P.HEADER_SIZE + P.CRC_SIZE)  # completes any half-read frame


class HilError(EdgeLoopError):
    """A HIL session failed; the message carries the board's recent output."""


# ------------------------------------------------------------------------------ connection


class BoardConnection:
    """A byte link to a running board with a frame decoder and a console-text log.

    Events (frames, text, corrupt-frame notes) are queued by a reader thread, so a board that
    writes while the host writes never deadlocks the pipes.
    """

    def __init__(self, name: str) -> None:
        self.name = name
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
        self.hello: P.Hello | None = None  # the board's last HELLO taken by await_hello()

    # transport hooks -------------------------------------------------------------------------
    def _write_raw(self, data: bytes) -> None:
        raise NotImplementedError

    def _start_readers(self) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        """Restart the board (its main.py runs again and says HELLO)."""
        raise NotImplementedError

    def close(self) -> None:
        self.closed = True

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
        self.events.put(None)

    # dut API ---------------------------------------------------------------------------------
    def write(self, data: bytes | str) -> None:
        """Raw bytes (or text) to the board's console."""
        if isinstance(data, str):
            data = data.encode()
        self.bytes_out += len(data)
        self._write_raw(data)

    def send(self, msg_type: int, payload: bytes = b"") -> bytes:
        frame = P.encode_frame(msg_type, self.tx_seq, payload)
        self.tx_seq = (self.tx_seq + 1) & 0xFFFF
        self.write(frame)
        return frame

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

    def __enter__(self) -> BoardConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class VirtualConnection(BoardConnection):
    """The virtual board: main.py spawned in its folder, stdin/stdout as the serial console."""

    def __init__(self, root: Path | str, profile: str = "virtual", script: str = "main.py") -> None:
        from edgeloop.vboard import VirtualBoard

        self.board = VirtualBoard(root, profile)
        self.script = script
        super().__init__(f"virtual board at {self.board.root}")
        self.proc: subprocess.Popen | None = None
        self._wlock = threading.Lock()
        self._spawn()

    def _spawn(self) -> None:
        if not (self.board.root / self.script).exists():
            raise HilError(f"{self.board.root / self.script} does not exist: deploy the board first")
        self.proc = self.board.spawn(self.script)
        self._start_readers()

    def _start_readers(self) -> None:
        proc = self.proc
        assert proc is not None and proc.stdout is not None and proc.stderr is not None

        def pump(stream: Any, on_data: Callable[[bytes], None], eof: bool) -> None:
            while True:
                data = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
                if not data:
                    break
                on_data(data)
            if eof and proc is self.proc:
                self._on_eof()

        threading.Thread(target=pump, args=(proc.stdout, self._on_bytes, True), daemon=True).start()
        threading.Thread(target=pump, args=(proc.stderr, self._on_text, False), daemon=True).start()

    def _write_raw(self, data: bytes) -> None:
        proc = self.proc
        assert proc is not None and proc.stdin is not None
        with self._wlock:
            try:
                proc.stdin.write(data)
            except (BrokenPipeError, ValueError) as exc:
                code = proc.poll()
                raise HilError(
                    f"{self.name}: board stopped reading (exit code {code}); recent output:\n"
                    f"{self.recent_output()}"
                ) from exc

    def reset(self) -> None:
        old = self.proc
        self.proc = None
        if old is not None:
            old.kill()
            old.wait()
        self._on_text(b"\n[host] board reset\n")
        self.decoder = P.FrameDecoder()
        self._spawn()

    def close(self) -> None:
        super().close()
        proc = self.proc
        if proc is not None and proc.poll() is None:
            try:
                assert proc.stdin is not None
                proc.stdin.close()
                proc.wait(timeout=5)
            except (subprocess.TimeoutExpired, BrokenPipeError, OSError):
                proc.kill()
                proc.wait()


class SerialConnection(BoardConnection):
    """A real board on a serial port or socket:// URL (pyserial), already running HIL mode."""

    def __init__(self, port: str, baudrate: int = 115200) -> None:
        super().__init__(f"board on {port}")
        import serial

        try:
            self.ser = serial.serial_for_url(port, baudrate=baudrate, timeout=0.05)
        except (serial.SerialException, ValueError) as exc:
            raise HilError(f"cannot open {port}: {exc}") from exc
        self._start_readers()

    def _start_readers(self) -> None:
        def pump() -> None:
            while not self.closed:
                try:
                    data = self.ser.read(self.ser.in_waiting or 1)
                except (OSError, AttributeError):  # port gone (pyserial: closed under us)
                    break
                if data:
                    self._on_bytes(data)
            self._on_eof()

        self._reader = threading.Thread(target=pump, daemon=True)
        self._reader.start()

    def _write_raw(self, data: bytes) -> None:
        try:
            self.ser.write(data)
        except OSError as exc:
            raise HilError(f"{self.name}: write failed: {exc}") from exc

    def reset(self, hard: bool = False) -> None:
        """Restart the board's main.py.

        Soft (default): a CONTROL QUIT frame ends a running HIL agent, then Ctrl-C, Ctrl-B
        (leave raw REPL, as mpremote leaves it after a deploy) and Ctrl-D (soft reboot).
        Hard: pulse RTS, which drives EN on ESP32 dev boards with a USB-serial bridge.
        """
        self.hello = None
        if hard:
            self.ser.dtr = False
            self.ser.rts = True
            time.sleep(0.1)
            self.ser.rts = False
            self._on_text(b"\n[host] board reset (RTS)\n")
            return
        self.send(P.MsgType.CONTROL, bytes([P.Control.QUIT]))
        time.sleep(0.3)
        self.write(b"\r\x03\x03\x02\x04")
        self._on_text(b"\n[host] board soft reset (Ctrl-D)\n")

    def close(self) -> None:
        super().close()
        self._reader.join(timeout=2.0)  # reads time out every 50 ms
        self.ser.close()


# ------------------------------------------------------------------------------ deploy


def hil_config(base: dict | None, input_mode: str = "frames", **hil: Any) -> dict:
    """A device config for HIL mode from the run's config (window, preprocess, decision...)."""
    cfg = dict(base or {})
    cfg["mode"] = "hil"
    dec = dict(cfg.get("decision", {}))
    if "fault_classes" in dec and "alarm_classes" not in dec:  # trainer's name for them
        dec["alarm_classes"] = dec["fault_classes"]
    dec.setdefault("latch", True)  # a stopped machine stays stopped until re-armed
    cfg["decision"] = dec
    h = dict(cfg.get("hil", {}))
    h["input"] = input_mode
    h.update(hil)
    cfg["hil"] = h
    if input_mode == "i2c":
        sensor = dict(cfg.get("sensor", {}))
        sensor.setdefault("kind", "mpu6050")
        sensor["range_g"] = int(sensor.get("range_g", 16))
        cfg["sensor"] = sensor
    return cfg


def deploy_virtual(
    source: Path | str, board_dir: Path | str, config: dict, profile: str = "virtual",
    verify: bool = False,
) -> Path:
    """Deploy a run folder / bundle into a virtual board folder with a HIL config."""
    from edgeloop.boards import get_board
    from edgeloop.link.deploy import deploy, plan_deploy
    from edgeloop.link.transport import VirtualTransport

    prof = get_board(profile)
    plan = plan_deploy(Path(source), prof, virtual=True, config=config)
    transport = VirtualTransport(board_dir, prof)
    deploy(transport, plan, verify=verify)
    return transport.root


# ------------------------------------------------------------------------------ session


@dataclass
class WindowRecord:
    k: int
    t_end_s: float
    status: str = "pending"  # ok | skipped | lost
    cls: int = -1
    decision: int = 0
    latency_us: int = 0
    heap_free: int = 0
    outputs: list[int] = field(default_factory=list)
    reason: str = ""


@dataclass
class SessionResult:
    sample_rate: float
    window: int
    stride: int
    duration_s: float = 0.0
    windows: list[WindowRecord] = field(default_factory=list)
    stops: list[dict] = field(default_factory=list)  # {"window", "t_s"} stop commands applied
    sensor_faults: list[dict] = field(default_factory=list)
    resets: list[float] = field(default_factory=list)  # sim time of each HELLO after the first
    banners: list[float] = field(default_factory=list)  # boot banners / ROM reset lines seen
    corrupt_frames: int = 0
    pongs: list[dict] = field(default_factory=list)
    timeline: dict[str, list[float]] = field(default_factory=dict)
    fault_at_s: float | None = None
    broken_at_s: float | None = None
    wall_s: float = 0.0
    hello: dict = field(default_factory=dict)
    error: str = ""  # why the run ended early (board exited / went silent), with its output
    samples: np.ndarray | None = None  # the host's int16 encoding of every sample (keep_samples)

    # summary ---------------------------------------------------------------------------------
    @property
    def n_windows(self) -> int:
        return len(self.windows)

    def count(self, status: str) -> int:
        return sum(1 for w in self.windows if w.status == status)

    @property
    def lost(self) -> list[WindowRecord]:
        return [w for w in self.windows if w.status == "lost"]

    @property
    def first_stop_s(self) -> float | None:
        return self.stops[0]["t_s"] if self.stops else None

    @property
    def false_stops(self) -> int:
        """Stops before the fault was injected (or any stop when no fault was injected)."""
        cutoff = self.fault_at_s if self.fault_at_s is not None else float("inf")
        return sum(1 for s in self.stops if s["t_s"] < cutoff)

    @property
    def detection_latency_s(self) -> float | None:
        if self.fault_at_s is None:
            return None
        after = [s["t_s"] for s in self.stops if s["t_s"] >= self.fault_at_s]
        return (after[0] - self.fault_at_s) if after else None

    def lost_reasons(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for w in self.lost:
            out[w.reason] = out.get(w.reason, 0) + 1
        return out

    def summary(self) -> dict:
        lat = [w.latency_us for w in self.windows if w.status == "ok"]
        heap = [w.heap_free for w in self.windows if w.status in ("ok", "skipped")]
        return {
            "duration_s": self.duration_s,
            "wall_s": round(self.wall_s, 3),
            "windows": self.n_windows,
            "answered": self.count("ok"),
            "skipped_sensor_fault": self.count("skipped"),
            "lost": self.count("lost"),
            "lost_reasons": self.lost_reasons(),
            "stops": len(self.stops),
            "first_stop_s": self.first_stop_s,
            "health_at_stop": self.stops[0]["health"] if self.stops else None,
            "false_stops": self.false_stops,
            "fault_at_s": self.fault_at_s,
            "detection_latency_s": self.detection_latency_s,
            "breakdowns": 1 if self.broken_at_s is not None else 0,
            "broken_at_s": self.broken_at_s,
            "sensor_fault_reports": len(self.sensor_faults),
            "board_resets": len(self.resets),
            "boot_banners": len(self.banners),
            "corrupt_frames": self.corrupt_frames,
            "error": self.error,
            "latency_us_max": max(lat) if lat else None,
            "latency_us_median": float(np.median(lat)) if lat else None,
            "heap_free_min": min(heap) if heap else None,
        }

    def to_json(self) -> dict:
        d = self.summary()
        d["windows_detail"] = [asdict(w) for w in self.windows]
        d["stops_detail"] = self.stops
        d["sensor_faults_detail"] = self.sensor_faults
        return d


Mangler = Callable[[bytes, int], bytes]  # (frame bytes, frame number) -> bytes actually written


class HilSession:
    """Closed loop between one linked board and one twin, in simulated time."""

    def __init__(
        self,
        conn: BoardConnection,
        input_mode: str = "frames",
        lsb_per_g: int = 2048,
        hello_timeout: float = 30.0,
        sample_dtype: P.DType = P.DType.INT16,
    ) -> None:
        self.conn = conn
        self.input_mode = input_mode
        self.lsb_per_g = lsb_per_g
        # INT16: the host converts to counts (NaN -> NAN_MARK); FLOAT32: values in g, the
        # board converts (two frames per stride, so a frame never outgrows an int16 one)
        self.sample_dtype = P.DType(sample_dtype)
        self.hello = conn.hello or conn.await_hello(hello_timeout)
        if self.hello.version != P.PROTOCOL_VERSION:
            raise HilError(
                f"{conn.name} speaks link protocol v{self.hello.version}, host v{P.PROTOCOL_VERSION}"
            )
        self._token = 0
        self._sent = 0
        self._ping_sent: dict[int, int] = {}

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Twin samples in g -> int16 for the link (counts, or milli-g for the I2C path)."""
        unit = 1000.0 if self.input_mode == "i2c" else float(self.lsb_per_g)
        q = np.rint(np.asarray(x, dtype=np.float64) * unit)
        nan = np.isnan(q)
        q = np.clip(np.nan_to_num(q, nan=0.0), -32767, 32767).astype(np.int16)
        q[nan] = NAN_MARK
        return q

    def run(
        self,
        twin: Any,
        duration_s: float,
        fault_at_s: float | None = None,
        fault_kind: str = "bearing",
        max_in_flight: int = 2,
        mangle: Mangler | None = None,
        reset_at_s: float | None = None,
        timeline_every: int = 1,
        answer_timeout: float = 20.0,
        on_stop: Callable[[], None] | None = None,
        on_batch: Callable[[Any, int], None] | None = None,
        keep_samples: bool = False,
    ) -> SessionResult:
        """Stream duration_s of the twin, one stride per frame, keeping the board in step."""
        h = self.hello
        fs = float(twin.sample_rate)
        W, S = h.window, h.stride
        res = SessionResult(fs, W, S, duration_s=duration_s, fault_at_s=fault_at_s)
        res.hello = asdict(h)
        if fault_at_s is not None:
            twin.inject_fault(fault_kind, at_s=fault_at_s)
        tl: dict[str, list[float]] = {
            k: [] for k in ("t", "rms", "ax", "health", "running", "rpm")
        }
        self.windows: dict[int, WindowRecord] = {}
        self.res = res
        self.twin = twin
        self.on_stop = on_stop
        n_total = int(round(duration_s * fs))
        sent = 0
        batch_no = 0
        reset_done = reset_at_s is None
        self._sent = 0
        self._ping_sent.clear()
        frame_no = 0
        kept: list[np.ndarray] = []
        start = time.perf_counter()
        self.conn.send(P.MsgType.CONTROL, bytes([P.Control.RESTART]))  # stream from sample 0
        while sent < n_total:
            n = min(S, n_total - sent)
            if on_batch is not None:
                on_batch(twin, batch_no)  # e.g. drift the operating point
            x = twin.step(n)
            q = self.encode(x)
            if keep_samples:
                kept.append(q)
            if self.sample_dtype == P.DType.FLOAT32:
                half = (n + 1) // 2
                parts = [(sent, x[:half]), (sent + half, x[half:])] if n > 1 else [(sent, x)]
            else:
                parts = [(sent, q)]
            for first, data in parts:
                payload = P.samples_payload(first, data, self.sample_dtype)
                frame = P.encode_frame(P.MsgType.SAMPLES, self.conn.tx_seq, payload)
                self.conn.tx_seq = (self.conn.tx_seq + 1) & 0xFFFF
                try:
                    self.conn.write(mangle(frame, frame_no) if mangle else frame)
                except HilError as exc:  # the board is gone: end the run with its story
                    why = str(exc).split("; recent output")[0]
                    self._fail("board_exited", f"the board stopped reading: {why}")
                    break
                frame_no += 1
            if res.error:
                break
            if batch_no % timeline_every == 0:
                tl["t"].append(twin.t)
                x0 = x[:, 0][np.isfinite(x[:, 0])]
                tl["rms"].append(float(np.sqrt(np.mean((x0 - x0.mean()) ** 2))) if x0.size else 0.0)
                tl["ax"].append(float(x0[-1]) if x0.size else float("nan"))
                tl["health"].append(float(getattr(twin, "health", 1.0)))
                tl["running"].append(1.0 if getattr(twin, "running", True) else 0.0)
                tl["rpm"].append(float(getattr(twin, "rpm", 0.0)))
            sent += n
            self._sent = sent
            batch_no += 1
            for k in range(len(self.windows), _windows_done(sent, W, S)):
                self.windows[k] = WindowRecord(k, (k * S + W) / fs)
            if getattr(twin, "broken", False) and res.broken_at_s is None:
                res.broken_at_s = twin.t
            if not reset_done and twin.t >= reset_at_s:
                reset_done = True
                self.conn.reset()
                self._mark_unanswered_lost(P.LostReason.BOARD_RESET)
                try:
                    self._await_hello(answer_timeout)
                except HilError as exc:
                    self._fail("board_reset", str(exc).split("; recent output")[0])
                    break
            self._pump(block=False)
            if not self._wait_in_flight(max_in_flight, answer_timeout):
                break
        if not res.error:
            self._finish(answer_timeout)
        self._mark_unanswered_lost(P.LostReason.NO_RESULT)
        res.windows = [self.windows[k] for k in sorted(self.windows)]
        res.timeline = tl
        res.wall_s = time.perf_counter() - start
        if keep_samples:
            res.samples = np.concatenate(kept) if kept else np.zeros((0, 0), np.int16)
        return res

    # ---- event handling -----------------------------------------------------------------------
    def _wait_in_flight(self, max_in_flight: int, timeout: float) -> bool:
        """Block while too many windows are unanswered; False when the board is gone."""
        deadline = time.monotonic() + timeout
        nudged = time.monotonic() + 0.5
        while self._pending_tail() > max_in_flight:
            now = time.monotonic()
            if self.conn.eof:
                self._fail("board_exited", "the board's output ended (it exited or crashed)")
                return False
            if now > deadline:
                self._fail("board_silent", f"no answer from the board for {timeout:.0f} s")
                return False
            if now > nudged:  # a frame may be half-read on the board (dropped bytes): pad it
                self._ping()
                nudged = now + 0.5
            self._pump(block=True, timeout=0.1)
        return True

    def _fail(self, reason: str, what: str) -> None:
        self._pump(block=False)  # answers already on their way still count
        for w in self.windows.values():
            if w.status == "pending":
                w.status = "lost"
                w.reason = reason
        self.res.error = f"{self.conn.name}: {what}; recent output:\n{self.conn.recent_output()}"

    def _pending_tail(self) -> int:
        # windows are answered in order, so count pending ones from the newest backwards
        n = 0
        for k in range(len(self.windows) - 1, -1, -1):
            if self.windows[k].status != "pending":
                break
            n += 1
        return n

    def _ping(self) -> int:
        self._token += 1
        self._ping_sent[self._token] = self._sent  # samples the board has before this PING
        self.conn.write(PAD)
        self.conn.send(P.MsgType.PING, self._token.to_bytes(4, "little"))
        return self._token

    def _finish(self, timeout: float) -> None:
        """PING after the last samples: when PONG is back, every answer is in."""
        token = self._ping()
        deadline = time.monotonic() + timeout
        retry = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            got = self._pump(block=True, timeout=0.2, want_pong=token)
            if got:
                break
            if self.conn.eof and self.conn.events.empty():
                break
            if time.monotonic() > retry:
                token = self._ping()
                retry = time.monotonic() + 2.0
        self._mark_unanswered_lost(P.LostReason.NO_RESULT)

    def _await_hello(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._pump(block=True, timeout=0.2, want_hello=True):
                # the board starts a new stream at 0; tell it where the host's stream is
                self.conn.send(P.MsgType.CONTROL, bytes([P.Control.RESTART]))
                return
        raise HilError(
            f"{self.conn.name}: no HELLO within {timeout:.0f} s after a reset; recent output:\n"
            f"{self.conn.recent_output()}"
        )

    def _mark_unanswered_lost(self, reason: P.LostReason) -> None:
        for w in self.windows.values():
            if w.status == "pending":
                w.status = "lost"
                w.reason = reason.name.lower()

    def _pump(
        self, block: bool, timeout: float = 0.0, want_pong: int | None = None,
        want_hello: bool = False,
    ) -> bool:
        """Handle queued events; True when the wanted PONG/HELLO arrived."""
        first = True
        while True:
            ev = self.conn.next_event(timeout) if (block and first) else self._nowait()
            first = False
            if ev is None:
                return False
            if isinstance(ev, P.Corrupt):
                self.res.corrupt_frames += 1
                continue
            if isinstance(ev, P.Text):
                if BOOT_BANNER.search(ev.data):  # a real board rebooting prints these
                    self.res.banners.append(self.twin.t)
                    self._mark_unanswered_lost(P.LostReason.BOARD_RESET)
                    self.conn._on_text(b"[host] boot banner: the board restarted\n")
                continue
            if not isinstance(ev, P.Frame):
                continue
            msg = P.decode_message(ev)
            if isinstance(msg, P.Result):
                self._on_result(msg)
            elif isinstance(msg, P.ActuatorCmd):
                self._on_actuator(msg)
            elif isinstance(msg, P.SensorFault):
                self.res.sensor_faults.append(
                    {"window": msg.window, "kind": msg.kind_name, "channel": msg.channel,
                     "count": msg.count, "t_s": self.twin.t}
                )
            elif isinstance(msg, P.Lost):
                for k in range(msg.first_window, msg.first_window + msg.count):
                    w = self.windows.get(k)
                    if w is not None and w.status == "pending":
                        w.status = "lost"
                        w.reason = "sample_gap" if msg.reason == 1 else f"board_{msg.reason}"
            elif isinstance(msg, P.Hello):
                self.res.resets.append(self.twin.t)
                self._mark_unanswered_lost(P.LostReason.BOARD_RESET)
                self.conn._on_text(b"[host] board reset detected (HELLO)\n")
                if want_hello:
                    return True
                self.conn.send(P.MsgType.CONTROL, bytes([P.Control.RESTART]))
            elif isinstance(msg, P.Pong):
                self.res.pongs.append(asdict(msg))
                self._settle(msg)
                if want_pong is not None and msg.token == want_pong:
                    return True

    def _settle(self, pong: P.Pong) -> None:
        """The board answered a PING: windows whose samples all went out before that PING and
        that are still pending will never be answered. Samples it never saw were lost in
        transit (frame_lost); otherwise the result went missing (no_result). Windows sent
        after the PING are left alone (the host may have streamed on meanwhile)."""
        before = self._ping_sent.pop(pong.token, None)
        if before is None:
            return
        for w in self.windows.values():
            end = w.k * self.res.stride + self.res.window  # samples the window needs
            if w.status == "pending" and end <= before:
                w.status = "lost"
                w.reason = "frame_lost" if end > pong.samples_seen else "no_result"

    def _nowait(self) -> P.Event | None:
        try:
            return self.conn.events.get_nowait()
        except queue.Empty:
            return None

    def _on_result(self, r: P.Result) -> None:
        w = self.windows.get(r.window)
        if w is None or w.status != "pending":
            return  # a window of an earlier stream, or answered twice: ignore
        w.status = "skipped" if r.skipped else "ok"
        w.cls, w.decision = r.cls, r.decision
        w.latency_us, w.heap_free = r.latency_us, r.heap_free
        w.outputs = r.outputs.tolist()

    def _on_actuator(self, cmd: P.ActuatorCmd) -> None:
        if cmd.command != P.Actuator.STOP:
            return
        self.res.stops.append({"window": cmd.window, "t_s": self.twin.t,
                               "health": float(getattr(self.twin, "health", 1.0))})
        self.twin.stop()
        if self.on_stop:
            self.on_stop()


def _windows_done(samples: int, window: int, stride: int) -> int:
    """How many windows of the grid are complete after `samples` samples."""
    return 0 if samples < window else (samples - window) // stride + 1


# ------------------------------------------------------------------------------ one call


def run_closed_loop(
    board: BoardConnection | Path | str,
    twin_seed: int = 0,
    fault_at_s: float | None = 30.0,
    duration_s: float = 120.0,
    time_to_failure_s: float = 60.0,
    input_mode: str | None = None,
    lsb_per_g: int | None = None,
    twin_kwargs: dict | None = None,
    profile: str = "virtual",
    timeline_png: Path | str | None = None,
) -> dict:
    """The closed-loop rotating-machine scenario in one call (for `make demo`).

    `board` is a live connection, or a deployed virtual-board folder (main.py in HIL mode).
    Returns detection_latency_s, false_stops, breakdowns, windows, lost and the rest of the
    session summary; with timeline_png, also draws the run's timeline there.
    """
    from trainer.twins import RotatingMachine

    own = not isinstance(board, BoardConnection)
    cfg: dict = {}
    if own and (Path(board) / "config.json").is_file():
        cfg = json.loads((Path(board) / "config.json").read_text())
    hcfg = cfg.get("hil", {})
    input_mode = input_mode or hcfg.get("input", "frames")
    if lsb_per_g is None:
        lsb_per_g = int(hcfg.get("lsb_per_g", cfg.get("counts_per_unit", 2048)))
    conn = VirtualConnection(board, profile) if own else board
    try:
        session = HilSession(conn, input_mode=input_mode, lsb_per_g=lsb_per_g)
        twin = RotatingMachine(
            seed=twin_seed, time_to_failure_s=time_to_failure_s, **(twin_kwargs or {})
        )
        res = session.run(twin, duration_s, fault_at_s=fault_at_s)
        if timeline_png is not None:
            plot_timeline(res, Path(timeline_png), f"closed loop, twin seed {twin_seed}")
    finally:
        if own:
            conn.send(P.MsgType.CONTROL, bytes([P.Control.QUIT]))
            conn.close()
    return res.summary()


def save_result(res: SessionResult, path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res.to_json(), indent=1, default=float))
    return path


# ------------------------------------------------------------------------------ timeline


def fault_score(res: SessionResult, healthy: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per answered window: (t_end_s, highest non-healthy int8 output)."""
    t, s = [], []
    for w in res.windows:
        if w.status == "ok" and w.outputs:
            others = [v for i, v in enumerate(w.outputs) if i != healthy] or w.outputs
            t.append(w.t_end_s)
            s.append(max(others))
    return np.array(t), np.array(s)


def plot_timeline(res: SessionResult, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tl = res.timeline
    t = np.asarray(tl.get("t", []))
    fig, axes = plt.subplots(4, 1, figsize=(10, 8), sharex=True)
    ax = axes[0]
    ax.plot(t, tl.get("rms", []), lw=0.8, label="ax RMS per frame (g)")
    ax.set_ylabel("signal")
    ax.legend(loc="upper left", fontsize=8)
    ax = axes[1]
    tw, sc = fault_score(res)
    ax.plot(tw, sc, ".", ms=2, label="max fault-class output (int8)")
    for kind in sorted({f["kind"] for f in res.sensor_faults}):
        ts = [f["t_s"] for f in res.sensor_faults if f["kind"] == kind]
        ax.plot(ts, np.full(len(ts), -128), "|", ms=10, label=f"sensor fault: {kind}")
    ax.set_ylim(-135, 135)
    ax.set_ylabel("model")
    ax.legend(loc="upper left", fontsize=8)
    ax = axes[2]
    td = [w.t_end_s for w in res.windows if w.status == "ok"]
    dd = [w.decision for w in res.windows if w.status == "ok"]
    ax.step(td, dd, where="post", label="decision (alarm)")
    lost = [w.t_end_s for w in res.windows if w.status == "lost"]
    if lost:
        ax.plot(lost, np.full(len(lost), 0.5), "rx", ms=4, label=f"lost windows ({len(lost)})")
    ax.set_ylim(-0.1, 1.2)
    ax.set_ylabel("decision")
    ax.legend(loc="upper left", fontsize=8)
    ax = axes[3]
    ax.plot(t, tl.get("health", []), label="twin health")
    ax.plot(t, tl.get("running", []), "--", label="running")
    ax.set_ylim(-0.05, 1.1)
    ax.set_ylabel("machine")
    ax.set_xlabel("simulated time (s)")
    ax.legend(loc="lower left", fontsize=8)
    for a in axes:
        if res.fault_at_s is not None:
            a.axvline(res.fault_at_s, color="orange", lw=1)
        for s in res.stops:
            a.axvline(s["t_s"], color="red", lw=1)
        for r in res.resets:
            a.axvline(r, color="purple", lw=1, ls=":")
    summ = res.summary()
    fig.suptitle(
        f"{title}\nfault at {res.fault_at_s} s (orange), stop at {summ['first_stop_s']} s (red), "
        f"lost {summ['lost']}/{summ['windows']}, resets {summ['board_resets']}",
        fontsize=9,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


__all__ = [
    "BoardConnection", "HilError", "HilSession", "SerialConnection", "SessionResult",
    "VirtualConnection", "WindowRecord", "deploy_virtual", "hil_config", "plot_timeline",
    "run_closed_loop", "save_result",
]
