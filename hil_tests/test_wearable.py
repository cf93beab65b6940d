"""Wearable: falls alerted, everyday life not, sensor faults reported (register level).

The board reads the simulated MPU6050 (accelerometer +-8 g, gyroscope +-1000 deg/s) through its
real driver, runs the fall model on every window and its `fall_alert` action (LED + ALERT frame,
30 s hold-off).

Pass:
- a day: 8 simulated hours of daily life (rest, walks, runs, sitting and lying down, gestures)
  with 6 falls: every fall alerted within DEADLINE_S of its impact, exactly one alert per fall,
  0 false alerts (an alert with no fall impact in the DEADLINE_S before it), no window lost;
- sensor faults (a stuck gyroscope, a dropout of the whole IMU) while walking: each reported as
  that kind, no alert, no window lost.
"""

from __future__ import annotations

import numpy as np
import pytest

from hil_tests.domains import DomainBench, domain_of, ensure_domain_run

DEADLINE_S = 5.0
DAY_H = 8.0
FALLS = 6


@pytest.fixture(scope="module")
def wear(request, bench) -> DomainBench:
    given = request.config.getoption("--hil-run")
    if given:
        import json
        from pathlib import Path

        run = Path(given)
        if domain_of(json.loads((run / "config.json").read_text())) != "wearable":
            pytest.skip("the run under test is not a wearable run")
    else:
        run = ensure_domain_run("wearable")
    if not bench.virtual:
        pytest.skip("register-level sensor input needs the virtual board's simulated chips")
    return DomainBench("wearable", run, bench.out)


def _alerts(wear, res) -> np.ndarray:
    return np.array([wear.window_end_s(res, a["window"]) for a in res.alerts])


def test_day_of_life_every_fall_alerted_no_false_alert(wear, hil) -> None:
    from trainer.twins import WearableIMU, daily_life

    twin = WearableIMU(seed=11)
    for event in daily_life(seed=11, hours=DAY_H, falls=FALLS):
        twin.schedule(*event)
    with wear.link() as conn:
        res = wear.session(conn).run(twin, DAY_H * 3600.0, timeline_every=50)
    hil.record(res, "day")
    assert res.error == "", res.error
    s = res.summary()
    assert s["lost"] == 0, s
    alerts = _alerts(wear, res)
    falls = np.array(twin.falls)
    latency = []
    for f in falls:
        hits = alerts[(alerts >= f) & (alerts <= f + DEADLINE_S)]
        assert len(hits) == 1, f"fall at {f:.1f} s: alerts {hits} (one within {DEADLINE_S} s)"
        latency.append(float(hits[0] - f))
    false = [a for a in alerts if not ((falls <= a) & (a <= falls + DEADLINE_S)).any()]
    assert false == [], f"false alerts at {false} s"
    node = hil.request.node
    node.user_properties += [("falls", len(falls)), ("alerts", len(alerts)),
                             ("false_alerts", len(false)),
                             ("alert_latency_s_max", max(latency)),
                             ("hours", DAY_H), ("windows", s["windows"])]


@pytest.mark.parametrize("kind,channels", [("stuck", (3, 4, 5)), ("dropout", None)])
def test_sensor_faults_reported_not_alerted(wear, hil, kind: str, channels) -> None:
    from trainer.twins import WearableIMU

    twin = WearableIMU(seed=5, activity="walk")
    twin.sensor_fault(kind, at_s=20.0, duration_s=4.0, channels=channels)
    twin.schedule(40.0, "activity", "rest")
    twin.schedule(41.0, "sit_down")
    with wear.link() as conn:
        res = wear.session(conn).run(twin, 70.0)
    hil.record(res, kind)
    assert res.error == "", res.error
    s = res.summary()
    assert {f["kind"] for f in res.sensor_faults} == {kind}, res.sensor_faults
    assert s["alerts"] == 0 and s["lost"] == 0, s
    assert s["skipped_sensor_fault"] > 0, s
