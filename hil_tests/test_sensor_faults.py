"""Sensor faults produce a sensor-fault report, not a machine stop, and no crash.

Pass, per fault kind: the board reports that kind (and only it) for the windows touching the
fault interval, keeps them out of the decision, never sends a stop, answers every window, and
is still alive and classifying normally after the fault.
"""

from __future__ import annotations

import pytest

AT_S, FOR_S, RUN_S = 8.0, 3.0, 18.0


@pytest.mark.parametrize("kind", ["nan", "dropout", "stuck", "spike"])
def test_sensor_fault_is_reported_not_stopped(board, hil, kind: str) -> None:
    from trainer.twins import RotatingMachine

    twin = RotatingMachine(seed=3, time_to_failure_s=60.0)
    twin.sensor_fault(kind, at_s=AT_S, duration_s=FOR_S)
    res = hil.run(board, twin, RUN_S)
    assert res.error == "", res.error
    s = res.summary()
    assert {f["kind"] for f in res.sensor_faults} == {kind}, res.sensor_faults
    assert s["stops"] == 0 and twin.running, s
    assert s["lost"] == 0, s
    skipped = [w for w in res.windows if w.status == "skipped"]
    assert skipped, "fault windows must be kept out of the decision"
    for w in skipped:  # only windows that overlap the fault interval
        start = (w.k * res.stride) / res.sample_rate
        assert w.t_end_s > AT_S and start < AT_S + FOR_S, w
    late = [w for w in res.windows if (w.k * res.stride) / res.sample_rate >= AT_S + FOR_S]
    assert late and all(w.status == "ok" and w.cls == 0 for w in late)
    assert res.pongs, "the board must still answer after the fault"
