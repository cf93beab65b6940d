"""Wearable IMU twin: wrist accelerometer (g) and gyroscope (deg/s) at 50 Hz, with a daily life.

Activities: rest (gravity at the wrist's posture, tremor-level noise), walk (~1.6-2.2 Hz steps,
arm swing), run (~2.5-3.2 Hz, larger impacts and swing). Events: fall (ordinary motion, ~0.3 s
of free fall, an impact of 3-6 g, then lying still at a new posture for `lie_s`, then getting
up), and the everyday movements a fall detector must not alert on: sit_down (a 1.3-2.2 g
landing with no free fall), lie_down (a slow turn to lying), stand_up, and gesture (a brisk arm
movement: high rotation, little impact).

Everything is scheduled in simulated time (`schedule(at_s, kind, arg)`, `fall(at_s)`) and acts
from the first block (0.2 s) at or after that time, so a day is reproducible from its seed.
`falls` lists the impact times (ground truth); `daily_life(seed, hours)` writes a day's plan.
"""

from __future__ import annotations

import math

import numpy as np

from trainer.twins.base import BlockTwin, Recording, child_rngs

ACTIVITIES = ("rest", "walk", "run", "fall")
MOVES = ("sit_down", "lie_down", "stand_up", "gesture")
FREE_FALL_S = 0.3
IMPACT_S = 0.1


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
    """Streaming wearable: `set_activity()`/`activity` now or `schedule()` later; `fall()`."""

    channels = ("ax", "ay", "az", "gx", "gy", "gz")

    def __init__(self, seed: int = 0, sample_rate: float = 50.0, activity: str = "rest") -> None:
        super().__init__(sample_rate)
        self.block = 10
        self.rng = child_rngs(seed, ("setup", "noise", "motion", "posture", "event"))
        setup = self.rng["setup"]
        if activity not in ACTIVITIES[:3]:
            raise ValueError(f"unknown activity {activity!r}; known: rest, walk, run")
        self.activity = activity
        self.orient = _rotation(setup)
        self.cadence = {"walk": setup.uniform(1.6, 2.2), "run": setup.uniform(2.5, 3.2)}
        self.amp = setup.uniform(0.8, 1.25)
        self.ph = setup.uniform(0, 2 * math.pi, size=6)
        self._phase = 0.0
        self._pending: list[tuple[float, str, object]] = []
        self._event: tuple[str, float, dict] | None = None  # kind, start time, parameters
        self._fall_t: float | None = None
        self.falls: list[float] = []  # impact times of every fall (ground truth)
        self.moves: list[tuple[float, str]] = []  # everyday movements done (time, kind)

    # -- commands --------------------------------------------------------------------------------
    def set_activity(self, activity: str) -> None:
        self.schedule(self.t_generated, "activity", activity)

    def schedule(self, at_s: float, kind: str, arg: object = None) -> None:
        """At simulated time at_s: kind 'activity' (arg: rest|walk|run), 'fall' (arg: lie_s) or
        an everyday move (sit_down, lie_down, stand_up, gesture)."""
        if kind == "activity" and arg not in ACTIVITIES[:3]:
            raise ValueError(f"unknown activity {arg!r}; known: rest, walk, run")
        if kind not in ("activity", "fall", *MOVES):
            raise ValueError(f"unknown wearable event {kind!r}; known: activity, fall, "
                             f"{', '.join(MOVES)}")
        self._pending.append((float(at_s), kind, arg))
        self._pending.sort(key=lambda e: e[0])

    def fall(self, at_s: float | None = None, lie_s: float = 1e9) -> None:
        """A fall starting at at_s (None: now): free fall, impact, lying still for lie_s."""
        self.schedule(self.t_generated if at_s is None else float(at_s), "fall", lie_s)

    # -- generation ------------------------------------------------------------------------------
    def _start_events(self, t0: float, t_end: float) -> None:
        while self._pending and self._pending[0][0] < t_end:
            at, kind, arg = self._pending.pop(0)
            at = max(at, t0)
            if kind == "activity":
                self.activity = str(arg)
                continue
            ev = self.rng["event"]
            par = {"to": _rotation(self.rng["posture"]), "k": float(ev.uniform(0.7, 1.0))}
            if kind == "fall":
                par["lie_s"] = float(arg if arg is not None else 1e9)
                self.falls.append(at + FREE_FALL_S)
                self._fall_t = at
            else:
                self.moves.append((at, kind))
                par["g"] = float(ev.uniform(1.3, 2.2))
            self._event = (kind, at, par)

    def _block(self, n: int) -> np.ndarray:
        fs = self.sample_rate
        t = self._generated / fs + np.arange(n) / fs
        self._start_events(t[0], t[-1] + 1.0 / fs)
        noise = self.rng["noise"].standard_normal((n, 6))
        mot = self.rng["motion"].standard_normal((n, 6))
        g = np.array([0.0, 0.0, 1.0])
        acc = np.tile(self.orient @ g, (n, 1))
        gyr = np.zeros((n, 3))
        act = self.activity
        busy = self._event is not None and self._event[0] in ("fall", "lie_down")
        if act in ("walk", "run") and not busy:
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
        elif act == "rest":
            acc += 0.01 * mot[:, :3]
            gyr += 1.5 * mot[:, 3:]
        if self._event is not None:
            self._add_event(t, acc, gyr, mot)
        acc += 0.01 * noise[:, :3]
        gyr += 0.8 * noise[:, 3:]
        return np.concatenate([np.clip(acc, -8, 8), np.clip(gyr, -1000, 1000)], 1)

    def _add_event(self, t: np.ndarray, acc: np.ndarray, gyr: np.ndarray, mot: np.ndarray) -> None:
        kind, t0, par = self._event
        rel = t - t0
        g = np.array([0.0, 0.0, 1.0])
        new = par["to"] @ g
        if kind == "fall":
            free = (rel >= 0) & (rel < FREE_FALL_S)
            acc[free] *= 0.1
            gyr[free] += 150.0 * mot[free, 3:]
            hit = (rel >= FREE_FALL_S) & (rel < FREE_FALL_S + IMPACT_S)
            acc[hit] += (3.0 + 3.0 * np.abs(mot[hit, :3])) * np.sign(mot[hit, :3])
            gyr[hit] += 300.0 * mot[hit, 3:]
            end = FREE_FALL_S + IMPACT_S + par["lie_s"]
            lying = (rel >= FREE_FALL_S + IMPACT_S) & (rel < end)
            acc[lying] = new
            gyr[lying] = 0.0
            if rel[-1] >= end:  # gets up: back on their feet, standing still
                self._event = ("stand_up", t0 + end, {"to": self.orient, "g": 1.2, "k": 1.0})
                self._fall_t = None
                self.activity = "rest"
            return
        dur = {"sit_down": 0.8, "lie_down": 2.0, "stand_up": 1.0, "gesture": 0.8}[kind]
        u = np.clip(rel / dur, 0.0, 1.0)[:, None]
        act = (rel >= 0) & (rel < dur)
        if kind == "gesture":
            bump = np.sin(np.pi * u[:, 0]) * act
            gyr += (250.0 * par["k"] * bump)[:, None] * np.array([1.0, -0.6, 0.4])
            acc += (0.5 * bump)[:, None] * np.array([0.3, 0.8, -0.2])
        else:
            blend = (1 - u) * (self.orient @ g) + u * new  # the wrist turns to the new posture
            acc[act] = blend[act] / np.linalg.norm(blend[act], axis=1, keepdims=True)
            gyr[act] += 90.0 * par["k"] * mot[act, 3:] / (2.0 if kind == "lie_down" else 1.0)
            if kind == "sit_down":  # a softened drop, then the seat's landing: no free fall
                drop = act & (rel < 0.3)
                acc[drop] *= 0.65
                land = (rel >= 0.3) & (rel < 0.4)
                acc[land] *= par["g"]
        if rel[-1] >= dur:
            if kind != "gesture":
                self.orient = par["to"]
            self._event = None

    # -- batch -----------------------------------------------------------------------------------
    @classmethod
    def recording(
        cls, activity: str, duration_s: float, seed: int, sample_rate: float = 50.0
    ) -> Recording:
        """A labelled recording. A fall's impact lands where every window of a short
        recording holds it, at any place within the window; rest recordings often settle into a seat or bed, others hold a gesture: the
        everyday movements that must not be taken for a fall."""
        if activity not in ACTIVITIES:
            raise ValueError(f"unknown activity {activity!r}; known: {', '.join(ACTIVITIES)}")
        pick = np.random.default_rng([seed, 31])
        twin = cls(seed=seed, sample_rate=sample_rate,
                   activity="walk" if activity == "fall" else activity)
        if activity == "fall":  # every 2.56 s window of a 4 s recording holds the impact
            lo, hi = max(0.5, duration_s - 2.5), min(duration_s - 0.5, 2.5)
            lo, hi = (lo, hi) if lo <= hi else (duration_s / 2, duration_s / 2)
            twin.fall(float(pick.uniform(lo, hi)) - FREE_FALL_S)
        elif activity == "rest" and pick.random() < 0.6:
            twin.schedule(float(pick.uniform(0.0, duration_s - 2.0)),
                          str(pick.choice(("sit_down", "lie_down"))))
        elif pick.random() < 0.5:
            twin.schedule(float(pick.uniform(0.0, duration_s - 1.0)), "gesture")
        data = twin.step(int(round(duration_s * sample_rate)))
        return Recording(activity, data, sample_rate, cls.channels,
                         {"falls": list(twin.falls), "moves": [m[1] for m in twin.moves]})


def daily_life(seed: int, hours: float = 8.0, falls: int = 0, start_s: float = 0.0,
               ) -> list[tuple[float, str, object]]:
    """A day's plan for WearableIMU.schedule(): rest (sitting, lying), walks and the odd run,
    with sit-downs, lie-downs, stand-ups and gestures between them, and `falls` falls placed
    during walks (each: lying 10-60 s, then getting up). Returns [(at_s, kind, arg)]."""
    rng = np.random.default_rng([seed, 8088])
    plan: list[tuple[float, str, object]] = []
    t = start_s
    end = start_s + hours * 3600.0
    walks: list[tuple[float, float]] = []
    act = "rest"
    while t < end:
        nxt = {"rest": ("walk", "walk", "walk", "run"), "walk": ("rest", "rest", "run"),
               "run": ("walk", "rest")}[act]
        new = str(rng.choice(nxt))
        if act == "rest":
            plan.append((t, "stand_up", None))
            t += 1.5
        plan.append((t, "activity", new))
        dur = {"rest": rng.uniform(120, 1800), "walk": rng.uniform(60, 900),
               "run": rng.uniform(60, 480)}[new]
        if new == "walk":
            walks.append((t + 20.0, t + dur - 20.0))
        if new == "rest":
            plan.append((t, str(rng.choice(("sit_down", "sit_down", "lie_down"))), None))
        for g in np.sort(rng.uniform(t + 3, t + dur - 3, size=int(rng.poisson(dur / 300.0)))):
            plan.append((float(g), "gesture", None))
        t += dur
        act = new
    if falls:
        long = [w for w in walks if w[1] - w[0] > 30.0]
        if len(long) < falls:
            raise ValueError(f"a {hours} h day has {len(long)} walks for {falls} falls")
        idx = np.sort(rng.choice(len(long), size=falls, replace=False))
        for i in idx:
            a, b = long[i]
            at = float(rng.uniform(a, b))
            # no gesture or posture change within a minute of a fall: one event at a time
            plan = [p for p in plan if not (p[1] in MOVES and abs(p[0] - at) < 60.0)]
            plan.append((at, "fall", float(rng.uniform(10.0, 60.0))))
    return sorted(plan, key=lambda p: p[0])

