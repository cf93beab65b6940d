"""Room environment twin for a smart thermostat: temperature, humidity, CO2 and occupancy.

One sample a minute. Occupants add heat, moisture and CO2 (ventilation pulls CO2 back towards
outdoor levels); a heater cycles around its set point; weather drifts. The label is occupancy
("empty" or "occupied"), the quantity a thermostat wants to infer from the other three.
"""

from __future__ import annotations

import numpy as np

from trainer.twins.base import BlockTwin, Recording, child_rngs

STATES = ("empty", "occupied")

class Environment(BlockTwin):
    channels = ("temperature", "humidity", "co2")

    def __init__(self, seed: int = 0, sample_rate: float = 1 / 60, occupants: int = 0) -> None:
        super().__init__(sample_rate)
        self.block = 8
        self.rng = child_rngs(seed, ("setup", "noise"))
        setup = self.rng["setup"]
        self.occupants = int(occupants)
        self.temp = float(setup.uniform(18.0, 22.0))
        self.hum = float(setup.uniform(35.0, 50.0))
        self.co2 = float(setup.uniform(420.0, 500.0)) + 300.0 * self.occupants
        self.setpoint = float(setup.uniform(19.5, 21.5))
        self.vent = float(setup.uniform(0.5, 1.5))  # air changes per hour
        self.heater = False

    @property
    def label(self) -> str:
        return "occupied" if self.occupants > 0 else "empty"

    def _block(self, n: int) -> np.ndarray:
        dt_h = 1.0 / self.sample_rate / 3600.0
        out = np.empty((n, 3))
        noise = self.rng["noise"].standard_normal((n, 4))
        for i in range(n):
            if self.temp < self.setpoint - 0.5:
                self.heater = True
            elif self.temp > self.setpoint + 0.5:
                self.heater = False
            heat = (2.0 if self.heater else 0.0) + 0.4 * self.occupants - 0.3 * (self.temp - 12.0) / 8
            self.temp += heat * dt_h * 1.5 + 0.01 * noise[i, 0]
            self.hum += (3.0 * self.occupants - 0.5 * (self.hum - 40.0)) * dt_h + 0.05 * noise[i, 1]
            self.co2 += (450.0 * self.occupants - self.vent * (self.co2 - 420.0)) * dt_h * 4
            out[i] = (self.temp + 0.05 * noise[i, 2], self.hum, self.co2 + 8.0 * noise[i, 3])
        return out

    @classmethod
    def recording(cls, state: str, duration_s: float, seed: int, sample_rate: float = 1 / 60):
        if state not in STATES:
            raise ValueError(f"unknown state {state!r}; known: {', '.join(STATES)}")
        pick = np.random.default_rng([seed, 11])
        occ = 0 if state == "empty" else int(pick.integers(1, 5))
        twin = cls(seed=seed, sample_rate=sample_rate, occupants=occ)
        data = twin.step(int(round(duration_s * sample_rate)))
        return Recording(state, data, sample_rate, cls.channels, {"occupants": occ})

def daily_profile(seed: int, hours: float = 24.0) -> tuple[np.ndarray, np.ndarray]:
    """A streaming day: people arrive and leave; returns samples [n, 3] and occupancy [n]."""
    twin = Environment(seed=seed)
    rng = np.random.default_rng([seed, 5])
    xs, occ = [], []
    for _ in range(int(hours * 60)):
        hour = twin.t / 3600.0 % 24
        busy = 8 <= hour < 18
        if rng.random() < 0.02:
            twin.occupants = int(rng.integers(1, 4)) if busy else 0
        xs.append(twin.step(1))
        occ.append(twin.occupants)
    return np.concatenate(xs), np.asarray(occ)
