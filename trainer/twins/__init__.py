"""Simulated sensors ("twins"), deterministic from a seed, importable without TensorFlow.

Streaming API (what the HIL bench drives in a closed loop)::

    from trainer.twins import RotatingMachine, to_counts
    twin = RotatingMachine(seed=3, sample_rate=1000.0, rpm=1500.0, time_to_failure_s=120.0)
    twin.inject_fault("bearing", at_s=20.0)  # imbalance | misalignment | bearing | looseness
    while not twin.broken:
        x = twin.step(128)         # np.ndarray [128, 3] float64 in g (ax, ay, az; az has +1 g)
        counts = to_counts(x, 2048)  # int16 counts as an MPU6050 at +-16 g reports them
        ...                        # stream counts to the board, read its decision
        if board_said_stop:
            twin.stop()            # spin down (~2 s) and freeze the degradation
    twin.t, twin.health, twin.broken, twin.running, twin.rpm, twin.load, twin.label
    twin.start(); twin.repair()    # run again after a stop; maintenance (fault cleared)

- Operating point: rpm wanders (rpm_drift, relative std), load too if load_drift > 0; both
  stay in the range the example dataset covers (1200-1800 rpm, load 0.3-1.0).
- Variants: `RotatingMachine(variant="plant_b")` (or twin `rotating_machine_b`,
  RotatingMachineB) is another site's machine: 2400-3200 rpm, its structural resonance at
  110-150 Hz, a 0.05-0.09 g noise floor (trainer.twins.rotating.VARIANTS).
- Time is simulated: `twin.t` is the time of the next sample; nothing sleeps.
- Samples come from fixed internal blocks (64 samples for the machine), so the stream does
  not depend on how step() calls are chunked, and the same seed gives the same stream.
  Commands (inject_fault, stop, sensor_fault) act from the next block generated: within one
  block (64 ms at 1 kHz) of the call.
- Degradation: once a fault is active on a running machine, `health` falls from 1.0 at an
  accelerating rate and reaches 0.0 after about `time_to_failure_s`; then `broken` is True and
  the machine seizes. The fault's signature grows as health falls (severity 0.4 -> 2.0).
- Sensor faults on the stream: `twin.sensor_fault(kind, at_s, duration_s, channels=None)` with
  kind in dropout, stuck, spike, nan (trainer.twins.faults).

Batch API: `synthesize(name, per_class, duration_s, seed)` returns labelled `Recording`s;
`write_csv_dataset(recordings, out_dir)` writes them in the CSV folder layout trainer.data reads.
Twins: rotating_machine (RotatingMachine), wearable (WearableIMU: a day of activities, everyday
movements and falls with their times as ground truth, `daily_life`), environment (Room: a room
whose temperature, humidity and CO2 answer heating/cooling/ventilation, people and weather).
Closed loop on a room: `room.apply({"heating": 1, "ventilation": 0})` between steps.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from trainer.twins.base import BlockTwin, Recording
from trainer.twins.environment import STATES, Environment, Room
from trainer.twins.faults import FAULT_KINDS, SensorFault, inject
from trainer.twins.rotating import CONDITIONS, VARIANTS, RotatingMachine, RotatingMachineB
from trainer.twins.wearable import ACTIVITIES, MOVES, WearableIMU, daily_life

TWINS = {
    "rotating_machine": (RotatingMachine, CONDITIONS, 10.0),
    "rotating_machine_b": (RotatingMachineB, CONDITIONS, 10.0),  # plant B: the drifted site
    "wearable": (WearableIMU, ACTIVITIES, None),
    "environment": (Room, STATES, None),
}

__all__ = [
    "ACTIVITIES", "CONDITIONS", "FAULT_KINDS", "MOVES", "STATES", "TWINS", "BlockTwin",
    "Environment", "Recording", "Room", "RotatingMachine", "RotatingMachineB", "SensorFault",
    "VARIANTS", "WearableIMU", "daily_life", "inject", "synthesize", "to_counts",
    "write_csv_dataset", "write_csv_recording",
]


def to_counts(x: np.ndarray, counts_per_unit: float) -> np.ndarray:
    """Physical units -> int16 sensor counts (round, saturate), as the sensor's ADC does."""
    q = np.rint(np.asarray(x, dtype=np.float64) * counts_per_unit)
    return np.clip(q, -32768, 32767).astype(np.int16)


def synthesize(
    name: str,
    per_class: int = 20,
    duration_s: float | None = None,
    seed: int = 0,
    classes: tuple[str, ...] | None = None,
) -> list[Recording]:
    """`per_class` recordings of every class of twin `name`, each from its own derived seed."""
    if name not in TWINS:
        raise ValueError(f"unknown twin {name!r}; known: {', '.join(TWINS)}")
    cls, labels, default_s = TWINS[name]
    out = []
    for ci, label in enumerate(classes or labels):
        for i in range(per_class):
            rec_seed = seed * 1_000_003 + ci * 10_007 + i
            dur = duration_s or default_s or _default_duration(name, label)
            out.append(cls.recording(label, dur, rec_seed))
    return out


def _default_duration(twin: str, label: str) -> float:
    if twin == "environment":  # a window opened is a short story; a room's day is long
        return 3600.0 if label == "window_open" else 4 * 3600.0
    return 4.0 if label == "fall" else 8.0


def write_csv_dataset(recordings: list[Recording], out_dir: Path | str) -> Path:
    """Write OUT/<label>/<label>.<i>.csv with a timestamp column (ms) and one column a channel."""
    out = Path(out_dir)
    counters: dict[str, int] = {}
    for rec in recordings:
        i = counters.get(rec.label, 0)
        counters[rec.label] = i + 1
        folder = out / rec.label
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{rec.label}.{i:04d}.csv"
        step_ms = 1000.0 / rec.sample_rate
        write_csv_recording(path, rec.channels, rec.data, np.arange(len(rec.data)) * step_ms)
    return out


def write_csv_recording(path: Path, channels: tuple[str, ...], data: np.ndarray,
                        timestamps_ms: np.ndarray, digits: int = 6, ts_decimals: int = 3) -> None:
    """One recording in the dataset CSV layout trainer.data reads: a timestamp column (ms)
    and one column a channel, values in physical units to `digits` significant digits."""
    with Path(path).open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", *channels])
        for t, row in zip(timestamps_ms, data, strict=True):
            w.writerow([f"{t:.{ts_decimals}f}", *(f"{v:.{digits}g}" for v in row)])
