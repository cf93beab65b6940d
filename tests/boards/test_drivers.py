"""Drivers against the register-level simulated chips, on the virtual board."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeloop.vboard import identify

SCRIPT = """
import json
from array import array
from simhw.source import ArraySource
from simhw.i2c import I2C
from simhw.chips import SimMPU6050, SimADXL345
from drivers.mpu6050 import MPU6050
from drivers.adxl345 import ADXL345
src = array('h', {samples})
chip = {chip}(ArraySource(src))
bus = I2C([chip])
drv = {driver}(bus, range_g={range_g})
out = []
for _ in range(len(src) // 3):
    out.append(drv.read_g())
print(json.dumps({{"g": out, "scan": bus.scan(), "lsb": drv.lsb_per_g,
                   "regs": list(chip.regs)}}))
"""


def run_driver(board, chip: str, driver: str, samples_mg: list[int], range_g: int) -> dict:
    code = SCRIPT.format(samples=samples_mg, chip=chip, driver=driver, range_g=range_g)
    return json.loads(board.run(code).check("driver script").stdout)


def expected_g(samples_mg: list[int], lsb: int, lo: int, hi: int) -> np.ndarray:
    counts = np.clip(np.array(samples_mg, dtype=np.int64) * lsb // 1000, lo, hi)
    return (counts / lsb).reshape(-1, 3)


def assert_g(got, want: np.ndarray) -> None:
    """Equal at the board's float precision: exactly with double floats; to the last float32
    bit with single ones (an ESP32), whose repr prints 8 digits of the exact float32 value."""
    got = np.asarray(got, dtype=np.float64).reshape(want.shape)
    if identify().float_bits == 64:
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=2.0**-23, atol=0)
        assert np.all(np.float32(want) == want), "expected g not exact in float32"


@pytest.mark.parametrize("range_g,lsb", [(2, 16384), (4, 8192), (8, 4096), (16, 2048)])
def test_mpu6050_reads_g_at_every_range(fw_board, range_g: int, lsb: int) -> None:
    samples = [1000, -500, 250, 1999, -1999, 0, 17000, -17000, 3]  # the last row saturates
    res = run_driver(fw_board, "SimMPU6050", "MPU6050", samples, range_g)
    assert res["scan"] == [0x68]
    assert res["lsb"] == lsb
    assert_g(res["g"], expected_g(samples, lsb, -32768, 32767))
    assert res["regs"][0x6B] == 0x01  # woken up, PLL clock
    assert (res["regs"][0x1C] >> 3) & 3 == {2: 0, 4: 1, 8: 2, 16: 3}[range_g]


@pytest.mark.parametrize("range_g", [2, 4, 8, 16])
def test_adxl345_full_resolution_reads_g(fw_board, range_g: int) -> None:
    samples = [1000, -500, 250, 1999, -1999, 0, 17000, -17000, 3]
    res = run_driver(fw_board, "SimADXL345", "ADXL345", samples, range_g)
    assert res["scan"] == [0x53]
    assert res["lsb"] == 256
    lim = (1 << (9 + {2: 0, 4: 1, 8: 2, 16: 3}[range_g])) - 1  # 10..13-bit full resolution
    assert_g(res["g"], expected_g(samples, 256, -lim - 1, lim))
    assert res["regs"][0x2D] & 0x08  # measuring
    assert res["regs"][0x31] & 0x08  # FULL_RES


@settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.integers(-1999, 1999), min_size=3, max_size=30).map(lambda v: v[: len(v) // 3 * 3])
)
def test_mpu6050_any_signal_within_range(fw_board, samples: list[int]) -> None:
    # The board's filesystem is only read here, so one board serves every example.
    res = run_driver(fw_board, "SimMPU6050", "MPU6050", samples, 2)
    assert_g(res["g"], expected_g(samples, 16384, -32768, 32767))


def test_wrong_chip_and_bus_errors(fw_board) -> None:
    code = """
from simhw.i2c import I2C
from simhw.chips import SimMPU6050, SimADXL345
from drivers.mpu6050 import MPU6050
from drivers.adxl345 import ADXL345
bus = I2C([SimADXL345(None, addr=0x68)])   # an ADXL345 where an MPU6050 should be
try:
    MPU6050(bus)
except OSError as e:
    print('wrong:', e)
try:
    MPU6050(I2C([]))
except OSError as e:
    print('missing:', e.args[0])
bus = I2C([SimMPU6050(None)])
drv = MPU6050(bus)
bus.fail_reads = 1
try:
    drv.read_g()
except OSError as e:
    print('timeout:', e.args[0])
print('after:', drv.read_g())
"""
    out = fw_board.run(code).check().stdout
    assert "wrong: no MPU6050 at 0x68 (WHO_AM_I=0x00, expected 0x68)" in out
    assert "missing: 19" in out  # ENODEV, as machine.I2C raises
    assert "timeout: 110" in out
    assert "after: (0.0, 0.0, 0.0)" in out


def test_analog_input_scales_volts(fw_board) -> None:
    code = """
from array import array
from simhw.source import ArraySource
from simhw.pins import ADC
from drivers.analog import Analog
a = Analog(ADC(ArraySource(array('h', [0, 1650, 3300]), channels=1)))
out = array('h', [0])
vals = []
for _ in range(3):
    a.read_raw_into(out)
    vals.append(out[0] * a.scale_g + a.offset_v)
print(vals)
"""
    vals = eval(fw_board.run(code).check().stdout)
    np.testing.assert_allclose(vals, [0.0, 1.65, 3.3], atol=3.3 / 65536 * 2)
