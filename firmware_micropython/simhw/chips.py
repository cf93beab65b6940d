# Register-level simulations of the MPU6050 (here) and the ADXL345 (simhw/adxl345.py), as a driver
# sees them on the bus.
# Each keeps a register file and converts samples from its source to counts at the configured
# range, saturating like the real part. Source samples are in 1/units g (default 1000:
# milli-g); with units equal to the range's LSB/g the counts are the samples exactly.
#
# Two clocks:
# - clock=None (replay): samples come when the driver asks. Reading the first data register
#   latches the next sample; with the FIFO on, each FIFO count read tops the FIFO up with whole
#   frames (nothing is ever lost). For tests that play a long recording as fast as possible,
#   and for the HIL bench's register-level input, where the host paces the samples.
# - clock=time.ticks_us (wall clock, as on the hardware): the chip converts one sample per
#   period of its configured rate in wall-clock time, into its data registers and its FIFO
#   (MPU6050: 1024 bytes, overwrites the oldest bytes when full and sets FIFO_OFLOW_INT;
#   ADXL345: 32 entries, stream mode keeps the newest, FIFO mode stops, both set Overrun). The
#   chip catches up lazily on every bus access, so its state at each access is what a clocked
#   part's would be; nothing allocates on the way.
# seq=True hides each sample's sequence number (mod 4096) in the low 4 bits of the first three
# channels' counts, so a test can count every sample the app receives (simhw/seq.py).
from time import ticks_diff

from micropython import const

# MPU6050
_M_SMPLRT_DIV = const(0x19)
_M_CONFIG = const(0x1A)
_M_ACCEL_CONFIG = const(0x1C)
_M_FIFO_EN = const(0x23)
_M_INT_STATUS = const(0x3A)
_M_ACCEL_XOUT_H = const(0x3B)
_M_TEMP_OUT_H = const(0x41)
_M_USER_CTRL = const(0x6A)
_M_PWR_MGMT_1 = const(0x6B)
_M_FIFO_COUNTH = const(0x72)
_M_FIFO_COUNTL = const(0x73)
_M_FIFO_R_W = const(0x74)
_M_WHO_AM_I = const(0x75)
_M_SLEEP = const(0x40)
_M_RESET = const(0x80)
_M_U_FIFO_EN = const(0x40)
_M_U_FIFO_RESET = const(0x04)
_M_OFLOW = const(0x10)
_M_DATA_RDY = const(0x01)
_M_FIFO_BYTES = const(1024)

_SEQ_MASK = const(0xFFF)


def _clip16(v):
    return 32767 if v > 32767 else (-32768 if v < -32768 else v)


class _Chip:
    def __init__(self, addr, source, units=1000, clock=None, seq=False):
        self.addr = addr
        self.source = source
        self.units = units
        self.clock = clock
        self.seq = seq
        self.regs = bytearray(128)
        ch = source.channels if source is not None and hasattr(source, "channels") else 3
        self.sample = [0] * (ch if ch > 3 else 3)
        self.counts = [0, 0, 0]
        self.samples_read = 0  # samples converted so far (the next one's sequence number)
        self.exhausted = False
        self._t = 0  # ticks of the last catch-up
        self._acc = 0  # time since the last sample period boundary, in us * den
        self._was_on = False

    def write(self, reg, buf):
        self._tick()
        for i in range(len(buf)):
            self._write_reg(reg + i, buf[i])

    def read(self, reg, buf):
        self._tick()
        self._before_read(reg)
        if self._streams(reg):
            self._pop(buf)
            return
        for i in range(len(buf)):
            buf[i] = self.regs[(reg + i) & 0x7F]

    def _streams(self, reg):
        return False

    def pending(self):
        """What the FIFO holds (bytes on the MPU6050, entries on the ADXL345)."""
        return self._fn

    def _next(self):
        if self.source is None or not self.source.next_into(self.sample):
            self.exhausted = self.source is not None
            return False
        self.samples_read += 1
        return True

    def _tick(self):
        """Convert every sample period of wall-clock time since the last bus access."""
        clock = self.clock
        if clock is None:
            return
        now = clock()
        on = self._on()
        if not on or not self._was_on:
            self._t = now
            self._acc = 0
            self._was_on = on
            return
        dt = ticks_diff(now, self._t)
        if dt <= 0:
            return
        self._t = now
        if dt > 0xFFFFFFF:
            dt = 0xFFFFFFF
        num = self._period()  # us * _den per sample (a returned tuple would allocate)
        acc = self._acc + dt * self._den
        n = acc // num
        self._acc = acc - n * num
        while n > 0 and not self.exhausted:
            self._convert()
            n -= 1

    def _convert(self):
        if self._next():
            self._counts()
            if self.seq:
                k = (self.samples_read - 1) & _SEQ_MASK
                c = self.counts
                for i in range(3):
                    c[i] = (c[i] & ~15) | ((k >> (4 * i)) & 15)
            self._latch()
            self._to_fifo()


class SimMPU6050(_Chip):
    """MPU-6050: WHO_AM_I 0x68, sleeps after reset, AFS_SEL range, big-endian data, 1 kHz
    sample clock / (1 + SMPLRT_DIV) (8 kHz with the DLPF off), 1024-byte FIFO."""

    _den = 1

    def __init__(self, source=None, addr=0x68, units=1000, clock=None, seq=False):
        super().__init__(addr, source, units, clock, seq)
        self.fifo = bytearray(_M_FIFO_BYTES)
        self._fr = 0  # oldest byte
        self._fn = 0  # bytes held
        self._last = 0
        self.overflowed_bytes = 0  # bytes the FIFO overwrote (for tests)
        self._reset()

    def _reset(self):
        for i in range(len(self.regs)):
            self.regs[i] = 0
        self.regs[_M_WHO_AM_I] = 0x68
        self.regs[_M_PWR_MGMT_1] = _M_SLEEP
        self._fr = self._fn = 0

    def _write_reg(self, reg, value):
        if reg == _M_WHO_AM_I or reg == _M_INT_STATUS:
            return  # read-only
        if reg == _M_PWR_MGMT_1 and value & _M_RESET:
            self._reset()
            return
        if reg == _M_USER_CTRL and value & _M_U_FIFO_RESET:
            self._fr = self._fn = 0
            value &= ~_M_U_FIFO_RESET  # clears itself
        self.regs[reg] = value

    @property
    def sleeping(self):
        return bool(self.regs[_M_PWR_MGMT_1] & _M_SLEEP)

    def _on(self):
        return not self.regs[_M_PWR_MGMT_1] & _M_SLEEP

    def _period(self):
        dlpf = self.regs[_M_CONFIG] & 7
        base_us = 125 if dlpf == 0 or dlpf == 7 else 1000  # 8 kHz or 1 kHz gyro output rate
        return base_us * (1 + self.regs[_M_SMPLRT_DIV])

    @property
    def lsb_per_g(self):
        return 16384 >> ((self.regs[_M_ACCEL_CONFIG] >> 3) & 3)

    @property
    def fifo_on(self):
        return bool(self.regs[_M_USER_CTRL] & _M_U_FIFO_EN)

    def _counts(self):
        lsb = self.lsb_per_g
        c = self.counts
        s = self.sample
        u = self.units
        for i in range(3):
            c[i] = _clip16(s[i] * lsb // u)

    def _latch(self):
        r = self.regs
        c = self.counts
        for i in range(3):
            v = c[i] & 0xFFFF
            r[_M_ACCEL_XOUT_H + 2 * i] = v >> 8
            r[_M_ACCEL_XOUT_H + 2 * i + 1] = v & 0xFF
        r[_M_TEMP_OUT_H] = 0xF2  # ~25 C: (T - 36.53) * 340 = -3920 = 0xF0B0
        r[_M_TEMP_OUT_H + 1] = 0xB0
        r[_M_INT_STATUS] |= _M_DATA_RDY

    def _push(self, b):
        f = self.fifo
        if self._fn == _M_FIFO_BYTES:  # full: the oldest byte is overwritten
            self._fr = (self._fr + 1) & (_M_FIFO_BYTES - 1)
            self._fn -= 1
            self.overflowed_bytes += 1
            self.regs[_M_INT_STATUS] |= _M_OFLOW
        f[(self._fr + self._fn) & (_M_FIFO_BYTES - 1)] = b
        self._fn += 1

    def _frame_regs(self):
        # FIFO_EN bits in register order: ACCEL (3) 0x3B..0x40, TEMP (7), XG (6), YG (5), ZG (4)
        en = self.regs[_M_FIFO_EN]
        n = 6 if en & 0x08 else 0
        for bit in (0x80, 0x40, 0x20, 0x10):
            if en & bit:
                n += 2
        return n

    def _to_fifo(self):
        if not self.fifo_on:
            return
        en = self.regs[_M_FIFO_EN]
        r = self.regs
        if en & 0x08:
            for i in range(6):
                self._push(r[_M_ACCEL_XOUT_H + i])
        if en & 0x80:
            self._push(r[_M_TEMP_OUT_H])
            self._push(r[_M_TEMP_OUT_H + 1])
        for j, bit in ((0, 0x40), (1, 0x20), (2, 0x10)):
            if en & bit:
                self._push(r[0x43 + 2 * j])
                self._push(r[0x43 + 2 * j + 1])

    def _streams(self, reg):
        return reg == _M_FIFO_R_W

    def _pop(self, buf):
        f = self.fifo
        for i in range(len(buf)):
            if self._fn:
                self._last = f[self._fr]
                self._fr = (self._fr + 1) & (_M_FIFO_BYTES - 1)
                self._fn -= 1
            buf[i] = self._last  # an empty FIFO repeats the last byte read

    def _before_read(self, reg):
        r = self.regs
        if reg == _M_FIFO_COUNTH or reg == _M_FIFO_COUNTL:
            if self.clock is None and self.fifo_on:
                frame = self._frame_regs()
                while frame and self._fn + frame <= _M_FIFO_BYTES and not self.exhausted:
                    self._convert()
            r[_M_FIFO_COUNTH] = self._fn >> 8
            r[_M_FIFO_COUNTL] = self._fn & 0xFF
            return
        # Replay: a burst starting at ACCEL_XOUT_H reads one new sample (the data registers
        # of a sleeping chip keep their last values, as on the part).
        if reg == _M_ACCEL_XOUT_H and self.clock is None and not self.sleeping and \
                not self.fifo_on:
            self._convert()

    def read(self, reg, buf):
        _Chip.read(self, reg, buf)
        if reg == _M_INT_STATUS:
            self.regs[_M_INT_STATUS] = 0  # read-to-clear, after the value was read


def __getattr__(name):
    # The ADXL345 model lives in its own module: a board playing an MPU6050 never loads it.
    if name == "SimADXL345":
        from simhw.adxl345 import SimADXL345

        return SimADXL345
    raise AttributeError(name)
