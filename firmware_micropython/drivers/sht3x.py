# Sensirion SHT30/SHT31/SHT35 temperature and humidity sensor over I2C.
# Commands (datasheet SHT3x-DIS, v7): single shot, high repeatability, no clock stretching
# 0x2400 (measurement <= 15.5 ms); soft reset 0x30A2; read status 0xF32D; clear status 0x3041.
# A measurement reads back as 6 bytes: T msb, T lsb, CRC, RH msb, RH lsb, CRC. Reading before
# the measurement is done is NACKed. Address 0x44 (ADDR pin low) or 0x45.
#
# Channels: temperature (0.01 degC counts) and humidity (0.01 %RH counts), or a subset.
# Each read_raw_into() triggers a single-shot measurement and waits for it (16 ms), so the value
# is of the sampling instant, not one period old; the heater-free single shot also keeps the
# chip from warming itself at slow building rates (one sample a minute).
from time import sleep_ms

from micropython import const

from drivers.sensirion import SensirionI2C, centi_celsius, centi_percent

_MEASURE_HIGH = const(0x2400)
_SOFT_RESET = const(0x30A2)
_READ_STATUS = const(0xF32D)
_CLEAR_STATUS = const(0x3041)
_MEASURE_MS = const(16)

ADDR = const(0x44)
QUANTITIES = ("temperature", "humidity")
COUNTS_PER_UNIT = (100, 100)  # counts per degC, per %RH


class SHT3x:
    def __init__(self, i2c, addr=ADDR, reads=QUANTITIES):
        self.io = SensirionI2C(i2c, addr, 2)
        self.pick = bytearray(len(reads))
        for i, q in enumerate(reads):
            if q not in QUANTITIES:
                raise ValueError("SHT3x measures temperature and humidity, not %r" % (q,))
            self.pick[i] = QUANTITIES.index(q)
        self.channels = len(reads)
        self.io.command(_SOFT_RESET)
        sleep_ms(2)
        self.io.command(_READ_STATUS)
        self.io.read_words(1)  # a chip that answers with a good CRC is an SHT3x
        self.status = self.io.word(0)
        self.io.command(_CLEAR_STATUS)
        self.counts_per_unit = tuple(COUNTS_PER_UNIT[p] for p in self.pick)

    def read_raw_into(self, out, off=0):
        """The chosen quantities as counts into out[off:]; OSError on a bus or CRC error."""
        io = self.io
        io.command(_MEASURE_HIGH)
        sleep_ms(_MEASURE_MS)
        io.read_words(2)
        t = centi_celsius(io.word(0))
        rh = centi_percent(io.word(1))
        for i in range(self.channels):
            out[off + i] = t if self.pick[i] == 0 else rh
