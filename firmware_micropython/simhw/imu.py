# The MPU-6050's gyroscope on top of the simulated accelerometer (simhw/chips.py SimMPU6050):
# GYRO_CONFIG FS_SEL sets 131/65.5/32.8/16.4 LSB per deg/s; each sample (ax, ay, az in 1/units
# g; gx, gy, gz in 10/gyro_units10 deg/s) is converted into the ACCEL_*, TEMP and GYRO_*
# registers, saturating like the part, and (FIFO on, FIFO_EN XG/YG/ZG set) into the FIFO as
# 12-byte frames. The same two clocks as the accelerometer: clock=None (replay: a burst read
# from ACCEL_XOUT_H, or a FIFO count read, takes the next samples) or clock=ticks_us (the chip
# converts at its configured rate in wall-clock time, overflowing its 1024-byte FIFO as the
# part does); seq=True hides sequence numbers in the accelerometer's counts (simhw/seq.py).
from micropython import const

from simhw.chips import SimMPU6050, _clip16

_GYRO_CONFIG = const(0x1B)
_ACCEL_XOUT_H = const(0x3B)
_GYRO_XOUT_H = const(0x43)
_LSB10 = (1310, 655, 328, 164)


class SimMPU6050IMU(SimMPU6050):
    def __init__(self, source=None, addr=0x68, units=1000, gyro_units10=10, clock=None,
                 seq=False):
        super().__init__(source, addr, units, clock, seq)
        self.gyro_units10 = gyro_units10  # source units per deg/s, times 10 (32.8 -> 328)
        self.sample = [0, 0, 0, 0, 0, 0]
        self.counts = [0, 0, 0, 0, 0, 0]

    @property
    def lsb_per_dps10(self):
        return _LSB10[(self.regs[_GYRO_CONFIG] >> 3) & 3]

    def _counts(self):
        SimMPU6050._counts(self)
        lsb10 = self.lsb_per_dps10
        c = self.counts
        s = self.sample
        g = self.gyro_units10
        for i in range(3):
            c[3 + i] = _clip16(s[3 + i] * lsb10 // g)

    def _latch(self):
        SimMPU6050._latch(self)
        r = self.regs
        c = self.counts
        for i in range(3):
            v = c[3 + i] & 0xFFFF
            r[_GYRO_XOUT_H + 2 * i] = v >> 8
            r[_GYRO_XOUT_H + 2 * i + 1] = v & 0xFF
