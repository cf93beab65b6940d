"""The sensor twins the CLI hands to the board link (edgeloop.link knows only their interface).

The virtual board's standalone app plays a recording through its simulated sensor; the demo
and the HIL bench run twins live against the board. The twins themselves live in trainer.twins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from edgeloop.errors import EdgeLoopError


def rotating_machine(seed: int = 0, **kw: Any) -> Any:
    """The rotating-machine twin (trainer.twins.RotatingMachine)."""
    from trainer.twins import RotatingMachine

    return RotatingMachine(seed=seed, **kw)


class TwinRecording(bytes):
    """A simulated sensor's sample file that knows the twin's truth: `truth` lists the
    (first sample, state) of each stretch the twin spent in one state. Deploy puts it beside the
    samples as samples.truth.json, so field windows pulled from the virtual board carry the
    state that produced them (`edgeloop label --from-twin`)."""

    truth: list[tuple[int, str]]

    def __new__(cls, data: bytes, truth: list[tuple[int, str]]) -> TwinRecording:
        obj = super().__new__(cls, data)
        obj.truth = truth
        return obj


def stepped(twin: Any, n: int, state: Callable[[], str] | None = None) -> tuple[np.ndarray, list]:
    """n samples from a twin with the truth: (samples, [(first sample, state)...]). The state is
    read after each of the twin's own blocks (`twin.label` unless `state` is given)."""
    get = state or (lambda: str(twin.label))
    block = int(getattr(twin, "block", 64)) or 64
    parts, truth, done = [], [], 0
    while done < n:
        k = min(block, n - done)
        parts.append(twin.step(k))
        lab = get()
        if not truth or truth[-1][1] != lab:
            truth.append((done, lab))
        done += k
    return (np.concatenate(parts) if parts else np.zeros((0, len(twin.channels)))), truth


def recording(samples: np.ndarray, truth: list, units: Any) -> TwinRecording:
    """The samples as the simulated sensors' file, with their truth."""
    from edgeloop.link.deploy import sim_samples_bytes

    rec = TwinRecording(sim_samples_bytes(samples, units), truth)
    rec.channels = samples.shape[1]
    return rec


def machine_recording(
    units: float, sample_rate: float = 1000.0, seconds: float = 20.0, fault_at_s: float = 10.0
) -> TwinRecording:
    """The rotating-machine twin, healthy then with a bearing fault, as the simulated sensor's
    sample file (seeded): what `edgeloop deploy --board virtual` gives the standalone app."""
    twin = rotating_machine(seed=0, sample_rate=sample_rate)
    twin.inject_fault("bearing", at_s=fault_at_s)
    x, truth = stepped(twin, int(seconds * sample_rate))
    return recording(x, truth, units)


def domain_recording(cfg: dict, seed: int = 0) -> bytes | TwinRecording:
    """The run's twin as the virtual board's sample file, int16 in the run's counts (all
    channels, in order), chosen by the channels: a machine (healthy, then a bearing fault), a
    wearable (walking, a fall, lying, getting up, resting) or a room (a day, a window opened)."""
    channels = list(cfg.get("channels") or [])
    cpu = cfg.get("counts_per_unit", 1)
    cpu = np.asarray(cpu if isinstance(cpu, list) else [cpu] * len(channels), dtype=np.float64)
    rate = float(cfg.get("sample_rate", 1000))
    if set(channels) <= {"ax", "ay", "az"}:
        from trainer.twins import RotatingMachine

        twin = RotatingMachine(seed=seed, sample_rate=rate)
        twin.inject_fault("bearing", at_s=10.0)
        x, truth = stepped(twin, int(20 * rate))
        full = ("ax", "ay", "az")
    elif set(channels) <= {"ax", "ay", "az", "gx", "gy", "gz"}:
        from trainer.twins import WearableIMU

        twin = WearableIMU(seed=seed, sample_rate=rate, activity="walk")
        twin.schedule(20.0, "fall", 15.0)
        twin.schedule(45.0, "activity", "rest")
        twin.schedule(45.5, "sit_down")
        x = twin.step(int(60 * rate))
        truth = None  # the wearable twin tells no state per sample (activity + fall events)
        full = WearableIMU.channels
    elif set(channels) <= {"temperature", "humidity", "co2"}:
        from trainer.twins import Room
        from trainer.twins.environment import office_occupancy

        # a room the board's outputs answer (sensor.sim_answer) is recorded with nobody
        # controlling it; otherwise its own thermostat runs it, as in the training recordings
        answered = bool(cfg.get("sensor", {}).get("sim_answer"))
        room = Room(seed=seed, sample_rate=rate, auto=not answered, start_hour=6.0)
        occ = np.random.default_rng([seed, 5])
        parts, truth = [], []
        for i in range(int(12 * 3600 * rate)):
            if i % 10 == 0:
                room.occupants = office_occupancy(room.hour, occ, room.occupants)
            room.window_open = 14.0 <= room.hour < 14.5
            parts.append(room.step(1))
            if not truth or truth[-1][1] != room.label:
                truth.append((i, room.label))
        x = np.concatenate(parts)
        full = Room.channels
    else:
        raise EdgeLoopError(f"no twin plays channels {channels} on the virtual board; give the "
                          "simulated sensor a sample file (config sensor.sim)")
    x = x[:, [list(full).index(c) for c in channels]]
    if truth is None:
        from edgeloop.link.deploy import sim_samples_bytes

        return sim_samples_bytes(x, cpu)
    return recording(x, truth, cpu)


def domain_answer(cfg: dict) -> dict | None:
    """How the virtual board's room answers the standalone app's outputs (config.json
    sensor.sim_answer, run by firmware_micropython/simhw/answer.py): the run's heating control
    (on_below on temperature) warms the air through the room twin's two thermal nodes, its
    ventilation control (on_above on CO2) pulls CO2 to the outdoor level; the constants are the
    twin's (trainer/twins/environment.py). None for a run that is not a room with such outputs."""
    channels = list(cfg.get("channels") or [])
    if not channels or not set(channels) <= {"temperature", "humidity", "co2"}:
        return None
    from trainer.twins import environment as room

    cpu = cfg.get("counts_per_unit", 1)
    cpu = cpu if isinstance(cpu, list) else [cpu] * len(channels)
    answer: dict = {"period_s": 1.0 / float(cfg.get("sample_rate", 1 / 60))}
    for a in cfg.get("actions") or ():
        if a.get("kind") != "control" or a.get("pin") is None:
            continue
        ch = a.get("channel")
        if ch == "temperature" and "on_below" in a and "heat" not in answer:
            answer["heat"] = {
                "pin": a["pin"], "active_high": a.get("active_high", True),
                "channel": channels.index(ch), "cpu": float(cpu[channels.index(ch)]),
                "watts": room.HEATER_W, "c_air": room.C_AIR, "c_mass": room.C_MASS,
                "h_am": room.H_AM, "ua_w_k": room.UA + room.RHO_CP_V * room.N_INFILTRATION,
                "substep_s": room.SUBSTEP_S,
                "rh_channel": channels.index("humidity") if "humidity" in channels else -1}
        elif ch == "co2" and "on_above" in a and "vent" not in answer:
            answer["vent"] = {
                "pin": a["pin"], "active_high": a.get("active_high", True),
                "channel": channels.index(ch), "cpu": float(cpu[channels.index(ch)]),
                "n_vent": room.N_VENT, "n0": room.N_INFILTRATION, "outdoor": room.CO2_OUT}
    return answer if len(answer) > 1 else None
