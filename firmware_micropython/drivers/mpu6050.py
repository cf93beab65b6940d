# InvenSense MPU-6050 accelerometer/gyroscope over I2C (accelerometer part).
# Registers from the MPU-6000/6050 register map rev 4.2; data registers are big-endian int16.
from micropython import const

_SMPLRT_DIV = const(0x19)
_CONFIG = const(0x1A)
_ACCEL_CONFIG = const(0x1C)
_ACCEL_XOUT_H = const(0x3B)
_PWR_MGMT_1 = const(0x6B)
_WHO_AM_I = const(0x75)
_WHO_AM_I_VALUE = const(0x68)
_CLK_PLL_XGYRO = const(0x01)

# AFS_SEL (ACCEL_CONFIG bits 4:3) -> LSB per g
_RANGES = {2: (0, 16384), 4: (1, 8192), 8: (2, 4096), 16: (3, 2048)}

ADDR = const(0x68)  # AD0 low; 0x69 with AD0 high


class MPU6050:
    channels = 3

    def __init__(self, i2c, addr=ADDR, range_g=2, rate_hz=1000):
        if range_g not in _RANGES:
            raise ValueError("MPU6050 range_g must be 2, 4, 8 or 16, not %r" % (range_g,))
        self.i2c = i2c
        self.addr = addr
        self._buf = bytearray(6)
        self._one = bytearray(1)
        who = self._read_reg(_WHO_AM_I)
        if who != _WHO_AM_I_VALUE:
            raise OSError("no MPU6050 at 0x%02x (WHO_AM_I=0x%02x, expected 0x68)" % (addr, who))
        self._write_reg(_PWR_MGMT_1, _CLK_PLL_XGYRO)  # wake up, clock from gyro PLL
        self._write_reg(_CONFIG, 0x01)  # DLPF 184 Hz: sample clock 1 kHz
        div = 1000 // rate_hz - 1 if 0 < rate_hz <= 1000 else 0
        self._write_reg(_SMPLRT_DIV, div)
        afs, lsb_per_g = _RANGES[range_g]
        self._write_reg(_ACCEL_CONFIG, afs << 3)
        self.range_g = range_g
        self.lsb_per_g = lsb_per_g
        self.scale_g = 1.0 / lsb_per_g

    def _read_reg(self, reg):
        self.i2c.readfrom_mem_into(self.addr, reg, self._one)
        return self._one[0]

    def _write_reg(self, reg, value):
        self._one[0] = value
        self.i2c.writeto_mem(self.addr, reg, self._one)

    def read_raw_into(self, out, off=0):
        """X, Y, Z acceleration as signed counts into out[off:off+3]; no allocation."""
        b = self._buf
        self.i2c.readfrom_mem_into(self.addr, _ACCEL_XOUT_H, b)
        for i in range(3):
            v = (b[2 * i] << 8) | b[2 * i + 1]
            out[off + i] = v - 65536 if v & 0x8000 else v

    def read_g(self):
        """(x, y, z) in g. Allocates (floats, a tuple): for setup and tests, not the hot loop."""
        raw = [0, 0, 0]
        self.read_raw_into(raw)
        s = self.scale_g
        return (raw[0] * s, raw[1] * s, raw[2] * s)
