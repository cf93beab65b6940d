# A sensor without a FIFO read on the sample clock into a sampling.Ring (the sensor list on
# the virtual board and on a real one: SHT3x, SCD4x, the 6-axis IMU). Its own module: a board
# sampling a lone accelerometer through the chip's FIFO never loads it.
from array import array
from time import ticks_add, ticks_diff, ticks_us


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
        # unpaced, at most this many per drain: a simulated world that answers the board's
        # outputs (simhw/answer.py) must not run ahead of the decisions taken on it
        self.burst = 1 << 20

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
            while ring.space() > 0 and n < self.burst:
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
