# Register-level simulations of the MPU6050 and the ADXL345, as a driver sees them on the bus.
# Each keeps a register file; reading the first data register latches the next sample from its
# source converted to counts at the configured range, saturating like the real part. Source
# samples are in 1/units g (default 1000: milli-g); with units equal to the range's LSB/g the
# counts are the samples exactly.
from micropython import const

# MPU6050
_M_SMPLRT_DIV = const(0x19)
_M_CONFIG = const(0x1A)
_M_ACCEL_CONFIG = const(0x1C)
_M_ACCEL_XOUT_H = const(0x3B)
_M_TEMP_OUT_H = const(0x41)
_M_PWR_MGMT_1 = const(0x6B)
_M_WHO_AM_I = const(0x75)
_M_SLEEP = const(0x40)
_M_RESET = const(0x80)

# ADXL345
_A_DEVID = const(0x00)
_A_BW_RATE = const(0x2C)
_A_POWER_CTL = const(0x2D)
_A_DATA_FORMAT = const(0x31)
_A_DATAX0 = const(0x32)
_A_MEASURE = const(0x08)
_A_FULL_RES = const(0x08)


def _clip16(v):
    return 32767 if v > 32767 else (-32768 if v < -32768 else v)


class _Chip:
    def __init__(self, addr, source, units=1000):
        self.addr = addr
        self.source = source
        self.units = units
        self.regs = bytearray(128)
        self.sample = [0, 0, 0]
        self.samples_read = 0
        self.exhausted = False

    def write(self, reg, buf):
        for i in range(len(buf)):
            self._write_reg(reg + i, buf[i])

    def read(self, reg, buf):
        self._before_read(reg)
        for i in range(len(buf)):
            buf[i] = self.regs[(reg + i) & 0x7F]

    def _next(self):
        if self.source is None or not self.source.next_into(self.sample):
            self.exhausted = self.source is not None
            return False
        self.samples_read += 1
        return True


class SimMPU6050(_Chip):
    """MPU-6050: WHO_AM_I 0x68, sleeps after reset, AFS_SEL range, big-endian data."""

    def __init__(self, source=None, addr=0x68, units=1000):
        super().__init__(addr, source, units)
        self._reset()

    def _reset(self):
        for i in range(len(self.regs)):
            self.regs[i] = 0
        self.regs[_M_WHO_AM_I] = 0x68
        self.regs[_M_PWR_MGMT_1] = _M_SLEEP

    def _write_reg(self, reg, value):
        if reg == _M_WHO_AM_I:
            return  # read-only
        if reg == _M_PWR_MGMT_1 and value & _M_RESET:
            self._reset()
            return
        self.regs[reg] = value

    @property
    def sleeping(self):
        return bool(self.regs[_M_PWR_MGMT_1] & _M_SLEEP)

    @property
    def lsb_per_g(self):
        return 16384 >> ((self.regs[_M_ACCEL_CONFIG] >> 3) & 3)

    def _before_read(self, reg):
        # A burst starting at ACCEL_XOUT_H reads one new sample (the data registers of a
        # sleeping chip keep their last values, as on the part).
        if reg != _M_ACCEL_XOUT_H or self.sleeping or not self._next():
            return
        lsb = self.lsb_per_g
        r = self.regs
        for i in range(3):
            v = _clip16(self.sample[i] * lsb // self.units) & 0xFFFF
            r[_M_ACCEL_XOUT_H + 2 * i] = v >> 8
            r[_M_ACCEL_XOUT_H + 2 * i + 1] = v & 0xFF
        r[_M_TEMP_OUT_H] = 0xF2  # ~25 C: (T - 36.53) * 340 = -3920 = 0xF0B0
        r[_M_TEMP_OUT_H + 1] = 0xB0


class SimADXL345(_Chip):
    """ADXL345: DEVID 0xE5, standby until POWER_CTL Measure, range/FULL_RES, little-endian data."""

    def __init__(self, source=None, addr=0x53, units=1000):
        super().__init__(addr, source, units)
        self.regs[_A_DEVID] = 0xE5
        self.regs[_A_BW_RATE] = 0x0A

    def _write_reg(self, reg, value):
        if reg == _A_DEVID:
            return
        self.regs[reg] = value

    @property
    def measuring(self):
        return bool(self.regs[_A_POWER_CTL] & _A_MEASURE)

    @property
    def lsb_per_g(self):
        fmt = self.regs[_A_DATA_FORMAT]
        if fmt & _A_FULL_RES:
            return 256
        return 256 >> (fmt & 3)  # 10-bit mode: 256, 128, 64, 32 LSB/g

    def _limit(self):
        # Output saturates at the range: 13-bit in full resolution at 16 g, else 10-bit.
        fmt = self.regs[_A_DATA_FORMAT]
        bits = (10 + (fmt & 3)) if fmt & _A_FULL_RES else 10
        return (1 << (bits - 1)) - 1

    def _before_read(self, reg):
        if reg != _A_DATAX0 or not self.measuring or not self._next():
            return
        lsb = self.lsb_per_g
        lim = self._limit()
        r = self.regs
        for i in range(3):
            v = self.sample[i] * lsb // self.units
            v = lim if v > lim else (-lim - 1 if v < -lim - 1 else v)
            v &= 0xFFFF
            r[_A_DATAX0 + 2 * i] = v & 0xFF
            r[_A_DATAX0 + 2 * i + 1] = v >> 8
