# InvenSense MPU-6050 as the 6-axis IMU it is: accelerometer and gyroscope, both ranges.
# Builds on drivers/mpu6050.py (wake-up, sample clock, accelerometer range) and adds the
# gyroscope: GYRO_CONFIG (0x1B) FS_SEL bits 4:3 select +-250/500/1000/2000 deg/s (131, 65.5,
# 32.8, 16.4 LSB per deg/s). One 14-byte burst from ACCEL_XOUT_H (0x3B) reads ACCEL X/Y/Z,
# TEMP and GYRO X/Y/Z (big-endian int16, register map rev 4.2 section 4.17-4.19), so the six
# values of a sample are from the same sampling instant.
from micropython import const

from drivers.mpu6050 import ADDR, MPU6050

_GYRO_CONFIG = const(0x1B)
_ACCEL_XOUT_H = const(0x3B)
_BURST = const(14)

# FS_SEL -> (code, LSB per deg/s x 10): integer table, 32.8 and 65.5 kept exact
_GYRO_RANGES = {250: (0, 1310), 500: (1, 655), 1000: (2, 328), 2000: (3, 164)}


class MPU6050IMU(MPU6050):
    channels = 6

    def __init__(self, i2c, addr=ADDR, range_g=2, gyro_dps=250, rate_hz=1000):
        if gyro_dps not in _GYRO_RANGES:
            raise ValueError("MPU6050 gyro_dps must be 250, 500, 1000 or 2000, not %r" % (gyro_dps,))
        super().__init__(i2c, addr, range_g, rate_hz)
        fs, lsb10 = _GYRO_RANGES[gyro_dps]
        self._write_reg(_GYRO_CONFIG, fs << 3)
        self.gyro_dps = gyro_dps
        self.lsb_per_dps = lsb10 / 10
        self._burst = bytearray(_BURST)

    def read_raw_into(self, out, off=0):
        """ax, ay, az, gx, gy, gz as signed counts into out[off:off+6]; no allocation."""
        b = self._burst
        self.i2c.readfrom_mem_into(self.addr, _ACCEL_XOUT_H, b)
        for i in range(7):
            if i == 3:
                continue  # TEMP_OUT sits between the accelerometer and the gyroscope
            v = (b[2 * i] << 8) | b[2 * i + 1]
            out[off + (i if i < 3 else i - 1)] = v - 65536 if v & 0x8000 else v
