"""Long run: no false stop over ten simulated hours of a healthy machine that drifts.

Pass: 10 simulated hours (36 million samples) of a healthy machine whose nominal speed drifts
+-12 % over hours, whose load follows a shift pattern (0.35..0.95, minutes to hours) and whose
temperature runs 22..68 C over the day (the accelerometer's zero-g offset drifts 0.5 mg/C per
axis and its sensitivity 0.02 %/C, as a MEMS part does): zero stop commands, zero lost windows,
the board alive at the end. The wall time is reported (summary.json `wall_s`).

Marked `long`: `make test` leaves it out; `edgeloop hil -k long` (or `pytest hil_tests -m long`)
runs it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from trainer.twins import RotatingMachine

HOURS = 10.0
OFFSET_G_PER_C = 0.0005 * np.array([1.0, -0.7, 0.4])  # zero-g offset tempco per axis
GAIN_PER_C = 0.0002


class WarmingMachine(RotatingMachine):
    """The rotating-machine twin with a temperature that moves its sensor's offset and gain."""

    temp_c = 22.0

    def _block(self, n: int) -> np.ndarray:
        x = super()._block(n)
        dt = self.temp_c - 25.0
        x *= 1.0 + GAIN_PER_C * dt
        x += OFFSET_G_PER_C * dt
        return x


def drift(tw: WarmingMachine, batch: int) -> None:
    t = tw.t
    hours = t / 3600.0
    # a day's temperature: warm-up over the first hours, a slow cycle on top
    tw.temp_c = 22.0 + 36.0 * (1.0 - math.exp(-hours / 1.5)) + 10.0 * math.sin(
        2 * math.pi * hours / 6.0)
    shift = 0.15 * math.sin(2 * math.pi * hours / 4.0)  # production shifts
    tw.load = min(0.95, max(0.35, 0.65 + shift + 0.15 * math.sin(2 * math.pi * t / 170.0)))
    tw.rpm_nominal = 1500.0 * (1.0 + 0.12 * math.sin(2 * math.pi * hours / 3.0 + 1.0))


@pytest.mark.long
def test_ten_hours_healthy_drifting_machine_is_never_stopped(board, hil) -> None:
    twin = WarmingMachine(seed=8, rpm=1500.0, load=0.65, time_to_failure_s=60.0)
    res = hil.run(board, twin, HOURS * 3600.0, on_batch=drift, timeline_every=64)
    assert res.error == "", res.error
    s = res.summary()
    print(f"long run: {HOURS:.0f} simulated h in {s['wall_s']:.0f} s wall "
          f"({HOURS * 3600 / max(s['wall_s'], 1e-9):.0f}x real time), {s['windows']} windows")
    assert s["stops"] == 0, s
    assert s["lost"] == 0 and s["answered"] == s["windows"], s
    assert twin.running
    assert res.pongs, "the board must still answer at the end"
