"""Room twin for smart buildings: temperature, humidity and CO2 that answer the board's outputs.

One sample a minute by default. The board (or the twin's own conventional thermostat when
`auto` is on) drives three outputs, each a duty in 0..1: `heating`, `cooling`, `ventilation`.
People, the weather and a window change the room; `heater_failed` makes the heater give no heat
whatever its command (a fault the board should notice).

The model (documented constants below, explicit Euler in 10 s sub-steps):

- Two thermal nodes. The air node (air plus furnishings, C_AIR) exchanges heat with the
  building mass (C_MASS) through H_AM, with outdoors through the envelope (UA) and through the
  air exchange (RHO_CP_V per air change an hour times the air changes n). Heater, cooler and
  occupants' sensible heat act on the air; sun on the mass.
- Air changes n = N_INFILTRATION, plus N_VENT * ventilation, plus N_WINDOW while the window
  is open.
- CO2 (ppm): each occupant breathes out CO2_PER_PERSON; air exchange pulls the room towards the
  outdoor level (CO2_OUT).
- Moisture: absolute humidity (g/m3); occupants add WATER_PER_PERSON, air exchange pulls it
  towards outdoors; relative humidity follows from the Magnus formula at the air temperature.
- Weather: outdoor temperature with a daily cycle (coldest ~05:00) and a slow random drift;
  sun by a clear-sky bell 07:00-19:00 times a drifting cloudiness.
- The twin's output is what the sensors measure: the state plus small sensor noise.

Labels (batch recordings): `empty`, `occupied` (1-4 people) and `window_open`.
"""

from __future__ import annotations

import math

import numpy as np

from trainer.twins.base import BlockTwin, Recording, child_rngs

STATES = ("empty", "occupied", "window_open")

# -- documented constants (a 20 m2 office, 2.5 m high, moderately insulated) -------------------
VOLUME_M3 = 50.0
C_AIR = 2.0e5  # J/K: air and furnishings
C_MASS = 6.0e6  # J/K: walls, floor, ceiling
H_AM = 350.0  # W/K: air <-> mass
UA = 35.0  # W/K: envelope (walls, glazing) to outdoors
RHO_CP_V = 1.2 * 1005.0 * VOLUME_M3 / 3600.0  # W/K per air change an hour (16.75)
N_INFILTRATION = 0.3  # 1/h
N_VENT = 4.0  # 1/h at ventilation duty 1
N_WINDOW = 10.0  # 1/h with the window open
HEATER_W = 1500.0
COOLER_W = 1500.0
PERSON_W = 80.0  # sensible heat per occupant
CO2_PER_PERSON = 5.0e-6  # m3/s (18 l/h, office work)
WATER_PER_PERSON = 50.0 / 3600.0  # g/s
CO2_OUT = 420.0  # ppm
SUN_W = 400.0  # peak solar gain on a clear day
SUBSTEP_S = 10.0
NOISE = (0.02, 0.2, 6.0)  # sensor noise std: degC, %RH, ppm


def saturation_g_m3(temp_c: float) -> float:
    """Water vapour at saturation (g/m3) at temp_c: Magnus over water."""
    p_hpa = 6.112 * math.exp(17.62 * temp_c / (243.12 + temp_c))
    return 216.7 * p_hpa / (273.15 + temp_c)


class Room(BlockTwin):
    """Streaming room; set `heating`/`cooling`/`ventilation` (0..1), `occupants`, `window_open`,
    `heater_failed` at any time (they act from the next block, 8 samples)."""

    channels = ("temperature", "humidity", "co2")
    OUTPUTS = ("heating", "cooling", "ventilation")

    def __init__(
        self,
        seed: int = 0,
        sample_rate: float = 1 / 60,
        occupants: int = 0,
        outdoor_c: float | None = None,
        start_hour: float = 0.0,
        auto: bool = False,
        setpoint: float | None = None,
    ) -> None:
        super().__init__(sample_rate)
        self.block = 8
        self.rng = child_rngs(seed, ("setup", "noise", "weather"))
        setup = self.rng["setup"]
        self.occupants = int(occupants)
        self.outdoor_mean = float(setup.uniform(0.0, 10.0) if outdoor_c is None else outdoor_c)
        self.outdoor_swing = float(setup.uniform(2.0, 5.0))
        self.rh_out = float(setup.uniform(65.0, 90.0))
        self.start_hour = float(start_hour)
        self.setpoint = float(setup.uniform(20.0, 22.0) if setpoint is None else setpoint)
        self.temp = float(setup.uniform(self.setpoint - 1.0, self.setpoint + 0.5))
        self.mass = self.temp - 0.5
        self.co2 = CO2_OUT + float(setup.uniform(20.0, 80.0)) + 250.0 * self.occupants
        self.abs_h = saturation_g_m3(self.temp) * float(setup.uniform(0.35, 0.5))
        self.heating = 0.0
        self.cooling = 0.0
        self.ventilation = 0.0
        self.window_open = False
        self.heater_failed = False
        self.auto = bool(auto)  # the room's own thermostat and CO2 ventilation (recordings)
        self._drift = 0.0  # outdoor temperature drift (OU, degC)
        self._cloud = float(setup.uniform(0.0, 1.0))

    # -- what the board can read back ---------------------------------------------------------
    @property
    def label(self) -> str:
        if self.window_open:
            return "window_open"
        return "occupied" if self.occupants > 0 else "empty"

    @property
    def hour(self) -> float:
        """Time of day (h) of the next sample."""
        return (self.start_hour + self.t / 3600.0) % 24.0

    @property
    def rh(self) -> float:
        return min(100.0, 100.0 * self.abs_h / saturation_g_m3(self.temp))

    @property
    def outdoor_temp(self) -> float:
        return self._outdoor(self.start_hour + self.t_generated / 3600.0)

    def apply(self, outputs: dict[str, float]) -> None:
        """Set outputs by name (the board's commands), each a duty 0..1 (bool for on/off)."""
        for name, value in outputs.items():
            if name not in self.OUTPUTS:
                raise ValueError(f"unknown room output {name!r}; known: {', '.join(self.OUTPUTS)}")
            setattr(self, name, min(1.0, max(0.0, float(value))))

    # -- physics -------------------------------------------------------------------------------
    def _outdoor(self, hours: float) -> float:
        return self.outdoor_mean + self.outdoor_swing * math.cos(2 * math.pi * (hours - 15.0) / 24.0) \
            + self._drift

    def _sun(self, hours: float) -> float:
        h = hours % 24.0
        if not 7.0 < h < 19.0:
            return 0.0
        return SUN_W * math.sin(math.pi * (h - 7.0) / 12.0) ** 2 * (1.0 - 0.8 * self._cloud)

    def _thermostat(self) -> None:
        if self.temp < self.setpoint - 0.5:
            self.heating = 1.0
        elif self.temp > self.setpoint + 0.5:
            self.heating = 0.0
        if self.co2 > 1000.0:
            self.ventilation = 1.0
        elif self.co2 < 700.0:
            self.ventilation = 0.0

    def _advance(self, dt: float, hours: float) -> None:
        if self.auto:
            self._thermostat()
        t_out = self._outdoor(hours)
        n = N_INFILTRATION + N_VENT * self.ventilation + (N_WINDOW if self.window_open else 0.0)
        heat = (0.0 if self.heater_failed else HEATER_W * self.heating) - COOLER_W * self.cooling
        heat += PERSON_W * self.occupants
        q_air = heat - H_AM * (self.temp - self.mass) - (UA + RHO_CP_V * n) * (self.temp - t_out)
        q_mass = H_AM * (self.temp - self.mass) + self._sun(hours)
        self.temp += q_air * dt / C_AIR
        self.mass += q_mass * dt / C_MASS
        exch = n / 3600.0 * dt
        self.co2 += self.occupants * CO2_PER_PERSON / VOLUME_M3 * 1e6 * dt - exch * (self.co2 - CO2_OUT)
        h_out = saturation_g_m3(t_out) * self.rh_out / 100.0
        self.abs_h += self.occupants * WATER_PER_PERSON / VOLUME_M3 * dt - exch * (self.abs_h - h_out)
        self.abs_h = min(self.abs_h, saturation_g_m3(self.temp))

    def _block(self, n: int) -> np.ndarray:
        dt = 1.0 / self.sample_rate
        out = np.empty((n, 3))
        noise = self.rng["noise"].standard_normal((n, 3))
        w = self.rng["weather"].standard_normal(2)
        a = math.exp(-n * dt / 21600.0)  # drift and clouds change over hours
        self._drift = self._drift * a + 1.5 * math.sqrt(1 - a * a) * float(w[0])
        self._cloud = min(1.0, max(0.0, self._cloud + 0.1 * float(w[1])))
        steps = max(1, int(round(dt / SUBSTEP_S)))
        t0 = self.start_hour * 3600.0 + self._generated * dt
        for i in range(n):
            for j in range(steps):
                self._advance(dt / steps, (t0 + i * dt + j * dt / steps) / 3600.0)
            out[i] = (self.temp + NOISE[0] * noise[i, 0], self.rh + NOISE[1] * noise[i, 1],
                      self.co2 + NOISE[2] * noise[i, 2])
        return out

    # -- batch -----------------------------------------------------------------------------------
    @classmethod
    def recording(cls, state: str, duration_s: float, seed: int, sample_rate: float = 1 / 60):
        """A labelled recording of a room run by its own thermostat: empty, occupied (1-4
        people) or with the window opened at the start."""
        if state not in STATES:
            raise ValueError(f"unknown state {state!r}; known: {', '.join(STATES)}")
        pick = np.random.default_rng([seed, 11])
        occ = int(pick.integers(1, 5)) if state == "occupied" else int(pick.integers(0, 2)) * (
            state == "window_open")
        twin = cls(seed=seed, sample_rate=sample_rate, occupants=occ, auto=True,
                   start_hour=float(pick.uniform(0, 24)))
        twin.step(int(round(float(pick.uniform(20, 60)) * 60 * sample_rate)))  # settle first
        twin.window_open = state == "window_open"
        data = twin.step(int(round(duration_s * sample_rate)))
        return Recording(state, data, sample_rate, cls.channels, {"occupants": occ})


Environment = Room  # the twin's registry name is "environment"


def office_occupancy(hour: float, rng: np.random.Generator, now: int) -> int:
    """A working day: nobody before ~08:00 or after ~18:00, a lunch dip, 1-4 people otherwise."""
    if 8.0 <= hour < 18.0:
        if 12.0 <= hour < 13.0 and rng.random() < 0.5:
            return max(0, now - 1)
        if now == 0 or rng.random() < 0.05:
            return int(rng.integers(1, 5))
        return now
    return 0


def daily_profile(seed: int, hours: float = 24.0) -> tuple[np.ndarray, np.ndarray]:
    """A streaming day under the room's own thermostat: samples [n, 3] and occupancy [n]."""
    twin = Room(seed=seed, auto=True)
    rng = np.random.default_rng([seed, 5])
    xs, occ = [], []
    for _ in range(int(hours * 60)):
        if int(round(twin.t)) % 600 == 0:  # people come and go in 10-minute steps
            twin.occupants = office_occupancy(twin.hour, rng, twin.occupants)
        xs.append(twin.step(1))
        occ.append(twin.occupants)
    return np.concatenate(xs), np.asarray(occ)
