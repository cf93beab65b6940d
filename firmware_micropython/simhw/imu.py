# The MPU-6050's gyroscope on top of the simulated accelerometer (simhw/chips.py SimMPU6050):
# GYRO_CONFIG FS_SEL sets 131/65.5/32.8/16.4 LSB per deg/s; a burst read from ACCEL_XOUT_H
# latches one 6-value sample (ax, ay, az in 1/units g; gx, gy, gz in 10/gyro_units10 deg/s) into
# ACCEL_*, TEMP and GYRO_* registers, saturating like the part.
from micropython import const

from simhw.chips import SimMPU6050

_GYRO_CONFIG = const(0x1B)
_ACCEL_XOUT_H = const(0x3B)
_GYRO_XOUT_H = const(0x43)
_LSB10 = (1310, 655, 328, 164)


def _clip16(v):
    return 32767 if v > 32767 else (-32768 if v < -32768 else v)


class SimMPU6050IMU(SimMPU6050):
    def __init__(self, source=None, addr=0x68, units=1000, gyro_units10=10):
        super().__init__(source, addr, units)
        self.gyro_units10 = gyro_units10  # source units per deg/s, times 10 (32.8 -> 328)
        self.sample = [0, 0, 0, 0, 0, 0]

    @property
    def lsb_per_dps10(self):
        return _LSB10[(self.regs[_GYRO_CONFIG] >> 3) & 3]

    def _before_read(self, reg):
        if reg != _ACCEL_XOUT_H or self.sleeping or not self._next():
            return
        r = self.regs
        lsb = self.lsb_per_g
        lsb10 = self.lsb_per_dps10
        for i in range(3):
            v = _clip16(self.sample[i] * lsb // self.units) & 0xFFFF
            r[_ACCEL_XOUT_H + 2 * i] = v >> 8
            r[_ACCEL_XOUT_H + 2 * i + 1] = v & 0xFF
            g = _clip16(self.sample[3 + i] * lsb10 // self.gyro_units10) & 0xFFFF
            r[_GYRO_XOUT_H + 2 * i] = g >> 8
            r[_GYRO_XOUT_H + 2 * i + 1] = g & 0xFF
        r[0x41] = 0xF2  # TEMP ~25 C
        r[0x42] = 0xB0
