# Sensirion SCD40/SCD41 photoacoustic CO2 sensor (also temperature and humidity) over I2C.
# Commands (datasheet SCD4x, v1.4): start_periodic_measurement 0x21B1 (a measurement every
# 5 s), stop_periodic_measurement 0x3F86 (takes 500 ms), get_data_ready_status 0xE4B8 (one
# word: data ready when its low 11 bits are not 0), read_measurement 0xEC05 (3 words: CO2 ppm,
# T = -45 + 175 * w / (2**16 - 1), RH = 100 * w / (2**16 - 1)), get_serial_number 0x3682
# (3 words). Every command but these few is refused while periodic measurement runs. Address
# 0x62. After each command the chip needs ~1 ms before it is read.
#
# The slow measurement cycle: the chip has a new value only every 5 s. read_raw_into() gives the
# latest one (holding it between measurements, as the chip's own buffer does) and raises
# OSError(EAGAIN) until the first measurement of the cycle exists, about 5 s after start.
from time import sleep_ms

from micropython import const

from drivers.sensirion import SensirionI2C, centi_celsius, centi_percent

_START_PERIODIC = const(0x21B1)
_STOP_PERIODIC = const(0x3F86)
_DATA_READY = const(0xE4B8)
_READ_MEASUREMENT = const(0xEC05)
_SERIAL = const(0x3682)
_EAGAIN = const(11)

ADDR = const(0x62)
QUANTITIES = ("co2", "temperature", "humidity")
COUNTS_PER_UNIT = (1, 100, 100)  # counts per ppm, per degC, per %RH
INTERVAL_MS = const(5000)


class SCD4x:
    def __init__(self, i2c, addr=ADDR, reads=("co2",)):
        self.io = SensirionI2C(i2c, addr, 3)
        self.pick = bytearray(len(reads))
        for i, q in enumerate(reads):
            if q not in QUANTITIES:
                raise ValueError("SCD4x measures co2, temperature and humidity, not %r" % (q,))
            self.pick[i] = QUANTITIES.index(q)
        self.channels = len(reads)
        self.counts_per_unit = tuple(COUNTS_PER_UNIT[p] for p in self.pick)
        self.io.command(_STOP_PERIODIC)  # it may still run from before a soft reset
        sleep_ms(500)
        self.io.command(_SERIAL)
        sleep_ms(1)
        self.io.read_words(3)
        self.serial = (self.io.word(0), self.io.word(1), self.io.word(2))
        self.io.command(_START_PERIODIC)
        self.last = [0, 0, 0]  # latest CO2, T, RH counts
        self.measurements = 0

    def data_ready(self):
        self.io.command(_DATA_READY)
        sleep_ms(1)
        self.io.read_words(1)
        return (self.io.word(0) & 0x07FF) != 0

    def read_raw_into(self, out, off=0):
        """Latest CO2 / T / RH (as chosen) into out[off:]; OSError on a bus or CRC error, and
        EAGAIN before the first measurement."""
        io = self.io
        if self.data_ready():
            io.command(_READ_MEASUREMENT)
            sleep_ms(1)
            io.read_words(3)
            last = self.last
            co2 = io.word(0)
            last[0] = co2 if co2 < 32767 else 32767  # int16 samples: saturate, never wrap
            last[1] = centi_celsius(io.word(1))
            last[2] = centi_percent(io.word(2))
            self.measurements += 1
        if not self.measurements:
            raise OSError(_EAGAIN)
        for i in range(self.channels):
            out[off + i] = self.last[self.pick[i]]
