# Board side of `edgeloop collect`: the app's own sampling path (the sensor's driver and FIFO,
# or a polled sensor on the sample clock, drained by app.Sampler into one sampling.Ring) sent to
# the host as framed, CRC-checked frames (link.py). Every DATA frame carries the sequence
# number of its first sample; the sequence counts every sample the sensor produced, lost ones
# included, so a sample lost on the board (FIFO overflow, a sensor re-created) or on the wire
# (a frame dropped for its CRC) is a gap the host sees. Host side: edgeloop/collect/wire.py.
#
# The host drives it with CONTROL frames: STREAM (samples flow until STOP), CAPTURE n (burst:
# n samples into a buffer in RAM, then uploaded; frames are sent again on RESEND until the host
# says DONE), QUIT. Nothing allocates in the sampling loops: the frame is built in place in the
# link's transmit buffer, the sequence and clock stay small ints (modulo 2**30, idx_add), the
# host's commands are polled with ipoll.
#
# Frames, little-endian (payload after link.py's 7-byte header):
#   INFO 0x30       u16 version, u8 channels, u8 flags (1: replay, samples come as fast as
#                   drained: no clock), u32 period_num, u32 period_den (us per
#                   sample = num/den), u32 heap free, u16 fifo samples, u16 batch, sensor name
#   DATA 0x31       u32 first seq, u16 n, u8 channels, u8 flags (1: burst upload), u32 clock seq,
#                   u32 clock ticks_us: at that board time clock-seq samples had been produced;
#                   then n * channels int16
#   BURST_END 0x32  u32 n captured, u32 lost, u32 k1, u32 t1, u32 k2, u32 t2 (samples produced
#                   by board times t1 and t2, ticks_us mod 2**30)
#   REFUSED 0x33    u8 code (1 no memory, 3 the simulated samples ran out), u32 value
#                   (free heap), text
#   CONTROL 0x11    host -> board: u8 op (2 quit, 4 stream, 5 capture + u32 n, 6 resend + u32
#                   first + u32 n, 7 done, 8 stop)
import gc
import json
import struct
from array import array

import micropython
from micropython import const

import link as L
from hardware import Hardware
from sampling import Sampler

try:
    from time import sleep_us, ticks_diff, ticks_us
except ImportError:  # pragma: no cover - every MicroPython port has them
    sleep_us = ticks_diff = ticks_us = None

VERSION = const(1)
T_INFO = const(0x30)
T_DATA = const(0x31)
T_BURST_END = const(0x32)
T_REFUSED = const(0x33)
OP_QUIT = const(2)
OP_STREAM = const(4)
OP_CAPTURE = const(5)
OP_RESEND = const(6)
OP_DONE = const(7)
OP_STOP = const(8)
F_BURST = const(1)
_MASK = const(0x3FFFFFFF)  # sequence numbers and ticks travel modulo 2**30 (small ints)
_HEAD = const(16)  # DATA header bytes
_MAX_WAIT_US = const(50000)  # a partly filled frame leaves after 50 ms (low rates, live view)
_RESERVE = const(6144)  # heap left free beside a burst buffer (upload, gc, the link)


def idx_add(a, n):
    """(a + n) modulo 2**30 for a, n in [0, 2**30), never leaving small ints."""
    room = _MASK - a
    return n - room - 1 if n > room else a + n


class Collector:
    def __init__(self, cfg, rx=None, tx=None):
        self.cfg = cfg
        self.link = None
        self.hw = Hardware(cfg, self.emit)
        sensor = self.hw.sensor
        ch = sensor.channels
        self.ch = ch
        fifo = getattr(sensor, "fifo_samples", 0)
        # frames of at most ~240 payload bytes: small enough for a board's UART buffers
        self.batch = int(cfg.get("batch", 0)) or (112 // ch)
        # the ring takes a whole FIFO per drain, so each clock point counts every sample taken
        scfg = cfg.setdefault("sensor", {})
        scfg.setdefault("ring", 2 * (fifo if fifo > self.batch else self.batch))
        self.sampler = Sampler(cfg, self.hw, self.batch, self.batch, ch)
        self.ring = self.sampler.ring
        self.link = L.Link(rx, tx, 64, _HEAD + 2 * ch * self.batch + 16)
        self.sample = array("h", bytes(2 * ch))
        self.seq = 0
        self.poll = None
        self.heap_lock = bool(cfg.get("heap_lock", False))  # tests: the loops allocate nothing
        # tests: the loop stalls once for stall[1] ms after stall[0] frames (the board busy
        # elsewhere), so the sensor's FIFO overflows on its own clock
        st = cfg.get("stall") or (0, 0)
        self.stall_after = int(st[0])
        self.stall_ms = int(st[1])
        self.frames = 0
        try:
            import select

            self.poll = select.poll()
            self.poll.register(self.link.rx, select.POLLIN)
            for _ in self.poll.ipoll(0):  # its first call allocates the tuple it yields
                pass
        except (ImportError, AttributeError, OSError):
            self.poll = None

    def emit(self, obj):
        """The sampling path's events (sensor errors, re-inits) as LOG frames (allocates: only
        on such an event)."""
        if self.link is not None:
            self.link.log(json.dumps(obj))
        else:
            print(json.dumps(obj))

    # -- frames ---------------------------------------------------------------------------------
    def info(self):
        s = self.sampler
        t = self.link.tbuf
        gc.collect()
        flags = 1 if self.hw.replay else 0  # 1: no clock (the virtual board's replay)
        struct.pack_into("<HBBIIIHH", t, L.HEADER, VERSION, self.ch, flags, s.period[0], s.period[1],
                         gc.mem_free(), s.fifo, self.batch)
        name = self.cfg.get("sensor", {}).get("kind", "sensors")
        n = 20 + self.link._put(20, name)
        self.link.send(T_INFO, n)

    def data(self, first, n, flags, clock_seq, clock_t):
        struct.pack_into("<IHBBII", self.link.tbuf, L.HEADER, first, n, self.ch, flags,
                         clock_seq, clock_t)
        self.link.send(T_DATA, _HEAD + 2 * self.ch * n)
        self.frames += 1

    def refused(self, code, value, text):
        struct.pack_into("<BI", self.link.tbuf, L.HEADER, code, value)
        self.link.send(T_REFUSED, 5 + self.link._put(5, text))

    def command(self, wait):
        """The host's next CONTROL op (0: none yet); -1 when the host closed the link."""
        lk = self.link
        if not wait and self.poll is not None:
            ready = False
            for _ in self.poll.ipoll(0):
                ready = True
            if not ready:
                return 0
        typ = lk.recv()
        if typ == L.EOF:
            return -1
        if typ != L.T_CONTROL or lk.len < 1:
            return 0
        return lk.rbuf[0]

    def _u32(self, off):
        b = self.link.rbuf
        return b[off] | (b[off + 1] << 8) | (b[off + 2] << 16) | ((b[off + 3] & 0x3F) << 24)

    # -- sampling -------------------------------------------------------------------------------
    def _start(self):
        """Sampling starts afresh (the FIFO emptied): samples a previous stream or burst left
        in the ring are not contiguous with the new ones, so they go."""
        self.sampler.start()
        while self.ring.get_into(self.sample):
            pass

    def _drain_all(self):
        """Everything the sensor holds into the ring (a Polled sensor gives one per call)."""
        s = self.sampler
        while s.drain():
            if self.ring.space() <= 0:
                break

    def _nap(self):
        s = self.sampler
        us = s.period_us * self.batch // 2
        if us > s.nap_max:
            us = s.nap_max
        due = self.hw.sensor.due_in()
        if 0 <= due < us:
            us = due
        if us > 0:
            self.hw.nap(us)

    def stream(self):
        """Samples to the host until STOP/QUIT; returns the op that ended it."""
        hw = self.hw
        ring = self.ring
        lk = self.link
        t = lk.tbuf
        ch = self.ch
        batch = self.batch
        sample = self.sample
        base = L.HEADER + _HEAD
        first = self.seq  # sequence number of the frame's first sample
        nb = 0
        lost_seen = ring.lost
        t_first = 0
        polls = 0
        op = 0
        self._start()
        if self.heap_lock:
            micropython.heap_lock()
        while True:
            hw.feed()
            self._drain_all()
            now = ticks_us()
            clock_t = now & _MASK
            clock_seq = idx_add(first, nb + ring.count())
            while ring.get_into(sample):
                o = base + 2 * ch * nb
                for i in range(ch):
                    v = sample[i]
                    t[o] = v & 0xFF
                    t[o + 1] = (v >> 8) & 0xFF
                    o += 2
                if nb == 0:
                    t_first = now
                nb += 1
                if nb == batch:
                    self.data(first, nb, 0, clock_seq, clock_t)
                    first = idx_add(first, nb)
                    nb = 0
            if ring.lost != lost_seen:  # lost on the board: the sequence jumps over them
                if nb:
                    self.data(first, nb, 0, clock_seq, clock_t)
                    first = idx_add(first, nb)
                    nb = 0
                first = idx_add(first, (ring.lost - lost_seen) & _MASK)
                lost_seen = ring.lost
            elif nb and ticks_diff(now, t_first) >= _MAX_WAIT_US:
                self.data(first, nb, 0, clock_seq, clock_t)
                first = idx_add(first, nb)
                nb = 0
            polls += 1
            if polls >= 8 or hw.finished():
                polls = 0
                op = self.command(False)
                if op == OP_STOP or op == OP_QUIT or op < 0 or hw.finished():
                    break
            if self.stall_ms and self.frames >= self.stall_after:
                sleep_us(1000 * self.stall_ms)
                self.stall_ms = 0
            if not hw.replay:
                self._nap()
        if self.heap_lock:
            micropython.heap_unlock()
        if nb:
            self.data(first, nb, 0, clock_seq, clock_t)
            first = idx_add(first, nb)
        self.seq = first
        if hw.finished():
            self.refused(3, 0, "the simulated sensor's samples ran out")
        return op if op else OP_QUIT

    def capture(self, n):
        """Burst: n samples into RAM on the sampling path, then uploaded until the host has all."""
        ch = self.ch
        gc.collect()
        need = 2 * ch * n
        if need + _RESERVE > gc.mem_free():
            self.refused(1, gc.mem_free() - _RESERVE, "burst of %d samples needs %d B" % (n, need))
            return 0
        try:
            buf = bytearray(need)
        except MemoryError:
            self.refused(1, gc.mem_free() - _RESERVE, "burst of %d samples needs %d B" % (n, need))
            return 0
        hw = self.hw
        ring = self.ring
        sample = self.sample
        k = 0
        k1 = t1 = -1
        k2 = t2 = 0
        self._start()
        lost0 = ring.lost
        if self.heap_lock:
            micropython.heap_lock()
        while k < n:
            hw.feed()
            self._drain_all()
            now = ticks_us() & _MASK
            produced = k + ring.count()
            while k < n and ring.get_into(sample):
                o = 2 * ch * k
                for i in range(ch):
                    v = sample[i]
                    buf[o] = v & 0xFF
                    buf[o + 1] = (v >> 8) & 0xFF
                    o += 2
                k += 1
            if produced:
                if k1 < 0:
                    k1 = produced
                    t1 = now
                k2 = produced
                t2 = now
            if ring.lost != lost0 or hw.finished():
                break
            if not hw.replay:
                self._nap()
        if self.heap_lock:
            micropython.heap_unlock()
        lost = (ring.lost - lost0) & _MASK
        struct.pack_into("<IIIIII", self.link.tbuf, L.HEADER, k, lost, k1 if k1 > 0 else 0,
                         t1 if t1 > 0 else 0, k2, t2)
        self.link.send(T_BURST_END, 24)
        self.upload(buf, 0, k)
        while True:  # the host asks again for frames it did not get, until DONE
            op = self.command(True)
            if op == OP_RESEND and self.link.len >= 9:
                self.upload(buf, self._u32(1), self._u32(5))
            elif op == OP_DONE or op == OP_QUIT or op < 0:
                buf = None
                gc.collect()
                return op

    def upload(self, buf, first, n):
        t = self.link.tbuf
        ch = self.ch
        width = 2 * ch
        total = len(buf) // width
        end = first + n
        if end > total:
            end = total
        while first < end:
            k = end - first
            if k > self.batch:
                k = self.batch
            o = first * width
            t[L.HEADER + _HEAD:L.HEADER + _HEAD + k * width] = buf[o:o + k * width]
            self.data(first, k, F_BURST, 0, 0)
            first += k

    def serve(self):
        self.info()
        while True:
            op = self.command(True)
            if op == OP_STREAM:
                op = self.stream()
            elif op == OP_CAPTURE and self.link.len >= 5:
                op = self.capture(self._u32(1))
            if op == OP_QUIT or op < 0:
                return


def load(path="collect.json"):
    with open(path) as f:
        return json.load(f)


def main(cfg=None):
    c = Collector(cfg if cfg is not None else load())
    gc.collect()
    c.serve()

