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


def wearable_line(out: Path) -> dict:
    from trainer.twins import WearableIMU

    run = _train("wearable", out, 20)
    twin = WearableIMU(seed=3, activity="walk")
    for at, kind, arg in [(30.0, "fall", 20.0), (60.0, "activity", "rest"), (61.0, "sit_down", None),
                          (90.0, "activity", "walk"), (95.0, "gesture", None),
                          (130.0, "fall", 15.0), (160.0, "activity", "rest")]:
        twin.schedule(at, kind, arg)
    res = _session(run, out / "board-wearable", twin, 180.0)
    ends = [(a["window"] * res.stride + res.window) / res.sample_rate for a in res.alerts]
    hit = [next((e - f for e in ends if f <= e <= f + 5.0), None) for f in twin.falls]
    false = [e for e in ends if not any(f <= e <= f + 5.0 for f in twin.falls)]
    return {"domain": "wearable", "falls": len(twin.falls),
            "falls_alerted": sum(h is not None for h in hit), "false_alerts": len(false),
            "alert_latency_s_max": round(max((h for h in hit if h is not None), default=-1), 2),
            "windows": res.summary()["windows"], "lost": res.summary()["lost"],
            "simulated_s": 180.0, "error": res.error}


def building_line(out: Path) -> dict:
    from trainer.twins import Room
    from trainer.twins.environment import office_occupancy

    run = _train("environment", out, 20)
    room = Room(seed=4, outdoor_c=3.0, setpoint=21.0, start_hour=6.0)
    rng = np.random.default_rng(4)
    log: list[tuple[int, float, float]] = []  # occupants (0 around the window), temp, CO2

    def office(r: Room, batch: int) -> None:
        if int(round(r.t)) % 600 == 0:
            r.occupants = office_occupancy(r.hour, rng, r.occupants)
        r.window_open = 10.0 <= r.hour < 10.75
        log.append((r.occupants if not 10.0 <= r.hour < 11.5 else 0, r.temp, r.co2))

    res = _session(run, out / "board-environment", room, 8 * 3600.0, office)
    a = np.array(log)
    occ = a[:, 0] > 0
    window = [(x["window"] * res.stride + res.window) / res.sample_rate / 3600 + 6.0
              for x in res.alerts if x["action"] == "window_alert"]
    return {"domain": "environment", "hours": 8.0,
            "time_in_band": round(float(np.mean((a[occ, 1] >= 20) & (a[occ, 1] <= 24))), 3),
            "co2_max_ppm": round(float(a[occ, 2].max())), "switchings": len(res.outputs),
            "window_detect_min": round((window[0] - 10.0) * 60) if window else None,
            "windows": res.summary()["windows"], "lost": res.summary()["lost"], "error": res.error}


def describe(line: dict) -> str:
    if line["domain"] == "wearable":
        return (f"wearable: {line['falls_alerted']}/{line['falls']} falls alerted (latency <= "
                f"{line['alert_latency_s_max']} s), {line['false_alerts']} false alerts over "
                f"{line['simulated_s']:.0f} s of daily life, {line['windows']} windows, "
                f"lost {line['lost']}")
    return (f"environment: {line['hours']:.0f} h office day, occupied time in 20-24 degC "
            f"(outside the window's hour and its recovery) "
            f"{line['time_in_band']:.1%}, CO2 max {line['co2_max_ppm']} ppm, "
            f"{line['switchings']} switchings, window left open detected after "
            f"{line['window_detect_min']} min, lost {line['lost']}")
