# Board side of the preprocessing declared in edgeloop.toml (host twin: trainer/features.py).
# Integer arithmetic only, floor division (a shift when the divisor is a power of two), every
# intermediate below 2**30 (a small int on a 32-bit ESP32, so nothing allocates): the int8
# model input equals the host's bit for bit. Any window of 8..8192 samples: the mean divides
# by it once per channel, the rms by long division in 14-bit steps, the FFT runs on the window
# zero-padded to the next power of two. All buffers are allocated in Preprocessor.__init__;
# run() allocates nothing.
#
#   import json, preprocess
#   cfg = json.load(open("config.json"))
#   pp = preprocess.Preprocessor(cfg["preprocess"])
#   pp.run(samples, model.input)   # samples: array('h') of T*C counts, interleaved t*C + c
#
# Two kernel sets with the same arithmetic: viper (default; ~10x faster, what an ESP32 needs
# to keep up with 1 kHz) and plain bytecode (the readable reference; kernels="python").
# Viper notes: every working buffer is int16 (|values| < 2**14), read through ptr16 and
# sign-extended with (v ^ 0x8000) - 0x8000, so 32- and 64-bit boards agree; products stay below
# 2**30; scalars passed to viper are small ints (no boxing); isqrt is inlined (a viper call
# would box its arguments).
from array import array

import micropython
from micropython import const

_Q14 = const(14)
_ROUND14 = const(8192)
_YMAX = const(8191)
_YMIN = const(-8192)
_LIM = const(32767)
_LO_WRAP = const(0x10000000)  # 2**28: rms accumulator split
_LO_MASK = const(0x3FFF)  # low 14 bits: one step of the rms long division
_WMIN = const(8)
_WMAX = const(8192)  # |sum of the window| < 2**28; the rms division's remainder < 2**13
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


@micropython.viper
def _v_extract(x, y, t: int, c: int, ch: int, shift: int, dc: int, lg: int) -> int:
    # channel ch of interleaved int16 counts -> y (14-bit, DC removed if dc); returns the mean
    # (floor; lg = log2(t), or -1 when t is not a power of two)
    px = ptr16(x)
    py = ptr16(y)
    s = 0
    i = ch
    n = t * c
    while i < n:
        v = int(px[i])
        s += (v ^ 0x8000) - 0x8000
        i += c
    if lg >= 0:
        mean = s >> lg
    else:
        mean = s // t
    base = 0
    if dc:
        base = mean
    i = ch
    j = 0
    while j < t:
        v = int(px[i])
        v = (((v ^ 0x8000) - 0x8000) - base) >> shift
        if v > 8191:
            v = 8191
        elif v < -8192:
            v = -8192
        py[j] = v
        i += c
        j += 1
    return mean


@micropython.viper
def _v_rms(y, t: int, lg: int) -> int:
    py = ptr16(y)
    hi = 0
    lo = 0
    wrap = 1 << 28
    for i in range(t):
        v = int(py[i])
        v = (v ^ 0x8000) - 0x8000
        lo += v * v
        if lo >= wrap:
            lo -= wrap
            hi += 1
    if lg >= 0:
        n = (hi << (28 - lg)) + (lo >> lg)
    else:
        # (hi * 2**28 + lo) // t in two 14-bit steps; hi < t / 4, so every step is < 2**28
        r = (hi << 14) + (lo >> 14)
        q = r // t
        r = ((r - q * t) << 14) + (lo & _LO_MASK)
        n = (q << 14) + r // t
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


@micropython.viper
def _v_peak(y, t: int) -> int:
    py = ptr16(y)
    p = 0
    for i in range(t):
        v = int(py[i])
        v = (v ^ 0x8000) - 0x8000
        if v < 0:
            v = -v
        if v > p:
            p = v
    return p


@micropython.viper
def _v_raw(y, vals, rows: int, dec: int, ld: int):
    py = ptr16(y)
    pv = ptr16(vals)
    i = 0
    for r in range(rows):
        s = 0
        for _ in range(dec):
            v = int(py[i])
            s += (v ^ 0x8000) - 0x8000
            i += 1
        if ld >= 0:
            pv[r] = s >> ld
        else:
            pv[r] = s // dec


@micropython.viper
def _v_fft(y, re, im, tw, t: int, n: int):
    # radix-2 DIT FFT of y[0:t] zero-padded to n (a power of two >= t) into re/im, Q14
    # twiddles, every stage halves (floor)
    py = ptr16(y)
    pr = ptr16(re)
    pi = ptr16(im)
    pt = ptr16(tw)
    quarter = n >> 2
    halfn = n >> 1
    if t < n:
        for i in range(n):
            pr[i] = 0
            pi[i] = 0
    j = 0
    for i in range(t):
        pr[j] = py[i]
        pi[j] = 0
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
            a = start
            end = start + half
            while a < end:
                wr = int(pt[k])
                wr = (wr ^ 0x8000) - 0x8000
                if k < quarter:
                    wi = int(pt[quarter - k])
                else:
                    wi = int(pt[k - quarter])
                wi = -((wi ^ 0x8000) - 0x8000)
                b = a + half
                br = int(pr[b])
                br = (br ^ 0x8000) - 0x8000
                bi = int(pi[b])
                bi = (bi ^ 0x8000) - 0x8000
                tr = (br * wr - bi * wi + 8192) >> 14
                ti = (br * wi + bi * wr + 8192) >> 14
                ar = int(pr[a])
                ar = (ar ^ 0x8000) - 0x8000
                ai = int(pi[a])
                ai = (ai ^ 0x8000) - 0x8000
                pr[a] = (ar + tr) >> 1
                pi[a] = (ai + ti) >> 1
                pr[b] = (ar - tr) >> 1
                pi[b] = (ai - ti) >> 1
                k += step
                a += 1
            start += size
        half = size


@micropython.viper
def _v_bands(re, im, vals, n: int, bins: int, compress: int):
    # |X_k| for k = 1..n/2 (n: the FFT size) averaged over `bins` bands (floor), optionally
    # isqrt(v << 13)
    pr = ptr16(re)
    pi = ptr16(im)
    pv = ptr16(vals)
    width = (n >> 1) // bins
    kk = 1
    for r in range(bins):
        s = 0
        for _ in range(width):
            a = int(pr[kk])
            a = (a ^ 0x8000) - 0x8000
            b = int(pi[kk])
            b = (b ^ 0x8000) - 0x8000
            m = a * a + b * b
            res = 0
            bit = 1 << 28
            while bit > m:
                bit >>= 2
            while bit:
                if m >= res + bit:
                    m -= res + bit
                    res = (res >> 1) + bit
                else:
                    res >>= 1
                bit >>= 2
            s += res
            kk += 1
        v = s // width
        if compress:
            m = v << 13
            res = 0
            bit = 1 << 28
            while bit > m:
                bit >>= 2
            while bit:
                if m >= res + bit:
                    m -= res + bit
                    res = (res >> 1) + bit
                else:
                    res >>= 1
                bit >>= 2
            v = res
        pv[r] = v


@micropython.viper
def _v_quant(vals, n: int, qp, qi: int, qstride: int, out, oi: int, ostride: int):
    # out[oi + r*ostride] = int8 of vals[r] with params (off, mult, sh) at qi + r*qstride;
    # qp: int16 triples (off, mult, sh) then the zero point at the end
    pv = ptr16(vals)
    pq = ptr16(qp)
    po = ptr8(out)
    zp = int(pq[int(len(qp)) - 1])
    zp = (zp ^ 0x8000) - 0x8000
    for r in range(n):
        j = (qi + r * qstride) * 3
        off = int(pq[j])
        off = (off ^ 0x8000) - 0x8000
        mult = int(pq[j + 1])
        sh = int(pq[j + 2])
        v = int(pv[r])
        d = ((v ^ 0x8000) - 0x8000) - off
        if d > 32767:
            d = 32767
        elif d < -32767:
            d = -32767
        q = ((d * mult + (1 << (sh - 1))) >> sh) + zp
        if q > 127:
            q = 127
        elif q < -128:
            q = -128
        po[oi + r * ostride] = q


class Preprocessor:
    def __init__(self, cfg, kernels="viper"):
        if kernels not in ("viper", "python"):
            raise PreprocessError("kernels must be 'viper' or 'python'")
        self.viper = kernels == "viper"
        try:
            self.window = t = int(cfg["window"])
            self.channels = c = int(cfg["channels"])
            self.shift = int(cfg["shift"])
            self.dc = bool(cfg["dc"])
            self.zp = int(cfg["input_zero_point"])
            blocks = cfg["blocks"]
        except KeyError as e:
            raise PreprocessError("preprocess config lacks key %s" % e)
        if not _WMIN <= t <= _WMAX:
            raise PreprocessError("window must be %d..%d samples, got %d" % (_WMIN, _WMAX, t))
        lg = 0
        while (1 << lg) < t:
            lg += 1
        self.nfft = 1 << lg  # FFT size: the window zero-padded to a power of two
        self.log2 = lg if (1 << lg) == t else -1  # -1: divide, not shift
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
        self.n_blocks = len(blocks)
        self.out_len = self.n_rows * c
        # viper's view of the quantization parameters: int16 (off, mult, sh) triples + zp
        qp = array("h", [0] * (3 * n_q + 1))
        for i in range(n_q):
            if not (-32768 <= self.off[i] <= 32767 and 0 < self.mult[i] < 32768
                    and 1 <= self.sh[i] <= 30):
                raise PreprocessError("quantization parameter %d out of range" % i)
            qp[3 * i] = self.off[i]
            qp[3 * i + 1] = self.mult[i]
            qp[3 * i + 2] = self.sh[i]
        qp[3 * n_q] = self.zp
        self.qp = qp
        self.ldec = array("b", [0] * len(blocks))
        max_rows = 1
        for j in range(len(blocks)):
            d = self.param[j] if self.kinds[j] == _RAW else 1
            if d < 1 or t % d or (self.kinds[j] == _RAW and self.rows[j] != t // d):
                raise PreprocessError("raw decimate %d must divide the window %d into %d rows" % (
                    d, t, self.rows[j]))
            bins = self.param[j]
            if self.kinds[j] == _FFT and (bins < 1 or (self.nfft >> 1) % bins):
                raise PreprocessError("fft bins %d must divide fft size/2 = %d" % (
                    bins, self.nfft >> 1))
            ld = 0
            while (1 << ld) < d:
                ld += 1
            self.ldec[j] = ld if (1 << ld) == d else -1  # -1: divide, not shift
            if self.rows[j] > max_rows:
                max_rows = self.rows[j]
        # working buffers from zeroed bytes: array("h", [0] * n) would first build a list of n
        # objects (4n bytes on an ESP32), too much for a long window
        self.vals = array("h", bytes(2 * max_rows))  # one block's values for one channel
        self.means = array("i", [0] * c)
        self.y = array("h", bytes(2 * t))  # working signal of one channel
        has_fft = False
        for k in self.kinds:
            if k == _FFT:
                has_fft = True
        nf = self.nfft
        self.re = array("h", bytes(2 * nf if has_fft else 0))
        self.im = array("h", bytes(2 * nf if has_fft else 0))
        if has_fft:
            tw = cfg["twiddle"]
            if len(tw) != nf // 2:
                raise PreprocessError("twiddle table must have fft size/2 = %d entries" % (
                    nf // 2))
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
        # x: array('h') of T*C interleaved int16 counts; out: >= n_rows*C int8 bytes (bytearray,
        # memoryview of the model input, array('b')); row-major [rows, C]
        if len(x) < self.window * self.channels or len(out) < self.out_len:
            # viper reads raw memory: a short buffer must never get that far
            raise PreprocessError("need %d samples and %d outputs, got %d and %d" % (
                self.window * self.channels, self.out_len, len(x), len(out)))
        if self.viper:
            self._run_viper(x, out)
        else:
            self._run_py(x, out)

    def _run_viper(self, x, out):
        t = self.window
        c = self.channels
        lg = self.log2
        y = self.y
        vals = self.vals
        qp = self.qp
        dc = 1 if self.dc else 0
        for ch in range(c):
            mean = _v_extract(x, y, t, c, ch, self.shift, dc, lg)
            self.means[ch] = mean
            row = 0
            for b in range(self.n_blocks):
                k = self.kinds[b]
                rows = self.rows[b]
                qi = self.qbase[b] + ch
                if k == _FFT:
                    _v_fft(y, self.re, self.im, self.tw, t, self.nfft)
                    _v_bands(self.re, self.im, vals, self.nfft, self.param[b], self.sqrt[b])
                    _v_quant(vals, rows, qp, qi, c, out, row * c + ch, c)
                elif k == _RAW:
                    _v_raw(y, vals, rows, self.param[b], self.ldec[b])
                    _v_quant(vals, rows, qp, qi, 0, out, row * c + ch, c)
                else:
                    if k == _MEAN:
                        vals[0] = mean
                    elif k == _RMS:
                        vals[0] = _v_rms(y, t, lg)
                    else:
                        vals[0] = _v_peak(y, t)
                    _v_quant(vals, 1, qp, qi, 0, out, row * c + ch, c)
                row += rows

    def _run_py(self, x, out):
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
            mean = s >> lg if lg >= 0 else s // t
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
                    self._raw(out, row, ch, rows, self.param[b], self.ldec[b], qi + ch)
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
        if lg >= 0:
            return isqrt((hi << (28 - lg)) + (lo >> lg))
        # (hi * 2**28 + lo) // t in two 14-bit steps, as _v_rms
        t = self.window
        r = (hi << 14) + (lo >> 14)
        q = r // t
        r = ((r - q * t) << 14) + (lo & _LO_MASK)
        return isqrt((q << 14) + r // t)

    def _raw(self, out, row, ch, rows, dec, ld, qi):
        # ld = log2(dec), computed once in __init__ (ldec); -1: dec is not a power of two
        y = self.y
        c = self.channels
        i = 0
        for r in range(rows):
            s = 0
            for _ in range(dec):
                s += y[i]
                i += 1
            out[(row + r) * c + ch] = self._q(s >> ld if ld >= 0 else s // dec, qi)

    def _fft(self, out, row, ch, bins, compress, qi):
        t = self.window
        n = self.nfft
        re = self.re
        im = self.im
        y = self.y
        tw = self.tw
        quarter = n >> 2
        halfn = n >> 1
        if t < n:  # zero padding
            for i in range(n):
                re[i] = 0
                im[i] = 0
        # bit-reversed copy of the working signal
        j = 0
        for i in range(t):
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
