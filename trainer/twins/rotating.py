"""Rotating-machine twin: a 3-axis accelerometer on a bearing housing (x, y radial; z axial).

Conditions: normal, imbalance (1x rpm radial), misalignment (2x rpm, strong axial), bearing
(outer-race impulses at BPFO ringing down at a structural resonance), looseness (many
harmonics and half-harmonics, rattle). Operating point: rpm with slow random drift, load,
broadband noise, per-axis mounting gain, gravity on z, saturation at the sensor's full scale.
A fault injected on a running machine degrades its health from 1.0 towards 0.0 (breakdown)
at an accelerating rate, its signature growing as it goes; stop() spins the machine down and
freezes the degradation.

Variants are machines of one kind on other sites (`variant=`, VARIANTS): "plant_a" is the one
the example dataset and the shipped model know; "plant_b" is a faster machine (2400-3200 rpm) on
a softer mounting (its structural resonance, where bearing impacts ring, at 110-150 Hz instead of
300-380 Hz; radial axes weighted 1.3 / 0.8) in a noisier plant (noise floor 0.05-0.09 g instead
of 0.01-0.04 g): the drift a model trained on plant_a meets in the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from trainer.twins.base import BlockTwin, Recording, child_rngs

CONDITIONS = ("normal", "imbalance", "misalignment", "bearing", "looseness")
BPFO_RATIO = 3.57  # outer-race defect frequency / shaft frequency for a typical 6205 bearing


@dataclass(frozen=True)
class Variant:
    """Where one machine differs from another of its kind: speed, mounting, noise floor."""

    rpm: float  # nominal speed of a streaming twin
    rpm_band: tuple[float, float]  # speeds of batch recordings
    noise_g: float
    noise_band: tuple[float, float]
    resonance: tuple[float, float]  # structural resonance, as fractions of the sample rate
    mount_gain: tuple[float, float, float]  # per-axis mounting transfer (x, y radial; z axial)


VARIANTS = {
    "plant_a": Variant(1500.0, (1200.0, 1800.0), 0.02, (0.01, 0.04), (0.30, 0.38), (1.0, 1.0, 1.0)),
    "plant_b": Variant(2800.0, (2400.0, 3200.0), 0.07, (0.05, 0.09), (0.11, 0.15), (1.3, 0.8, 1.0)),
}


def variant_of(name: str) -> Variant:
    if name not in VARIANTS:
        raise ValueError(f"unknown machine variant {name!r}; known: {', '.join(VARIANTS)}")
    return VARIANTS[name]


class RotatingMachine(BlockTwin):
    """Streaming twin of a motor/pump; see trainer.twins for the API used by the HIL bench."""

    channels = ("ax", "ay", "az")
    default_variant = "plant_a"

    def __init__(
        self,
        seed: int = 0,
        sample_rate: float = 1000.0,
        rpm: float | None = None,
        load: float = 0.7,
        noise_g: float | None = None,
        full_scale_g: float = 16.0,
        time_to_failure_s: float = 120.0,
        rpm_drift: float = 0.03,
        load_drift: float = 0.0,
        block: int = 64,
        variant: str = "plant_a",
    ) -> None:
        super().__init__(sample_rate)
        self.variant = variant
        v = variant_of(variant)
        rpm = v.rpm if rpm is None else rpm
        noise_g = v.noise_g if noise_g is None else noise_g
        self.block = int(block)
        self.seed = seed
        self.rng = child_rngs(seed, ("setup", "noise", "drift", "impulse", "load"))
        setup = self.rng["setup"]
        self.rpm_nominal = float(rpm)
        self.load = float(load)
        self.noise_g = float(noise_g)
        self.full_scale_g = float(full_scale_g)
        self.time_to_failure_s = float(time_to_failure_s)
        self.rpm_drift = float(rpm_drift)
        self.load_nominal = float(load)
        self.load_drift = float(load_drift)  # std of the slow load wander (OU, 60 s)
        self._load_dev = 0.0
        # mounting gain per axis: the site's mounting, and this unit's spread around it
        self.gain = np.asarray(v.mount_gain) * (1.0 + 0.05 * setup.standard_normal(3))
        self.resonance_hz = float(setup.uniform(*v.resonance) * sample_rate)
        self.harm_phase = setup.uniform(0, 2 * math.pi, size=10)
        self.imb_phase = float(setup.uniform(0, 2 * math.pi))
        self.health = 1.0
        self.running = True
        self.broken = False
        self.fault: str = "normal"
        self.severity_override: float | None = None  # fixed severity for batch recordings
        self._pending: list[tuple[str, float]] = []
        self._stop_at: float | None = None
        self._drift = 0.0
        self._speed = self.rpm_nominal / 60.0  # shaft Hz
        self._phase = 0.0  # shaft angle in revolutions
        self._next_impulse = 0.0  # seconds
        self._impulses: list[tuple[float, float]] = []  # (time, amplitude) still ringing

    # -- commands -----------------------------------------------------------------------------
    def inject_fault(self, kind: str, at_s: float | None = None) -> None:
        """Start fault `kind` at simulated time at_s (None: now); it then degrades the machine."""
        if kind not in CONDITIONS:
            raise ValueError(f"unknown machine fault {kind!r}; known: {', '.join(CONDITIONS)}")
        self._pending.append((kind, self.t_generated if at_s is None else float(at_s)))

    def stop(self) -> None:
        """Stop command (the board's actuator): spin down, freeze degradation."""
        if self.running:
            self.running = False
            self._stop_at = self.t_generated

    def start(self) -> None:
        """Run again after a stop (the fault, if not repaired, resumes degrading)."""
        if not self.broken:
            self.running = True

    def repair(self) -> None:
        """Maintenance: fault cleared, health restored (a broken machine too); stays stopped."""
        self.fault = "normal"
        self._pending.clear()
        self.health = 1.0
        self.broken = False
        self._impulses.clear()

    @property
    def label(self) -> str:
        """The condition of the most recently generated samples."""
        return self.fault

    @property
    def rpm(self) -> float:
        return self._speed * 60.0

    @property
    def severity(self) -> float:
        if self.severity_override is not None:
            return self.severity_override
        return 0.4 + 1.6 * (1.0 - self.health)

    # -- generation ---------------------------------------------------------------------------
    def _block(self, n: int) -> np.ndarray:
        fs = self.sample_rate
        t0 = self._generated / fs
        for kind, at in list(self._pending):
            if at <= t0:
                self.fault = kind
                self._pending.remove((kind, at))
        dt = n / fs
        # operating point: rpm drift (Ornstein-Uhlenbeck), spin-down when stopped/broken
        d = self.rng["drift"].standard_normal()
        self._drift = self._drift * math.exp(-dt / 20.0) + self.rpm_drift * math.sqrt(
            1 - math.exp(-2 * dt / 20.0)
        ) * d
        target = self.rpm_nominal / 60.0 * (1.0 + self._drift)
        if self.running and not self.broken and self._speed < target:  # spin-up, ~1 s
            target = min(target, self._speed + target * dt)
        if not self.running or self.broken:
            target = self._speed * math.exp(-dt / (0.1 if self.broken else 0.6))
            if target < 0.5:
                target = 0.0
        if self.load_drift > 0:
            a = math.exp(-dt / 60.0)
            self._load_dev = self._load_dev * a + self.load_drift * math.sqrt(1 - a * a) * float(
                self.rng["load"].standard_normal())
            self.load = min(1.0, max(0.1, self.load_nominal + self._load_dev))
        f = np.linspace(self._speed, target, n, endpoint=False)
        self._speed = target
        phase = self._phase + np.cumsum(f) / fs
        self._phase = float(phase[-1] % 1.0)  # carried over mod 1: the numbers stay small
        th = 2 * math.pi * phase
        r = (f / (self.rpm_nominal / 60.0)) if self.rpm_nominal else np.zeros(n)
        t = t0 + np.arange(n) / fs
        x = np.zeros((n, 3))
        x[:, 2] = 1.0  # gravity on the axial axis
        x[:, 0] += 0.03 * r**2 * np.cos(th + self.imb_phase)
        x[:, 1] += 0.03 * r**2 * np.sin(th + self.imb_phase)
        x[:, 0] += 0.01 * r * np.cos(7 * th)  # blade pass
        if self.fault != "normal":  # signatures scale with speed; none left once stopped
            self._fault_signal(x, th, r, f, t)
        noise = self.rng["noise"].standard_normal((n, 3))
        x += self.noise_g * (0.6 + 0.4 * self.load) * noise
        if self.broken:
            x[:, :2] += 0.5 * noise[:, :2]  # a seized machine grinds
        x *= self.gain
        np.clip(x, -self.full_scale_g, self.full_scale_g, out=x)
        self._degrade(dt)
        return x

    def _fault_signal(self, x: np.ndarray, th: np.ndarray, r: np.ndarray, f, t) -> None:
        sev = self.severity * (0.7 + 0.3 * self.load)
        if self.fault == "imbalance":
            a = 0.4 * sev * r**2
            x[:, 0] += a * np.cos(th + self.imb_phase)
            x[:, 1] += a * np.sin(th + self.imb_phase)
        elif self.fault == "misalignment":
            a = 0.15 * sev * r**2
            x[:, 0] += a * np.cos(2 * th + 0.3)
            x[:, 1] += a * np.sin(2 * th + 0.3)
            x[:, 2] += 0.25 * sev * r**2 * np.cos(th) + 0.2 * sev * r**2 * np.cos(2 * th + 1.0)
        elif self.fault == "looseness":
            for k in range(1, 9):
                a = 0.2 * sev * r**2 / math.sqrt(k)
                x[:, 0] += a * np.cos(k * th + self.harm_phase[k])
                x[:, 1] += 0.7 * a * np.sin(k * th + self.harm_phase[k])
            for h in (0.5, 1.5):
                x[:, 0] += 0.1 * sev * r**2 * np.cos(h * th)
            x[:, 1] += 0.5 * sev * r**2 * np.maximum(0.0, np.cos(th)) ** 3  # rattle
        elif self.fault == "bearing":
            self._bearing(x, sev, f, t)

    def _bearing(self, x: np.ndarray, sev: float, f: np.ndarray, t: np.ndarray) -> None:
        rng = self.rng["impulse"]
        fs = self.sample_rate
        t_end = t[-1] + 1.0 / fs
        bpfo = BPFO_RATIO * float(f.mean())
        while bpfo > 0.5 and self._next_impulse < t_end:
            if self._next_impulse >= t[0] - 1.0 / fs:
                amp = 0.8 * sev * (1.0 + 0.2 * rng.standard_normal())
                self._impulses.append((self._next_impulse, amp))
            self._next_impulse += (1.0 / bpfo) * (1.0 + 0.02 * rng.standard_normal())
        if bpfo <= 0.5:
            self._next_impulse = t_end
        tau = 0.008
        keep = []
        for ti, amp in self._impulses:
            dtv = t - ti
            m = dtv >= 0
            ring = np.zeros_like(t)
            ring[m] = amp * np.exp(-dtv[m] / tau) * np.sin(2 * math.pi * self.resonance_hz * dtv[m])
            x[:, 0] += ring
            x[:, 1] += 0.6 * ring
            x[:, 2] += 0.3 * ring
            if t_end - ti < 8 * tau:
                keep.append((ti, amp))
        self._impulses = keep

    def _degrade(self, dt: float) -> None:
        if self.fault == "normal" or not self.running or self.broken:
            return
        if self.severity_override is not None:
            return
        k = math.log(3.0) / self.time_to_failure_s
        self.health -= dt * k * (0.5 + (1.0 - self.health))
        if self.health <= 0.0:
            self.health = 0.0
            self.broken = True

    # -- batch --------------------------------------------------------------------------------
    @classmethod
    def recording(
        cls, condition: str, duration_s: float, seed: int, sample_rate: float = 1000.0,
        variant: str | None = None,
    ) -> Recording:
        """A labelled recording of one condition at a random operating point and severity
        (within the variant's rpm band and noise floor)."""
        if condition not in CONDITIONS:
            raise ValueError(f"unknown condition {condition!r}; known: {', '.join(CONDITIONS)}")
        variant = variant or cls.default_variant
        v = variant_of(variant)
        pick = np.random.default_rng([seed, 7919])
        twin = cls(
            seed=seed,
            sample_rate=sample_rate,
            rpm=float(pick.uniform(*v.rpm_band)),
            load=float(pick.uniform(0.3, 1.0)),
            noise_g=float(pick.uniform(*v.noise_band)),
            variant=variant,
        )
        sev = float(pick.uniform(0.4, 2.0))
        if condition != "normal":
            twin.inject_fault(condition, 0.0)
            twin.severity_override = sev
        data = twin.step(int(round(duration_s * sample_rate)))
        meta = {"variant": variant, "rpm": twin.rpm_nominal, "load": twin.load,
                "severity": sev if condition != "normal" else 0.0}
        return Recording(condition, data, sample_rate, cls.channels, meta)


class RotatingMachineB(RotatingMachine):
    """The rotating machine of plant B (VARIANTS["plant_b"]): twin `rotating_machine_b`."""

    default_variant = "plant_b"

    def __init__(self, seed: int = 0, **kw) -> None:
        kw.setdefault("variant", "plant_b")
        super().__init__(seed=seed, **kw)
