"""`make demo`'s line per domain (edgeloop/domains_demo.py): its figures come from the session's
alerts and outputs and the twin's ground truth, and its pass criteria hold them; checked here on
hand-made sessions (the demo's own runs are too slow for a test)."""

from __future__ import annotations

from edgeloop.domains_demo import (
    DEADLINE_S,
    START_HOUR,
    WINDOW_OPEN_H,
    building_figures,
    describe,
    verified,
    wearable_figures,
)
from edgeloop.link.results import SessionResult, WindowRecord


def _result(rate: float, window: int, stride: int, n: int) -> SessionResult:
    res = SessionResult(sample_rate=rate, window=window, stride=stride)
    res.windows = [WindowRecord(k=k, t_end_s=(k * stride + window) / rate, status="ok")
                   for k in range(n)]
    return res


def _window_ending_at(res: SessionResult, t_s: float) -> int:
    """The first window whose end is at or after t_s."""
    return -int(-(t_s * res.sample_rate - res.window) // res.stride)


def _end(res: SessionResult, k: int) -> float:
    return (k * res.stride + res.window) / res.sample_rate


def test_wearable_falls_alerted_latency_and_false_alerts() -> None:
    res = _result(50.0, 128, 32, 280)
    falls = [30.0, 130.0, 160.0]
    for t in (30.5, 131.2, 90.0):  # two falls alerted, one alert while walking
        res.alerts.append({"window": _window_ending_at(res, t), "t_s": t, "action": "fall_alert"})
    line = wearable_figures(res, falls, 180.0)
    assert line["falls"] == 3 and line["falls_alerted"] == 2 and line["false_alerts"] == 1
    assert line["alert_latency_s_max"] == round(_end(res, _window_ending_at(res, 131.2)) - 130, 2)
    assert 1.2 <= line["alert_latency_s_max"] < 1.2 + 0.64
    assert line["windows"] == 280 and line["lost"] == 0
    assert not verified(line) and "NOT verified" in describe(line)

    res.alerts = [a for a in res.alerts if a["t_s"] != 90.0]
    late = _window_ending_at(res, 160.0 + DEADLINE_S - 0.64)  # the last one inside the deadline
    res.alerts.append({"window": late, "t_s": _end(res, late), "action": "fall_alert"})
    line = wearable_figures(res, falls, 180.0)
    assert line["falls_alerted"] == 3 and line["false_alerts"] == 0
    assert verified(line), line
    lat = round(_end(res, late) - 160.0, 2)
    assert lat <= DEADLINE_S and line["alert_latency_s_max"] == lat
    assert describe(line).startswith(f"wearable: 3/3 falls alerted (latency <= {lat:.2f} s), 0 ")
    res.alerts.append({"window": late + 10, "t_s": 0, "action": "fall_alert"})  # past deadline
    assert wearable_figures(res, falls, 180.0)["false_alerts"] == 1


def test_wearable_without_any_alert_has_no_latency_figure() -> None:
    line = wearable_figures(_result(50.0, 128, 32, 10), [5.0], 10.0)
    assert line["alert_latency_s_max"] is None and line["falls_alerted"] == 0
    assert not verified(line) and "latency" not in describe(line)


def _room_log(hours: float, temp: float, co2: float) -> list[tuple[int, float, float]]:
    return [(2, temp, co2)] * int(hours * 60 / 8) + [(0, 15.0, 2000.0)] * 10  # empty: not judged


def test_building_window_detection_switchings_and_comfort() -> None:
    res = _result(1 / 60, 16, 2, 240)
    opened = WINDOW_OPEN_H[0]
    at = (opened - START_HOUR) * 3600 + 10 * 60  # 10 min after it opened (on the window grid)
    res.alerts.append({"window": _window_ending_at(res, at), "t_s": at, "action": "window_alert"})
    res.outputs += [{"window": 3, "t_s": 0, "action": "heating", "level": 1},
                    {"window": 40, "t_s": 0, "action": "heating", "level": 0}]
    line = building_figures(res, _room_log(8, 21.0, 900.0), 8.0)
    assert line["window_detect_min"] == 10 and line["false_window_alerts"] == 0
    assert line["switchings"] == 2 and line["heater_faults"] == 0
    assert line["time_in_band"] == 1.0 and line["co2_max_ppm"] == 900  # empty rows not judged
    assert verified(line), line
    assert "window left open detected after 10 min" in describe(line)

    early = (opened - START_HOUR) * 3600 - 3600  # an alert an hour before the window opened
    res.alerts.insert(0, {"window": _window_ending_at(res, early), "t_s": early,
                          "action": "window_alert"})
    res.actuator_faults.append({"window": 100, "t_s": 0, "action": "heating"})
    line = building_figures(res, _room_log(8, 19.0, 1600.0), 8.0)
    assert line["window_detect_min"] == 10 and line["false_window_alerts"] == 1
    assert line["heater_faults"] == 1 and line["time_in_band"] == 0.0
    assert not verified(line)


def test_building_window_never_detected() -> None:
    line = building_figures(_result(1 / 60, 16, 2, 240), _room_log(8, 21.0, 800.0), 8.0)
    assert line["window_detect_min"] is None and not verified(line)
    assert "NOT detected" in describe(line)
