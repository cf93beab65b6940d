# Analog Devices ADXL345 3-axis accelerometer over I2C. Data registers are little-endian int16.
# Full-resolution mode: 3.9 mg/LSB (256 LSB/g) at every range.
#
# Real-time sampling: start() puts the 32-entry FIFO in stream mode at the output data rate;
# drain(ring) pops every entry (one 6-byte DATAX0..DATAZ1 burst each, FIFO_STATUS says how
# many). In stream mode a full FIFO keeps the newest 32 samples and INT_SOURCE.Overrun is set:
# drain() then counts the samples produced since the last drain that it no longer finds as
# lost (ring.lost). Output data rates are 3200 / 2**k Hz; others are refused (a rate the chip
# cannot clock would need resampling the model never saw).
from time import ticks_diff, ticks_us

from micropython import const

_DEVID = const(0x00)
_DEVID_VALUE = const(0xE5)
_BW_RATE = const(0x2C)
_POWER_CTL = const(0x2D)
_INT_SOURCE = const(0x30)
_DATA_FORMAT = const(0x31)
_DATAX0 = const(0x32)
_FIFO_CTL = const(0x38)
_FIFO_STATUS = const(0x39)
_MEASURE = const(0x08)
_FULL_RES = const(0x08)
_LSB_PER_G = const(256)
_OVERRUN = const(0x01)  # INT_SOURCE bit 0
_STREAM = const(0x80)  # FIFO_CTL FIFO_MODE = 10 (stream)
_ENTRIES = const(0x3F)  # FIFO_STATUS bits 5:0
_WATERMARK = const(16)  # FIFO_CTL samples bits 4:0

_RANGE_BITS = {2: 0, 4: 1, 8: 2, 16: 3}
# output data rate (Hz) -> BW_RATE rate code
_RATES = ((3200, 0x0F), (1600, 0x0E), (800, 0x0D), (400, 0x0C), (200, 0x0B), (100, 0x0A),
          (50, 0x09), (25, 0x08), (12.5, 0x07), (6.25, 0x06))

ADDR = const(0x53)  # ALT ADDRESS low; 0x1D with it high


class ADXL345:
    channels = 3
    fifo_samples = 32  # 20 ms of headroom at 1600 Hz, 320 ms at 100 Hz

    def __init__(self, i2c, addr=ADDR, range_g=2, rate_hz=100):
        if range_g not in _RANGE_BITS:
            raise ValueError("ADXL345 range_g must be 2, 4, 8 or 16, not %r" % (range_g,))
        code = None
        for hz, c in _RATES:
            if abs(hz - rate_hz) <= 1e-6 * hz:
                code = c
        if code is None:
            raise ValueError(
                "the ADXL345 samples at 3200, 1600, 800, 400, 200, 100, 50, 25, 12.5 or "
                "6.25 Hz; %r Hz is not one of them" % (rate_hz,)
            )
        self.i2c = i2c
        self.addr = addr
        self._buf = bytearray(6)
        self._one = bytearray(1)
        devid = self._read_reg(_DEVID)
        if devid != _DEVID_VALUE:
            raise OSError("no ADXL345 at 0x%02x (DEVID=0x%02x, expected 0xe5)" % (addr, devid))
        self._write_reg(_BW_RATE, code)
        self._write_reg(_DATA_FORMAT, _FULL_RES | _RANGE_BITS[range_g])
        self._write_reg(_POWER_CTL, _MEASURE)
        self.range_g = range_g
        self.rate_hz = rate_hz
        self.period = (625 << (15 - code), 2)  # (num, den) us per sample: 3200 Hz = 625/2
        self.lsb_per_g = _LSB_PER_G
        self.scale_g = 1.0 / _LSB_PER_G
        self._t = 0
        self._left = 0

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

    # -- real-time sampling through the FIFO ------------------------------------------------

    def start(self):
        """Empty the FIFO (bypass mode) and collect in stream mode from now on."""
        self._write_reg(_FIFO_CTL, 0)
        self._write_reg(_FIFO_CTL, _STREAM | _WATERMARK)
        self._t = ticks_us()
        self._left = 0

    def due_in(self):
        return -1  # sampled by its own clock: no read to wake up for

    def waiting(self):
        return self._read_reg(_FIFO_STATUS) & _ENTRIES

    def drain(self, ring):
        """Pop the FIFO's entries into ring (as many as fit); returns how many. Allocates
        nothing. After an overrun, the samples that did not survive are added to ring.lost."""
        overrun = self._read_reg(_INT_SOURCE) & _OVERRUN
        n = self.waiting()
        now = ticks_us()  # the entries hold every sample taken until about now
        if overrun:
            dt = ticks_diff(now, self._t)
            dt = dt if dt < 0x7FFFFFF else 0x7FFFFFF
            lost = self._left + dt * 2 // self.period[0] - n
            if lost > 0:
                ring.lost += lost
                ring.overflows += 1
        space = ring.space()
        take = n if n <= space else space
        b = self._buf
        for _ in range(take):
            self.i2c.readfrom_mem_into(self.addr, _DATAX0, b)
            ring.put16(b, 1, False)
        self._t = now
        self._left = n - take
        return take
