# Register-level simulation of the ADXL345 (clocks, seq and replay as in simhw/chips.py).
from micropython import const

from simhw.chips import _Chip

# ADXL345
_A_DEVID = const(0x00)
_A_BW_RATE = const(0x2C)
_A_POWER_CTL = const(0x2D)
_A_INT_SOURCE = const(0x30)
_A_DATA_FORMAT = const(0x31)
_A_DATAX0 = const(0x32)
_A_FIFO_CTL = const(0x38)
_A_FIFO_STATUS = const(0x39)
_A_MEASURE = const(0x08)
_A_FULL_RES = const(0x08)
_A_ENTRIES = const(32)


class SimADXL345(_Chip):
    """ADXL345: DEVID 0xE5, standby until POWER_CTL Measure, range/FULL_RES, little-endian
    data, output data rate 3200 / 2**(15 - BW_RATE code) Hz, 32-entry FIFO."""

    _den = 2

    def __init__(self, source=None, addr=0x53, units=1000, clock=None, seq=False):
        super().__init__(addr, source, units, clock, seq)
        self.regs[_A_DEVID] = 0xE5
        self.regs[_A_BW_RATE] = 0x0A
        self.fifo = bytearray(6 * _A_ENTRIES)
        self._fr = 0  # oldest entry
        self._fn = 0  # entries held
        self._overrun = False
        self.dropped = 0  # samples the FIFO dropped or overwrote (for tests)

    def _write_reg(self, reg, value):
        if reg == _A_DEVID or reg == _A_INT_SOURCE or reg == _A_FIFO_STATUS:
            return
        if reg == _A_FIFO_CTL and not value & 0xC0:  # bypass mode clears the FIFO
            self._fr = self._fn = 0
            self._overrun = False
        self.regs[reg] = value

    @property
    def measuring(self):
        return bool(self.regs[_A_POWER_CTL] & _A_MEASURE)

    def _on(self):
        return self.regs[_A_POWER_CTL] & _A_MEASURE

    def _period(self):
        code = self.regs[_A_BW_RATE] & 0x0F
        return 625 << (15 - code)  # / _den: 3200 Hz = 312.5 us

    @property
    def lsb_per_g(self):
        fmt = self.regs[_A_DATA_FORMAT]
        if fmt & _A_FULL_RES:
            return 256
        return 256 >> (fmt & 3)  # 10-bit mode: 256, 128, 64, 32 LSB/g

    @property
    def fifo_mode(self):
        return self.regs[_A_FIFO_CTL] >> 6

    def _limit(self):
        # Output saturates at the range: 13-bit in full resolution at 16 g, else 10-bit.
        fmt = self.regs[_A_DATA_FORMAT]
        bits = (10 + (fmt & 3)) if fmt & _A_FULL_RES else 10
        return (1 << (bits - 1)) - 1

    def _counts(self):
        lsb = self.lsb_per_g
        lim = self._limit()
        c = self.counts
        s = self.sample
        u = self.units
        for i in range(3):
            v = s[i] * lsb // u
            c[i] = lim if v > lim else (-lim - 1 if v < -lim - 1 else v)

    def _latch(self):
        if self.fifo_mode:
            return  # in FIFO modes the output registers show the oldest FIFO entry
        r = self.regs
        c = self.counts
        for i in range(3):
            v = c[i] & 0xFFFF
            r[_A_DATAX0 + 2 * i] = v & 0xFF
            r[_A_DATAX0 + 2 * i + 1] = v >> 8

    def _to_fifo(self):
        mode = self.fifo_mode
        if not mode:
            return
        if self._fn == _A_ENTRIES:
            self.dropped += 1
            if mode == 1:  # FIFO mode: a full FIFO stops collecting
                return
            self._fr = (self._fr + 1) % _A_ENTRIES  # stream/trigger: the oldest is overwritten
            self._fn -= 1
        at = 6 * ((self._fr + self._fn) % _A_ENTRIES)
        f = self.fifo
        c = self.counts
        for i in range(3):
            v = c[i] & 0xFFFF
            f[at + 2 * i] = v & 0xFF
            f[at + 2 * i + 1] = v >> 8
        self._fn += 1
        if self._fn == _A_ENTRIES:
            self._overrun = True  # "set when FIFO is filled" in FIFO modes

    def _before_read(self, reg):
        r = self.regs
        mode = self.fifo_mode
        if reg == _A_FIFO_STATUS or reg == _A_INT_SOURCE:
            if self.clock is None and mode:  # replay: topped up short of full (no overrun)
                while self._fn < _A_ENTRIES - 1 and not self.exhausted:
                    self._convert()
            r[_A_FIFO_STATUS] = self._fn
            wm = self.regs[_A_FIFO_CTL] & 0x1F
            src = 0
            if self._fn or not mode:
                src |= 0x80  # DATA_READY
            if mode and self._fn >= wm:
                src |= 0x02  # watermark
            if self._overrun:
                src |= 0x01
            r[_A_INT_SOURCE] = src
            return
        if reg != _A_DATAX0 or not self.measuring:
            return
        if mode:
            if self._fn:  # a data read pops the oldest entry into the output registers
                at = 6 * self._fr
                for i in range(6):
                    r[_A_DATAX0 + i] = self.fifo[at + i]
                self._fr = (self._fr + 1) % _A_ENTRIES
                self._fn -= 1
                self._overrun = False  # cleared when the FIFO's contents are read
        elif self.clock is None:
            self._convert()
