# HIL mode of the board (config "mode": "hil"): sample frames in over the link, the pipeline
# (features -> model -> decision) on every window of a fixed grid, result/actuator frames out.
#
# Window k covers stream samples [k*stride, k*stride + window). Every window is answered: a
# RESULT (computed, or skipped for a sensor fault, flag 1), or a LOST report (samples missing).
# Sensor faults (NaN marker, dropouts, stuck values, spikes) are reported as SENSOR_FAULT and
# the window is kept out of the decision: a broken sensor never stops a healthy machine.
# Input "frames": int16 counts go straight into the pipeline's ring buffer. Input "i2c": the
# samples (milli-g) feed the simulated MPU6050 on the fake I2C bus and the real driver reads
# them, so the driver is in the loop. Nothing in the per-frame path allocates.
# Sample indices and window ids live modulo 2**30 on the board (the low 30 bits of the host's
# u32): MicroPython's small ints are 31-bit on an ESP32, and a larger int would be a heap
# object, allocated per frame. Every comparison goes through idx_diff, so a stream crosses the
# wrap (and the host's 2**32) without losing a window; the host unwraps the ids it gets back.
import gc
import time

import micropython
from micropython import const

import link as L

NAN_MARK = const(-32768)  # int16 sample value the host sends for a missing (NaN) sample
_F_SKIPPED = const(1)
_K_NAN = const(1)
_K_DROPOUT = const(2)
_K_STUCK = const(3)
_K_SPIKE = const(4)
_LOST_GAP = const(1)
_LOST_BAD = const(2)
_C_REARM = const(1)
_C_QUIT = const(2)
_C_RESTART = const(3)
IDX_MASK = const(0x3FFFFFFF)  # board sample indices and window ids wrap at 2**30
_IDX_HALF = const(0x20000000)


def idx_diff(a, b):
    """a - b for indices modulo 2**30, in [-2**29, 2**29); every step stays a small int."""
    d = (a - b) & IDX_MASK
    if d >= _IDX_HALF:
        d -= _IDX_HALF
        d -= _IDX_HALF
    return d


def idx_add(a, n):
    """(a + n) modulo 2**30 for a, n in [0, 2**30), without the sum ever leaving small ints."""
    room = IDX_MASK - a
    return n - room - 1 if n > room else a + n


@micropython.viper
def copy_in(ring: ptr16, head: int, size: int, src: ptr8, off: int, nvals: int) -> int:
    """Copy nvals little-endian int16 from src[off:] into the ring at head; new head."""
    i = 0
    h = head
    o = off
    while i < nvals:
        ring[h] = src[o] | (src[o + 1] << 8)
        h += 1
        if h == size:
            h = 0
        o += 2
        i += 1
    return h


@micropython.viper
def check_window(ring: ptr16, n: int, ch: int, spike: int, stuck: int, channel_mask: int,
                 head: int) -> int:
    """Sensor-fault scan of n samples x ch channels in time order: from head (the oldest
    sample of the full ring) round to head again, so runs are never split at the wrap.

    Returns 0, or count << 8 | kind << 4 | channel for the first fault found, by priority
    NaN marker, spike (|v| >= spike), dropout (a run of >= stuck zeros), stuck (a run of >=
    stuck identical values). Integer-only; counts are capped to keep the result a small int.
    """
    best = 0
    best_rank = 0
    c = 0
    while c < ch:
        if (channel_mask >> c) & 1:
            nan = 0
            spk = 0
            zrun = 0
            srun = 0
            maxz = 0
            maxs = 0
            prev = 0x10000
            end = n * ch
            i = head + c
            if i >= end:
                i -= end
            j = 0
            while j < n:
                j += 1
                v = ring[i]
                if v & 0x8000:
                    v = v - 0x10000
                if v == NAN_MARK:
                    nan += 1
                elif v >= spike or v <= 0 - spike:
                    spk += 1
                if v == prev:
                    srun += 1
                    if v == 0:
                        zrun += 1
                else:
                    srun = 1
                    zrun = 1 if v == 0 else 0
                if srun > maxs:
                    maxs = srun
                if zrun > maxz:
                    maxz = zrun
                prev = v
                i += ch
                if i >= end:
                    i -= end
            kind = 0
            cnt = 0
            rank = 0  # 1 = most telling: NaN, spike, dropout, stuck
            if nan:
                kind = _K_NAN
                cnt = nan
                rank = 1
            elif spk:
                kind = _K_SPIKE
                cnt = spk
                rank = 2
            elif maxz >= stuck:
                kind = _K_DROPOUT
                cnt = maxz
                rank = 3
            elif maxs >= stuck:
                kind = _K_STUCK
                cnt = maxs
                rank = 4
            if kind and (best == 0 or rank < best_rank):
                if cnt > 65535:
                    cnt = 65535
                best = (cnt << 8) | (kind << 4) | c
                best_rank = rank
        c += 1
    return best


@micropython.viper
def f32_to_counts(buf: ptr8, off: int, nvals: int, odd: int, t: int, limit: int):
    """float32 LE values at buf[off:] -> int16 LE round(v * unit), in place, integer-only,
    with unit = odd << t (see f32_unit). Every product stays below 2**30 (32-bit viper).

    The significand keeps 15 fractional bits of the result, so power-of-two units are exact
    (round half away from zero); saturates at +-32767; NaN and inf become -32768 (no sample).
    """
    i = 0
    while i < nvals:
        src = off + 4 * i
        b2 = buf[src + 2]
        b3 = buf[src + 3]
        exp = ((b3 & 0x7F) << 1) | (b2 >> 7)
        v = 0
        if exp == 255:
            v = -32768
        elif exp != 0:
            drop = 135 - exp - t  # leaves value * unit with 15 fractional bits
            if drop < 0:
                drop = 0
            if drop <= 24:
                m = ((((b2 & 0x7F) | 0x80) << 16) | (buf[src + 1] << 8) | buf[src]) >> drop
                if m > limit:
                    v = 32767
                else:
                    p = m * odd
                    e = exp - 150 + drop + t  # value * unit = p * 2**e
                    if e >= 0:
                        v = 32767 if (e > 15 or p > (32767 >> e)) else (p << e)
                    else:
                        v = (p + (1 << (0 - e - 1))) >> (0 - e)
                        if v > 32767:
                            v = 32767
            if b3 & 0x80 and v != -32768:
                v = 0 - v
        dst = off + 2 * i
        buf[dst] = v & 0xFF
        buf[dst + 1] = (v >> 8) & 0xFF
        i += 1


def f32_unit(unit):
    """(odd, t, limit) for f32_to_counts: unit = odd << t, limit keeps m * odd < 2**30."""
    unit = int(unit)
    if not 0 < unit <= 32768:
        raise ValueError("hil: float32 scale must be 1..32768 counts per unit, got %d" % unit)
    t = 0
    while not unit & 1:
        unit >>= 1
        t += 1
    return unit, t, (1 << 30) // unit


class FrameSource:
    """Sample source for the simulated sensor chip: the current SAMPLES frame's values."""

    def __init__(self, buf, channels):
        self.buf = buf
        self.channels = channels
        self.pos = 0
        self.end = 0
        self.count = 0

    def next_into(self, out):
        p = self.pos
        if p >= self.end:
            return False
        b = self.buf
        for i in range(self.channels):
            v = b[p] | (b[p + 1] << 8)
            out[i] = v - 65536 if v & 0x8000 else v
            p += 2
        self.pos = p
        self.count += 1
        return True


def _kernels():
    import sys

    m = sys.modules.get("elrt")  # never import it here: a stand-in model runs without it
    return m.KERNELS if m is not None else "none"


class Bench:
    """The board's HIL agent: one link, one pipeline, the window grid and its accounting."""

    def __init__(self, cfg, model=None, link=None, consume_cfg=False):
        from decision import Decision
        from pipeline import Pipeline, RawFeatures

        hcfg = cfg.get("hil", {})
        if model is None:
            import elrt

            model = elrt.Model()
            model.load(cfg.get("model", "model.elb"))
        self.model = model
        self.input = hcfg.get("input", "frames")
        if self.input not in ("frames", "i2c"):
            raise ValueError("hil input must be 'frames' or 'i2c', not %r" % (self.input,))
        ch = cfg.get("channels", 3)
        self.channels = ch = ch if isinstance(ch, int) else len(ch)  # a count or the names
        self.window = w = int(cfg.get("window", len(model.input) // ch))
        self.stride = s = int(cfg.get("stride", w))
        scfg = cfg.get("sensor", {})
        if self.input == "i2c":  # counts as the MPU6050 gives them at its range
            lsb_per_g = {2: 16384, 4: 8192, 8: 4096, 16: 2048}.get(int(scfg.get("range_g", 16)))
            if lsb_per_g is None:
                raise ValueError("hil: sensor.range_g must be 2, 4, 8 or 16 for the MPU6050")
        else:
            lsb_per_g = int(hcfg.get("lsb_per_g", cfg.get("counts_per_unit", 2048)))
        # float32 frames carry g: scale to counts (frames) or milli-g (the simulated chip)
        self.float_unit = f32_unit(1000 if self.input == "i2c" else lsb_per_g)
        self.spike = min(32767, int(float(hcfg.get("spike_g", 8.0)) * lsb_per_g))
        self.stuck = int(hcfg.get("stuck_samples", 24))
        self.channel_mask = int(hcfg.get("check_channels", (1 << ch) - 1))
        pre = cfg.get("preprocess")
        if pre:
            import preprocess

            features = preprocess.Preprocessor(pre)
        else:
            features = RawFeatures(1.0 / lsb_per_g, model.input_scale, model.input_zero_point)
        self.n_out = len(model.output)
        self.decision = Decision(self.n_out, model.output_scale, model.output_zero_point,
                                 cfg.get("decision"))
        self.pipe = Pipeline(model, features, self.decision, w, s, ch)
        self.name = cfg.get("name", "edgeloop-hil")
        self.heap_lock = bool(hcfg.get("heap_lock", False))
        max_payload = int(hcfg.get("max_payload", 8 + 2 * ch * s))
        addr = scfg.get("addr", 0x68)
        range_g = int(scfg.get("range_g", 16))
        rate = int(cfg.get("sample_rate_hz", cfg.get("sample_rate", 1000)))
        if consume_cfg:
            cfg.clear()  # main.py holds the parsed config; everything needed is copied now
            gc.collect()
        if link is None:
            # the host sends one stride per SAMPLES frame: size the receive buffer for that
            link = L.Link(max_payload=max_payload)
        self.link = link
        self.sensor = None
        if self.input == "i2c":
            self._make_sensor(addr, range_g, rate)
        self.restart()

    def _make_sensor(self, addr, range_g, rate):
        from drivers.mpu6050 import MPU6050
        from simhw.chips import SimMPU6050
        from simhw.i2c import I2C

        self.source = FrameSource(self.link.rbuf, self.channels)
        self.i2c = I2C([SimMPU6050(self.source, addr)])
        self.sensor = MPU6050(self.i2c, addr, range_g, rate)
        self.raw = [0] * self.channels

    def restart(self, first=0):
        """A new stream: sample `first` (0 unless the host says) comes next and starts
        window 0; every window from 0 is still to be answered."""
        p = self.pipe
        p.head = 0
        p.filled = 0
        p.since = 0
        first &= IDX_MASK
        self.next_index = first  # stream index of the next sample expected (mod 2**30)
        self.valid_from = first  # first sample index of the contiguous data in the ring
        self.next_k = 0  # next window id to answer (mod 2**30)
        self.next_end = idx_add(first, self.window - 1)  # last sample of window next_k
        self.windows_done = 0
        self.stopped = False
        self.decision.reset()

    def hello(self):
        gc.collect()
        self.link.hello(self.window, self.stride, self.channels, self.n_out, gc.mem_free(),
                        self.name)

    def serve(self):
        """Answer frames until the host quits or the stream ends."""
        lk = self.link
        self.hello()
        lk.log("hil: input %s, window %d, stride %d, outputs %d, kernels %s" % (
            self.input, self.window, self.stride, self.n_out, _kernels()))
        if self.heap_lock:  # proves the per-frame path allocates nothing (tests)
            micropython.heap_lock()
        while True:
            typ = lk.recv()
            if typ == L.T_SAMPLES:
                self.on_samples()
            elif typ == L.T_PING:
                b = lk.rbuf
                token = (b[0] | (b[1] << 8) | (b[2] << 16)) if lk.len >= 3 else lk.seq
                lk.pong(token, self.windows_done, self.next_index)
            elif typ == L.T_CONTROL:
                op = lk.rbuf[0] if lk.len else 0
                if op == _C_QUIT:
                    return
                if op == _C_REARM:
                    self.stopped = False
                    self.decision.reset()
                elif op == _C_RESTART:
                    b = lk.rbuf
                    self.restart(_u30(b, 1) if lk.len >= 5 else 0)
            elif typ == L.EOF:
                return

    def on_samples(self):
        lk = self.link
        b = lk.rbuf
        if lk.len < 8:
            lk.lost(self.next_k, 0, _LOST_BAD)
            return
        first = _u30(b, 0)
        n = b[4] | (b[5] << 8)
        ch = b[6]
        width = 2 if b[7] == 0 else (4 if b[7] == 1 else 0)
        if ch != self.channels or not width or lk.len < 8 + width * n * ch:
            # wrong layout: these samples cannot be used; they become a gap
            lk.lost(self.next_k, 0, _LOST_BAD)
            return
        if width == 4:  # float32 values -> int16 counts in place (NaN/inf -> NAN_MARK)
            fu = self.float_unit
            f32_to_counts(b, 8, n * ch, fu[0], fu[1], fu[2])
        d = idx_diff(first, self.next_index)
        if d < 0:
            return  # a duplicate of samples already used (host retry): ignore
        if d > 0:
            self.gap(first)
        self.feed(8, n)

    def gap(self, first):
        """Samples [next_index, first) never arrived: report every window touching them."""
        s = self.stride
        start = idx_diff(self.next_end, self.window - 1)  # first sample of window next_k
        d = idx_diff(first, start)  # samples from that window's start to `first`
        if d > 0:  # windows next_k .. starting before `first`
            count = (d + s - 1) // s
            self.link.lost(self.next_k, count, _LOST_GAP)
            self.next_k = idx_add(self.next_k, count)
            self.next_end = idx_add(self.next_end, count * s)
        self.valid_from = first
        self.next_index = first
        p = self.pipe
        p.filled = 0

    def feed(self, off, n):
        """Push n samples (at rbuf[off:]) through the ring, running each completed window."""
        p = self.pipe
        ch = self.channels
        w = self.window
        size = p.size
        src = self.link.rbuf
        if self.sensor is not None:
            self.source.pos = off
            self.source.end = off + 2 * ch * n
        done = 0
        while done < n:
            take = idx_diff(self.next_end, self.next_index) + 1  # up to the next window's end
            if take > n - done:
                take = n - done
            if self.sensor is None:
                p.head = copy_in(p.ring, p.head, size, src, off + 2 * ch * done, take * ch)
            else:
                self.read_sensor(take)
            done += take
            self.next_index = idx_add(self.next_index, take)
            p.filled = w if p.filled + take >= w else p.filled + take
            if idx_diff(self.next_index, self.next_end) == 1:
                self.window_done()

    def read_sensor(self, take):
        p = self.pipe
        ring = p.ring
        raw = self.raw
        sensor = self.sensor
        size = p.size
        h = p.head
        for _ in range(take):
            sensor.read_raw_into(raw, 0)
            for i in range(self.channels):
                ring[h] = raw[i]
                h += 1
            if h == size:
                h = 0
        p.head = h

    def window_done(self):
        lk = self.link
        k = self.next_k
        self.next_k = idx_add(k, 1)
        start = idx_diff(self.next_end, self.window - 1)
        self.next_end = idx_add(self.next_end, self.stride)
        self.windows_done = idx_add(self.windows_done, 1)
        if idx_diff(start, self.valid_from) < 0:
            return  # already reported lost when the gap was seen
        p = self.pipe
        fault = check_window(p.ring, self.window, self.channels, self.spike, self.stuck,
                             self.channel_mask, p.head)
        if fault:
            lk.sensor_fault(k, (fault >> 4) & 15, fault & 15, fault >> 8)
            lk.result(k, 0, 1 if self.stopped else 0, _F_SKIPPED, p.model.output, 0, 0,
                      gc.mem_free())
            return
        t0 = time.ticks_us()
        alarm = p.run()
        dt = time.ticks_diff(time.ticks_us(), t0)
        d = self.decision
        lk.result(k, d.cls, 1 if alarm else 0, 0, p.model.output, self.n_out, dt, gc.mem_free())
        if alarm and not self.stopped:
            self.stopped = True
            lk.actuator(k, 1)


def _u30(b, o):
    # The low 30 bits of the little-endian u32 at b[o] (a small int on any port).
    return b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | ((b[o + 3] & 0x3F) << 24)


def main(cfg, model=None):
    """Entry from main.py when config.json says "mode": "hil"."""
    bench = Bench(cfg, model, consume_cfg=True)
    gc.collect()
    bench.serve()
