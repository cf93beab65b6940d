"""Shared machinery of the sensor twins: block-wise generation and labelled recordings.

Every twin produces samples in fixed internal blocks drawn from its own seeded generators, and
`step(n)` serves them from a buffer. So the stream is the same whatever the chunking of the
calls (step(100) twice == step(200)), and the same seed gives the same samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Recording:
    """One labelled recording: samples [n, channels] in physical units at sample_rate Hz."""

    label: str
    data: np.ndarray
    sample_rate: float
    channels: tuple[str, ...]
    meta: dict = field(default_factory=dict)


class BlockTwin:
    """Base for streaming twins: subclasses implement `_block(n) -> [n, channels]`."""

    channels: tuple[str, ...] = ()
    block: int = 64

    def __init__(self, sample_rate: float) -> None:
        self.sample_rate = float(sample_rate)
        self._buf = np.zeros((0, len(self.channels)))
        self._generated = 0  # samples generated so far (incl. buffered ones)
        self._served = 0  # samples handed out by step()
        self._faults: list = []

    @property
    def t(self) -> float:
        """Simulated time in seconds of the next sample step() returns."""
        return self._served / self.sample_rate

    @property
    def t_generated(self) -> float:
        return self._generated / self.sample_rate

    def step(self, n_samples: int) -> np.ndarray:
        """The next n samples [n, channels] (float64, physical units) in simulated time."""
        n = int(n_samples)
        if n < 0:
            raise ValueError(f"step() needs n_samples >= 0, got {n}")
        parts = [self._buf]
        have = len(self._buf)
        while have < n:
            blk = self._block(self.block)
            blk = self._apply_sensor_faults(blk, self._generated)
            self._generated += len(blk)
            parts.append(blk)
            have += len(blk)
        data = np.concatenate(parts) if len(parts) > 1 else self._buf
        out, self._buf = data[:n], data[n:]
        self._served += n
        return out.copy()

    def sensor_fault(
        self,
        kind: str,
        at_s: float,
        duration_s: float,
        channels: tuple[int, ...] | None = None,
        seed: int = 0,
    ) -> None:
        """Schedule a sensor fault (dropout, stuck, spike, nan) on the stream from `at_s`."""
        from trainer.twins.faults import SensorFault

        self._faults.append(
            SensorFault(kind, at_s, duration_s, channels, seed=seed, sample_rate=self.sample_rate)
        )

    def _apply_sensor_faults(self, blk: np.ndarray, start: int) -> np.ndarray:
        for fault in self._faults:
            blk = fault.apply(blk, start)
        return blk

    def _block(self, n: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


def child_rngs(seed: int, names: tuple[str, ...]) -> dict[str, np.random.Generator]:
    """Independent generators per random process, so one process never shifts another's stream."""
    seqs = np.random.SeedSequence(seed).spawn(len(names))
    return {name: np.random.Generator(np.random.PCG64(s)) for name, s in zip(names, seqs, strict=True)}
