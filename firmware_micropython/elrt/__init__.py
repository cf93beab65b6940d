# elrt: EdgeLoop's int8 runtime for stock MicroPython, bit-exact with TFLM.
#
#   import elrt
#   m = elrt.Model()
#   m.load("model.elb")      # or any bytes-like / read-only buffer (ROMFS: used in place)
#   m.input[:] = x           # int8 bytes of the model input (memoryview into the arena)
#   m.invoke()               # allocates nothing on the heap
#   y = m.output             # memoryview into the arena
#   m.invoke_timed(us)       # invoke() adding each step's µs to us[i] (per-op profile)
#
# Everything is decided at load: the bundle (docs/bundle-format.md) is checked (magic, version,
# sizes, CRC32), the arena is allocated once, and every op becomes a (kernel, args) pair whose
# args are memoryviews and ints prepared up front. invoke() only calls kernels with positional
# arguments (a *args or keyword call, or a closure over many cells, would allocate).
# The kernel set (viper fast path or bytecode fallback) is chosen at import; use_kernels()
# switches it for models loaded afterwards. The viper kernels of an op family are imported when a
# model using that family is loaded, not before; m.kernel_sets records each family's set.
import binascii
import gc
import struct
import time

from micropython import const

from elrt import optable as _T  # the op table, generated from converters/registry.py
from elrt.extents import check_extents

_HEADER_FMT = "<4sHHII"
_HEADER_SIZE = const(16)
_BODY_HEADER_SIZE = const(48)
_TENSOR_FMT = "<BBBBIIif4i"
_TENSOR_SIZE = const(36)
FORMAT_VERSION = const(1)

_DTYPE_SIZE = {1: 1, 2: 4, 3: 4, 4: 2}
_DTYPE_NAME = {1: "int8", 2: "int32", 3: "float32", 4: "int16"}


class BundleError(Exception):
    """The bundle cannot be loaded: the message says what is wrong with it."""


KERNELS = None  # the selected set: "viper" (per family, where it imports) or "bytecode"
_VIPER = False
_KP = None  # kernels_py, imported the first time a family needs the bytecode set
_KV = {}  # family -> its imported viper module, or the text of why it did not import

# The viper set is one small module per op family (elrt/kv_<family>.py): a model imports only
# the families its ops use, at load, because on an ESP32 each imported viper module's machine
# code is copied into the small executable IRAM (and its function objects take GC heap).
# Which op is in which family, and each family's kernels: elrt/optable.py (generated).


def _self_check(k):
    # A known-answer FC (3 channels, both signs, multipliers up to INT32_MAX, shifts -13..-5):
    # the record of a per-channel FULLY_CONNECTED model and TFLM's output for this input, both
    # checked by tests/runtime/test_self_check.py (against the tflite-micro runtime, and the
    # bytecode kernels). Comparing with a constant spares importing the bytecode set.
    out = bytearray(3)
    k.fully_connected(
        bytes((0, 127, 128, 255, 37, 200)),
        bytes((255, 1, 128, 127, 90, 3, 17, 250, 129, 64, 5, 77, 200, 100, 3, 9, 130, 66)),
        struct.pack("<3i", 12345, -70000, -4000),
        struct.pack("<3i", 1518473071, 2147445248, 2147483647),
        struct.pack("<3i", -9, -13, -5), out, 1, 6, 3, -3, -128, 127)
    return out == b"\x29\xf6\xfb"  # 41, -10, -5


def _word(table, i):
    # Word i of an optable string (" A B C": word 1 is A), an op's name, family or kernel.
    p = 0
    for _ in range(i):
        p = table.index(" ", p) + 1
    e = table.find(" ", p)
    return table[p:] if e < 0 else table[p:e]


def _viper(fam):
    """The viper module of a family, or a str saying why it is unusable. Imported once: a
    failure (ImportError where the port has no viper, MemoryError when IRAM or the heap is
    exhausted) is remembered until the next use_kernels()."""
    m = _KV.get(fam)
    if m is None:
        try:
            m = __import__("elrt.kv_" + fam, None, None, ("x",))
            for code in range(1, _T.MAX_OPCODE + 1):
                name = _word(_T.KERNEL, code)
                if _word(_T.FAMILY, code) == fam and not hasattr(m, name):
                    m = "elrt.kv_%s lacks %s" % (fam, name)
                    break
        except Exception as e:  # any failure: the family runs on bytecode
            m = "%s: %s" % (type(e).__name__, e)
            gc.collect()
        _KV[fam] = m
    return m


def _kernels(fam):
    """(module, "viper" or "bytecode") that runs a family's ops under the selected set."""
    global _KP
    if _VIPER:
        m = _viper(fam)
        if not isinstance(m, str):
            return m, "viper"
    if _KP is None:
        from elrt import kernels_py
        _KP = kernels_py
    return _KP, "bytecode"


def _op_families(ops, n_ops):
    # The op families of an op list (records as in docs/bundle-format.md); stops quietly at
    # anything malformed, which _build then reports with its full checks.
    fams = set()
    p = 0
    n = len(ops)
    for _ in range(n_ops):
        if p + 12 > n:
            break
        code, nt, npar = struct.unpack_from("<3i", ops, p)
        if not 0 < code <= _T.MAX_OPCODE or nt < 0 or npar < 0:
            break
        fams.add(_word(_T.FAMILY, code))
        p += 4 * (3 + nt + npar)
    return fams


def _body_op_list(body):
    if len(body) < _BODY_HEADER_SIZE:
        return ()
    h = struct.unpack_from("<12I", body, 0)
    return _op_families(body[h[6]:h[6] + h[7]], h[1])


def _file_op_list(path):
    # Only the headers and the op list (a few hundred bytes), not the whole bundle.
    try:
        with open(path, "rb") as f:
            head = f.read(_HEADER_SIZE)
            hsize = struct.unpack_from("<H", head, 6)[0]
            f.seek(hsize)
            h = struct.unpack("<12I", f.read(_BODY_HEADER_SIZE))
            f.seek(hsize + h[6])
            return _op_families(f.read(h[7]), h[1])
    except Exception:  # unreadable or malformed: load() then reports it with the full checks
        return ()


def _prepare_kernels(fams):
    for fam in fams:
        _kernels(fam)


def use_kernels(name="auto"):
    """Select the kernel set for models loaded from now on: "auto" (viper if it imports and
    passes a self-check, else bytecode), "viper" or "bytecode". Returns the chosen name.
    Under viper, a model still runs a family on bytecode if its viper module fails to import
    at load (Model.kernel_sets says which set each family uses)."""
    global KERNELS, _VIPER
    if name not in ("auto", "viper", "bytecode"):
        raise ValueError("kernel set must be auto, viper or bytecode, not %r" % (name,))
    for fam in list(_KV):
        if isinstance(_KV[fam], str):
            del _KV[fam]  # retry failed families
    ok = False
    if name != "bytecode":
        kv = _viper("fc")  # the probe: the family every model in practice has
        if isinstance(kv, str):
            if name == "viper":
                raise ValueError("viper kernels unavailable: %s" % (kv,))
        else:
            try:
                ok = _self_check(kv)
            except Exception:  # a faulty kernel
                ok = False
            if not ok:
                _KV["fc"] = "self-check failed"
                if name == "viper":
                    raise ValueError("viper kernels failed their self-check (known-answer FC)")
    _VIPER = ok
    KERNELS = "viper" if ok else "bytecode"
    return KERNELS


def _env_choice():
    try:
        import os
        v = os.getenv("ELRT_KERNELS")
    except (ImportError, AttributeError):  # ports without os or os.getenv (ESP32)
        v = None
    return v if v in ("viper", "bytecode") else "auto"


use_kernels(_env_choice())


def crc32(buf):
    """zlib CRC-32 of a buffer: binascii.crc32 where the port has it, else a table in bytecode."""
    f = getattr(binascii, "crc32", None)
    if f is not None:
        return f(buf) & 0xFFFFFFFF
    return crc32_table(buf)


def crc32_table(buf):
    """Byte-wise table CRC-32 (load time only: its 32-bit values are big ints on a 32-bit port)."""
    table = [0] * 256
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        table[i] = c
    c = 0xFFFFFFFF
    for b in buf:
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def _call(fn, a):
    # Positional call with len(a) arguments, without building an argument list on the heap.
    n = len(a)
    if n == 4:
        fn(a[0], a[1], a[2], a[3])
    elif n == 5:
        fn(a[0], a[1], a[2], a[3], a[4])
    elif n == 6:
        fn(a[0], a[1], a[2], a[3], a[4], a[5])
    elif n == 10:
        fn(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9])
    elif n == 11:
        fn(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10])
    elif n == 12:
        fn(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11])
    elif n == 15:
        fn(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12],
           a[13], a[14])
    elif n == 16:
        fn(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12],
           a[13], a[14], a[15])
    elif n == 25:
        fn(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12],
           a[13], a[14], a[15], a[16], a[17], a[18], a[19], a[20], a[21], a[22], a[23], a[24])
    elif n == 26:
        fn(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12],
           a[13], a[14], a[15], a[16], a[17], a[18], a[19], a[20], a[21], a[22], a[23], a[24],
           a[25])
    else:
        raise ValueError("no dispatch for %d kernel arguments" % n)


def _arg_kinds(code):
    # (start, end) of an opcode's letters in optable.ARGS: after those of the lower opcodes
    start = 0
    for c in range(1, code):
        if _T.PARAMS[c] != _T.VARIABLE:
            start += _T.PARAMS[c]
    return start, start + _T.PARAMS[code]


def _kernel_params(body, pp, prm, kinds, copy):
    # The kernel's param arguments from a record's params, by the op's arg kinds (optable.py):
    # i int, n negated, w the param's 4 bytes as a view (multipliers stay out of Python ints),
    # f the float32 of its bits, t this and every later param as one view of int32 words;
    # copy: w and t as bytes of their own (the body is a transient view when streaming).
    a = []
    start, end = kinds
    for j in range(end - start):
        c = _T.ARGS[start + j]
        if c == 105:  # i
            a.append(prm[j])
        elif c == 110:  # n
            a.append(-prm[j])
        elif c == 119:  # w
            v = body[pp + 4 * j:pp + 4 * j + 4]
            a.append(bytes(v) if copy else v)
        elif c == 102:  # f
            a.append(struct.unpack("<f", struct.pack("<i", prm[j]))[0])
        elif c == 116:  # t
            v = body[pp + 4 * j:pp + 4 * (end - start)]
            a.append(bytes(v) if copy else v)
            break
        else:
            raise ValueError("arg kind %r" % c)
    return tuple(a)


def _address(buf):
    # The address of a buffer's first byte, or None where the port cannot tell (no uctypes).
    try:
        import uctypes
        return uctypes.addressof(buf)
    except (ImportError, AttributeError, TypeError):
        return None


def _check_aligned(body, ops_off, c_off):
    # The viper kernels read int32 constants (bias, multipliers, shifts, LUTs) and op params
    # with ptr32: an unaligned 32-bit load faults on Xtensa (LoadStoreAlignmentCause), so a
    # buffer or a section that is not 4-byte aligned is refused here, not found by a crash.
    a = _address(body)
    if a is not None and a & 3:
        raise BundleError(
            "bundle body at address 0x%x is not 4-byte aligned (a buffer at an odd offset, or "
            "a file in ROMFS placed unaligned): the int32 constants would fault on an ESP32; "
            "load it from a 4-aligned buffer, e.g. load(bytearray(buf))" % a)
    if ops_off & 3 or c_off & 3:
        raise BundleError("op list (offset %d) or constant section (offset %d) not 4-byte "
                          "aligned in the bundle body" % (ops_off, c_off))


def _check_fields(head, n):
    # The container header's checks (n: the bundle's length); returns (hsize, body_len, crc).
    if n < _HEADER_SIZE:
        raise BundleError("bundle truncated: %d bytes, the header alone is 16" % n)
    magic, version, hsize, blen, crc = struct.unpack_from(_HEADER_FMT, head, 0)
    if magic != b"ELMB":
        raise BundleError("not an EdgeLoop bundle: magic %r, expected b'ELMB'" % (bytes(magic),))
    if version != FORMAT_VERSION:
        raise BundleError(
            "bundle format version %d not supported by this runtime (reads version %d): "
            "convert the model with a matching edgeloop" % (version, FORMAT_VERSION))
    if hsize < _HEADER_SIZE or hsize & 3:
        raise BundleError("bad bundle header size %d (must be >= 16, a multiple of 4)" % hsize)
    if n < hsize + blen:
        raise BundleError(
            "bundle truncated: %d bytes, header says %d (header %d + body %d)"
            % (n, hsize + blen, hsize, blen))
    return hsize, blen, crc


def _check_crc(got, crc):
    if got != crc:
        raise BundleError("bundle corrupt: body CRC32 0x%08x, header says 0x%08x" % (got, crc))


def _check_header(mv):
    hsize, blen, crc = _check_fields(mv, len(mv))
    body = mv[hsize:hsize + blen]
    _check_crc(crc32(body), crc)
    return body


class Model:
    """An int8 model loaded from a bundle: input/output views, invoke(), arena_bytes."""

    def __init__(self):
        self._plan = ()
        self._bundle = None
        self._arena = None
        self.arena_bytes = 0
        self.inputs = []
        self.outputs = []
        self.input = None
        self.output = None
        self.input_shape = None
        self.output_shape = None
        self.input_dtype = None
        self.output_dtype = None
        self.input_scale = 0.0
        self.input_zero_point = 0
        self.output_scale = 0.0
        self.output_zero_point = 0
        self.n_ops = 0
        self.kernels = None  # "viper", "bytecode" or "mixed" (some families fell back)
        self.kernel_sets = {}  # op family ("fc", "conv", ...) -> "viper" or "bytecode"
        self.plan_ops = ()  # bundle op index of each invoke() step (CONCATENATION: k steps)
        self.stream_bytes = 0  # > 0: constants read from the bundle file through this buffer
        self._file = None

    def load(self, src, stream=None):
        """Load a bundle from a file path (read into RAM, or streamed: see elrt/stream.py) or a
        buffer (used in place). stream (paths only): None streams the constants from the file
        when the bundle does not fit the heap (MemoryError reading it), True always (buffer
        sized for the model), an int through a buffer of that many bytes, False never. Raises BundleError; on
        failure the previously loaded model is left untouched."""
        sfile = None
        sbytes = 0
        try:
            # The kernel modules the ops need are imported first, while the heap is emptiest:
            # importing a .mpy briefly holds each function's machine code on the heap before
            # it is committed to executable memory (a large block for the conv kernels).
            if isinstance(src, str):
                _prepare_kernels(_file_op_list(src))
                gc.collect()  # the bundle is one large block: give it the most contiguous room
                if stream is not None and stream is not False and (stream is True or stream):
                    sbytes = _stream_request(src, stream)
            if not sbytes:
                try:
                    buf = _read_file(src) if isinstance(src, str) else src
                    try:
                        mv = memoryview(buf)
                    except TypeError:
                        raise BundleError("bundle must be a path or a bytes-like buffer, not "
                                          "%s" % type(src).__name__)
                    body = _check_header(mv)
                    if not isinstance(src, str):
                        _prepare_kernels(_body_op_list(body))
                    plan, arena, ins, outs, n_ops, sets, plan_ops = self._build(body)
                except MemoryError:
                    if stream is not None or not isinstance(src, str):
                        raise
                    # the bundle does not fit the heap: keep its constants in the file
                    buf = mv = body = None
                    gc.collect()
                    sbytes = -1
            if sbytes:
                from elrt import stream as S  # only streaming models pay for its code
                buf, sfile, built = S.load(self, src, sbytes)
                plan, arena, ins, outs, n_ops, sets, plan_ops = built
                sbytes = len(buf)
        except BundleError:
            if sfile is not None:
                sfile.close()
            raise
        except MemoryError:
            if sfile is not None:
                sfile.close()
            buf = mv = body = None
            gc.collect()
            raise BundleError("model does not fit in RAM: MemoryError while loading (%d bytes "
                              "free now; the bundle, its arena and tables must fit together "
                              "with the model already loaded)" % gc.mem_free())
        except (ValueError, IndexError, KeyError, TypeError) as e:
            if sfile is not None:
                sfile.close()
            raise BundleError("malformed bundle: %s" % (e,))
        # commit: only now does the model change
        if self._file is not None:
            self._file.close()
        self._file = sfile
        self.stream_bytes = sbytes
        self._plan = plan
        self._arena = arena
        self._bundle = buf
        self.arena_bytes = len(arena)
        self.inputs = [t[7] for t in ins]
        self.outputs = [t[7] for t in outs]
        self.input = self.inputs[0]
        self.output = self.outputs[0]
        ti = ins[0]
        to = outs[0]
        self.input_shape = ti[6]
        self.output_shape = to[6]
        self.input_dtype = _DTYPE_NAME[ti[0]]
        self.output_dtype = _DTYPE_NAME[to[0]]
        self.input_scale = ti[5]
        self.input_zero_point = ti[4]
        self.output_scale = to[5]
        self.output_zero_point = to[4]
        self.n_ops = n_ops
        self.plan_ops = plan_ops
        self.kernel_sets = sets
        kinds = set(sets.values())
        self.kernels = kinds.pop() if len(kinds) == 1 else ("mixed" if kinds else KERNELS)
        gc.collect()

    def _build(self, body, blen=None, cview=None, arena=None):
        # body: the bundle body, or (streaming) its tables up to the constant section, with
        # blen the full body length and cview(off, nbytes) standing in for constant views;
        # arena: taken by the caller before anything else (streaming: body may then be a view
        # into its tail, so params are copied out of it), else allocated here.
        blen = len(body) if blen is None else blen
        if blen < _BODY_HEADER_SIZE:
            raise BundleError("bundle body too short for its header (%d bytes)" % blen)
        (n_t, n_ops, n_in, n_out, arena_bytes, t_off, ops_off, ops_len, io_off, c_off, c_len,
         _flags) = struct.unpack_from("<12I", body, 0)
        if t_off + n_t * _TENSOR_SIZE > blen or io_off + 4 * (n_in + n_out) > blen:
            raise BundleError("tensor table or io list runs past the bundle body")
        if ops_off + ops_len > blen or c_off + c_len > blen:
            raise BundleError("op list or constant section runs past the bundle body")
        if n_in < 1 or n_out < 1:
            raise BundleError("bundle declares %d inputs and %d outputs" % (n_in, n_out))
        _check_aligned(body, ops_off, c_off)
        # The arena is the largest block: take it first, before parsing leaves garbage around.
        own = cview is not None  # streaming: params copied out of the transient tables
        if arena is None or len(arena) != arena_bytes:
            arena = None
            gc.collect()
            try:
                arena = bytearray(arena_bytes)
            except OverflowError:  # past a 32-bit board's word: too big, as a MemoryError says
                raise MemoryError
        amv = memoryview(arena)

        def tensor(k, where):
            # (dtype, kind, offset, nbytes, zero_point, scale, shape, view), checked; parsed
            # when an op refers to it, so no per-tensor table stays in RAM.
            if not 0 <= k < n_t:
                raise BundleError("%s: tensor id %d out of range (%d tensors)" % (where, k, n_t))
            f = struct.unpack_from(_TENSOR_FMT, body, t_off + k * _TENSOR_SIZE)
            dt, kind, nd, off, nb = f[0], f[1], f[2], f[4], f[5]
            if dt not in _DTYPE_SIZE or kind > 1 or nd > 4:
                raise BundleError("tensor %d: bad dtype/kind/ndim %d/%d/%d" % (k, dt, kind, nd))
            if off & (_DTYPE_SIZE[dt] - 1):
                raise BundleError("tensor %d: %s data at offset %d in the %s is not %d-byte "
                                  "aligned (its kernels read it in words)" % (
                                      k, _DTYPE_NAME[dt], off, "constant section" if kind
                                      else "arena", _DTYPE_SIZE[dt]))
            want = _DTYPE_SIZE[dt]
            for d in f[8:8 + nd]:
                want = want * d if d >= 1 else -1
            if want != nb:  # as the host checks: the shape the board reports is the data's
                raise BundleError("tensor %d: nbytes %d does not match shape %s"
                                  % (k, nb, tuple(f[8:8 + nd])))
            if kind == 0:
                if off + nb > arena_bytes:
                    raise BundleError("tensor %d (%d bytes at %d) lies outside the arena"
                                      % (k, nb, off))
                v = amv[off:off + nb]
            else:
                if off + nb > c_len:
                    raise BundleError("tensor %d (%d bytes at %d) lies outside the constant "
                                      "section" % (k, nb, off))
                v = cview(off, nb) if cview else body[c_off + off:c_off + off + nb]
            return (dt, kind, off, nb, f[6], f[7], tuple(f[8:8 + nd]), v)

        io = struct.unpack_from("<%di" % (n_in + n_out), body, io_off)
        ins = []
        outs = []
        for j in range(n_in + n_out):
            t = tensor(io[j], "io list")
            if t[1] != 0:
                raise BundleError("io tensor %d is not an arena tensor" % io[j])
            (ins if j < n_in else outs).append(t)
        sets = {}
        kmod = {}
        plan = []
        plan_ops = []
        p = ops_off
        end = ops_off + ops_len
        for index in range(n_ops):
            if p + 12 > end:
                raise BundleError("op list truncated at op %d" % index)
            code, nt, npar = struct.unpack_from("<3i", body, p)
            if not 0 < code <= _T.MAX_OPCODE:
                raise BundleError("op %d: unknown opcode %d (this runtime knows 1..%d)"
                                  % (index, code, _T.MAX_OPCODE))
            name = _word(_T.NAMES, code)
            want_t = _T.TENSORS[code]
            want_p = _T.PARAMS[code]
            if want_t != _T.VARIABLE and (nt, npar) != (want_t, want_p):
                raise BundleError("op %d %s: %d tensors/%d params, expected %d/%d"
                                  % (index, name, nt, npar, want_t, want_p))
            if p + 4 * (3 + nt + npar) > end:
                raise BundleError("op %d %s runs past the op list" % (index, name))
            ids = struct.unpack_from("<%di" % nt, body, p + 12)
            where = "op %d %s" % (index, name)
            fam = _word(_T.FAMILY, code)
            K = kmod.get(fam)
            if K is None:
                K, sets[fam] = _kernels(fam)
                kmod[fam] = K
            fn = getattr(K, _word(_T.KERNEL, code))
            v = []
            sz = []
            for k in ids:
                t = tensor(k, where)
                v.append(t[7])
                sz.append((_DTYPE_SIZE[t[0]], t[3]))
            if t[1] != 0:
                raise BundleError("%s writes a constant tensor" % where)
            pp = p + 12 + 4 * nt
            prm = struct.unpack_from("<%di" % npar, body, pp)
            bad = check_extents(where, code, sz, prm)  # no kernel may leave its tensors
            if bad:
                raise BundleError(bad)
            if code == _T.OP_CONCATENATION:
                k = prm[0]
                if nt != k + 1 or npar != 2 + k:
                    raise BundleError("op %d CONCATENATION: %d inputs but %d tensors/%d params"
                                      % (index, k, nt, npar))
                outer = prm[1]
                stride = 0
                for j in range(k):
                    stride += prm[2 + j]
                start = 0
                for j in range(k):
                    plan.append((fn, (v[j], v[k], outer, prm[2 + j], stride, start)))
                    start += prm[2 + j]
            else:
                if code == _T.OP_MEAN and prm[1] < 1:
                    raise BundleError("op %d MEAN: reduce size %d" % (index, prm[1]))
                plan.append((fn, tuple(v) + _kernel_params(body, pp, prm, _arg_kinds(code),
                                                           own)))
            while len(plan_ops) < len(plan):
                plan_ops.append(index)
            p += 4 * (3 + nt + npar)
        return tuple(plan), arena, ins, outs, n_ops, sets, tuple(plan_ops)

    def invoke(self):
        """Run every op once over the arena. Allocates nothing on the heap."""
        if self._bundle is None:
            raise BundleError("no model loaded: call load() first")
        call = _call
        for op in self._plan:
            call(op[0], op[1])

    def invoke_timed(self, us):
        """invoke() that adds each step's µs (time.ticks_us) to us[i], i the step's index in
        plan_ops: a per-op profile. us: an array('i') or list of len(plan_ops) ints, zeroed by
        the caller. Allocates nothing, like invoke()."""
        if self._bundle is None:
            raise BundleError("no model loaded: call load() first")
        if len(us) < len(self._plan):
            raise ValueError("profile buffer holds %d steps, the model has %d"
                             % (len(us), len(self._plan)))
        call = _call
        now = time.ticks_us
        diff = time.ticks_diff
        i = 0
        for op in self._plan:
            t0 = now()
            call(op[0], op[1])
            us[i] += diff(now(), t0)
            i += 1


def _stream_request(path, stream):
    # Model.load's stream= for a path: 0 when the file is on ROMFS (flash mapped in place,
    # nothing to stream), -1 for True (a buffer sized for the model), else the buffer bytes.
    try:
        f = open(path, "rb")
    except OSError as e:
        raise BundleError("cannot read bundle %s: %s" % (path, e))
    try:
        memoryview(f)
        return 0
    except TypeError:
        pass
    finally:
        f.close()
    return -1 if stream is True else int(stream)


def _read_file(path):
    # A file on a ROMFS mount (MicroPython 1.25+) exposes its flash bytes as a buffer: use them
    # in place (the view keeps the file object alive). Any other file is read into one
    # exactly-sized bytearray, without the growing buffers of read().
    try:
        f = open(path, "rb")
    except OSError as e:
        raise BundleError("cannot read bundle %s: %s" % (path, e))
    try:
        return memoryview(f)
    except TypeError:
        pass
    try:
        n = f.seek(0, 2)
        f.seek(0)
        buf = bytearray(n)
        got = f.readinto(buf)
    except OSError as e:
        raise BundleError("cannot read bundle %s: %s" % (path, e))
    finally:
        f.close()
    if got != n:
        raise BundleError("cannot read bundle %s: got %s of %d bytes" % (path, got, n))
    return buf
