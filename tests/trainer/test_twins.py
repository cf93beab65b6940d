"""Sensor twins: seeded, chunking-invariant streams; degradation, stop and sensor faults."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from trainer.twins import (
    ACTIVITIES,
    CONDITIONS,
    Environment,
    RotatingMachine,
    WearableIMU,
    inject,
    synthesize,
    to_counts,
)


def test_importable_without_tensorflow():
    code = "import sys, trainer.twins, trainer.features, trainer.config, trainer.data; " \
           "print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("cls", [RotatingMachine, WearableIMU, Environment])
def test_same_seed_same_stream_whatever_the_chunking(cls):
    a, b, c = cls(seed=4), cls(seed=4), cls(seed=5)
    whole = a.step(1000)
    parts = np.concatenate([b.step(n) for n in (1, 63, 200, 7, 729)])
    np.testing.assert_array_equal(whole, parts)
    assert not np.array_equal(whole, c.step(1000))
    assert whole.shape == (1000, len(cls.channels)) and np.isfinite(whole).all()


def test_machine_degrades_to_breakdown_unless_stopped():
    m = RotatingMachine(seed=1, time_to_failure_s=30.0)
    m.inject_fault("bearing", at_s=5.0)
    m.step(4900)
    assert m.health == 1.0 and m.label == "normal"
    m.step(200)  # commands act from the next 64-sample block
    assert m.label == "bearing" and m.health < 1.0
    while not m.broken and m.t < 120:
        m.step(1000)
    assert m.broken and 20 < m.t < 60 and m.health == 0.0
    s = RotatingMachine(seed=1, time_to_failure_s=30.0)
    s.inject_fault("bearing", at_s=5.0)
    s.step(15000)
    s.stop()
    h = s.health
    x = s.step(20000)
    assert s.health == h and not s.broken and s.rpm == 0.0
    assert np.abs(x[-1000:, :2]).std() < 0.1  # spun down: only noise left


def test_fault_signatures_are_where_physics_puts_them():
    fs = 1000.0

    def spectrum(cond: str) -> tuple[np.ndarray, float]:
        m = RotatingMachine(seed=2, rpm=1500.0, rpm_drift=0.0, noise_g=0.005)
        if cond != "normal":
            m.inject_fault(cond, 0.0)
            m.severity_override = 1.0
        x = m.step(8192)
        return np.abs(np.fft.rfft(x - x.mean(0), axis=0)) / 4096, m.resonance_hz

    freqs = np.fft.rfftfreq(8192, 1 / fs)
    at = lambda f: int(np.argmin(np.abs(freqs - f)))  # noqa: E731
    normal, _ = spectrum("normal")
    imb, _ = spectrum("imbalance")
    mis, _ = spectrum("misalignment")
    bear, res = spectrum("bearing")
    assert imb[at(25), 0] > 5 * normal[at(25), 0]  # 1x rpm, radial
    assert mis[at(50), 2] > 10 * normal[at(50), 2]  # 2x rpm, axial
    band = (freqs > res - 40) & (freqs < res + 40)
    assert bear[band, 0].sum() > 10 * normal[band, 0].sum()  # ringing at the resonance


def test_sensor_faults_stream_and_batch():
    m = RotatingMachine(seed=3)
    m.sensor_fault("nan", at_s=0.1, duration_s=0.05, channels=(1,))
    m.sensor_fault("stuck", at_s=0.3, duration_s=0.1)
    x = m.step(500)
    assert np.isnan(x[100:150, 1]).all() and not np.isnan(x[:, [0, 2]]).any()
    assert (x[300:400] == x[300]).all() and not (x[400:410] == x[300]).all()
    y = inject(np.ones((100, 3)), "dropout", 10, 5)
    assert (y[10:15] == 0).all() and (y[15:] == 1).all()
    z = inject(np.zeros((2000, 3)), "spike", 0, 2000, seed=1)
    assert 40 < (np.abs(z[:, 0]) == 16.0).sum() < 160


def test_batch_recordings_and_counts():
    recs = synthesize("wearable", per_class=2, seed=1)
    assert [r.label for r in recs] == [a for a in ACTIVITIES for _ in range(2)]
    again = synthesize("wearable", per_class=2, seed=1)
    assert all(np.array_equal(a.data, b.data) for a, b in zip(recs, again, strict=True))
    m = synthesize("rotating_machine", per_class=1, duration_s=0.5, seed=0)
    assert [r.label for r in m] == list(CONDITIONS)
    c = to_counts(np.array([[0.5, -20.0, 1.0]]), 2048)
    assert c.dtype == np.int16 and c.tolist() == [[1024, -32768, 2048]]
    env = synthesize("environment", per_class=2, seed=0)
    co2 = {r.label: r.data[:, 2].mean() for r in env}
    assert co2["occupied"] > co2["empty"] + 100


def test_environment_day_follows_occupancy():
    from trainer.twins.environment import daily_profile

    x, occ = daily_profile(seed=4, hours=24)
    assert x.shape == (24 * 60, 3) and occ.shape == (24 * 60,)
    busy = occ > 0
    assert busy.any() and (~busy).any()
    assert x[busy, 2].mean() > x[~busy, 2].mean()  # people breathe out CO2


def test_machine_start_and_repair():
    m = RotatingMachine(seed=6, time_to_failure_s=20.0)
    m.inject_fault("imbalance", at_s=0.0)
    m.step(3000)
    m.stop()
    m.step(5000)
    h = m.health
    assert m.rpm == 0.0 and h < 1.0
    m.start()
    m.step(3000)
    assert m.rpm > 1000 and m.health < h  # running again: the fault degrades it further
    m.stop()
    m.repair()
    m.start()
    m.step(3000)
    assert m.health == 1.0 and m.label == "normal" and not m.broken


def test_room_answers_heating_ventilation_window_and_a_failed_heater():
    from trainer.twins import Room

    def run(**outputs) -> tuple[Room, np.ndarray]:
        room = Room(seed=3, outdoor_c=2.0, occupants=3, start_hour=6.0)
        for k, v in outputs.items():
            setattr(room, k, v)
        return room, room.step(120)  # two hours, one sample a minute

    _, cold = run()
    _, heated = run(heating=1.0)
    _, vented = run(heating=1.0, ventilation=1.0)
    _, window = run(heating=1.0, window_open=True)
    _, failed = run(heating=1.0, heater_failed=True)
    assert heated[-1, 0] > cold[-1, 0] + 3.0  # degC: the heater heats
    np.testing.assert_allclose(failed[:, 0], cold[:, 0], atol=0.2)  # a failed one does not
    assert cold[-1, 2] > 1500 and vented[-1, 2] < 900  # three people; ventilation clears CO2
    assert window[-1, 0] < heated[-1, 0] - 2.0 and window[-1, 2] < 600  # the window: cold air
    assert (cold[:, 1] > 0).all() and (cold[:, 1] <= 100).all()  # RH stays physical
    room = Room(seed=1)
    room.apply({"heating": True, "ventilation": 0.5})
    assert room.heating == 1.0 and room.ventilation == 0.5
    with pytest.raises(ValueError, match="unknown room output 'fan'"):
        room.apply({"fan": 1})


def test_room_recordings_have_three_states():
    from trainer.twins import STATES

    recs = synthesize("environment", per_class=2, seed=4)
    assert [r.label for r in recs] == [s for s in STATES for _ in range(2)]
    assert {len(r.data) for r in recs if r.label == "window_open"} == {60}
    opened = [r for r in recs if r.label == "window_open"]
    assert all(r.data[:10, 0].mean() > r.data[-10:, 0].mean() for r in opened)


def test_wearable_day_has_falls_with_ground_truth_and_everyday_moves():
    from trainer.twins import MOVES, daily_life

    plan = daily_life(seed=2, hours=2.0, falls=3)
    falls = [p for p in plan if p[1] == "fall"]
    assert len(falls) == 3 and {p[1] for p in plan} >= {"activity", "fall", "sit_down", "gesture"}
    a, b = WearableIMU(seed=2), WearableIMU(seed=2)
    for p in plan:
        a.schedule(*p)
        b.schedule(*p)
    x = a.step(2 * 3600 * 50)
    y = np.concatenate([b.step(n) for n in [7, 3333, 90000] + [2 * 3600 * 50 - 93340]])
    np.testing.assert_array_equal(x, y)
    assert np.allclose(a.falls, [p[0] + 0.3 for p in falls])  # impact times, the ground truth
    mag = np.linalg.norm(x[:, :3], axis=1)
    for t in a.falls:  # free fall just before each impact, a hard hit at it
        i = int(round(t * 50))
        assert mag[i - 12 : i - 2].max() < 0.3 and mag[i : i + 5].max() > 3.0
    sits = [t for t, k in a.moves if k == "sit_down"]
    assert sits and all(mag[int(t * 50) : int(t * 50) + 40].min() > 0.5 for t in sits)
    assert set(k for _, k in a.moves) <= set(MOVES)
    with pytest.raises(ValueError, match="unknown wearable event"):
        a.schedule(1.0, "jump")
