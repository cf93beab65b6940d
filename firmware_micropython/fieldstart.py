# The field ring's start (field.py holds what runs per window): the state and buffers allocated
# once from config.json "field", the file restored (the same model and ring size), or made new
# (a file of another model kept as field.prev.bin), the model's sha256 computed. The app
# imports this for the start only and drops it from the heap before it imports field.py.
import os
import struct
from array import array

from micropython import const

_HDR_FMT = "<4sHHIHHHHHBhhIIIIIIHff32s"
_HDR = const(93)  # struct.calcsize(_HDR_FMT)
_META = const(24)  # bytes of a slot's head
# the ring's state: the same list as field.py's
_K = const(0)
_A = const(1)
_N_OUT = const(2)
_ANOMALY = const(3)
_THRESHOLD = const(4)
_BASE = const(5)
_SLOT = const(6)
_WINDOW = const(7)
_CHANNELS = const(8)
_ZP = const(9)
_FILE_ID = const(10)
_BOOT = const(11)
_KEPT = const(12)
_ALARMS = const(13)
_OVERWRITTEN = const(14)
_GEN = const(15)
_NEXT = const(16)
_WORST = const(17)
_WORST_DOUBT = const(18)
_DIRTY = const(19)
_T_HEAD = const(20)
_PERSIST_MS = const(21)
_ERROR = const(22)
_LAST = const(23)
_LAST_INDEX = const(24)
_OVERLAP = const(25)
_STATE = const(26)
_MASK = const(0x3FFFFFFF)


def model_sha256(path):
    """The model file's sha256 (32 bytes), read through one small buffer."""
    import hashlib

    h = hashlib.sha256()
    buf = bytearray(256)
    mv = memoryview(buf)
    with open(path, "rb") as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(mv[:n])
    return h.digest()


def _get32(m, i):
    return (m[i] & 0xFFFF) | (m[i + 1] << 16)


def start(cfg, model, decision, window, stride, channels, rate, emit):
    """The parts of the app's FieldRing from config.json (its "field" dict, or the defaults),
    or None when its file cannot be made; this module leaves the heap when the caller drops
    its reference, before field.py is imported (the two never share the heap)."""
    import sys

    sys.modules.pop("fieldstart", None)
    fcfg = cfg.get("field")
    return open_ring(fcfg if isinstance(fcfg, dict) else {}, model, decision, window, stride,
                     channels, rate, emit, cfg.get("model", "model.elb"))


def open_ring(cfg, model, decision, window, stride, channels, rate, emit, model_path):
    """The parts of a started FieldRing (field.FieldRing(*parts)), or None when its file cannot
    be made or opened (a field_error event says why). cfg: config.json's "field" dict."""
    k = int(cfg.get("uncertain", 8))
    a = int(cfg.get("alarms", 4))
    if k < 0 or a < 0 or not 0 < k + a <= 256:
        raise ValueError("field: uncertain + alarms must be 1..256 slots, not %d + %d" % (k, a))
    n = k + a
    n_out = len(model.output)
    pad = (n_out + 3) & ~3
    s = array("i", bytes(4 * _STATE))
    s[_K] = k
    s[_A] = a
    s[_N_OUT] = n_out
    s[_ANOMALY] = 1 if (decision.anomaly or n_out == 1) else 0
    s[_THRESHOLD] = decision.threshold_q
    s[_BASE] = base = (_HDR + 3 * n + 3) & ~3
    s[_SLOT] = slot = _META + pad + 2 * window * channels + 4
    s[_WINDOW] = window
    s[_CHANNELS] = channels
    s[_ZP] = model.output_zero_point
    s[_BOOT] = 1
    s[_WORST_DOUBT] = 32767
    s[_PERSIST_MS] = int(cfg.get("persist_ms", 5000))
    s[_LAST] = -1
    s[_OVERLAP] = (window + stride - 1) // stride
    path = cfg.get("file", "field.bin")
    hdr = bytearray(_HDR + n)  # the header, then each slot's kind
    doubts = array("h", bytes(2 * n))
    meta = array("h", bytes(_META))
    buffers = (hdr, doubts, meta, array("h", bytes(4)),
               memoryview(bytearray(pad - n_out)) if pad > n_out else None)
    sha = model_sha256(model_path)
    info = (model.output_scale, rate, sha, emit, path)
    old = None
    ours = False
    try:
        with open(path, "rb") as f:
            if f.readinto(hdr) == _HDR + n and hdr[:4] == b"ELFW":
                old = struct.unpack_from(_HDR_FMT, hdr, 0)
                ours = old[1:9] == (1, base, slot, k, a, n_out, window, channels) and old[21] == sha
                if ours:
                    f.readinto(doubts)
    except OSError:
        pass  # no file yet
    try:
        if ours:
            for i in range(_FILE_ID, _NEXT + 1):  # file id, boot, counters, gen, next alarm
                s[i] = old[12 + i - _FILE_ID]
            s[_BOOT] += 1
        else:
            for i in range(n):
                hdr[_HDR + i] = 0  # the index read was another file's
                doubts[i] = 0
            if old is not None:  # another model's (or ring size's) windows: keep them
                prev = path.replace(".bin", "") + ".prev.bin"
                try:
                    os.remove(prev)
                except OSError:
                    pass
                os.rename(path, prev)
                s[_BOOT] = old[13] + 1  # boots go on counting on this board
            s[_FILE_ID] = struct.unpack("<I", os.urandom(4))[0] & _MASK
            _make_file(path, hdr, base + n * slot)
        f = open(path, "r+b")
    except OSError as exc:
        if emit is not None:
            emit({"event": "field_error", "errno": exc.args[0] if exc.args else -1, "file": path})
        return None
    s[_DIRTY] = 1  # the new boot goes out with the first persist()
    # the uncertain slot to replace first: an empty one, else the largest doubt
    wd = -1
    for i in range(k):
        d = doubts[i] if hdr[_HDR + i] else 32767
        if d > wd:
            wd = d
            s[_WORST] = i
    s[_WORST_DOUBT] = wd
    return s, f, buffers, info


def _make_file(path, hdr, size):
    """A zeroed file of the ring's size (written through one small buffer)."""
    z = bytearray(256)
    left = size - len(hdr)
    with open(path, "wb") as f:
        f.write(hdr)
        while left > 0:
            f.write(z if left >= 256 else memoryview(z)[:left])
            left -= 256
