"""The building sensors' drivers (SHT3x, SCD4x) against their command-level simulated chips,
on the virtual board: values, CRC checking, NACKs, the SCD4x's 5 s measurement cycle."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SCRIPT = """
import json
from array import array
from simhw.source import ArraySource
from simhw.i2c import I2C
from simhw.row import SharedRow
from simhw.sensirion import SimSHT3x, SimSCD4x
from drivers.sht3x import SHT3x
from drivers.scd4x import SCD4x
rows = array('h', {rows})
row = SharedRow(ArraySource(rows, 3), 3, {period_ms})
sht = SimSHT3x(row, index=(0, 1))
scd = SimSCD4x(row, index=(2, 0, 1))
bus = I2C([sht, scd])
t = SHT3x(bus)
c = SCD4x(bus, reads=("co2", "temperature", "humidity"))
out = array('h', [0] * 5)
got = []
while row.advance():
    t.read_raw_into(out, 0)
    try:
        c.read_raw_into(out, 2)
        got.append(list(out))
    except OSError as e:
        got.append(["err", e.args[0]])
print(json.dumps({{"got": got, "scan": bus.scan(), "serial": c.serial,
                   "scd": scd.measurements, "status": t.status}}))
"""


def run(board, rows: list[tuple[int, int, int]], period_ms: int) -> dict:
    flat = [v for r in rows for v in r]
    out = board.run(SCRIPT.format(rows=flat, period_ms=period_ms)).check("sensirion script")
    return json.loads(out.stdout)


def test_room_values_come_back_in_centi_units(fw_board) -> None:
    rows = [(2150, 4520, 612), (-4500, 0, 400), (12499, 10000, 5000), (1999, 3333, 32767)]
    res = run(fw_board, rows, period_ms=60_000)  # one sample a minute: a new CO2 value each
    assert res["scan"] == [0x44, 0x62] and res["serial"] == [0x1234, 0x5678, 0x9ABC]
    got = np.array(res["got"])
    want = np.array([[t, h, c, t, h] for t, h, c in rows])
    np.testing.assert_allclose(got, want, atol=1)  # 16-bit words: within 0.01 degC / 0.01 %RH
    assert res["scd"] == 4 and res["status"] == 0x0010  # reset seen, alert cleared


def test_scd4x_slow_cycle_holds_its_last_value_and_waits_for_the_first(fw_board) -> None:
    rows = [(2000, 4000, 400 + 10 * i) for i in range(12)]
    res = run(fw_board, rows, period_ms=2000)  # faster than the chip's 5 s cycle
    got = res["got"]
    assert got[0] == ["err", 11] and got[1] == ["err", 11]  # EAGAIN: nothing measured yet
    co2 = [g[2] for g in got[2:]]
    # measured at 6, 10, 16, 20 s (the first sample at or after each 5 s tick), then held
    assert co2 == [420, 420, 440, 440, 440, 470, 470, 490, 490, 490]
    assert res["scd"] == 4


@settings(max_examples=4, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(-4500, 13000), st.integers(0, 10000),
                          st.integers(0, 30000)), min_size=1, max_size=12))
def test_any_reading_in_range(fw_board, rows) -> None:
    got = np.array(run(fw_board, rows, period_ms=10_000)["got"])
    want = np.array([[t, h, c, t, h] for t, h, c in rows])
    np.testing.assert_allclose(got, want, atol=1)


def test_crc_errors_nacks_and_a_missing_chip(fw_board) -> None:
    code = """
from simhw.i2c import I2C
from simhw.row import SharedRow
from simhw.sensirion import SimSHT3x, SimSCD4x
from simhw.source import ArraySource
from array import array
from drivers.sht3x import SHT3x
from drivers.scd4x import SCD4x
row = SharedRow(ArraySource(array('h', [2000, 5000]), 2), 2, 1000)
row.advance()
sim = SimSHT3x(row)
bus = I2C([sim])
s = SHT3x(bus)
out = array('h', [0, 0])
orig = sim._words
def bad(*w):
    orig(*w)
    sim.out[2] ^= 1
sim._words = bad
try:
    s.read_raw_into(out)
except OSError as e:
    print('crc:', e.args[0])
sim._words = orig
s.read_raw_into(out)
print('ok:', list(out))
try:
    sim.read_into(bytearray(3))
except OSError as e:
    print('nack:', e.args[0])
try:
    SCD4x(bus)
except OSError as e:
    print('missing:', e.args[0])
try:
    SHT3x(bus, reads=("co2",))
except ValueError as e:
    print('value:', e)
"""
    out = fw_board.run(code).check().stdout
    assert "crc: 5" in out  # EIO: a damaged word is never taken for a reading
    assert "ok: [2000, 5000]" in out
    assert "nack: 19" in out  # a read with no measurement pending
    assert "missing: 19" in out
    assert "value: SHT3x measures temperature and humidity, not 'co2'" in out


@pytest.mark.parametrize("word,crc", [(0xBEEF, 0x92), (0x0000, 0x81)])
def test_crc8_matches_the_datasheet(fw_board, word: int, crc: int) -> None:
    code = f"""
from drivers.sensirion import crc8
print(crc8(bytes([{word >> 8}, {word & 0xFF}]), 0, 2))
"""
    assert int(fw_board.run(code).check().stdout) == crc
