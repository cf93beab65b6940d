# Analog Devices ADXL345 3-axis accelerometer over I2C. Data registers are little-endian int16.
# Full-resolution mode: 3.9 mg/LSB (256 LSB/g) at every range.
from micropython import const

_DEVID = const(0x00)
_DEVID_VALUE = const(0xE5)
_BW_RATE = const(0x2C)
_POWER_CTL = const(0x2D)
_DATA_FORMAT = const(0x31)
_DATAX0 = const(0x32)
_MEASURE = const(0x08)
_FULL_RES = const(0x08)
_LSB_PER_G = const(256)

_RANGE_BITS = {2: 0, 4: 1, 8: 2, 16: 3}
# output data rate (Hz) -> BW_RATE rate code
_RATES = ((3200, 0x0F), (1600, 0x0E), (800, 0x0D), (400, 0x0C), (200, 0x0B), (100, 0x0A))

ADDR = const(0x53)  # ALT ADDRESS low; 0x1D with it high


class ADXL345:
    channels = 3

    def __init__(self, i2c, addr=ADDR, range_g=2, rate_hz=1000):
        if range_g not in _RANGE_BITS:
            raise ValueError("ADXL345 range_g must be 2, 4, 8 or 16, not %r" % (range_g,))
        self.i2c = i2c
        self.addr = addr
        self._buf = bytearray(6)
        self._one = bytearray(1)
        devid = self._read_reg(_DEVID)
        if devid != _DEVID_VALUE:
            raise OSError("no ADXL345 at 0x%02x (DEVID=0x%02x, expected 0xe5)" % (addr, devid))
        code = 0x0A
        for hz, c in _RATES:  # slowest rate that is at least twice the wanted one
            if hz >= 2 * rate_hz:
                code = c
        self._write_reg(_BW_RATE, code)
        self._write_reg(_DATA_FORMAT, _FULL_RES | _RANGE_BITS[range_g])
        self._write_reg(_POWER_CTL, _MEASURE)
        self.range_g = range_g
        self.lsb_per_g = _LSB_PER_G
        self.scale_g = 1.0 / _LSB_PER_G

    def _read_reg(self, reg):
        self.i2c.readfrom_mem_into(self.addr, reg, self._one)
        return self._one[0]

    def _write_reg(self, reg, value):
        self._one[0] = value
        self.i2c.writeto_mem(self.addr, reg, self._one)

    def read_raw_into(self, out, off=0):
        """X, Y, Z acceleration as signed counts into out[off:off+3]; no allocation."""
        b = self._buf
        self.i2c.readfrom_mem_into(self.addr, _DATAX0, b)
        for i in range(3):
            v = b[2 * i] | (b[2 * i + 1] << 8)
            out[off + i] = v - 65536 if v & 0x8000 else v

    def read_g(self):
        """(x, y, z) in g. Allocates: for setup and tests, not the hot loop."""
        raw = [0, 0, 0]
        self.read_raw_into(raw)
        s = self.scale_g
        return (raw[0] * s, raw[1] * s, raw[2] * s)
