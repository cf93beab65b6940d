# What the Sensirion I2C sensors (SHT3x, SCD4x) share: 16-bit big-endian commands written with
# writeto(), answers read with readfrom_into() as words of 2 bytes each followed by a CRC-8
# (polynomial 0x31, init 0xFF, no reflection; the datasheets' "0xBEEF -> 0x92" check value).
# These chips have no register map to address (no readfrom_mem_into): a command selects what
# the next read returns. A read the chip is not ready for is NACKed: OSError from the bus.
from micropython import const

_EIO = const(5)


def crc8(buf, start, n):
    """Sensirion CRC-8 of buf[start:start+n]; allocates nothing."""
    crc = 0xFF
    for i in range(start, start + n):
        crc ^= buf[i]
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


class SensirionI2C:
    """Command and word I/O through two preallocated buffers."""

    def __init__(self, i2c, addr, words):
        self.i2c = i2c
        self.addr = addr
        self._cmd = bytearray(2)
        self._rx = bytearray(3 * words)
        self._views = [memoryview(self._rx)[: 3 * k] for k in range(words + 1)]

    def command(self, cmd):
        b = self._cmd
        b[0] = cmd >> 8
        b[1] = cmd & 0xFF
        self.i2c.writeto(self.addr, b)

    def read_words(self, n):
        """Read n words into the receive buffer, checking every CRC (OSError EIO if one fails);
        word(i) then gives them."""
        rx = self._rx
        self.i2c.readfrom_into(self.addr, self._views[n])
        for i in range(n):
            if crc8(rx, 3 * i, 2) != rx[3 * i + 2]:
                raise OSError(_EIO)

    def word(self, i):
        return (self._rx[3 * i] << 8) | self._rx[3 * i + 1]


def centi_celsius(raw):
    """T = -45 + 175 * raw / (2**16 - 1) degC, in 0.01 degC, integer-only: raw * 4375 / 2**14
    stays below 2**30 (a small int on a 32-bit port); within 0.003 degC of the formula."""
    return ((raw * 4375 + 8192) >> 14) - 4500


def centi_percent(raw):
    """RH = 100 * raw / (2**16 - 1) %, in 0.01 %RH (raw * 625 / 2**12), integer-only."""
    return (raw * 625 + 2048) >> 12
