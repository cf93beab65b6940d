"""Wearable IMU twin: wrist accelerometer (g) and gyroscope (deg/s) at 50 Hz.

Activities: rest (gravity at a random wrist orientation, tremor-level noise), walk (~1.6-2.2 Hz
steps, arm swing), run (~2.5-3.2 Hz, larger impacts and swing), fall (ordinary motion, ~0.3 s
of free fall, an impact of 3-6 g, then lying still at a new orientation).
"""

from __future__ import annotations

import math

import numpy as np

from trainer.twins.base import BlockTwin, Recording, child_rngs

ACTIVITIES = ("rest", "walk", "run", "fall")


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q = rng.standard_normal(4)
    q /= np.linalg.norm(q)
    a, b, c, d = q
    return np.array(
        [
            [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
            [2 * (b * c + a * d), a * a - b * b + c * c - d * d, 2 * (c * d - a * b)],
            [2 * (b * d - a * c), 2 * (c * d + a * b), a * a - b * b - c * c + d * d],
        ]
    )


class WearableIMU(BlockTwin):
    """Streaming wearable: set `activity` at any time; `fall()` starts a fall event now."""

    channels = ("ax", "ay", "az", "gx", "gy", "gz")

    def __init__(self, seed: int = 0, sample_rate: float = 50.0, activity: str = "rest") -> None:
        super().__init__(sample_rate)
        self.block = 10
        self.rng = child_rngs(seed, ("setup", "noise", "motion"))
        setup = self.rng["setup"]
        self.activity = activity
        self.orient = _rotation(setup)
        self.cadence = {"walk": setup.uniform(1.6, 2.2), "run": setup.uniform(2.5, 3.2)}
        self.amp = setup.uniform(0.8, 1.25)
        self.ph = setup.uniform(0, 2 * math.pi, size=6)
        self._phase = 0.0
        self._fall_t: float | None = None
        self._fall_orient = _rotation(setup)

    def fall(self, at_s: float | None = None) -> None:
        self._fall_t = self.t_generated if at_s is None else float(at_s)

    def _block(self, n: int) -> np.ndarray:
        fs = self.sample_rate
        t = self._generated / fs + np.arange(n) / fs
        noise = self.rng["noise"].standard_normal((n, 6))
        mot = self.rng["motion"].standard_normal((n, 6))
        g = np.array([0.0, 0.0, 1.0])
        acc = np.tile(self.orient @ g, (n, 1))
        gyr = np.zeros((n, 3))
        act = "walk" if self.activity == "fall" else self.activity
        if act in ("walk", "run"):
            f = self.cadence[act]
            th = 2 * math.pi * (self._phase + f * np.arange(1, n + 1) / fs)
            self._phase = (self._phase + f * n / fs) % 1.0
            big = 1.0 if act == "walk" else 2.6
            swing = np.stack(
                [np.sin(th / 2 + self.ph[0]), np.cos(th / 2 + self.ph[1]), np.sin(th + self.ph[2])], 1
            )
            acc += self.amp * big * (0.35 * np.stack([np.sin(th), np.abs(np.sin(th)) - 0.6,
                                                      0.5 * np.cos(th)], 1) + 0.08 * mot[:, :3])
            gyr += self.amp * big * (60.0 * swing + 8.0 * mot[:, 3:])
        if self._fall_t is not None:
            self._add_fall(t, acc, gyr, mot)
        acc += 0.01 * noise[:, :3]
        gyr += 0.8 * noise[:, 3:]
        return np.concatenate([np.clip(acc, -8, 8), np.clip(gyr, -1000, 1000)], 1)

    def _add_fall(self, t: np.ndarray, acc: np.ndarray, gyr: np.ndarray, mot: np.ndarray) -> None:
        rel = t - self._fall_t
        free = (rel >= 0) & (rel < 0.3)
        acc[free] *= 0.1
        gyr[free] += 150.0 * mot[free, 3:]
        hit = (rel >= 0.3) & (rel < 0.4)
        acc[hit] += (3.0 + 3.0 * np.abs(mot[hit, :3])) * np.sign(mot[hit, :3])
        gyr[hit] += 300.0 * mot[hit, 3:]
        lying = rel >= 0.4
        acc[lying] = self._fall_orient @ np.array([0.0, 0.0, 1.0])
        gyr[lying] = 0.0

    @classmethod
    def recording(
        cls, activity: str, duration_s: float, seed: int, sample_rate: float = 50.0
    ) -> Recording:
        """A labelled recording; a fall recording has its impact near the middle."""
        if activity not in ACTIVITIES:
            raise ValueError(f"unknown activity {activity!r}; known: {', '.join(ACTIVITIES)}")
        twin = cls(seed=seed, sample_rate=sample_rate, activity=activity)
        if activity == "fall":
            jitter = np.random.default_rng([seed, 31]).uniform(-0.25, 0.25)
            twin.fall(duration_s / 2 - 0.35 + jitter)
        data = twin.step(int(round(duration_s * sample_rate)))
        return Recording(activity, data, sample_rate, cls.channels, {})
