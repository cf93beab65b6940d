# The virtual board's evidence of host starvation. A real MCU runs its loop whenever it is not
# asleep; the virtual board is a process on a shared host, and the host's scheduler can leave
# it waiting for a CPU for longer than a sensor's FIFO holds. Linux counts exactly that time:
# /proc/self/schedstat's second field is the process's total run-queue wait (runnable, not
# run) in ns. HostWait reads it without allocating (one open file, one preallocated buffer),
# so the sampling path can say, at each drain, how much of the time since the last one the
# host took: what is left is the board's own doing. HostSampler is the app's sampling path
# with those figures: the longest time between two drains (gap_max, us), the same less the
# host's waits (own_gap_max: the board's own doing), the total wait, and an "overflow" event
# for every loss saying whose time it was.
from micropython import const
from time import ticks_diff, ticks_us

from sampling import Sampler

_WRAP = const(100000000)  # us counter wraps at 10**8 (100 s; small ints on 32-bit ports)


class HostWait:
    def __init__(self, path="/proc/self/schedstat"):
        self.f = open(path, "rb")
        self.buf = bytearray(64)

    def us(self):
        """The host's run-queue wait of this process so far, us mod 10**8."""
        f = self.f
        b = self.buf
        f.seek(0)
        n = f.readinto(b)
        i = 0
        while i < n and b[i] != 32:  # skip field 1 (time on a CPU)
            i += 1
        i += 1
        j = i
        while j < n and 48 <= b[j] <= 57:
            j += 1
        v = 0
        for k in range(i, j - 3):  # ns -> us: the last three digits dropped
            v = (v * 10 + b[k] - 48) % _WRAP
        return v


def host_wait():
    """A HostWait where the host keeps the figure (Linux), else None."""
    try:
        w = HostWait()
        w.us()
        return w
    except (OSError, ValueError):
        return None


class HostSampler(Sampler):
    """sampling.Sampler timing every drain against the host's waits (virtual board only)."""

    def __init__(self, cfg, hw, window, stride, channels, host):
        Sampler.__init__(self, cfg, hw, window, stride, channels)
        self.host = host
        self.t_drain = 0
        self.w_drain = 0

    def wait_us(self):
        return self.host.us()

    def start(self):
        Sampler.start(self)
        self.t_drain = ticks_us()
        self.w_drain = self.host.us()

    def drain(self):
        now = ticks_us()
        gap = ticks_diff(now, self.t_drain)
        self.t_drain = now
        w = self.host.us()
        waited = (w - self.w_drain) % _WRAP
        self.w_drain = w
        self.waited += waited
        if gap > self.gap_max:
            self.gap_max = gap
        if gap - waited > self.own_gap_max:
            self.own_gap_max = gap - waited
        ring = self.ring
        overflows = ring.overflows
        lost = ring.lost
        left = getattr(self.hw.sensor, "_left", 0)  # what the last drain left in the FIFO
        n = Sampler.drain(self)
        if ring.overflows != overflows:  # a loss: say when, and whose time it was
            self.hw.emit({"event": "overflow", "gap_us": gap, "wait_us": waited, "left": left,
                          "lost": ring.lost - lost, "fifo": self.fifo,
                          "period_us": self.period_us})
        return n
