# Field windows: the raw windows the deployed model was least sure of, and every window that
# raised an alarm, kept on the board for `edgeloop collect --field` (edgeloop/collect/field.py).
#
# config.json "field" {uncertain (8), alarms (4), file ("field.bin"), persist_ms (5000)}: the
# ring has `uncertain` slots for the windows with the smallest doubt seen so far (a
# classifier's top-2 margin; an anomaly or one-output model's distance to its threshold; int8
# output units) and `alarms` slots for each window that raised an alarm, the oldest overwritten
# when all are taken (counted, never silent). Of uncertain windows that overlap (a stride
# shorter than the window) only the least sure is kept: overlapping copies would put the same
# samples on both sides of a train/test split.
#
# The slots live in a file of fixed size, made once at start; RAM holds only the index (kind and
# doubt per slot) and a slot head: a window is 1.5 KB and the 100 KB ESP32 heap has ~11 KB left
# beside a vibration model, so a ring in RAM could hold two. offer() writes a kept window
# straight from the pipeline's buffer and the model's output into its slot (one flash write per
# kept window, none for the others) and allocates nothing. So a window is on flash the moment it
# is kept: it survives a reset, a watchdog or a power cut (the index is restored at start), and
# the host reads the file while the app runs (virtual board) or during the raw REPL's pause (a
# real board). A file of another model or ring size is kept as field.prev.bin for the host.
#
# This module is what stays in RAM while the app runs, kept small (its state is one int array
# indexed by constants); fieldstart.py makes or restores the file and the state at start and is
# dropped from the heap before this one is imported. The two share the state's layout (the
# _K.._STATE constants below; tests/field/test_ring.py checks both lists are the same).
#
# File layout (little-endian): the header (_HDR_FMT), the index (n kind bytes, n doubt int16),
# zero-padded to 4 bytes (header bytes: where the slots begin); then per slot: 12 int16 (gen lo,
# hi, kind, doubt, boot lo, hi, window lo, hi, t_ms lo, hi, end lo, hi), the outputs (n_out
# int8, zero-padded to 4 bytes), the raw window (window*channels int16 counts, oldest sample
# first, channels interleaved) and gen again (lo, hi). A slot whose two gens differ was being
# written while it was read.
import struct

from micropython import const

try:
    from time import ticks_ms
except ImportError:  # pragma: no cover - every MicroPython port has them
    ticks_ms = None

# magic, version, header bytes, slot bytes, uncertain, alarms, n_out, window, channels,
# anomaly, threshold_q, output zero point, file id, boot, kept, alarms seen, overwritten, gen,
# next alarm slot, output scale, sample rate, model sha256
_HDR_FMT = "<4sHHIHHHHHBhhIIIIIIHff32s"
_HDR = const(93)  # struct.calcsize(_HDR_FMT)
# the ring's state: FieldRing.s[...] (the same list in fieldstart.py)
_K = const(0)  # uncertain slots
_A = const(1)  # alarm slots
_N_OUT = const(2)
_ANOMALY = const(3)  # 1: the doubt is the distance of output 0 to the threshold
_THRESHOLD = const(4)
_BASE = const(5)  # file offset of slot 0
_SLOT = const(6)  # bytes per slot
_WINDOW = const(7)
_CHANNELS = const(8)
_ZP = const(9)
_FILE_ID = const(10)
_BOOT = const(11)
_KEPT = const(12)  # windows kept into this file (all boots)
_ALARMS = const(13)  # alarm windows seen (all boots)
_OVERWRITTEN = const(14)  # alarm windows overwritten (all boots)
_GEN = const(15)  # writes so far: a slot's gen, its place in time
_NEXT = const(16)  # the alarm slot written next
_WORST = const(17)  # the uncertain slot replaced next (empty, or the largest doubt)
_WORST_DOUBT = const(18)
_DIRTY = const(19)  # the header and index wait to be written
_T_HEAD = const(20)  # ticks_ms of the last header write (30 bits)
_PERSIST_MS = const(21)
_ERROR = const(22)  # errno of a failed write: the ring is off
_LAST = const(23)  # the slot of the last uncertain window kept this boot (-1: none)
_LAST_INDEX = const(24)  # its window index
_OVERLAP = const(25)  # windows closer than this share samples (ceil(window / stride))
_STATE = const(26)
_MASK = const(0x3FFFFFFF)


def _put32(m, i, v):
    lo = v & 0xFFFF
    m[i] = lo - 65536 if lo > 32767 else lo
    m[i + 1] = (v >> 16) & 0x3FFF


class FieldRing:
    """The index of one model's kept windows and the file that holds them, from the parts
    fieldstart.open_ring made."""

    def __init__(self, s, f, buffers, info):
        self.s = s  # array("i", _STATE)
        self.f = f  # the file, open for in-place writes; None: off
        self.buf = buffers  # (header + kinds, doubts, slot head, gen tail, output padding)
        self.info = info  # (output scale, sample rate, model sha256, emit, path)

    def offer(self, win, out, alarm, window_index, end):
        """One inferred window (win: its raw int16 counts, out: the model's int8 output), written
        to its slot if it raised an alarm or is among the least sure: the kind kept, or 0.
        Allocates nothing (out may be a signed or unsigned byte view)."""
        s = self.s
        f = self.f
        if f is None:
            return 0
        if s[_ANOMALY]:
            d = out[0]
            if d > 127:
                d -= 256
            d -= s[_THRESHOLD]
            if d < 0:
                d = -d
        else:
            top = second = -129
            for j in range(s[_N_OUT]):
                v = out[j]
                if v > 127:
                    v -= 256
                if v > top:
                    second = top
                    top = v
                elif v > second:
                    second = v
            d = top - second
        hdr, doubts, m, tail, zeros = self.buf
        if alarm and s[_A]:
            i = s[_K] + s[_NEXT]
            if hdr[_HDR + i]:
                s[_OVERWRITTEN] += 1
            s[_NEXT] = 0 if s[_NEXT] + 1 == s[_A] else s[_NEXT] + 1
            s[_ALARMS] += 1
            kind = 2
        elif alarm or not s[_K]:
            return 0
        else:
            # a window sharing samples with the last one kept competes with it for its slot
            # (overlapping copies would leak across a train/test split); the others with the
            # slot of the largest doubt
            i = s[_LAST]
            if i >= 0 and window_index - s[_LAST_INDEX] < s[_OVERLAP] and hdr[_HDR + i] == 1:
                if d >= doubts[i]:
                    return 0
            elif d < s[_WORST_DOUBT]:
                i = s[_WORST]
            else:
                return 0
            s[_LAST] = i
            s[_LAST_INDEX] = window_index
            kind = 1
        g = (s[_GEN] + 1) & _MASK
        s[_GEN] = g
        _put32(m, 0, g)
        m[2] = kind
        m[3] = d
        _put32(m, 4, s[_BOOT])
        _put32(m, 6, window_index)
        _put32(m, 8, ticks_ms())
        _put32(m, 10, end)
        _put32(tail, 0, g)
        try:
            f.seek(s[_BASE] + i * s[_SLOT])
            f.write(m)
            f.write(out)
            if zeros is not None:
                f.write(zeros)
            f.write(win)
            f.write(tail)
            f.flush()
        except OSError as exc:
            self.failed(exc)
            return 0
        hdr[_HDR + i] = kind
        doubts[i] = d
        s[_KEPT] += 1
        s[_DIRTY] = 1
        if kind == 1:
            self.find_worst()
        else:
            self.persist(True)  # an alarm's index and counters go out at once
        return kind

    def find_worst(self):
        s = self.s
        hdr = self.buf[0]
        doubts = self.buf[1]
        wd = -1
        for i in range(s[_K]):
            d = doubts[i] if hdr[_HDR + i] else 32767
            if d > wd:
                wd = d
                s[_WORST] = i
        s[_WORST_DOUBT] = wd

    def persist(self, force=False):
        """The header and index to the file, at most every persist_ms; allocates nothing (the
        windows went out when kept)."""
        s = self.s
        f = self.f
        now = ticks_ms() & _MASK
        if f is None or not s[_DIRTY] or (
                not force and ((now - s[_T_HEAD]) & _MASK) < s[_PERSIST_MS]):
            return False
        hdr, doubts, m, tail, zeros = self.buf
        scale, rate, sha, emit, path = self.info
        struct.pack_into(_HDR_FMT, hdr, 0, b"ELFW", 1, s[_BASE], s[_SLOT], s[_K], s[_A],
                         s[_N_OUT], s[_WINDOW], s[_CHANNELS], s[_ANOMALY], s[_THRESHOLD],
                         s[_ZP], s[_FILE_ID], s[_BOOT], s[_KEPT], s[_ALARMS], s[_OVERWRITTEN],
                         s[_GEN], s[_NEXT], scale, rate, sha)
        try:
            f.seek(0)
            f.write(hdr)
            f.write(doubts)
            f.flush()
        except OSError as exc:
            self.failed(exc)
            return False
        s[_DIRTY] = 0
        s[_T_HEAD] = now
        return True

    def failed(self, exc):
        """A write failed (flash full, file gone): the ring is off, an event says why."""
        s = self.s
        s[_ERROR] = exc.args[0] if exc.args else -1
        try:
            self.f.close()
        except OSError:
            pass
        self.f = None
        emit = self.info[3]
        if emit is not None:
            emit({"event": "field_error", "errno": s[_ERROR], "file": self.info[4]})
