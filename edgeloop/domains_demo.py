"""`make demo`'s line per domain: a short closed loop of the wearable and the building, each
trained from its example config and twin, deployed in HIL mode with samples entering through
its sensor list's simulated chips, its twin answering the board's outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from edgeloop.link.framelink import FrameLink
from edgeloop.link.hilboard import deploy_virtual, hil_config
from edgeloop.link.session import HilSession
from edgeloop.resources import example_config

HIL_OPTIONS = {"wearable": {"spike_counts": 40000},
               "environment": {"spike_counts": 32767, "stuck_samples": 8}}


def _train(name: str, out: Path, per_class: int) -> Path:
    from trainer.config import load_config
    from trainer.train import train
    from trainer.twins import synthesize, write_csv_dataset

    data = write_csv_dataset(synthesize(name, per_class=per_class, seed=21), out / f"{name}-data")
    run = out / f"{name}-run"
    train(data, run, load_config(example_config(name)), epochs=40, progress=False)
    return run


def _session(run: Path, board: Path, twin: Any, seconds: float, on_batch=None):
    from converters import convert_tflite
    from edgeloop.boards import get_board
    from edgeloop.link.virtual import VirtualTransport

    cfg = json.loads((run / "config.json").read_text())
    profile = get_board(cfg.get("board", "virtual"))
    if not (run / "model.elb").is_file():
        (run / "model.elb").write_bytes(convert_tflite(
            (run / "model_int8.tflite").read_bytes(), heap_limit=profile.heap_bytes).bundle)
    name = "wearable" if "gx" in cfg["channels"] else "environment"
    root = deploy_virtual(run, board, hil_config(cfg, "sensors", **HIL_OPTIONS[name]),
                          profile.name)
    cpu = cfg["counts_per_unit"]
    with FrameLink.open(VirtualTransport(root, profile)) as conn:
        session = HilSession(conn, input_mode="sensors",
                             lsb_per_g=cpu if isinstance(cpu, list) else [cpu] * len(cfg["channels"]),
                             action_names=[a["name"] for a in cfg.get("actions", ())])
        return session.run(twin, seconds, on_batch=on_batch)


DEADLINE_S = 5.0  # a fall counts as alerted by an alert whose window ends within this
WINDOW_OPEN_H = (10.0, 10.75)  # the building's day: the window left open 10:00-10:45
START_HOUR = 6.0


def _end_s(res: Any, window: int) -> float:
    return (window * res.stride + res.window) / res.sample_rate


def wearable_figures(res: Any, falls: list[float], simulated_s: float) -> dict:
    """The wearable line from a session (res.alerts) and the twin's fall impacts (s): each fall
    alerted by the first alert within DEADLINE_S after it; any other alert is a false one."""
    ends = [_end_s(res, a["window"]) for a in res.alerts]
    hit = [next((e - f for e in ends if f <= e <= f + DEADLINE_S), None) for f in falls]
    false = [e for e in ends if not any(f <= e <= f + DEADLINE_S for f in falls)]
    latencies = [h for h in hit if h is not None]
    s = res.summary()
    return {"domain": "wearable", "falls": len(falls),
            "falls_alerted": len(latencies), "false_alerts": len(false),
            "alert_latency_s_max": round(max(latencies), 2) if latencies else None,
            "windows": s["windows"], "lost": s["lost"],
            "simulated_s": float(simulated_s), "error": res.error}


def building_figures(res: Any, log: list[tuple[int, float, float]], hours: float) -> dict:
    """The building line from a session and the twin's log per batch (occupants, counted 0
    during the window's hour and its recovery; temperature; CO2): comfort while occupied, the
    outputs' switchings, and how long after it opened the window-open alert came (an alert
    before it opened, or after it closed, is a false one)."""
    a = np.array(log, dtype=np.float64).reshape(-1, 3)
    occ = a[:, 0] > 0
    opened, closed = WINDOW_OPEN_H
    at_h = [_end_s(res, x["window"]) / 3600 + START_HOUR
            for x in res.alerts if x["action"] == "window_alert"]
    during = [h for h in at_h if opened <= h <= closed]
    return {"domain": "environment", "hours": float(hours),
            "time_in_band": round(float(np.mean((a[occ, 1] >= 20) & (a[occ, 1] <= 24))), 3)
            if occ.any() else None,
            "co2_max_ppm": round(float(a[occ, 2].max())) if occ.any() else None,
            "switchings": len(res.outputs),
            "window_detect_min": round((during[0] - opened) * 60) if during else None,
            "false_window_alerts": len(at_h) - len(during[:1]),
            "heater_faults": len(res.actuator_faults),
            "windows": res.summary()["windows"], "lost": res.summary()["lost"],
            "error": res.error}


def verified(line: dict) -> bool:
    """The line's pass criteria (what `make demo` calls verified)."""
    if line.get("error") or line.get("lost"):
        return False
    if line["domain"] == "wearable":
        return line["falls_alerted"] == line["falls"] and line["false_alerts"] == 0
    return (line["window_detect_min"] is not None and line["false_window_alerts"] == 0
            and line["heater_faults"] == 0 and (line["co2_max_ppm"] or 0) < 1500
            and (line["time_in_band"] or 0) >= 0.8)


def wearable_line(out: Path) -> dict:
    from trainer.twins import WearableIMU

    run = _train("wearable", out, 20)
    twin = WearableIMU(seed=3, activity="walk")
    for at, kind, arg in [(30.0, "fall", 20.0), (60.0, "activity", "rest"), (61.0, "sit_down", None),
                          (90.0, "activity", "walk"), (95.0, "gesture", None),
                          (130.0, "fall", 15.0), (160.0, "activity", "rest")]:
        twin.schedule(at, kind, arg)
    res = _session(run, out / "board-wearable", twin, 180.0)
    return wearable_figures(res, list(twin.falls), 180.0)


def building_line(out: Path) -> dict:
    from trainer.twins import Room
    from trainer.twins.environment import office_occupancy

    run = _train("environment", out, 20)
    room = Room(seed=4, outdoor_c=3.0, setpoint=21.0, start_hour=START_HOUR)
    rng = np.random.default_rng(4)
    log: list[tuple[int, float, float]] = []  # occupants (0 around the window), temp, CO2
    opened, closed = WINDOW_OPEN_H

    def office(r: Room, batch: int) -> None:
        if int(round(r.t)) % 600 == 0:
            r.occupants = office_occupancy(r.hour, rng, r.occupants)
        r.window_open = opened <= r.hour < closed
        log.append((r.occupants if not opened <= r.hour < closed + 0.75 else 0, r.temp, r.co2))

    res = _session(run, out / "board-environment", room, 8 * 3600.0, office)
    return building_figures(res, log, 8.0)


def describe(line: dict) -> str:
    state = "" if verified(line) else " -- NOT verified" + (f": {line['error']}" if line.get(
        "error") else "")
    if line["domain"] == "wearable":
        lat = line["alert_latency_s_max"]
        return (f"wearable: {line['falls_alerted']}/{line['falls']} falls alerted"
                + (f" (latency <= {lat:.2f} s)" if lat is not None else "")
                + f", {line['false_alerts']} false alerts over {line['simulated_s']:.0f} s of "
                f"daily life, {line['windows']} windows, lost {line['lost']}{state}")
    band = line["time_in_band"]
    found = line["window_detect_min"]
    return (f"environment: {line['hours']:.0f} h office day, occupied time in 20-24 degC "
            f"(outside the window's hour and its recovery) "
            + (f"{band:.1%}" if band is not None else "n/a")
            + f", CO2 max {line['co2_max_ppm']} ppm, {line['switchings']} switchings, window "
            + (f"left open detected after {found} min" if found is not None else
               "left open NOT detected")
            + f", {line['false_window_alerts']} false window alerts, heater faults "
            f"{line['heater_faults']}, lost {line['lost']}{state}")
