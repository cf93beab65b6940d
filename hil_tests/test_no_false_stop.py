"""No false stop over a long healthy run with rpm and load drift.

Pass: ten simulated minutes of a healthy machine whose load swings between 0.35 and 0.95 and
whose nominal speed drifts by +-12 % (on top of the twin's own random rpm drift): zero stop
commands, zero lost windows.
"""

from __future__ import annotations

import math

RUN_S = 600.0


def test_healthy_drifting_machine_is_never_stopped(board, hil) -> None:
    from trainer.twins import RotatingMachine

    twin = RotatingMachine(seed=5, rpm=1500.0, load=0.65, time_to_failure_s=60.0)

    def drift(tw, batch: int) -> None:
        t = tw.t
        tw.load = 0.65 + 0.30 * math.sin(2 * math.pi * t / 170.0)
        tw.rpm_nominal = 1500.0 * (1.0 + 0.12 * math.sin(2 * math.pi * t / 230.0 + 1.0))

    res = hil.run(board, twin, RUN_S, on_batch=drift, timeline_every=4)
    assert res.error == "", res.error
    s = res.summary()
    assert s["stops"] == 0, s
    assert s["lost"] == 0 and s["answered"] == s["windows"], s
    assert twin.running
