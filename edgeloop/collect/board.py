"""A board running firmware_micropython/collect.py, reached over the one Transport.

`prepare_virtual` lays the virtual board's folder out (the firmware, collect.json, the twin's
samples for the simulated chips); `prepare_board` copies the same onto a real board (files
whose hash matches are skipped, as deploy does). `CollectLink` then runs the script and speaks
its frames: INFO first, then STREAM or CAPTURE. Link faults come out typed (LinkFault).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from edgeloop.collect import wire
from edgeloop.collect.errors import CollectError, LinkFault
from edgeloop.link import protocol as P
from edgeloop.link.framelink import FrameLink, HilError
from edgeloop.link.transport import LinkError, Transport

SCRIPT = "collect_run.py"  # the virtual board runs a script by its file name: a source launcher
LAUNCH = "import collect\ncollect.main()\n"
CONFIG = "collect.json"
SAMPLES = "collect.s16"


def board_config(sensor_cfg: dict, virtual: bool, replay: bool = False,
                 loop: bool = False) -> dict:
    """collect.json: the sensor part of a device config (channels, rate, counts, sensors), plus
    the virtual board's simulated-chip settings (`loop`: the twin's samples start over when
    they run out, for an open-ended interactive session). The watchdog stays off: the script
    waits on the host between recordings."""
    cfg = json.loads(json.dumps(sensor_cfg))
    cfg["watchdog"] = False
    if virtual:
        sensor = cfg.setdefault("sensor", {})
        sensor["sim"] = SAMPLES
        sensor["sim_clock"] = "replay" if replay else "wall"
        sensor["loop"] = loop
        if "sensors" not in cfg or len(cfg["sensors"]) == 1:
            cpu = cfg.get("counts_per_unit", 16384)
            sensor.setdefault("sim_units", int(cpu[0] if isinstance(cpu, list) else cpu))
    return cfg


def firmware(arch: str, virtual: bool) -> dict[str, bytes]:
    """The device modules compiled for arch (the same files deploy copies)."""
    from edgeloop.link.deploy import firmware_files

    return firmware_files(arch, include_sim=virtual)


def prepare_virtual(root: Path, cfg: dict, samples: bytes) -> None:
    """The virtual board's folder: firmware (rewritten only where it changed), config, samples."""
    from edgeloop import vboard

    root.mkdir(parents=True, exist_ok=True)
    files = firmware(vboard.mpy_arch(), virtual=True)
    files[CONFIG] = (json.dumps(cfg, indent=1, sort_keys=True) + "\n").encode()
    files[SAMPLES] = samples
    files[SCRIPT] = LAUNCH.encode()
    for rel, data in files.items():
        path = root / rel
        if path.suffix == ".mpy" and path.with_suffix(".py").is_file():
            path.with_suffix(".py").unlink()  # a stale source would shadow the new .mpy
        if path.is_file() and path.read_bytes() == data:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)


def prepare_board(transport: Transport, arch: str, cfg: dict) -> list[str]:
    """Copy the firmware and collect.json onto a real board; returns the paths copied."""
    from edgeloop.link.deploy import DeployResult, check_board_mpy, put_files

    check_board_mpy(transport, arch)
    files = firmware(arch, virtual=False)
    files[CONFIG] = (json.dumps(cfg, indent=1, sort_keys=True) + "\n").encode()
    files[SCRIPT] = LAUNCH.encode()
    result = DeployResult()
    put_files(transport, files, result)
    return result.copied


class CollectLink:
    """The host end of a running collect script: INFO, then streamed or burst samples."""

    def __init__(self, link: FrameLink, info_timeout: float = 30.0) -> None:
        self.link = link
        self.name = link.name
        self.corrupt = 0  # frames seen but unusable (CRC, length)
        self.frames = 0
        self.t_open = time.monotonic()
        self.info = self._await_info(info_timeout)

    @classmethod
    def open(cls, transport: Transport, info_timeout: float = 30.0) -> CollectLink:
        try:
            link = FrameLink.open(transport, script=SCRIPT)
        except HilError as exc:
            raise LinkFault(str(exc)) from None
        try:
            return cls(link, info_timeout)
        except BaseException:
            link.close()
            raise

    def _await_info(self, timeout: float) -> wire.Info:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            msg = self._next(left)
            if isinstance(msg, wire.Info):
                if msg.version != wire.VERSION:
                    raise LinkFault(f"the {self.name} runs collect protocol v{msg.version}; "
                                    f"this host speaks v{wire.VERSION}: copy the firmware again")
                return msg
        raise LinkFault(f"the {self.name} did not start its collect script within {timeout:.0f} s"
                        f"; recent output: {self._tail()}")

    def _tail(self) -> str:
        text = " | ".join(line for line in self.link.recent_output(600).splitlines()
                          if line.strip())
        return text[-300:] or "(nothing)"

    def _next(self, timeout: float) -> object | None:
        """The next collect message (None on timeout); LinkFault when the board went away."""
        ev = self.link.next_event(timeout)
        if ev is None:
            if self.link.eof:
                raise LinkFault(f"the {self.name} stopped (its collect script ended); recent "
                                f"output: {self._tail()}")
            return None
        if isinstance(ev, P.Corrupt):
            self.corrupt += 1
            return ev
        if not isinstance(ev, P.Frame):
            return None
        self.frames += 1
        try:
            return wire.decode(ev)
        except P.ProtocolError as exc:
            self.corrupt += 1
            return P.Corrupt(f"payload: {exc}", ev.type, ev.seq, len(ev.payload))

    def send(self, op: wire.Op, *args: int) -> None:
        try:
            self.link.send(P.MsgType.CONTROL, wire.control(op, *args))
        except (HilError, LinkError):
            raise LinkFault(f"the {self.name} stopped reading (its collect script ended); "
                            f"recent output: {self._tail()}") from None

    def messages(self, silence: float) -> Iterator[object]:
        """Messages as they come (Data, Corrupt, ...). A new INFO means the board restarted;
        `silence` seconds without a frame mean it stopped sending: both are LinkFaults."""
        last = time.monotonic()
        while True:
            msg = self._next(0.2)
            now = time.monotonic()
            if msg is None:
                if now - last > silence:
                    raise LinkFault(f"no samples from the {self.name} for {silence:.0f} s (reset,"
                                    f" cable or power?); recent output: {self._tail()}")
                yield None
                continue
            last = now
            if isinstance(msg, wire.Info):
                raise LinkFault(f"the {self.name} restarted (its collect script said hello "
                                "again)")
            yield msg

    def capture(self, n: int, timeout: float, progress: Callable[[int, str], None] | None = None
                ) -> tuple[np.ndarray, wire.BurstEnd]:
        """A burst of n samples captured into the board's RAM, then uploaded; frames lost on the
        wire are asked for again, so only samples lost on the board make it incomplete.
        `progress(samples uploaded, phase)` follows it ("capturing", "uploading")."""
        self.send(wire.Op.CAPTURE, n)
        ch = self.info.channels
        got = np.zeros((n, ch), np.int16)
        have = np.zeros(n, bool)
        end: wire.BurstEnd | None = None
        deadline = time.monotonic() + timeout
        if progress:
            progress(0, "capturing on the board")
        for msg in self.messages(silence=timeout):
            if time.monotonic() > deadline:
                raise LinkFault(f"the {self.name} did not finish a {n}-sample burst in "
                                f"{timeout:.0f} s")
            if isinstance(msg, wire.Refused):
                raise CollectError(f"the {self.name} refused the burst: {msg.text} and has "
                                   f"{msg.value} B free; record shorter bursts (--seconds)")
            if isinstance(msg, wire.BurstEnd):
                end = msg
            elif isinstance(msg, wire.Data) and msg.burst:
                k = len(msg.samples)
                if msg.first + k <= n and msg.samples.shape[1] == ch:
                    got[msg.first:msg.first + k] = msg.samples
                    have[msg.first:msg.first + k] = True
                    if progress:
                        progress(int(have.sum()), "uploading")
            elif msg is None and end is not None:  # upload quiet: ask for what is missing
                missing = _runs(~have[:end.n])
                if not missing:
                    self.send(wire.Op.DONE)
                    return got[:end.n], end
                for first, count in missing:
                    self.send(wire.Op.RESEND, first, count)
        raise AssertionError("unreachable")  # messages() only ends by raising

    def close(self) -> None:
        try:
            self.send(wire.Op.QUIT)
        except LinkFault:
            pass
        self.link.close()


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, length) of each run of True in mask."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) != 1)
    starts = np.concatenate([[idx[0]], idx[breaks + 1]])
    ends = np.concatenate([idx[breaks], [idx[-1]]])
    return [(int(s), int(e - s + 1)) for s, e in zip(starts, ends, strict=True)]
