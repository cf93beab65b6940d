# One analog input through the ESP32 ADC (machine.ADC), as a 1-channel sensor.
# Raw counts are read_u16() (0..65535) shifted to signed around mid-scale, so they fit an
# array('h') like the accelerometers' counts; scale_g converts counts to volts.
#
# Real-time sampling: an ADC has no FIFO, so start(ring) runs a machine.Timer at the sample rate
# whose callback reads one value into the ring. The callback checks its own timing: ticks the
# scheduler never delivered (a soft timer waits while native code runs, and its queue is
# short) are counted in ring.lost, as is a full ring. drain() has nothing to move.
from time import ticks_add, ticks_diff, ticks_us


class Analog:
    channels = 1
    fifo_samples = 0  # the ring is the only buffer

    def __init__(self, adc, full_scale_v=3.3, rate_hz=100):
        # adc: a machine.ADC (or anything with read_u16), already on its pin with its attenuation
        self.adc = adc
        self.scale_g = full_scale_v / 65536
        self.offset_v = full_scale_v / 2
        self.rate_hz = rate_hz
        self.period_us = int(1000000 / rate_hz)
        self.timer = None
        self._ring = None
        self._next = 0

    @classmethod
    def on_pin(cls, pin, full_scale_v=3.3, rate_hz=100):
        from machine import ADC, Pin

        adc = ADC(Pin(pin))
        try:
            adc.atten(ADC.ATTN_11DB)  # ~0..3.3 V on ESP32
        except AttributeError:
            pass
        return cls(adc, full_scale_v, rate_hz)

    def read_raw_into(self, out, off=0):
        out[off] = self.adc.read_u16() - 32768

    def start(self, ring, timer_cls=None, timer_id=0):
        """Sample into ring from a periodic timer at rate_hz (machine.Timer unless given)."""
        if timer_cls is None:
            from machine import Timer as timer_cls
        self._ring = ring
        self._next = ticks_add(ticks_us(), self.period_us)
        self.timer = timer_cls(timer_id)
        if self.period_us % 1000 == 0:  # whole milliseconds: exact on every port
            self.timer.init(mode=timer_cls.PERIODIC, period=self.period_us // 1000,
                            callback=self._tick)
        else:
            self.timer.init(mode=timer_cls.PERIODIC, freq=self.rate_hz, callback=self._tick)

    def _tick(self, _t):
        # Timer callback: one reading; no allocation (bound method made once in start()).
        ring = self._ring
        p = self.period_us
        late = ticks_diff(ticks_us(), self._next)
        if late < -(p >> 1):
            return  # a queued callback running ahead of its tick (after a backlog): no sample
        if late >= p:  # ticks that never ran: their samples are lost, say so
            missed = late // p
            ring.lost += missed
            ring.overflows += 1
            self._next = ticks_add(self._next, missed * p)
        self._next = ticks_add(self._next, p)
        ring.put1(self.adc.read_u16() - 32768)

    def stop(self):
        if self.timer is not None:
            self.timer.deinit()
            self.timer = None

    def due_in(self):
        return -1  # sampled by its own clock: no read to wake up for

    def waiting(self):
        return 0

    def drain(self, ring):
        return 0
