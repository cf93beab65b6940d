# Field windows: the raw windows the deployed model was least sure of, and every window that
# raised an alarm, kept on the board for `edgeloop collect --field` (edgeloop/collect/field.py).
#
# One ring, allocated once at start and sized from config.json "field" {uncertain (4), alarms
# (2), file ("field.bin"), persist_ms (2000)}: `uncertain` slots hold the windows with the
# smallest doubt seen so far (a classifier's top-2 margin, an anomaly or one-output model's
# distance to its threshold, both in the output's int8 units); `alarms` slots hold each window
# that raised an alarm, the oldest overwritten when all are taken (counted, never silent).
# offer() copies a window into a slot through memoryviews made at start: it allocates nothing.
#
# The ring lives in a file the app writes in place: a changed slot is written at most once per
# persist_ms (an alarm at once), one slot per persist() call, so the loop never stalls on flash.
# The host reads the file from the board's filesystem (the virtual board: while the app runs;
# a real board: the raw REPL pauses the app, which restarts after the pull), and the windows
# survive a reset, a watchdog or a power cut: the app restores them at start. A file of
# another model (or another ring size) is kept as field.prev.bin for the host to pull.
#
# File layout (little-endian): the header (_HDR_FMT), then per slot: meta (8 int32: gen, kind,
# boot, window, t_ms, end, doubt, 0), the outputs (n_out int8 padded to 4 bytes), the raw window
# (window*channels int16 counts, oldest sample first, channels interleaved) and gen again. A
# slot whose two gens differ was being written while it was read (the host reads again).
import os
import struct
from array import array

from micropython import const

try:
    from time import ticks_diff, ticks_ms
except ImportError:  # pragma: no cover - every MicroPython port has them
    ticks_diff = ticks_ms = None

MAGIC = b"ELFW"
VERSION = const(1)
# magic, version, header bytes, slot bytes, uncertain, alarms, n_out, window, channels,
# anomaly, threshold_q, output zero point, file id, boot, kept, alarms, overwritten,
# output scale, sample rate, model sha256
_HDR_FMT = "<4sHHIHHHHHBhhIIIIIff32s"
HDR = const(87)  # struct.calcsize(_HDR_FMT)
_META = const(8)
_GEN = const(0)
_KIND = const(1)
_BOOT = const(2)
_WINDOW = const(3)
_TMS = const(4)
_END = const(5)
_DOUBT = const(6)
EMPTY = const(0)
UNCERTAIN = const(1)
ALARM = const(2)
_GEN_MASK = const(0x3FFFFFFF)
_NO_DOUBT = const(0x7FFFFFFF)


def model_sha256(path):
    """The model file's sha256 (32 bytes), read through one small buffer."""
    import hashlib

    h = hashlib.sha256()
    buf = bytearray(512)
    mv = memoryview(buf)
    with open(path, "rb") as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(mv[:n])
    return h.digest()


def _file_id():
    try:
        b = os.urandom(4)
    except (AttributeError, NotImplementedError):  # pragma: no cover - ports without urandom
        b = struct.pack("<I", ticks_ms() & 0xFFFFFFFF)
    return struct.unpack("<I", b)[0] & 0x3FFFFFFF


class FieldRing:
    """Kept windows of one model: `uncertain` least-sure and `alarms` alarm windows."""

    def __init__(self, cfg, n_out, window, channels, out_scale, out_zp, anomaly, threshold_q,
                 rate, sha, emit=None):
        self.k = int(cfg.get("uncertain", 4))
        self.a = int(cfg.get("alarms", 2))
        if self.k < 0 or self.a < 0 or self.k + self.a == 0 or self.k + self.a > 64:
            raise ValueError("field: uncertain + alarms must be 1..64 slots, got %d + %d"
                             % (self.k, self.a))
        self.path = cfg.get("file", "field.bin")
        self.prev_path = self.path.replace(".bin", "") + ".prev.bin"
        self.persist_ms = int(cfg.get("persist_ms", 2000))
        self.emit = emit
        self.n_out = n_out
        self.window = window
        self.channels = channels
        self.out_scale = out_scale
        self.out_zp = out_zp
        self.anomaly = 1 if (anomaly or n_out == 1) else 0
        self.threshold_q = threshold_q
        self.rate = rate
        self.sha = sha
        n = self.k + self.a
        self.n = n
        size = window * channels
        pad = (n_out + 3) & ~3
        self.slot_bytes = 4 * _META + pad + 2 * size + 4
        self.hdr = bytearray(HDR)
        self.meta = array("i", bytes(4 * _META * n))
        self.tail = array("i", bytes(4 * n))
        self.outs = bytearray(pad * n)
        self.raw = array("h", bytes(2 * size * n))
        self.dirty = bytearray(n)
        mm = memoryview(self.meta)
        mt = memoryview(self.tail)
        mo = memoryview(self.outs)
        mr = memoryview(self.raw)
        self.v_meta = [mm[i * _META:(i + 1) * _META] for i in range(n)]
        self.v_tail = [mt[i:i + 1] for i in range(n)]
        self.v_out = [mo[i * pad:(i + 1) * pad] for i in range(n)]
        self.v_raw = [mr[i * size:(i + 1) * size] for i in range(n)]
        self.pad = pad
        self.file_id = 0
        self.boot = 1
        self.kept = 0  # windows kept into this file (all boots)
        self.alarms = 0  # alarm windows seen (all boots)
        self.overwritten = 0  # alarm windows overwritten before the host could know (all boots)
        self.gen = 0
        self.worst = 0  # the uncertain slot to replace next (empty, or the largest doubt)
        self.worst_doubt = _NO_DOUBT
        self.next_alarm = 0
        self.head_dirty = True
        self.urgent = False
        self.t_persist = 0
        self.f = None
        self.error = 0

    @property
    def ram_bytes(self):
        """RAM the ring holds (its buffers, not the views' small objects)."""
        return HDR + self.n * (self.slot_bytes + 1)

    # -- keeping (each inferred window; allocates nothing) ------------------------------------
    def doubt(self, out):
        """How unsure the model was: top-2 margin, or distance of the score to the threshold,
        in int8 output units (out may be a signed or unsigned byte view)."""
        if self.anomaly:
            v = out[0]
            if v > 127:
                v -= 256
            d = v - self.threshold_q
            return -d if d < 0 else d
        top = -129
        second = -129
        for j in range(self.n_out):
            v = out[j]
            if v > 127:
                v -= 256
            if v > top:
                second = top
                top = v
            elif v > second:
                second = v
        return top - second

    def offer(self, win, out, alarm, window_index, end):
        """One inferred window (win: its raw int16 counts, out: the model's int8 outputs):
        kept if it raised an alarm or is among the least sure. Returns the slot kind kept."""
        d = self.doubt(out)
        if alarm:
            if self.a == 0:
                return EMPTY
            i = self.k + self.next_alarm
            if self.meta[i * _META + _KIND] == ALARM:
                self.overwritten += 1
            self.next_alarm += 1
            if self.next_alarm == self.a:
                self.next_alarm = 0
            self.alarms += 1
            self._store(i, ALARM, win, out, window_index, end, d)
            self.urgent = True
            return ALARM
        if self.k == 0 or d >= self.worst_doubt:
            return EMPTY
        self._store(self.worst, UNCERTAIN, win, out, window_index, end, d)
        self._find_worst()
        return UNCERTAIN

    def _store(self, i, kind, win, out, window_index, end, d):
        m = self.meta
        b = i * _META
        g = (self.gen + 1) & _GEN_MASK
        self.gen = g
        m[b + _GEN] = g
        m[b + _KIND] = kind
        m[b + _BOOT] = self.boot
        m[b + _WINDOW] = window_index
        m[b + _TMS] = ticks_ms()
        m[b + _END] = end
        m[b + _DOUBT] = d
        self.tail[i] = g
        o = self.outs
        ob = i * self.pad
        for j in range(self.n_out):
            o[ob + j] = out[j] & 0xFF
        self.v_raw[i][:] = win
        self.dirty[i] = 1
        self.head_dirty = True
        self.kept += 1

    def _find_worst(self):
        m = self.meta
        worst = 0
        wd = -1
        for i in range(self.k):
            b = i * _META
            d = _NO_DOUBT if m[b + _KIND] == EMPTY else m[b + _DOUBT]
            if d > wd:
                wd = d
                worst = i
        self.worst = worst
        self.worst_doubt = wd

    # -- the file -------------------------------------------------------------------------------
    def _pack_header(self):
        struct.pack_into(_HDR_FMT, self.hdr, 0, MAGIC, VERSION, HDR, self.slot_bytes, self.k,
                         self.a, self.n_out, self.window, self.channels, self.anomaly,
                         self.threshold_q, self.out_zp, self.file_id, self.boot, self.kept,
                         self.alarms, self.overwritten, self.out_scale, self.rate, self.sha)

    def _matches(self, h):
        return (h[0] == MAGIC and h[1] == VERSION and h[2] == HDR and h[3] == self.slot_bytes
                and h[4] == self.k and h[5] == self.a and h[6] == self.n_out
                and h[7] == self.window and h[8] == self.channels and h[19] == self.sha)

    def start(self):
        """Restore the kept windows of this model from the file (or start one), open it for
        in-place writes; a file of another model or geometry becomes the .prev file."""
        h = None
        try:
            f = open(self.path, "rb")
        except OSError:
            f = None
        if f is not None:
            try:
                if f.readinto(self.hdr) == HDR and self.hdr[:4] == MAGIC:
                    h = struct.unpack_from(_HDR_FMT, self.hdr, 0)
                    if self._matches(h):
                        self._restore(f)
            finally:
                f.close()
        if h is not None and self._matches(h):
            self.file_id, self.boot = h[12], h[13] + 1
            self.kept, self.alarms, self.overwritten = h[14], h[15], h[16]
        else:
            if f is not None:
                self._rotate()
            self.file_id = _file_id()
            self.boot = (h[13] + 1) if h is not None else 1
        self._find_worst()
        self._next_alarm()
        try:
            self._write_all()
            self.f = open(self.path, "r+b")
        except OSError as exc:
            self._failed(exc)
        self.t_persist = ticks_ms()

    def _restore(self, f):
        m = self.meta
        for i in range(self.n):
            f.readinto(self.v_meta[i])
            f.readinto(self.v_out[i])
            f.readinto(self.v_raw[i])
            f.readinto(self.v_tail[i])
            b = i * _META
            kind = m[b + _KIND]
            want = ALARM if i >= self.k else UNCERTAIN
            if m[b + _GEN] != self.tail[i] or kind not in (EMPTY, want):
                m[b + _KIND] = EMPTY  # torn by a power cut mid-write: dropped
            if m[b + _GEN] > self.gen:
                self.gen = m[b + _GEN]

    def _rotate(self):
        try:
            os.remove(self.prev_path)
        except OSError:
            pass
        try:
            os.rename(self.path, self.prev_path)
        except OSError:
            pass

    def _next_alarm(self):
        m = self.meta
        best = 0
        key = None
        for j in range(self.a):
            b = (self.k + j) * _META
            if m[b + _KIND] == EMPTY:
                best = j
                break
            kj = (m[b + _BOOT], m[b + _WINDOW])
            if key is None or kj < key:
                key = kj
                best = j
        self.next_alarm = best

    def _write_all(self):
        self._pack_header()
        with open(self.path, "wb") as f:
            f.write(self.hdr)
            for i in range(self.n):
                self._write_slot(f, i)
        for i in range(self.n):
            self.dirty[i] = 0
        self.head_dirty = False

    def _write_slot(self, f, i):
        f.write(self.v_meta[i])
        f.write(self.v_out[i])
        f.write(self.v_raw[i])
        f.write(self.v_tail[i])

    def _failed(self, exc):
        self.error = exc.args[0] if exc.args else -1
        if self.f is not None:
            try:
                self.f.close()
            except OSError:
                pass
        self.f = None
        if self.emit is not None:
            self.emit({"event": "field_error", "errno": self.error, "file": self.path})

    def persist(self, force=False):
        """Write one changed slot (alarms first), or the header once all are written: the
        changes of persist_ms (at once for an alarm) go out one slot per call. False when
        nothing was written."""
        f = self.f
        if f is None or not self.head_dirty:
            return False
        if not force and not self.urgent and ticks_diff(ticks_ms(), self.t_persist) < self.persist_ms:
            return False
        i = self.n - 1
        while i >= 0 and not self.dirty[i]:
            i -= 1
        try:
            if i >= 0:
                f.seek(HDR + i * self.slot_bytes)
                self._write_slot(f, i)
                self.dirty[i] = 0
            else:
                self._pack_header()
                f.seek(0)
                f.write(self.hdr)
                self.head_dirty = False
                self.urgent = False
                self.t_persist = ticks_ms()
            f.flush()
        except OSError as exc:
            self._failed(exc)
            return False
        return True

    def flush(self):
        """Everything changed to the file (the app's end, Ctrl-C)."""
        while self.persist(True):
            pass
