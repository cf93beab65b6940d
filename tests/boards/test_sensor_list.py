"""The board's sensor list (firmware_micropython/sensors.py): every driver on its simulated chip,
one multi-channel sample in the trained order, at register level on the virtual board."""

from __future__ import annotations

import json

import numpy as np

SCRIPT = """
import json
from array import array
from simhw.source import ArraySource
from sensors import Sensors
from simhw.world import sim_bus
specs = json.loads({specs!r})
n = sum(len(s["channels"]) for s in specs)
src = ArraySource(array('h', {rows}), n)
bus, row = sim_bus(specs, src, n, {period_ms})
sens = Sensors(specs, lambda b: bus, {rate}, row)
out = array('h', [0] * n)
got = []
while True:
    try:
        sens.read_raw_into(out, 0)
    except OSError as e:
        if sens.exhausted:
            break
        got.append(["err", e.args[0]])
        continue
    got.append(list(out))
print(json.dumps({{"got": got, "channels": sens.channels, "scan": bus.scan()}}))
"""

IMU = {"driver": "mpu6050", "channels": ["ax", "ay", "az", "gx", "gy", "gz"],
       "reads": ["ax", "ay", "az", "gx", "gy", "gz"], "counts_per_unit": [4096] * 3 + [32.8] * 3,
       "range": {"accel_g": 8, "gyro_dps": 1000}, "bus": {"addr": 0x68}}
ROOM = [
    {"driver": "sht3x", "channels": ["temperature", "humidity"],
     "reads": ["temperature", "humidity"], "counts_per_unit": [100, 100], "bus": {}},
    {"driver": "scd4x", "channels": ["co2"], "reads": ["co2"], "counts_per_unit": [1],
     "bus": {"addr": 0x62}},
]


def run(board, specs, rows, period_ms, rate) -> dict:
    flat = [int(v) for r in rows for v in r]
    code = SCRIPT.format(specs=json.dumps(specs), rows=flat, period_ms=period_ms, rate=rate)
    return json.loads(board.run(code).check("sensor list script").stdout)


def test_six_axis_imu_gives_accel_and_gyro_counts_exactly(fw_board) -> None:
    rng = np.random.default_rng(1)
    rows = np.concatenate([rng.integers(-32768, 32767, (20, 3)),
                           rng.integers(-32768, 32767, (20, 3))], 1)
    res = run(fw_board, [IMU], rows, 20, 50)
    assert res["channels"] == 6 and res["scan"] == [0x68]
    np.testing.assert_array_equal(np.array(res["got"]), rows)


def test_imu_channel_subset_in_any_order(fw_board) -> None:
    spec = dict(IMU, channels=["yaw_rate", "up"], reads=["gz", "az"],
                counts_per_unit=[32.8, 4096])
    rows = [(100, -200), (32767, -32768), (0, 4096)]
    res = run(fw_board, [spec], rows, 20, 50)
    np.testing.assert_array_equal(np.array(res["got"]), np.array(rows))


def test_room_sensors_read_one_sample_in_trained_order(fw_board) -> None:
    rows = [(2150 + 10 * i, 4500 - 20 * i, 600 + 7 * i) for i in range(10)]
    res = run(fw_board, ROOM, rows, 60_000, 1 / 60)
    assert res["scan"] == [0x44, 0x62]
    np.testing.assert_allclose(np.array(res["got"]), np.array(rows), atol=1)


def test_trained_counts_must_match_the_driver(fw_board) -> None:
    bad = dict(IMU, counts_per_unit=[2048] * 3 + [32.8] * 3)  # trained at 16 g, set to 8 g
    code = f"""
import json
from sensors import Sensors
from simhw.world import sim_bus
from simhw.source import ArraySource
from array import array
specs = json.loads({json.dumps([bad])!r})
bus, row = sim_bus(specs, ArraySource(array('h', [0] * 6), 6), 6, 20)
try:
    Sensors(specs, lambda b: bus, 50, row)
except ValueError as e:
    print(e)
"""
    out = fw_board.run(code).check().stdout
    assert "mpu6050 ax: the model was trained at 2048 counts per unit, the driver gives 4096" in out
