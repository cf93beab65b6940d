"""Fault detection in the closed loop: a bearing fault injected at a known time is acted on.

Pass, for every seed: no stop before the fault; a stop command within DEADLINE_S of the
fault's onset; the machine never reaches breakdown (which would come ~TTF_S after the onset);
every window answered. Once on the frames link, and once with the samples entering at register
level through the simulated MPU6050 and the real driver.
"""

from __future__ import annotations

import pytest

FAULT_AT_S = 20.0
TTF_S = 60.0  # time from fault onset to breakdown when nothing stops the machine
DEADLINE_S = 15.0
RUN_S = FAULT_AT_S + DEADLINE_S + 5.0


def _check(res, twin) -> None:
    assert res.error == "", res.error
    s = res.summary()
    assert s["false_stops"] == 0, s
    assert s["detection_latency_s"] is not None, f"no stop within the run: {s}"
    assert s["detection_latency_s"] <= DEADLINE_S, s
    assert not twin.broken and twin.health > 0.0 and s["breakdowns"] == 0, s
    assert not twin.running, "the stop command must stop the twin"
    assert s["lost"] == 0, s


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_bearing_fault_stops_before_breakdown(board, hil, seed: int) -> None:
    from trainer.twins import RotatingMachine

    twin = RotatingMachine(seed=seed, time_to_failure_s=TTF_S)
    res = hil.run(board, twin, RUN_S, fault_at_s=FAULT_AT_S)
    _check(res, twin)


def test_bearing_fault_register_level(i2c_board, hil) -> None:
    from trainer.twins import RotatingMachine

    twin = RotatingMachine(seed=7, time_to_failure_s=TTF_S)
    res = hil.run(i2c_board, twin, RUN_S, fault_at_s=FAULT_AT_S, input_mode="i2c")
    _check(res, twin)
