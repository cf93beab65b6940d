# A fake machine.Timer for the virtual board (only the analog sensor's sampling uses one).
import time
from time import ticks_add, ticks_diff, ticks_us


class Timer:
    """machine.Timer for the virtual board, which has none. Nothing interrupts a unix-port
    program, so callbacks run when the app services the timers: Timer.sleep_us() runs each one
    on time while the app idles (as the ESP32's scheduler does during sleep), Timer.service()
    runs those that fell due while the app was busy: late, at most DEPTH in a row and the rest
    dropped, as an ESP32 soft timer drops events while the scheduler's queue is full. The
    callback sees the ticks it missed and counts them (drivers/analog.py)."""

    PERIODIC = 1
    ONE_SHOT = 0
    DEPTH = 8
    clock = None  # ticks_us unless set (tests inject a clock)
    active = []

    def __init__(self, id=0):
        self.id = id
        self.callback = None
        self.period_us = 0
        self.dropped = 0

    def init(self, mode=PERIODIC, period=None, freq=None, callback=None):
        clock = Timer.clock or ticks_us
        self.period_us = int(1000000 / freq) if freq else int(period) * 1000
        self.mode = mode
        self.callback = callback
        self._next = ticks_add(clock(), self.period_us)
        if self not in Timer.active:
            Timer.active.append(self)

    def deinit(self):
        if self in Timer.active:
            Timer.active.remove(self)

    @staticmethod
    def service():
        clock = Timer.clock or ticks_us
        for t in Timer.active:
            p = t.period_us
            late = ticks_diff(clock(), t._next)
            if late < 0:
                continue
            due = late // p + 1
            run = due if due < Timer.DEPTH else Timer.DEPTH
            t.dropped += due - run
            t._next = ticks_add(t._next, due * p)
            for _ in range(run):
                try:
                    t.callback(t)
                except OSError:  # as an uncaught exception in an IRQ handler: timer stopped
                    t.deinit()
                    break

    @staticmethod
    def sleep_us(us):
        """Idle for us microseconds, running every timer callback at its time."""
        clock = Timer.clock or ticks_us
        end = ticks_add(clock(), us)
        while True:
            Timer.service()
            now = clock()
            left = ticks_diff(end, now)
            if left <= 0:
                return
            for t in Timer.active:
                d = ticks_diff(t._next, now)
                if d < left:
                    left = d
            if left > 0:
                time.sleep_us(left)
