# The sampling path: samples move from the sensor's own clocked buffer (the MPU6050's or the
# ADXL345's FIFO, or a machine.Timer reading the ADC) into one preallocated Ring, and the app
# takes them out in time order. Inference, status lines and gc happen outside this path; while
# they run, the sensor's FIFO keeps the samples. Nothing here allocates after __init__.
#
# The Ring has one producer (a driver's drain(), or a timer callback) and one consumer (the
# app): each side only writes its own counter (written/read, modulo 2**28), so a soft-IRQ timer
# callback that runs between two bytecodes of the consumer cannot corrupt the count.
from array import array
from time import ticks_add, ticks_diff, ticks_us

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


def period_of(rate_hz):
    """The sample period as (num, den) microseconds, exact for the chips' rates
    (1000/(1+div) Hz: integer us; 3200 Hz: 625/2 us)."""
    if rate_hz <= 0:
        raise ValueError("sample rate must be > 0 Hz, not %r" % (rate_hz,))
    for den in (1, 2):
        num = 1000000 * den / rate_hz
        if abs(num - round(num)) < 1e-6 * num:
            return int(round(num)), den
    return int(round(1000000 / rate_hz)), 1


def samples_in(us, num, den):
    """Whole sample periods in us microseconds (us clipped to 2**28, ~4.5 min, so us * den
    stays a small int on a 32-bit port)."""
    if us <= 0:
        return 0
    if us > 0xFFFFFFF:
        us = 0xFFFFFFF
    return us * den // num


class Polled:
    """A sensor without a FIFO (the sensor list: SHT3x, SCD4x, the 6-axis IMU) read on the
    sample clock: drain() reads one sample per period, on time or less than a period late;
    periods the loop was busy through entirely are lost (counted in ring.lost), never read
    back to back late. Deadlines advance with ticks_add (a `+=` deadline becomes a big int
    past the ticks wrap, 2**30 us on an ESP32, and the loop stalls). paced=False (replay on
    the virtual board): as fast as the ring takes them. clock: ticks_us (tests inject one)."""

    fifo_samples = 0

    def __init__(self, sensor, rate_hz, paced=True, clock=None):
        self.sensor = sensor
        self.channels = sensor.channels
        self.scale_g = sensor.scale_g
        self.lsb_per_g = getattr(sensor, "lsb_per_g", 0)
        self.rate_hz = rate_hz
        self.period_us = int(1000000 / rate_hz)
        self.paced = paced
        self.clock = clock or ticks_us
        self._s = array("h", bytes(2 * self.channels))
        self.next_t = 0

    def start(self):
        self.next_t = self.clock()

    def waiting(self):
        return 0

    def due_in(self):
        """Microseconds until the next read is due (0: now)."""
        d = ticks_diff(self.next_t, self.clock())
        return d if d > 0 else 0

    def drain(self, ring):
        s = self._s
        if not self.paced:
            n = 0
            while ring.space() > 0:
                self.sensor.read_raw_into(s, 0)
                ring.put(s)
                n += 1
            return n
        p = self.period_us
        late = ticks_diff(self.clock(), self.next_t)
        if late < 0 or ring.space() <= 0:
            return 0
        if late >= p:  # whole periods the loop was busy through: no sample was taken
            missed = late // p
            ring.lost += missed
            ring.overflows += 1
            self.next_t = ticks_add(self.next_t, missed * p)
        self.next_t = ticks_add(self.next_t, p)
        try:
            self.sensor.read_raw_into(s, 0)
        except OSError:
            if not getattr(self.sensor, "exhausted", False):
                ring.lost += 1  # this period's sample was not taken
            raise
        ring.put(s)
        return 1
