"""The standalone app runs the run's [[actions]] on the virtual board, for the wearable and the
building: the trained run (the HIL bench's, cached) deployed as `edgeloop deploy --board
virtual` does, its twin's recording played through the simulated chips of its sensor list, the
actions' pins the virtual board's recording pins.

- wearable (walking, a fall at 20 s, lying, getting up, resting): one `alert` event for the
  fall, within 5 s of it, none before it; the LED pin switched on for it;
- building (a 12 h day from 06:00, the window open 14:00-14:30): heating and ventilation
  switch (each `output` event a pin switching, never more often than their minimum on/off
  times allow) and the window is alerted on while it is open, not before.

On a 32-bit board (EDGELOOP_MICROPYTHON=micropython-esp32sem, objects as small as on an ESP32)
both also run in the plain `esp32` profile's heap.
"""

from __future__ import annotations

import json

import pytest

from edgeloop.boards import get_board
from edgeloop.link import deploy as dp
from edgeloop.link.virtual import VirtualTransport
from edgeloop.twins import domain_answer, domain_recording
from edgeloop.vboard import app_profile, identify


@pytest.fixture(scope="module")
def domain_run():
    from hil_tests.domains import ensure_domain_run

    return ensure_domain_run


def _run_app(read_status, tmp_path, run, profile_name: str) -> tuple[dict, list[dict], list, dict]:
    profile = get_board(profile_name)
    board = VirtualTransport(tmp_path / "vb", app_profile(profile))  # as `edgeloop monitor`
    plan = dp.plan_deploy(run, profile, virtual=True, sim_world=domain_recording,
                          sim_answer=domain_answer)
    cfg = json.loads(plan.files["config.json"])
    cfg["sensor"]["sim_clock"] = "replay"  # the recording as fast as the app drains it
    plan.files["config.json"] = json.dumps(cfg).encode()
    assert dp.deploy(board, plan, verify=False).copied
    lines = read_status(board)
    start, end = lines[0], lines[-1]
    assert start["event"] == "start" and end["event"] == "end", (start, end)
    assert start["actions"] == [a["name"] for a in cfg["actions"]]
    status = [x for x in lines if "w" in x and "event" not in x]
    events = [x for x in lines if x.get("event") in ("alert", "output", "stop", "actuator_fault")]
    return cfg, status, events, end


def _alert_oracle(cfg: dict, action: dict, status: list[dict]) -> list[int]:
    """The windows an alert action must alert on, from the status lines' class and top score
    (actions.py's rule: N of M positive windows, one alert per episode after hold_off_s)."""
    dec = cfg["decision"]
    tq = round(action.get("threshold", dec.get("threshold", 0.5)) / dec["output_scale"]) \
        + dec["output_zero_point"]
    n, m = action.get("n", dec.get("n", 1)), action.get("m", dec.get("m", 1))
    hold = action.get("hold_off_s", 0) * 1000
    hist: list[bool] = []
    last, alerted, out = None, 0, []
    for s in status:
        hist.append(s["cls"] in action["classes"] and s["score"] >= tq)
        t = (cfg["window"] + (s["w"] - 1) * cfg["stride"]) * 1000 / cfg["sample_rate"]
        if sum(hist[-m:]) >= n:
            if alerted == 0 or t - last >= hold:
                alerted += 1
                out.append(s["w"])
            last = t
    return out


def _profiles(declared: str) -> list:
    small = pytest.param("esp32", marks=pytest.mark.skipif(
        identify().word_bits != 32, reason="the esp32 profile's heap is judged on a 32-bit board "
        "(EDGELOOP_MICROPYTHON=micropython-esp32sem): this port's objects are ~1.3x larger"))
    return [declared, small]


@pytest.mark.parametrize("profile", _profiles("esp32s3"))
def test_wearable_app_alerts_once_on_the_fall(read_status, tmp_path, domain_run, profile) -> None:
    cfg, status, events, end = _run_app(read_status, tmp_path, domain_run("wearable"), profile)
    rate, stride, window = cfg["sample_rate"], cfg["stride"], cfg["window"]
    alerts = [e for e in events if e["event"] == "alert"]
    assert [e["w"] for e in alerts] == _alert_oracle(cfg, cfg["actions"][0], status)
    assert len(alerts) == 1, events
    t_alert = alerts[0]["t_ms"] / 1000
    assert t_alert == ((alerts[0]["w"] - 1) * stride + window) / rate  # the window's end
    assert 20.0 <= t_alert <= 25.0, alerts  # the fall is at 20 s (edgeloop.twins)
    assert alerts[0]["action"] == "fall_alert"
    # the LED: on for the fall, off once the hold-off passed with no fall window
    assert end["actuations"] == [2] and end["alerts"] == 1
    on = [s for s in status if s["out"] == [1]]
    assert on and all(20.0 <= ((s["w"] - 1) * stride + window) / rate <= 60 for s in on)
    assert min(s["free"] for s in status) > 4096, min(s["free"] for s in status)


@pytest.mark.parametrize("profile", _profiles("esp32c3"))
def test_building_app_heats_ventilates_and_alerts_on_the_window(read_status, tmp_path,
                                                                domain_run, profile) -> None:
    cfg, status, events, end = _run_app(read_status, tmp_path, domain_run("environment"),
                                        profile)
    names = [a["name"] for a in cfg["actions"]]
    outputs = [e for e in events if e["event"] == "output"]
    by = {n: [e for e in outputs if e["action"] == n] for n in names}
    assert by["heating"] and by["ventilation"], events
    assert end["actuations"] == [len(by[n]) for n in names[:2]] + [end["actuations"][2]]
    for a in cfg["actions"][:2]:  # never faster than min on / min off
        ev = by[a["name"]]
        for prev, nxt in zip(ev, ev[1:], strict=False):
            least = a["min_on_s"] if prev["level"] else a["min_off_s"]
            assert nxt["t_ms"] - prev["t_ms"] >= least * 1000, (a["name"], prev, nxt)
    alerts = [e for e in events if e["event"] == "alert"]
    assert [e["w"] for e in alerts] == _alert_oracle(cfg, cfg["actions"][2], status)
    hour = [6.0 + e["t_ms"] / 3.6e6 for e in alerts]
    assert [h for h in hour if 14.0 <= h <= 14.75], hour  # the window, open 14:00-14:30
    assert not [e for e in events if e["event"] == "actuator_fault"], events
    # each status line carries every output's level as its output events left it
    level = [0] * len(names)
    by_w = {}
    for e in outputs:
        by_w.setdefault(e["w"], []).append(e)
    for s in status:
        for e in by_w.get(s["w"], ()):
            level[names.index(e["action"])] = e["level"]
        assert s["out"][:2] == level[:2], (s, level)
    assert min(s["free"] for s in status) > 4096, min(s["free"] for s in status)
