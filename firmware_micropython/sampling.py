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

try:
    from time import ticks_diff, ticks_us
except ImportError:  # pragma: no cover - every MicroPython port has them
    ticks_diff = ticks_us = None

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


class Sampler:
    """The sampling path: the sensor's clocked buffer drained into one Ring, read errors
    counted (the driver re-created after reinit_after in a row), nothing allocated."""

    def __init__(self, cfg, hw, window, stride, channels):
        self.hw = hw
        sensor = hw.sensor
        self.rate = getattr(sensor, "rate_hz", None) or \
            float(cfg.get("sample_rate_hz", cfg.get("sample_rate", 1000)))
        # (num, den) us per sample: exact for the chips' clocks (3200 Hz: 625/2 us)
        self.period = getattr(sensor, "period", None) or (int(1000000 / self.rate), 1)
        self.period_us = self.period[0] // self.period[1]
        self.stride_us = stride * self.period[0] // self.period[1]
        self.fifo = getattr(sensor, "fifo_samples", 0)
        cap = int(cfg.get("sensor", {}).get("ring", 0))
        if not cap:
            # with a FIFO, the ring only carries samples from the FIFO to the pipeline (what
            # does not fit stays in the FIFO); without one, it is the only buffer: a quarter
            # second, at least two strides
            cap = 64 if self.fifo else max(2 * stride, int(self.rate) // 4, 64)
        self.ring = Ring(cap, channels)
        # longest nap between drains: a quarter of the buffer's time, 1..100 ms
        buf_us = (self.fifo or cap) * self.period_us
        nap = buf_us // 4
        self.nap_max = 1000 if nap < 1000 else (100000 if nap > 100000 else nap)
        self.reinit_after = int(cfg.get("reinit_after", 50))
        self.errors = 0
        self.consecutive = 0
        # a late window is skipped once this many samples wait behind it: a stride (the next
        # window is complete already) or half the FIFO, whichever is more, so a short stall
        # is caught up on without skipping anything
        self.skip_at = max(stride, (self.fifo or cap) // 2)
        self.t_ok = 0

    def start(self):
        self.hw.start(self.ring)
        self.t_ok = ticks_us()

    # the virtual board's evidence of host stalls (simhw/hostwait.py HostSampler); a real
    # board has no host: nothing waits, the figures stay 0
    host = None
    gap_max = 0
    own_gap_max = 0
    waited = 0

    def wait_us(self):
        return 0

    def drain(self):
        hw = self.hw
        try:
            n = hw.drain(self.ring)
        except OSError as exc:
            self.errors += 1
            self.consecutive += 1
            if self.consecutive == 1 or self.errors % 100 == 0:
                hw.emit({"event": "sensor_error", "errno": exc.args[0] if exc.args else 0,
                      "errors": self.errors})
            if self.consecutive >= self.reinit_after:
                self.consecutive = 0
                try:
                    hw.sensor = hw.make_sensor()
                    # a new driver starts an empty FIFO: what the old one held is gone
                    gone = ticks_diff(ticks_us(), self.t_ok) // self.period_us
                    self.ring.lost += gone
                    self.ring.overflows += 1
                    hw.start(self.ring)
                    self.t_ok = ticks_us()
                    hw.emit({"event": "sensor_reinit", "errors": self.errors, "lost": gone})
                except OSError:
                    pass
            return 0
        self.consecutive = 0
        self.t_ok = ticks_us()
        return n

    def backlog(self):
        """Samples taken but not yet in the pipeline (ring and sensor FIFO)."""
        try:
            return self.ring.count() + self.hw.sensor.waiting()
        except OSError:
            return self.ring.count()

    def nap(self, pipe):
        """Sleep until the next window can be complete (at most nap_max): the FIFO fills
        meanwhile; on a real board the CPU idles."""
        need = pipe.window - pipe.filled
        s = pipe.stride - pipe.since
        if s > need:
            need = s
        us = need * self.period_us
        if us > self.nap_max:
            us = self.nap_max
        due = self.hw.sensor.due_in()  # a sensor read on the sample clock: wake for it
        if 0 <= due < us:
            us = due
        if us > 0:
            self.hw.nap(us)
