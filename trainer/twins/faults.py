"""Sensor faults on demand: dropouts, stuck values, spikes and NaN.

These model what a real accelerometer or I2C bus does when it misbehaves, so the board's
application can be tested to report a *sensor* fault rather than stop a healthy machine:

- ``dropout``: the read returns zeros (a bus error the driver papers over with 0);
- ``stuck``: the value freezes at the last good sample;
- ``spike``: isolated huge samples (~1 in 20) of random sign at full scale;
- ``nan``: NaN samples (a float pipeline's failure; never seen as raw integer counts).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FAULT_KINDS = ("dropout", "stuck", "spike", "nan")


@dataclass
class SensorFault:
    """One fault active on [at_s, at_s + duration_s) on some channels (None: all)."""

    kind: str
    at_s: float
    duration_s: float
    channels: tuple[int, ...] | None = None
    seed: int = 0
    sample_rate: float = 1000.0
    spike_value: float = 16.0
    _rng: np.random.Generator = field(init=False, repr=False)
    _last: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown sensor fault {self.kind!r}; known: {', '.join(FAULT_KINDS)}")
        if self.duration_s < 0:
            raise ValueError(f"sensor fault duration must be >= 0, got {self.duration_s}")
        self._rng = np.random.default_rng(self.seed)

    def apply(self, blk: np.ndarray, start: int) -> np.ndarray:
        """Return blk (samples start..start+n) with the fault applied where it is active."""
        n = len(blk)
        t = (start + np.arange(n)) / self.sample_rate
        active = (t >= self.at_s) & (t < self.at_s + self.duration_s)
        draws = self._rng.random(n)  # drawn for every block: chunking-independent
        signs = self._rng.choice((-1.0, 1.0), size=n)
        if not active.any():
            self._last = blk[-1].copy() if n else self._last
            return blk
        out = blk.copy()
        cols = list(range(blk.shape[1])) if self.channels is None else list(self.channels)
        rows = np.flatnonzero(active)
        if self.kind == "dropout":
            out[np.ix_(rows, cols)] = 0.0
        elif self.kind == "nan":
            out[np.ix_(rows, cols)] = np.nan
        elif self.kind == "spike":
            hit = rows[draws[rows] < 0.05]
            out[np.ix_(hit, cols)] = (signs[hit] * self.spike_value)[:, None]
        elif self.kind == "stuck":
            if self._last is None:
                first = rows[0]
                self._last = blk[first - 1].copy() if first > 0 else blk[first].copy()
            elif rows[0] > 0 and not active[rows[0] - 1]:
                self._last = blk[rows[0] - 1].copy()
            out[np.ix_(rows, cols)] = self._last[cols]
            return out  # keep the frozen value for the next block
        self._last = out[-1].copy()
        return out


def inject(
    x: np.ndarray,
    kind: str,
    at: int,
    length: int,
    channels: tuple[int, ...] | None = None,
    seed: int = 0,
    sample_rate: float = 1.0,
) -> np.ndarray:
    """Batch form: a copy of recording x [n, c] with a fault on samples [at, at + length)."""
    fault = SensorFault(kind, at / sample_rate, length / sample_rate, channels, seed, sample_rate)
    return fault.apply(np.asarray(x, dtype=np.float64), 0)
