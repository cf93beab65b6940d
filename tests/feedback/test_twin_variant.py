"""The drifted machine: plant B's twin differs where the issue says (rpm, mounting, noise)."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.twins import TWINS, RotatingMachine, RotatingMachineB, synthesize
from trainer.twins.rotating import VARIANTS


def _spectrum(m: RotatingMachine, n: int = 8192) -> np.ndarray:
    x = m.step(n)
    return np.abs(np.fft.rfft(x - x.mean(0), axis=0)) / n


def test_plant_b_runs_faster_rings_lower_and_is_noisier() -> None:
    a, b = RotatingMachine(seed=3), RotatingMachine(seed=3, variant="plant_b")
    va, vb = VARIANTS["plant_a"], VARIANTS["plant_b"]
    assert a.rpm_nominal == va.rpm and b.rpm_nominal == vb.rpm
    assert vb.rpm_band[0] > va.rpm_band[1]  # no overlap: the shipped model never saw it
    assert 110 <= b.resonance_hz <= 150 and 300 <= a.resonance_hz <= 380
    noise_a, noise_b = a.step(4000)[:, 2].std(), b.step(4000)[:, 2].std()
    assert noise_b > 2.5 * noise_a
    # bearing impacts ring at each plant's own structural resonance (8192 points at 1 kHz)
    hz = np.fft.rfftfreq(8192, 1e-3)
    low, high = (hz >= 100) & (hz <= 170), (hz >= 280) & (hz <= 400)
    energy = {}
    for variant in ("plant_a", "plant_b"):
        m = RotatingMachine(seed=5, noise_g=0.002, rpm_drift=0.0, variant=variant)
        m.inject_fault("bearing", 0.0)
        m.severity_override = 1.5
        spec = _spectrum(m)[:, 0] ** 2
        energy[variant] = spec[low].sum() / spec[high].sum()
    assert energy["plant_a"] < 0.5 and energy["plant_b"] > 2.0, energy


def test_default_machine_is_plant_a_and_unknown_variants_are_refused() -> None:
    np.testing.assert_array_equal(RotatingMachine(seed=2).step(500),
                                  RotatingMachine(seed=2, variant="plant_a").step(500))
    assert RotatingMachineB(seed=2).variant == "plant_b"
    with pytest.raises(ValueError, match="unknown machine variant 'plant_c'.*plant_a, plant_b"):
        RotatingMachine(variant="plant_c")


def test_twin_rotating_machine_b_is_selectable_in_simulate(tmp_path) -> None:
    assert "rotating_machine_b" in TWINS
    recs = synthesize("rotating_machine_b", per_class=3, duration_s=0.5, seed=1)
    rpms = [r.meta["rpm"] for r in recs]
    assert all(r.meta["variant"] == "plant_b" for r in recs)
    assert min(rpms) >= 2400 and max(rpms) <= 3200
    from typer.testing import CliRunner

    from edgeloop.cli import app

    res = CliRunner().invoke(app, ["simulate", "rotating-machine-b", "--out", str(tmp_path / "d"),
                                   "--per-class", "3", "--duration", "0.5"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "d" / "edgeloop.toml").is_file()  # the rotating_machine project
    assert len(list((tmp_path / "d").rglob("*.csv"))) == 15
