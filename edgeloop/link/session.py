"""The host side of a HIL session: the closed loop between a linked board and a sensor twin.

`HilSession.run()` streams a twin in simulated time over a FrameLink (edgeloop.link.framelink),
applies the board's actuator commands to it (stop -> twin.stop()), and accounts for every
window: answered, skipped for a sensor fault, or lost with a reason (edgeloop.link.results).
`run_closed_loop()` is the one-call form the demo uses. The twin is the caller's: this layer
knows only its interface (sample_rate, step, inject_fault, stop, t and a few state attributes).
"""

from __future__ import annotations

import json
import queue
import re
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from edgeloop.link import protocol as P
from edgeloop.link.framelink import FrameLink, HilError
from edgeloop.link.results import SessionResult, WindowRecord

NAN_MARK = -32768  # int16 value meaning "no sample" (NaN) on the link; see firmware hil.py
# MicroPython's banner after a (soft) reboot, the ESP32 ROM's reset line, a soft reboot note
BOOT_BANNER = re.compile(rb"MicroPython v\d|rst:0x[0-9a-f]+ \(|soft reboot")
PAD = bytes(P.MAX_PAYLOAD + P.HEADER_SIZE + P.CRC_SIZE)  # completes any half-read frame


Mangler = Callable[[bytes, int], bytes]  # (frame bytes, frame number) -> bytes actually written


class HilSession:
    """Closed loop between one linked board and one twin, in simulated time."""

    def __init__(
        self,
        conn: FrameLink,
        input_mode: str = "frames",
        lsb_per_g: int = 2048,
        hello_timeout: float = 30.0,
        sample_dtype: P.DType = P.DType.INT16,
        action_names: list[str] | None = None,
    ) -> None:
        self.conn = conn
        # the board's actions by index (config.json "actions"): OUTPUT frames name the twin's
        # input they drive (twin.apply({name: level}))
        self.action_names = list(action_names or [])
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
        # counts per unit: one for all channels, or one per channel (a sensor list)
        unit = 1000.0 if self.input_mode == "i2c" else np.asarray(self.lsb_per_g, dtype=np.float64)
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
                    self.conn.wait_eof(5.0)  # its traceback, if it crashed
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
                    self.conn.note("boot banner: the board restarted")
                continue
            if not isinstance(ev, P.Frame):
                continue
            msg = P.unwrap_message(P.decode_message(ev), len(self.windows), self._sent)
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
                self.conn.note("board reset detected (HELLO)")
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
        names = self.action_names
        name = names[cmd.action] if cmd.action < len(names) else str(cmd.action)
        event = {"window": cmd.window, "t_s": self.twin.t, "action": name}
        if cmd.command == P.Actuator.ALERT:
            self.res.alerts.append(event)
            return
        if cmd.command == P.Actuator.OUTPUT:  # the board switched an output: the world answers
            self.res.outputs.append(event | {"level": cmd.level})
            apply = getattr(self.twin, "apply", None)
            if apply is not None:
                apply({name: cmd.level})
            return
        if cmd.command == P.Actuator.FAULT:
            self.res.actuator_faults.append(event)
            return
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



def run_closed_loop(
    board: FrameLink | Path | str,
    twin: Any,
    fault_at_s: float | None = 30.0,
    duration_s: float = 120.0,
    input_mode: str | None = None,
    lsb_per_g: int | None = None,
    profile: str = "virtual",
    timeline_png: Path | str | None = None,
    title: str = "closed loop",
) -> dict:
    """One closed-loop scenario in one call (for `make demo`): `twin` runs against the board.

    `board` is a live link, or a deployed virtual-board folder (main.py in HIL mode).
    Returns detection_latency_s, false_stops, breakdowns, windows, lost and the rest of the
    session summary; with timeline_png, also draws the run's timeline there.
    """
    own = not isinstance(board, FrameLink)
    cfg: dict = {}
    if own and (Path(board) / "config.json").is_file():
        cfg = json.loads((Path(board) / "config.json").read_text())
    hcfg = cfg.get("hil", {})
    input_mode = input_mode or hcfg.get("input", "frames")
    if lsb_per_g is None:
        lsb_per_g = int(hcfg.get("lsb_per_g", cfg.get("counts_per_unit", 2048)))
    if own:
        from edgeloop.link.virtual import VirtualTransport

        conn = FrameLink.open(VirtualTransport(Path(board), profile))
    else:
        conn = board
    try:
        session = HilSession(conn, input_mode=input_mode, lsb_per_g=lsb_per_g)
        res = session.run(twin, duration_s, fault_at_s=fault_at_s)
        if timeline_png is not None:
            from edgeloop.link.report import plot_timeline

            plot_timeline(res, Path(timeline_png), title)
    finally:
        if own:
            conn.send(P.MsgType.CONTROL, bytes([P.Control.QUIT]))
            conn.close()
    return res.summary()


__all__ = [
    "BOOT_BANNER", "HilError", "HilSession", "NAN_MARK", "run_closed_loop",
]
