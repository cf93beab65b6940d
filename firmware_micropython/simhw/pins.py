# Fake machine.Pin / ADC / WDT for the virtual board. A Pin records every change of its level
# with the sample index at which it happened, so tests can see what the application actuated.


class Pin:
    IN = 0
    OUT = 1
    clock = None  # set to a callable returning "now" (e.g. samples read) to timestamp changes

    def __init__(self, id, mode=-1, value=None):
        self.id = id
        self.mode = mode
        self._v = 0
        self.changes = []  # (time, level)
        if value is not None:
            self.value(value)

    def value(self, v=None):
        if v is None:
            return self._v
        v = 1 if v else 0
        if v != self._v:
            self._v = v
            self.changes.append((Pin.clock() if Pin.clock else len(self.changes), v))
        return None

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def __call__(self, v=None):
        return self.value(v)


class ADC:
    """A fake ADC whose read_u16 follows a 1-channel sample source (millivolts, 3.3 V span)."""

    ATTN_11DB = 3

    def __init__(self, source, full_scale_mv=3300):
        self.source = source
        self.full_scale_mv = full_scale_mv
        self._s = [0]
        self.ended = False

    def atten(self, a):
        pass

    def read_u16(self):
        if not self.source.next_into(self._s):
            self.ended = True
            raise OSError(5)  # EIO: the simulated signal ended
        v = self._s[0] * 65535 // self.full_scale_mv
        return 0 if v < 0 else (65535 if v > 65535 else v)


class WDT:
    """Records feeds; raises if not fed in time is left to the real one."""

    def __init__(self, id=0, timeout=5000):
        self.timeout = timeout
        self.feeds = 0

    def feed(self):
        self.feeds += 1

