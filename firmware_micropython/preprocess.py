# Board side of the preprocessing declared in edgeloop.toml (host twin: trainer/features.py).
# Integer arithmetic only, floor shifts, every intermediate below 2**30 (a small int on a
# 32-bit ESP32, so nothing allocates): the int8 model input equals the host's bit for bit.
# All buffers are allocated in Preprocessor.__init__; run() allocates nothing.
#
#   import json, preprocess
#   cfg = json.load(open("config.json"))
#   pp = preprocess.Preprocessor(cfg["preprocess"])
#   pp.run(samples, model.input)   # samples: array('h') of T*C counts, interleaved t*C + c
from array import array

from micropython import const

_Q14 = const(14)
_ROUND14 = const(8192)
_YMAX = const(8191)
_YMIN = const(-8192)
_LIM = const(32767)
_LO_WRAP = const(0x10000000)  # 2**28: rms accumulator split
_MEAN = const(0)
_RMS = const(1)
_PEAK = const(2)
_RAW = const(3)
_FFT = const(4)
_KINDS = {"mean": _MEAN, "rms": _RMS, "peak": _PEAK, "raw": _RAW, "fft": _FFT}


class PreprocessError(ValueError):
    pass


def isqrt(n):
    # floor(sqrt(n)) for 0 <= n < 2**30, bit by bit: no division, no allocation
    if n <= 0:
        return 0
    res = 0
    bit = 1 << 28
    while bit > n:
        bit >>= 2
    while bit:
        if n >= res + bit:
            n -= res + bit
            res = (res >> 1) + bit
        else:
            res >>= 1
        bit >>= 2
    return res


class Preprocessor:
    def __init__(self, cfg):
        try:
            self.window = t = int(cfg["window"])
            self.channels = c = int(cfg["channels"])
            self.shift = int(cfg["shift"])
            self.dc = bool(cfg["dc"])
            self.zp = int(cfg["input_zero_point"])
            blocks = cfg["blocks"]
        except KeyError as e:
            raise PreprocessError("preprocess config lacks key %s" % e)
        lg = 0
        while (1 << lg) < t:
            lg += 1
        if (1 << lg) != t:
            raise PreprocessError("window must be a power of two, got %d" % t)
        self.log2 = lg
        self.kinds = array("b", [])
        self.rows = array("H", [])
        self.param = array("H", [])  # decimate for raw, bins for fft
        self.sqrt = array("b", [])
        n_q = 0
        for b in blocks:
            k = _KINDS.get(b["kind"])
            if k is None:
                raise PreprocessError("unknown preprocessing block %r" % b["kind"])
            self.kinds.append(k)
            self.rows.append(int(b["rows"]))
            self.param.append(int(b.get("decimate", b.get("bins", 1))))
            self.sqrt.append(1 if b.get("compress") == "sqrt" else 0)
            n_q += len(b["off"])
        # quantization parameters, flattened block after block ([rows, C] or [C] for raw)
        self.off = array("i", [0] * n_q)
        self.mult = array("i", [0] * n_q)
        self.sh = array("b", [0] * n_q)
        self.qbase = array("H", [0] * len(blocks))
        i = 0
        for j, b in enumerate(blocks):
            self.qbase[j] = i
            for k in range(len(b["off"])):
                self.off[i] = int(b["off"][k])
                self.mult[i] = int(b["mult"][k])
                self.sh[i] = int(b["sh"][k])
                i += 1
        n_rows = 0
        for r in self.rows:
            n_rows += r
        self.n_rows = n_rows
        self.out_len = self.n_rows * c
        self.means = array("i", [0] * c)
        self.y = array("i", [0] * t)  # working signal of one channel
        has_fft = False
        for k in self.kinds:
            if k == _FFT:
                has_fft = True
        self.re = array("i", [0] * (t if has_fft else 0))
        self.im = array("i", [0] * (t if has_fft else 0))
        if has_fft:
            tw = cfg["twiddle"]
            if len(tw) != t // 2:
                raise PreprocessError("twiddle table must have window/2 = %d entries" % (t // 2))
            self.tw = array("h", tw)
        else:
            self.tw = array("h", [])

    def _q(self, f, i):
        d = f - self.off[i]
        if d > _LIM:
            d = _LIM
        elif d < -_LIM:
            d = -_LIM
        s = self.sh[i]
        q = ((d * self.mult[i] + (1 << (s - 1))) >> s) + self.zp
        if q > 127:
            return 127
        if q < -128:
            return -128
        return q

    def run(self, x, out):
        # x: T*C interleaved int16 counts; out: >= n_rows*C int8 (bytearray/memoryview/array)
        t = self.window
        c = self.channels
        lg = self.log2
        y = self.y
        for ch in range(c):
            s = 0
            i = ch
            end = t * c
            while i < end:  # range() with a variable step would allocate
                s += x[i]
                i += c
            mean = s >> lg
            self.means[ch] = mean
            base = mean if self.dc else 0
            sh = self.shift
            i = ch
            for j in range(t):
                v = (x[i] - base) >> sh
                if v > _YMAX:
                    v = _YMAX
                elif v < _YMIN:
                    v = _YMIN
                y[j] = v
                i += c
            row = 0
            for b in range(len(self.kinds)):
                k = self.kinds[b]
                rows = self.rows[b]
                qi = self.qbase[b]
                if k == _MEAN:
                    out[row * c + ch] = self._q(mean, qi + ch)
                elif k == _RMS:
                    out[row * c + ch] = self._q(self._rms(), qi + ch)
                elif k == _PEAK:
                    p = 0
                    for i in range(t):
                        v = y[i]
                        if v < 0:
                            v = -v
                        if v > p:
                            p = v
                    out[row * c + ch] = self._q(p, qi + ch)
                elif k == _RAW:
                    self._raw(out, row, ch, rows, self.param[b], qi + ch)
                else:
                    self._fft(out, row, ch, self.param[b], self.sqrt[b], qi)
                row += rows

    def _rms(self):
        y = self.y
        hi = 0
        lo = 0
        for i in range(self.window):
            v = y[i]
            lo += v * v
            if lo >= _LO_WRAP:
                lo -= _LO_WRAP
                hi += 1
        lg = self.log2
        return isqrt((hi << (28 - lg)) + (lo >> lg))

    def _raw(self, out, row, ch, rows, dec, qi):
        y = self.y
        c = self.channels
        ld = 0
        while (1 << ld) < dec:
            ld += 1
        i = 0
        for r in range(rows):
            s = 0
            for _ in range(dec):
                s += y[i]
                i += 1
            out[(row + r) * c + ch] = self._q(s >> ld, qi)

    def _fft(self, out, row, ch, bins, compress, qi):
        n = self.window
        re = self.re
        im = self.im
        y = self.y
        tw = self.tw
        quarter = n >> 2
        halfn = n >> 1
        # bit-reversed copy of the working signal
        j = 0
        for i in range(n):
            re[j] = y[i]
            im[j] = 0
            bit = halfn
            while j & bit:
                j ^= bit
                bit >>= 1
            j |= bit
        half = 1
        while half < n:
            size = half << 1
            step = n // size
            start = 0
            while start < n:
                k = 0
                for a in range(start, start + half):
                    wr = tw[k]
                    if k < quarter:
                        wi = -tw[quarter - k]
                    else:
                        wi = -tw[k - quarter]
                    b = a + half
                    br = re[b]
                    bi = im[b]
                    tr = (br * wr - bi * wi + _ROUND14) >> _Q14
                    ti = (br * wi + bi * wr + _ROUND14) >> _Q14
                    ar = re[a]
                    ai = im[a]
                    re[a] = (ar + tr) >> 1
                    im[a] = (ai + ti) >> 1
                    re[b] = (ar - tr) >> 1
                    im[b] = (ai - ti) >> 1
                    k += step
                start += size
            half = size
        width = halfn // bins
        c = self.channels
        kk = 1
        for r in range(bins):
            s = 0
            for _ in range(width):
                a = re[kk]
                b = im[kk]
                s += isqrt(a * a + b * b)
                kk += 1
            v = s // width
            if compress:
                v = isqrt(v << 13)
            out[(row + r) * c + ch] = self._q(v, qi + r * c + ch)
