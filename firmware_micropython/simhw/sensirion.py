# Command-level simulations of the Sensirion SHT3x and SCD4x as a driver sees them on the bus:
# 16-bit commands in, CRC-8 protected words out, NACK (OSError ENODEV from the bus) for a read
# the chip has nothing for or a command it refuses in its current state.
#
# Both measure a SharedRow (simhw/row.py): the current sample of a multi-channel source in the
# run's counts (0.01 degC, 0.01 %RH, 1 ppm), advanced once per sample by whoever paces the
# simulation (the app's sensor reader, or the HIL bench per sample), with its simulated time.
# The SHT3x converts in 15 ms of real time after its trigger; the SCD4x measures every 5 s of
# simulated time (so a simulated day runs in seconds) and refuses most commands meanwhile.
from time import ticks_diff, ticks_ms

from micropython import const

ENODEV = const(19)
_SHT_MEASURE_HIGH = const(0x2400)
_SHT_SOFT_RESET = const(0x30A2)
_SHT_READ_STATUS = const(0xF32D)
_SHT_CLEAR_STATUS = const(0x3041)
_SCD_START = const(0x21B1)
_SCD_STOP = const(0x3F86)
_SCD_READY = const(0xE4B8)
_SCD_READ = const(0xEC05)
_SCD_SERIAL = const(0x3682)
_SCD_INTERVAL_MS = const(5000)


def crc8(buf, start, n):
    crc = 0xFF
    for i in range(start, start + n):
        crc ^= buf[i]
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def raw_celsius(centi):
    """0.01 degC counts -> the 16-bit word T = -45 + 175 * w / 65535 (rounded, saturated)."""
    w = ((centi + 4500) * 65535 + 8750) // 17500
    return 0 if w < 0 else (65535 if w > 65535 else w)


def raw_percent(centi):
    w = (centi * 65535 + 5000) // 10000
    return 0 if w < 0 else (65535 if w > 65535 else w)


class _Sensirion:
    def __init__(self, row, addr, index):
        self.row = row
        self.addr = addr
        self.index = index  # row channel of each quantity (-1: not in the source)
        self.out = bytearray(9)
        self.n_out = 0  # bytes the next read returns (0: NACK)
        self.commands = 0

    def _words(self, *words):
        b = self.out
        for i, w in enumerate(words):
            b[3 * i] = w >> 8
            b[3 * i + 1] = w & 0xFF
            b[3 * i + 2] = crc8(b, 3 * i, 2)
        self.n_out = 3 * len(words)

    def _value(self, q):
        i = self.index[q]
        return self.row.values[i] if i >= 0 else 0

    def read_into(self, buf):
        self._before_read()
        if not self.n_out or len(buf) > self.n_out:
            raise OSError(ENODEV)
        for i in range(len(buf)):
            buf[i] = self.out[i]
        self.n_out = 0

    def _before_read(self):
        pass

    def write_cmd(self, buf):
        if len(buf) < 2:
            raise OSError(ENODEV)
        self.commands += 1
        self.n_out = 0
        self._command((buf[0] << 8) | buf[1])


class SimSHT3x(_Sensirion):
    """SHT3x: single-shot high-repeatability measurements, status word, soft reset."""

    def __init__(self, row, addr=0x44, index=(0, 1)):
        super().__init__(row, addr, index)
        self.status = 0x8010  # alert pending, reset detected (as after power-up)
        self._t0 = None
        self._latched = (0, 0)
        self.measurements = 0

    def _command(self, cmd):
        if cmd == _SHT_MEASURE_HIGH:
            self._latched = (raw_celsius(self._value(0)), raw_percent(self._value(1)))
            self._t0 = ticks_ms()
        elif cmd == _SHT_READ_STATUS:
            self._words(self.status)
        elif cmd == _SHT_CLEAR_STATUS:
            self.status = 0
        elif cmd == _SHT_SOFT_RESET:
            self.status = 0x0010
            self._t0 = None
        else:
            raise OSError(ENODEV)

    def _before_read(self):
        if self._t0 is not None and ticks_diff(ticks_ms(), self._t0) >= 15:
            self._t0 = None
            self.measurements += 1
            self._words(self._latched[0], self._latched[1])


class SimSCD4x(_Sensirion):
    """SCD4x: periodic measurement every 5 s of simulated time; data-ready word; serial."""

    def __init__(self, row, addr=0x62, index=(0, -1, -1), serial=(0x1234, 0x5678, 0x9ABC)):
        super().__init__(row, addr, index)
        self.serial = serial
        self.running = False
        self._next_ms = 0
        self._ready = False
        self._meas = (0, 0, 0)
        self.measurements = 0

    def _tick(self):
        if self.running and self.row.t_ms >= self._next_ms:
            while self._next_ms <= self.row.t_ms:
                self._next_ms += _SCD_INTERVAL_MS
            self._meas = (min(40000, max(0, self._value(0))), raw_celsius(self._value(1)),
                          raw_percent(self._value(2)))
            self._ready = True
            self.measurements += 1

    def _command(self, cmd):
        self._tick()
        if cmd == _SCD_READY:
            self._words(0x8006 if self._ready else 0x8000)
        elif cmd == _SCD_READ:
            if not self._ready:
                return  # nothing to read: the read is NACKed
            self._words(*self._meas)
            self._ready = False
        elif cmd == _SCD_STOP:
            self.running = False
        elif self.running:
            raise OSError(ENODEV)  # refused during periodic measurement
        elif cmd == _SCD_START:
            self.running = True
            self._next_ms = self.row.t_ms + _SCD_INTERVAL_MS
        elif cmd == _SCD_SERIAL:
            self._words(*self.serial)
        else:
            raise OSError(ENODEV)
