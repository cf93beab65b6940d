"""The board's named actions (firmware_micropython/actions.py) on the virtual board: hysteresis
and minimum on/off times, class overrides, one alert per episode, a stop that latches, an
actuator fault only when nothing explains it."""

from __future__ import annotations

import json

import pytest

from trainer.config import parse_config
from trainer.errors import TrainerError

SCRIPT = """
import json
from array import array
from actions import Actions
from simhw.pins import Pin
cfgs = json.loads({cfgs!r})
steps = json.loads({steps!r})
pins = {{}}
def make(p):
    if p is None:
        return None
    pins[p] = Pin(p, Pin.OUT)
    return pins[p]
acts = Actions(cfgs, {{"n": 1, "m": 1, "threshold": 0.5}}, 3, 1 / 256, -128, ["t", "co2"],
               [100, 1], make)
out = array('b', [0, 0, 0])
sample = array('h', [0, 0])
log = []
for t_s, cls, temp, co2 in steps:
    for i in range(3):
        out[i] = 127 if i == cls else -128
    sample[0] = int(temp * 100)
    sample[1] = co2
    acts.update(out, sample, 0, t_s * 1000)
    for i in range(acts.n):
        e = acts.events[i]
        log.append([t_s, e[0], acts.items[e[1]].name, e[2]])
print(json.dumps({{"log": log, "pins": {{str(k): v.value() for k, v in pins.items()}},
                   "switchings": [a.switchings for a in acts.items]}}))
"""

HEAT = {"kind": "control", "name": "heating", "channel": "t", "on_below": 20.5,
        "off_above": 21.5, "min_on_s": 600, "min_off_s": 600, "force_off": [2],
        "fault_after_s": 1800, "fault_min_change": 0.1, "pin": 25}


def run(board, cfgs, steps) -> dict:
    code = SCRIPT.format(cfgs=json.dumps(cfgs), steps=json.dumps(steps))
    return json.loads(board.run(code).check("actions script").stdout)


def test_heating_hysteresis_and_minimum_times(fw_board) -> None:
    temps = [20.0, 20.8, 21.6, 21.0, 20.4, 20.3, 21.7, 21.8, 20.0]
    steps = [[120 * i, 0, t, 500] for i, t in enumerate(temps)]
    res = run(fw_board, [HEAT], steps)
    # on at once (cold); 21.6 at 240 s is within the 600 s minimum on time: stays on; off at
    # 720 s (21.7 > 21.5); 20.0 at 960 s is within the 600 s minimum off time: stays off
    assert res["log"] == [[0, 3, "heating", 1], [720, 3, "heating", 0]], res["log"]
    assert res["pins"] == {"25": 0} and res["switchings"] == [2]


def test_window_class_forces_heating_off_and_explains_the_cold(fw_board) -> None:
    steps = [[0, 0, 20.0, 500], [700, 2, 19.0, 500], [1400, 2, 18.5, 500], [2100, 2, 18.0, 500],
             [2800, 0, 18.0, 500]]
    res = run(fw_board, [HEAT], steps)
    assert [e[1:] for e in res["log"]] == [[3, "heating", 1], [3, "heating", 0], [3, "heating", 1]]
    assert all(e[1] != 4 for e in res["log"])  # no heater fault: the window explains it


def test_failed_heater_is_reported_once(fw_board) -> None:
    steps = [[120 * i, 0, 20.4 - 0.01 * i, 500] for i in range(30)]
    res = run(fw_board, [HEAT], steps)
    faults = [e for e in res["log"] if e[1] == 4]
    assert faults == [[1800, 4, "heating", 1]], res["log"]


def test_ventilation_on_above_and_forced_by_occupancy(fw_board) -> None:
    vent = {"kind": "control", "name": "vent", "channel": "co2", "on_above": 900,
            "off_below": 650, "force_on": [1], "pin": 26}
    steps = [[0, 0, 21, 700], [60, 0, 21, 950], [120, 0, 21, 800], [180, 0, 21, 600],
             [240, 1, 21, 500], [300, 0, 21, 500]]
    res = run(fw_board, [vent], steps)
    assert [e[0::3] for e in res["log"]] == [[60, 1], [180, 0], [240, 1], [300, 0]]


def test_one_alert_per_episode_and_a_latched_stop(fw_board) -> None:
    alert = {"kind": "alert", "name": "fall", "classes": [2], "hold_off_s": 30, "pin": 2}
    stop = {"kind": "stop", "name": "stop", "classes": [1], "pin": 26}
    cls = [0, 2, 2, 2, 0, 0, 2, 0, 1, 0]
    t = [0, 10, 12, 14, 20, 50, 80, 90, 100, 110]
    res = run(fw_board, [alert, stop], [[t[i], c, 21, 500] for i, c in enumerate(cls)])
    alerts = [e[0] for e in res["log"] if e[1] == 2]
    assert alerts == [10, 80]  # 10, 12, 14 are one fall; 80 is 66 s after the last positive
    assert [e[0] for e in res["log"] if e[1] == 1] == [100]
    assert res["pins"]["26"] == 1  # the stop stays latched after class 0 returns


@pytest.mark.parametrize("body,msg", [
    ('kind = "blink"', "must be one of stop, alert, control"),
    ('kind = "control"\nchannel = "ax"\non_below = 1', "'ax' is not one of the channels"),
    ('kind = "control"\nchannel = "t"\non_below = 21\noff_above = 20', "must be >= on_below"),
    ('kind = "alert"\nclasses = ["jump"]', "'jump' is not one of labels.classes"),
    ('kind = "alert"\nclasses = ["a"]\non_below = 3', "is not a setting of a alert action"),
])
def test_bad_actions_say_what_and_where(body: str, msg: str) -> None:
    import tomllib

    text = ('[sensor]\nchannels = ["t"]\nsample_rate = 1\ncounts_per_unit = 100\n'
            '[window]\nsize = 16\n[features]\nchain = ["mean"]\n[labels]\nclasses = ["a", "b"]\n'
            '[[actions]]\n' + body)
    with pytest.raises(TrainerError) as exc:
        parse_config(tomllib.loads(text), "a.toml")
    assert msg in str(exc.value) and "a.toml: [actions.0" in str(exc.value)
