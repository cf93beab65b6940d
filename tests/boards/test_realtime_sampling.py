"""Clocked FIFOs: the simulated chips sample at their configured rate on a clock, the drivers
drain the FIFO into the sampling ring, overflows are counted as lost, and nothing on the
sampling path allocates (the whole drain loop, simulated chip included, runs under
micropython.heap_lock()). The clock is injected and starts seconds before the ticks wrap, so
every piece of time arithmetic is exercised across it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

PRELUDE = """
import json, time, micropython
from array import array
from simhw.source import ArraySource
from simhw.i2c import I2C
from simhw.chips import SimMPU6050, SimADXL345
from simhw.seq import SeqCheck
from sampling import Ring
import drivers.mpu6050 as dm
import drivers.adxl345 as da
T = [time.ticks_add(0, -3000000)]  # 3 s before the ticks wrap

def clock():
    return T[0]

def advance(us):
    T[0] = time.ticks_add(T[0], us)

dm.ticks_us = clock
da.ticks_us = clock
out = {}
"""


def run(board, code: str) -> dict:
    res = board.run(PRELUDE + code + "\nprint('RESULT' + json.dumps(out))\n").check("script")
    return json.loads(res.stdout.split("RESULT", 1)[1])


MPU_STEADY = """
src = ArraySource(array('h', [(i * 7) % 2000 - 1000 for i in range(3 * 500)]), loop=True)
chip = SimMPU6050(src, units=16384, clock=clock)
drv = dm.MPU6050(I2C([chip]), range_g=2, rate_hz=RATE)
ring = Ring(2 * drv.fifo_samples + 64, 3)
drv.start()
got = []
s = array('h', [0, 0, 0])
def step(n, us, keep):
    total = 0
    for _ in range(n):
        advance(us)
        total += drv.drain(ring)
        while ring.get_into(s):
            if keep:
                got.append(s[0])
    return total
first = step(3, STEP, True)
locked = 0
err = 'MemoryError'  # names bound before the lock: a new global allocates
micropython.heap_lock()
try:
    locked = step(40, STEP, False)
    err = ''
except MemoryError:
    err = 'MemoryError'
micropython.heap_unlock()
out = {'first': first, 'got': got, 'locked': locked, 'err': err, 'lost': ring.lost,
       'produced': chip.samples_read, 'regs': [chip.regs[0x19], chip.regs[0x1A], chip.regs[0x23],
       chip.regs[0x38], chip.regs[0x6A]]}
"""


@pytest.mark.parametrize("rate,step_us", [(1000, 100000), (500, 7000), (50, 250000)])
def test_mpu6050_fifo_keeps_every_sample(fw_board, rate: int, step_us: int) -> None:
    res = run(fw_board, f"RATE = {rate}\nSTEP = {step_us}\n" + MPU_STEADY)
    assert res["err"] == "", "the drain path allocated under heap_lock"
    first = 3 * step_us * rate // 1_000_000  # whole sample periods so far
    assert res["first"] == first and res["locked"] == 43 * step_us * rate // 1_000_000 - first
    assert res["lost"] == 0
    # the samples arrive in order, exactly the source's values (counts at 16384/g)
    src = [(i * 7) % 2000 - 1000 for i in range(3 * 500)][::3]
    assert res["got"] == [src[k % 500] for k in range(len(res["got"]))]
    div, dlpf, fifo_en, int_en, user = res["regs"]
    assert 1000 / (1 + div) == rate and 1 <= dlpf <= 6
    assert fifo_en == 0x08 and int_en == 0x10 and user == 0x40  # accel in FIFO, OFLOW int, FIFO on


MPU_OVERFLOW = """
src = ArraySource(array('h', [0, 0, 1000] * 100), loop=True)
chip = SimMPU6050(src, units=16384, clock=clock, seq=True)
drv = dm.MPU6050(I2C([chip]), range_g=2, rate_hz=1000)
ring = Ring(400, 3)
seq = SeqCheck()
s = array('h', [0, 0, 0])
drv.start()
def drain_all():
    n = drv.drain(ring)
    while ring.get_into(s):
        seq.check(s)
    return n
a = b = c = flag_after = 0
err = 'MemoryError'
micropython.heap_lock()
try:
    advance(50000); a = drain_all()          # 50 samples
    advance(STALL); b = drain_all()          # a stall longer than the FIFO: overflow
    flag_after = chip.regs[0x3A]
    advance(20000); c = drain_all()          # sampling goes on, aligned again
    err = ''
except MemoryError:
    err = 'MemoryError'
micropython.heap_unlock()
out = {'a': a, 'b': b, 'c': c, 'lost': ring.lost, 'overflows': ring.overflows, 'err': err,
       'seq_lost': seq.lost, 'seq_dup': seq.dup, 'overwritten': chip.overflowed_bytes,
       'flag_after': flag_after}
"""


@pytest.mark.parametrize("stall_us", [171000, 400000, 2500000])
def test_mpu6050_overflow_is_counted_as_lost(fw_board, stall_us: int) -> None:
    res = run(fw_board, f"STALL = {stall_us}\n" + MPU_OVERFLOW)
    assert res["err"] == ""
    assert res["a"] == 50 and res["b"] == 0 and res["c"] == 20
    assert res["overwritten"] > 0 and res["overflows"] == 1
    assert res["flag_after"] == 0  # INT_STATUS is read-to-clear
    # every sample the chip produced during the stall is discarded with the misaligned FIFO
    # and counted; the hidden sequence numbers say the same (to the sample in flight)
    assert abs(res["lost"] - stall_us // 1000) <= 1
    assert abs(res["seq_lost"] - res["lost"]) <= 1 and res["seq_dup"] == 0


ADXL = """
src = ArraySource(array('h', [(i * 5) % 900 - 450 for i in range(3 * 300)]), loop=True)
chip = SimADXL345(src, units=256, clock=clock, seq=SEQ)
drv = da.ADXL345(I2C([chip]), range_g=16, rate_hz=1600)
ring = Ring(128, 3)
seq = SeqCheck()
s = array('h', [0, 0, 0])
got = []
drv.start()
def drain_all(keep):
    n = drv.drain(ring)
    while ring.get_into(s):
        seq.check(s)
        if keep:
            got.append(s[2])
    return n
advance(10000); a = drain_all(True)              # 16 samples
steady = full = lost_full = b = 0
err = 'MemoryError'
micropython.heap_lock()
try:
    steady = 0
    for _ in range(50):
        advance(15000)                            # 24 per drain: below the 32 entries
        steady += drain_all(False)
    advance(20000); full = drain_all(False)      # exactly 32: FIFO filled, nothing lost yet
    lost_full = ring.lost
    advance(100000); b = drain_all(False)        # 160 produced, the newest 32 survive
    err = ''
except MemoryError:
    err = 'MemoryError'
micropython.heap_unlock()
out = {'a': a, 'steady': steady, 'full': full, 'lost_full': lost_full, 'b': b,
       'lost': ring.lost, 'err': err, 'dropped': chip.dropped, 'got': got,
       'seq_lost': seq.lost, 'seq_dup': seq.dup, 'fifo_ctl': chip.regs[0x38],
       'bw': chip.regs[0x2C]}
"""


def test_adxl345_stream_fifo_keeps_samples_and_counts_overruns(fw_board) -> None:
    res = run(fw_board, "SEQ = False\n" + ADXL)
    assert res["err"] == ""
    assert res["a"] == 16 and res["steady"] == 50 * 24 and res["full"] == 32
    assert res["fifo_ctl"] >> 6 == 2 and res["bw"] == 0x0E  # stream mode, 1600 Hz
    src = [(i * 5) % 900 - 450 for i in range(3 * 300)]
    assert res["got"] == [src[3 * k + 2] for k in range(16)]
    assert res["b"] == 32 and res["dropped"] == 160 - 32
    assert abs(res["lost"] - res["dropped"]) <= 1 and res["lost_full"] <= 1


def test_adxl345_overrun_matches_the_hidden_sequence(fw_board) -> None:
    res = run(fw_board, "SEQ = True\n" + ADXL)
    assert res["err"] == ""
    assert res["seq_dup"] == 0
    assert res["seq_lost"] == res["dropped"] == 128
    assert abs(res["lost"] - res["seq_lost"]) <= 1


def test_rates_the_chips_cannot_clock_are_refused(fw_board) -> None:
    code = """
chip = SimMPU6050(None)
try:
    dm.MPU6050(I2C([chip]), rate_hz=300)
except ValueError as e:
    out['mpu'] = str(e)
try:
    da.ADXL345(I2C([SimADXL345(None)]), rate_hz=1000)
except ValueError as e:
    out['adxl'] = str(e)
out['ok'] = [dm.MPU6050(I2C([SimMPU6050(None)]), rate_hz=r).rate_hz for r in (1000, 250, 50)]
"""
    res = run(fw_board, code)
    assert "300 Hz is not one of them" in res["mpu"] and "1000/(1+n)" in res["mpu"]
    assert "1000 Hz is not one of them" in res["adxl"] and "1600" in res["adxl"]
    assert res["ok"] == [1000, 250, 50]


def test_chip_clock_follows_its_rate_registers(fw_board) -> None:
    """The simulated MPU6050 takes 1 kHz / (1 + SMPLRT_DIV) samples per second (8 kHz base
    with the DLPF off), nothing while asleep."""
    code = """
chip = SimMPU6050(ArraySource(array('h', [1, 2, 3]), loop=True), clock=clock)
bus = I2C([chip])
one = bytearray(1)
advance(1000000)
bus.readfrom_mem_into(0x68, 0x75, one)
asleep = chip.samples_read
bus.writeto_mem(0x68, 0x6B, b'\\x01'); bus.writeto_mem(0x68, 0x1A, b'\\x01')
bus.writeto_mem(0x68, 0x19, b'\\x03')           # 250 Hz
bus.readfrom_mem_into(0x68, 0x75, one)
advance(1000000); bus.readfrom_mem_into(0x68, 0x75, one)
at250 = chip.samples_read
bus.writeto_mem(0x68, 0x1A, b'\\x00')           # DLPF off: 8 kHz / 4 = 2 kHz
advance(500000); bus.readfrom_mem_into(0x68, 0x75, one)
out = {'asleep': asleep, 'at250': at250, 'at2k': chip.samples_read - at250}
"""
    assert run(fw_board, code) == {"asleep": 0, "at250": 250, "at2k": 1000}


ANALOG = """
import simhw.pins as sp
import simhw.timer as st
from drivers.analog import Analog
import drivers.analog as dan
dan.ticks_us = clock
st.Timer.clock = clock
adc = sp.ADC(ArraySource(array('h', [i % 3300 for i in range(500)]), channels=1, loop=True))
a = Analog(adc, rate_hz=1000)
ring = Ring(256, 1)
a.start(ring, st.Timer)
s = array('h', [0])
n = _ = 0                           # every global the locked loop stores exists first
err = 'MemoryError'
micropython.heap_lock()
try:
    for _ in range(100):            # idle: every tick on time
        advance(1000)
        st.Timer.service()
        while ring.get_into(s):
            n += 1
    advance(30000)                  # the loop was busy 30 ms: 8 ticks run late, 22 dropped
    st.Timer.service()
    while ring.get_into(s):
        n += 1
    err = ''
except MemoryError:
    err = 'MemoryError'
micropython.heap_unlock()
out = {'n': n, 'lost': ring.lost, 'err': err, 'dropped': a.timer.dropped}
"""


def test_analog_timer_sampling_counts_missed_ticks(fw_board) -> None:
    res = run(fw_board, ANALOG)
    assert res["err"] == ""
    assert res["dropped"] == 22
    # 130 ticks in all: every one is a sample or a counted loss; the 30 that fell due while
    # the loop was busy give one (late) reading, 29 are lost
    assert res["n"] == 101 and res["lost"] == 29


IMU = """
import drivers.mpu6050_imu as dimu
from simhw.imu import SimMPU6050IMU
vals = [((i * 7) % 2000 - 1000) if i % 6 < 3 else ((i * 13) % 6000 - 3000) for i in range(6 * 300)]
src = ArraySource(array('h', vals), channels=6, loop=True)
# counts = sample: units = 4096 per g at +-8 g, gyro 32.8 counts per deg/s at +-1000 deg/s
chip = SimMPU6050IMU(src, units=4096, gyro_units10=328, clock=clock, seq=SEQ)
drv = dimu.MPU6050IMU(I2C([chip]), range_g=8, gyro_dps=1000, rate_hz=50)
ring = Ring(64, 6)
seq = SeqCheck()
s = array('h', [0] * 6)
got = []
drv.start()
def drain_all(keep):
    n = drv.drain(ring)
    while ring.get_into(s):
        seq.check(s)
        if keep:
            got.append(list(s))
    return n
advance(200000); a = drain_all(True)             # 10 samples
steady = b = c = 0
err = 'MemoryError'
micropython.heap_lock()
try:
    for _ in range(40):
        advance(500000)                          # 25 a drain: below the 85 frames
        steady += drain_all(False)
    advance(1800000); b = drain_all(False)       # 90 > 85 frames: the FIFO overflows
    advance(200000); c = drain_all(False)        # 10 more: after the gap
    err = ''
except MemoryError:
    err = 'MemoryError'
micropython.heap_unlock()
out = {'a': a, 'steady': steady, 'b': b, 'c': c, 'lost': ring.lost, 'overflows': ring.overflows,
       'err': err, 'got': got, 'fifo': drv.fifo_samples, 'en': chip.regs[0x23],
       'seq_lost': seq.lost, 'seq_dup': seq.dup, 'produced': chip.samples_read}
"""


def test_mpu6050_imu_fifo_keeps_accel_and_gyro_frames(fw_board) -> None:
    """The wearable's 6-axis IMU on its own clock: 12-byte frames (accelerometer then
    gyroscope) through the FIFO, exact counts, nothing allocated; an overflow is counted."""
    res = run(fw_board, "SEQ = False\n" + IMU)
    assert res["err"] == "", "the 6-axis drain path allocated under heap_lock"
    assert res["fifo"] == 85 and res["en"] == 0x78  # ACCEL + XG/YG/ZG in the FIFO
    vals = [((i * 7) % 2000 - 1000) if i % 6 < 3 else ((i * 13) % 6000 - 3000)
            for i in range(6 * 300)]
    assert res["a"] == 10 and res["got"] == [vals[6 * k: 6 * k + 6] for k in range(10)]
    assert res["steady"] == 40 * 25 and res["overflows"] == 1
    assert abs(res["lost"] - 90) <= 1 and res["b"] == 0


def test_mpu6050_imu_overflow_matches_the_hidden_sequence(fw_board) -> None:
    res = run(fw_board, "SEQ = True\n" + IMU)
    assert res["err"] == "" and res["seq_dup"] == 0
    assert res["produced"] == 10 + 40 * 25 + 90 + 10 and res["c"] == 10
    # the overflow's 90 samples never reach the ring; the next one received shows the gap,
    # exactly as many as the app counted lost
    assert res["seq_lost"] == res["lost"] and abs(res["lost"] - 90) <= 1


def test_mpu6050_imu_replay_latches_one_sample_per_burst(fw_board) -> None:
    """clock=None (the sensor list's polled reads, HIL register-level input): each burst from
    ACCEL_XOUT_H takes the next sample, accelerometer and gyroscope alike."""
    code = """
import drivers.mpu6050_imu as dimu
from simhw.imu import SimMPU6050IMU
src = ArraySource(array('h', [100, -200, 300, 328, -656, 1640, 7, 8, 9, 10, 11, 12]), channels=6)
chip = SimMPU6050IMU(src, units=4096, gyro_units10=328)
drv = dimu.MPU6050IMU(I2C([chip]), range_g=8, gyro_dps=1000, rate_hz=50)
s = [0] * 6
drv.read_raw_into(s); first = list(s)
drv.read_raw_into(s)
out = {'first': first, 'second': list(s), 'read': chip.samples_read}
"""
    res = run(fw_board, code)
    assert res == {"first": [100, -200, 300, 328, -656, 1640], "second": [7, 8, 9, 10, 11, 12],
                   "read": 2}


def test_host_wait_reads_schedstat_without_allocating(fw_board, tmp_path) -> None:
    """The virtual board's host-stall evidence: the run-queue wait of /proc/self/schedstat
    (ns) in us, read under heap_lock; a file in its format gives its exact figure."""
    fake = fw_board.root / "schedstat"
    fake.write_text("677290 12345678901 3\n")
    code = """
from simhw.hostwait import HostWait, host_wait
fake = HostWait('schedstat')
real = host_wait()
v = w = 0
err = 'MemoryError'
micropython.heap_lock()
try:
    v = fake.us()
    w = real.us() if real is not None else -1
    err = ''
except MemoryError:
    err = 'MemoryError'
micropython.heap_unlock()
t0 = time.ticks_us()
while time.ticks_diff(time.ticks_us(), t0) < 20000:
    pass
out = {'fake': v, 'err': err, 'real': w, 'later': real.us() if real is not None else -1}
"""
    res = run(fw_board, code)
    assert res["err"] == ""
    assert res["fake"] == 12345678901 // 1000 % 10**8
    if Path("/proc/self/schedstat").exists():
        assert 0 <= res["real"] <= res["later"]
