"""One collect session: a running board, a dataset folder, and recordings made between them.

`Session.streamed(label, n, count)` records `count` recordings of exactly n samples from the
stream; `Session.bursts(...)` captures each into the board's RAM first (when the link budget
does not fit). Every complete recording is written as soon as it completes; an interruption
(Ctrl-C, a link fault) drops only the partial one, which never reached the disk. `on_take`
and `on_tick` let a view show progress; the interactive mode drives `Recorder` itself
(edgeloop/collect/interactive.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeloop.collect import wire
from edgeloop.collect.board import CollectLink
from edgeloop.collect.budget import Budget, budget
from edgeloop.collect.dataset import Dataset
from edgeloop.collect.errors import CollectError, LinkFault
from edgeloop.collect.recorder import Recorder, SampleStream, Take


@dataclass
class Stats:
    """What the link carried, for the summary line and the figures."""

    started: float = field(default_factory=time.monotonic)
    samples: int = 0
    frames: int = 0
    lost: int = 0
    corrupt: int = 0
    restarts: int = 0

    def seconds(self) -> float:
        return time.monotonic() - self.started


OnTake = Callable[[Take, Path], None]
OnTick = Callable[[Recorder, np.ndarray | None], None]


class Session:
    def __init__(self, link: CollectLink, dataset: Dataset, baud: int | None,
                 on_take: OnTake | None = None, on_tick: OnTick | None = None) -> None:
        self.link = link
        self.info = link.info
        self.dataset = dataset
        self.budget: Budget = budget(self.info.rate_hz, self.info.channels, baud,
                                     self.info.batch)
        self.on_take = on_take
        self.on_tick = on_tick
        self.on_burst: Callable[[int, str], None] | None = None  # (uploaded, phase)
        self.stats = Stats()
        self.paths: list[Path] = []
        self.stream = SampleStream()
        self.recorder: Recorder | None = None
        self.streaming = False
        self.retries = 3  # restarts in a row of a recording that lost samples (on_gap restart)

    @property
    def silence(self) -> float:
        """Seconds without a frame that mean the board stopped: several frames' worth."""
        return max(3.0, 4 * self.info.batch / self.info.rate_hz)

    def _write(self, take: Take) -> Path:
        path = self.dataset.write(take)
        self.paths.append(path)
        if self.on_take:
            self.on_take(take, path)
        return path

    # -- streaming ------------------------------------------------------------------------------
    def start_stream(self, on_gap: str = "refuse") -> Recorder:
        """The board streams from now on; sampling starts afresh, so does the sequence check."""
        self.stream = SampleStream(measure=not self.info.replay)
        self.recorder = Recorder(self.stream, self.info.channels, self.info.rate_hz, on_gap,
                                 max_restarts=self.retries)
        self.link.send(wire.Op.STREAM)
        self.streaming = True
        return self.recorder

    def pump(self, until: Callable[[], bool]) -> None:
        """Feed frames to the recorder (writing each take it completes) until `until()`."""
        rec = self.recorder
        assert rec is not None, "start_stream() first"
        for msg in self.link.messages(self.silence):
            latest = None
            if isinstance(msg, wire.Data) and not msg.burst:
                self.stats.frames += 1
                self.stats.samples += len(msg.samples)
                lost0 = self.stream.lost
                try:
                    takes = rec.feed(msg)
                finally:
                    self.stats.lost += self.stream.lost - lost0
                for take in takes:
                    self._write(take)
                latest = msg.samples
            elif isinstance(msg, wire.Refused):
                raise LinkFault(f"the {self.link.name} stopped streaming: {msg.text}")
            if self.on_tick:
                self.on_tick(rec, latest)
            if until():
                return

    def streamed(self, label: str, n: int, count: int, on_gap: str = "refuse") -> list[Path]:
        """`count` recordings of exactly n samples each, back to back from the stream."""
        rec = self.start_stream(on_gap)
        rec.start(label, n, count)
        try:
            self.pump(lambda: not rec.recording)
        finally:
            self.stats.restarts = rec.restarts
            rec.abort()
            self.stop_stream()
        return self.paths

    def stop_stream(self) -> None:
        """Ask the board to stop streaming; a board already gone has stopped (the fault that
        ended the stream is the one reported)."""
        if self.streaming:
            self.streaming = False
            try:
                self.link.send(wire.Op.STOP)
            except LinkFault:
                pass

    # -- bursts -----------------------------------------------------------------------------
    def burst_capacity(self) -> int:
        return self.budget.burst_samples(self.info.heap_free)

    def bursts(self, label: str, n: int, count: int, on_gap: str = "refuse") -> list[Path]:
        """`count` recordings of n samples, each captured into the board's RAM, then uploaded."""
        cap = self.burst_capacity()
        if n > cap:
            raise CollectError(
                f"a burst of {n} samples x {self.info.channels} ch needs {2 * n * self.info.channels:,}"
                f" B of board RAM; the {self.link.name} has {self.info.heap_free:,} B free, room "
                f"for {cap} samples ({cap / self.info.rate_hz:.2f} s): record shorter "
                f"(--seconds {cap / self.info.rate_hz:.2f} or less) with more --count")
        timeout = max(10.0, 3 * n / self.info.rate_hz + 10)
        in_row = 0
        target = len(self.paths) + count
        while len(self.paths) < target:
            samples, end = self.link.capture(n, timeout, self.on_burst)
            self.stats.frames += 1
            if end.lost or end.n < n:
                self.stats.lost += end.lost
                msg = (f"burst {count - target + len(self.paths) + 1} ({label!r}) lost {end.lost} sample(s) on the "
                       f"board (captured {end.n} of {n})")
                if on_gap == "refuse" or in_row >= self.retries:
                    raise LinkFault(msg + ("" if on_gap == "refuse" else
                                           f", {in_row} restarts in a row")
                                    + "; that recording was discarded")
                self.stats.restarts += 1
                in_row += 1
                continue
            in_row = 0
            self.stats.samples += n
            rate = self.info.rate_hz
            span = (end.t2 - end.t1) % wire.MOD
            if end.k2 - end.k1 >= 2 and span >= 100_000 and not self.info.replay:
                rate = 1e6 * (end.k2 - end.k1) / span
            take = Take(label, samples, 0, rate, self.info.rate_hz, mode="burst",
                        index=count - target + len(self.paths) + 1)
            self._write(take)
        return self.paths
