# The sampling path: samples move from the sensor's own clocked buffer (the MPU6050's or the
# ADXL345's FIFO, or a machine.Timer reading the ADC) into one preallocated Ring, and the app
# takes them out in time order. Inference, status lines and gc happen outside this path; while
# they run, the sensor's FIFO keeps the samples. Nothing here allocates after __init__.
#
# The Ring has one producer (a driver's drain(), or a timer callback) and one consumer (the
# app): each side only writes its own counter (written/read, modulo 2**28), so a soft-IRQ timer
# callback that runs between two bytecodes of the consumer cannot corrupt the count.
from array import array

from micropython import const

_MASK = const(0xFFFFFFF)  # sample counters wrap at 2**28 (small ints on every port)


class Ring:
    """Samples (channels int16 each) in arrival order between the sensor and the app."""

    def __init__(self, capacity, channels):
        self.capacity = capacity
        self.channels = channels
        self.size = capacity * channels
        self.buf = array("h", bytes(2 * self.size))
        self.wr = 0  # value index of the next sample to write (producer only)
        self.rd = 0  # value index of the next sample to read (consumer only)
        self.written = 0  # samples written, mod 2**28 (producer only)
        self.read = 0  # samples read, mod 2**28 (consumer only)
        self.lost = 0  # samples the sensor produced that never reach the app (producer only)
        self.overflows = 0  # overflow events behind `lost` (FIFO overflow, missed timer ticks)

    def count(self):
        return (self.written - self.read) & _MASK

    def space(self):
        return self.capacity - ((self.written - self.read) & _MASK)

    def put16(self, src, n, big):
        """n samples of int16 values from the bytes src, big-endian (an MPU6050 FIFO burst) or
        little-endian (ADXL345 data registers); the caller checked space()."""
        b = self.buf
        w = self.wr
        size = self.size
        hi = 0 if big else 1
        lo = 1 - hi
        o = 0
        for _ in range(n * self.channels):
            v = (src[o + hi] << 8) | src[o + lo]
            b[w] = v - 65536 if v & 0x8000 else v
            w += 1
            if w == size:
                w = 0
            o += 2
        self.wr = w
        self.written = (self.written + n) & _MASK

    def put1(self, v):
        """One 1-channel sample (a timer callback's ADC reading); False (and counted lost) when
        the ring is full."""
        if self.capacity - ((self.written - self.read) & _MASK) <= 0:
            self.lost += 1
            return False
        w = self.wr
        self.buf[w] = v
        w += 1
        self.wr = 0 if w == self.size else w
        self.written = (self.written + 1) & _MASK
        return True

    def put(self, sample):
        """One sample (channels values); the caller checked space()."""
        b = self.buf
        w = self.wr
        for i in range(self.channels):
            b[w + i] = sample[i]
        w += self.channels
        self.wr = 0 if w == self.size else w
        self.written = (self.written + 1) & _MASK

    def get_into(self, out):
        """The oldest sample into out[0:channels]; False when the ring is empty."""
        if self.written == self.read:
            return False
        b = self.buf
        r = self.rd
        for i in range(self.channels):
            out[i] = b[r + i]
        r += self.channels
        self.rd = 0 if r == self.size else r
        self.read = (self.read + 1) & _MASK
        return True

