"""Recordings cut from the board's sample stream: contiguous by sequence number, or not at all.

`SampleStream` unwraps the DATA frames' sequence numbers (modulo 2**30 on the board) and says
where samples are missing: lost on the board (the sensor's FIFO overflowed) or on the wire (a
frame dropped for its CRC). `Recorder` is the state machine over it: idle or recording one
label; a recording completes at its length (or when stopped, interactively) and is handed out
as a `Take`; a gap inside it refuses it (SampleGap), restarts it or splits it, as asked. It
does no I/O, so every path is tested without a board (tests/collect/test_recorder.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgeloop.collect import wire
from edgeloop.collect.errors import SampleGap

TICKS_MOD = wire.MOD  # the board's ticks_us travel modulo 2**30 too


@dataclass
class Block:
    """Contiguous samples from sequence number `first` (unwrapped)."""

    first: int
    samples: np.ndarray


@dataclass
class Gap:
    """Samples [at, at + missing) never arrived."""

    at: int
    missing: int


@dataclass
class SampleStream:
    """DATA frames in, contiguous Blocks and Gaps out; the board's clock points kept."""

    seq: wire.Unwrap = field(default_factory=wire.Unwrap)
    ticks: wire.Unwrap = field(default_factory=wire.Unwrap)
    next_seq: int | None = None
    clock: list[tuple[int, int]] = field(default_factory=list)  # (samples taken, board us)
    samples: int = 0
    lost: int = 0
    duplicates: int = 0
    measure: bool = True  # False: no board clock to measure (replay): the nominal rate

    def feed(self, d: wire.Data) -> list[Block | Gap]:
        first = self.seq(d.first)
        if not d.burst:
            self.clock.append((self.seq.peek(d.clock_seq), self.ticks(d.clock_t)))
        out: list[Block | Gap] = []
        n = len(d.samples)
        if self.next_seq is not None:
            if first < self.next_seq:  # a frame seen before (the board never repeats one)
                self.duplicates += 1
                skip = self.next_seq - first
                if skip >= n:
                    return out
                first, d_samples = self.next_seq, d.samples[skip:]
                out.append(Block(first, d_samples))
                self.next_seq = first + len(d_samples)
                self.samples += len(d_samples)
                return out
            if first > self.next_seq:
                out.append(Gap(self.next_seq, first - self.next_seq))
                self.lost += first - self.next_seq
        out.append(Block(first, d.samples))
        self.next_seq = first + n
        self.samples += n
        if len(self.clock) > 20000:  # hours of points: keep the recent ones
            del self.clock[:10000]
        return out

    def rate(self, first: int, end: int, nominal: float) -> float:
        """Samples per second of the board's clock over [first, end): a line fitted to the
        clock points within it (each: samples taken by a board time); the nominal rate when
        the span holds fewer than two points a tenth of a second apart."""
        pts = np.array([p for p in self.clock if first <= p[0] <= end + 1], np.float64)
        if not self.measure or len(pts) < 2 or pts[-1, 1] - pts[0, 1] < 1e5 or np.ptp(pts[:, 0]) < 2:
            return nominal
        slope = np.polyfit(pts[:, 0], pts[:, 1], 1)[0]  # us per sample
        return 1e6 / slope if slope > 0 else nominal


@dataclass
class Take:
    """One complete recording: label, samples (int16 counts), where it sat in the stream."""

    label: str
    samples: np.ndarray
    first_seq: int
    rate_hz: float  # measured on the board's clock
    nominal_hz: float
    mode: str = "stream"
    index: int = 0  # 1-based number of this take in the session


class Recorder:
    """Idle, or recording `label` until `length` samples (None: until stop()).

    on_gap: "refuse" raises SampleGap (the partial take is dropped), "restart" drops it and
    starts again right after the gap (SampleGap after max_restarts in a row), "split" keeps the part before the gap as a take of its
    own (if at least `min_samples` long) and goes on recording after it.
    """

    def __init__(self, stream: SampleStream, channels: int, nominal_hz: float,
                 on_gap: str = "refuse", min_samples: int = 1, max_restarts: int = 3) -> None:
        if on_gap not in ("refuse", "restart", "split"):
            raise ValueError(f"on_gap must be refuse, restart or split, not {on_gap!r}")
        self.stream = stream
        self.channels = channels
        self.nominal_hz = nominal_hz
        self.on_gap = on_gap
        self.min_samples = max(1, min_samples)
        self.max_restarts = max_restarts  # in a row: a link that loses samples every time
        self._in_row = 0
        self.label: str | None = None
        self.length: int | None = None
        self.remaining = 0
        self.parts: list[np.ndarray] = []
        self.have = 0
        self.first: int | None = None
        self.takes = 0
        self.restarts = 0
        self.gaps: list[Gap] = []

    @property
    def recording(self) -> bool:
        return self.label is not None

    def start(self, label: str, length: int | None, count: int = 1) -> None:
        """Record from the next sample that arrives: `count` takes back to back (each next one
        starts at the sample after the last one's end)."""
        if length is not None and length < 1:
            raise ValueError(f"a recording needs at least one sample, not {length}")
        self.label, self.length, self.remaining = label, length, count
        self._clear()

    def _clear(self) -> None:
        self.parts, self.have, self.first = [], 0, None

    def abort(self) -> None:
        """Drop the partial take (Ctrl-C, a link fault): nothing of it is kept."""
        self.label = None
        self._clear()

    def feed(self, d: wire.Data) -> list[Take]:
        """One DATA frame; the takes it completed."""
        done: list[Take] = []
        for ev in self.stream.feed(d):
            if isinstance(ev, Gap):
                done += self._gap(ev)
            elif self.label is not None:
                done += self._samples(ev)
        return done

    def _samples(self, b: Block) -> list[Take]:
        out: list[Take] = []
        samples, first = b.samples, b.first
        while len(samples) and self.label is not None:
            if self.first is None:
                self.first = first
            want = len(samples) if self.length is None else min(len(samples),
                                                                 self.length - self.have)
            self.parts.append(samples[:want])
            self.have += want
            samples, first = samples[want:], first + want
            if self.length is not None and self.have == self.length:
                out.append(self._take())
                self.remaining -= 1
                if self.remaining <= 0:
                    self.label = None
        return out

    def _gap(self, g: Gap) -> list[Take]:
        self.gaps.append(g)
        if self.label is None or self.first is None:
            return []  # between recordings: nothing is cut by it
        what = (f"{g.missing} sample(s) missing at sample {g.at} of the stream, {self.have} "
                f"samples into recording {self.takes + 1} ({self.label!r}): lost on the board or "
                "corrupted on the link")
        if self.on_gap == "restart" and self._in_row < self.max_restarts:
            self.restarts += 1
            self._in_row += 1
            self._clear()
            return []
        if self.on_gap != "split":
            self.abort()
            again = (f" ({self.max_restarts} restarts in a row: is the board busy elsewhere, or"
                     " the line noisy?)" if self.on_gap == "restart" else "")
            raise SampleGap(f"{what}{again}; that recording was discarded", g.at, g.missing)
        out = [self._take()] if self.have >= self.min_samples else []
        label = self.label
        self._clear()
        self.label = label
        return out

    def stop(self) -> Take | None:
        """End an open-ended take now (interactive Enter); None if it holds too few samples."""
        if self.label is None:
            return None
        take = self._take() if self.have >= self.min_samples else None
        self.label = None
        self._clear()
        return take

    def _take(self) -> Take:
        assert self.label is not None and self.first is not None
        data = np.concatenate(self.parts) if self.parts else np.zeros((0, self.channels),
                                                                       np.int16)
        end = self.first + len(data)
        self.takes += 1
        self._in_row = 0
        take = Take(self.label, data, self.first, self.stream.rate(self.first, end,
                                                                    self.nominal_hz),
                    self.nominal_hz, index=self.takes)
        self._clear()
        return take
