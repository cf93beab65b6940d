# elrt.stream: weights that stay in flash. A bundle whose constants do not fit the board's RAM is
# loaded without them: only the headers, tensor table and op list (a few KB) are read, and each
# op's constants are read from the bundle file, just before the op runs, into one buffer
# allocated once at load. A fully-connected layer larger than the buffer runs in tiles of output
# rows (each tile's weights, biases, multipliers and shifts read in turn); any other op must fit
# the buffer whole. Everything is planned at load: the reads are (file offset, view) pairs and
# every view is made once, so invoke() still allocates nothing.
#
#   m.load("model.elb", stream=True)     # or stream=N (buffer bytes); None: when RAM is short
#
# Where the firmware has ROMFS (a file on /rom exposes its flash as a buffer) elrt uses the
# bundle in place instead: no copy, no reads.
import binascii
import gc
import struct

TILE_BYTES = 16384  # default buffer cap for fully-connected weights (tiled when larger)
OP_FC = 1  # FULLY_CONNECTED's bundle opcode (docs/bundle-format.md): the op streamed in tiles
_FC_ARGS = 12  # fully_connected(input, w, bias, mult, shift, output, batches, depth, odepth, ...)


class ConstRef:
    """A constant tensor referenced by an op, before the stream plan gives it a buffer view."""

    def __init__(self, off, nb):
        self.off = off
        self.nb = nb


def _a4(n):
    return (n + 3) & ~3


def fetch(f, offs, views, n):
    # Read n runs of constants into their buffer views (a plan step before the op that uses
    # them). Positional, allocation-free: seek and readinto return small ints.
    i = 0
    while i < n:
        f.seek(offs[i])
        f.readinto(views[i])
        i += 1


def request(path, stream):
    """Model.load's stream= for a path: 0 when the file is on ROMFS (flash mapped in place,
    nothing to stream), -1 for True (a buffer sized for the model), else the buffer bytes."""
    from elrt import BundleError

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


def load(model, path, sbytes):
    """The bundle's tables into RAM, its constants left in the file: a plan whose steps read
    each op's constants through one buffer of sbytes (-1: sized for the model). Returns
    (buffer, open file, the plan tuple of Model._build with the streamed steps)."""
    import elrt

    try:
        f = open(path, "rb")
    except OSError as e:
        raise elrt.BundleError("cannot read bundle %s: %s" % (path, e))
    try:
        n = f.seek(0, 2)
        f.seek(0)
        hsize, blen, crc = elrt._check_fields(f.read(16), n)
        try:
            meta, c_off, got = read_meta(f, hsize, blen, 48, bytearray(1024))
        except ValueError as e:
            raise elrt.BundleError(str(e))
        elrt._check_crc(got, crc)
        if sbytes < 0:
            sbytes = meta_buffer_bytes(meta)
        gc.collect()
        sbuf = bytearray(max(sbytes, 4))  # first, while the heap is in one piece
        built = model._build(meta, blen, ConstRef)
        steps = built[0]
        plan_ops = built[6]
        codes = op_codes(meta, built[4])
        fc = [codes[k] == OP_FC for k in plan_ops]
        try:
            steps, plan_ops = plan(steps, plan_ops, f, hsize + c_off, sbuf, fc)
        except ValueError as e:
            raise elrt.BundleError(str(e))
    except BaseException:
        f.close()
        raise
    return sbuf, f, (steps,) + built[1:6] + (plan_ops,)


def read_meta(f, hsize, blen, body_header_size, chunk):
    """(meta, const_off, CRC32 of the body) from an open bundle file whose container header was
    checked: meta is the body up to the constant section (headers, tensor table, io and op
    lists), read into RAM; the constants are only read to check the CRC, through `chunk` (a
    bytearray). Raises ValueError naming what is short or out of place."""
    f.seek(hsize)
    bh = f.read(body_header_size)
    if len(bh) < body_header_size:
        raise ValueError("bundle body too short for its header (%d bytes)" % len(bh))
    c_off = struct.unpack_from("<12I", bh, 0)[9]
    if c_off < body_header_size or c_off > blen:
        raise ValueError("constant section at %d lies outside the body (%d bytes)"
                         % (c_off, blen))
    meta = bytearray(c_off)
    meta[:body_header_size] = bh
    got = f.readinto(memoryview(meta)[body_header_size:]) if c_off > body_header_size else 0
    if (got or 0) != c_off - body_header_size:
        raise ValueError("bundle truncated in its tables")
    c = binascii.crc32(meta)
    mv = memoryview(chunk)
    left = blen - c_off
    while left > 0:
        k = f.readinto(mv[:min(left, len(chunk))])
        if not k:
            raise ValueError("bundle truncated: its body is %d bytes short" % left)
        c = binascii.crc32(mv[:k], c)
        left -= k
    return meta, c_off, c & 0xFFFFFFFF


def _runs(refs):
    # Contiguous file runs [start, end) covering refs (deduplicated by offset), in file order.
    spans = sorted(set((r.off, _a4(r.nb)) for r in refs))
    runs = []
    for off, nb in spans:
        if runs and off <= runs[-1][1]:
            if off + nb > runs[-1][1]:
                runs[-1][1] = off + nb
        else:
            runs.append([off, off + nb])
    return runs


def op_span(refs):
    """Buffer bytes an op's constants take when read whole (4-aligned runs)."""
    n = 0
    for s, e in _runs(refs):
        n += e - s
    return n


def meta_buffer_bytes(meta, cap=TILE_BYTES):
    """buffer_bytes from the bundle's tables alone (before the plan exists: the buffer is taken
    first, while the heap is still in one piece). Per op, from its const tensors."""
    h = struct.unpack_from("<12I", meta, 0)
    n_t, n_ops, t_off, p = h[0], h[1], h[5], h[6]
    op_refs = []
    fc = []
    for _ in range(n_ops):
        code, nt, npar = struct.unpack_from("<3i", meta, p)
        refs = []
        for j in range(nt):
            k = struct.unpack_from("<i", meta, p + 12 + 4 * j)[0]
            if 0 <= k < n_t:
                kind, off, nb = struct.unpack_from("<xBxxII", meta, t_off + 36 * k)
                if kind == 1:
                    refs.append(ConstRef(off, nb))
        op_refs.append(refs)
        fc.append(code == OP_FC and len(refs) == 4)
        p += 4 * (3 + nt + npar)
    return buffer_bytes(op_refs, fc, cap)


def buffer_bytes(op_refs, fc_flags, cap=TILE_BYTES):
    """The stream buffer for a model: its largest non-FC op's constants, and FC constants up
    to `cap` (larger ones are tiled; at least one output row each)."""
    size = 0
    for refs, fc in zip(op_refs, fc_flags):
        span = op_span(refs)
        if fc and span > cap:
            w = refs[0]
            depth = w.nb // max(1, refs[1].nb // 4)
            span = max(cap, _a4(depth) + 12)
        if span > size:
            size = span
    return size


def op_codes(meta, n_ops):
    """The opcode of each op in the bundle's op list (meta: the body's tables)."""
    ops_off = struct.unpack_from("<12I", meta, 0)[6]
    codes = []
    p = ops_off
    for _ in range(n_ops):
        code, nt, npar = struct.unpack_from("<3i", meta, p)
        codes.append(code)
        p += 4 * (3 + nt + npar)
    return codes


def plan(steps, plan_ops, f, base, buf, fc_flags):
    """The streamed plan: every step whose args hold ConstRefs gets a fetch step before it and
    its refs replaced by views into buf; an FC step too large for buf becomes tiles. base: the
    file offset of the constant section; fc_flags[i]: step i is a FULLY_CONNECTED."""
    bmv = memoryview(buf)
    cap = len(buf)
    out = []
    out_ops = []
    for i in range(len(steps)):
        fn, args = steps[i]
        refs = [a for a in args if isinstance(a, ConstRef)]
        if not refs:
            out.append((fn, args))
            out_ops.append(plan_ops[i])
            continue
        runs = _runs(refs)
        if op_span(refs) <= cap:
            pos = 0
            offs = []
            views = []
            where = {}
            for s, e in runs:
                offs.append(base + s)
                views.append(bmv[pos:pos + e - s])
                where[s] = (pos, e)
                pos += e - s
            new = []
            for a in args:
                if isinstance(a, ConstRef):
                    for s in where:
                        p, e = where[s]
                        if s <= a.off < e:
                            a = bmv[p + a.off - s:p + a.off - s + a.nb]
                            break
                new.append(a)
            out.append((fetch, (f, tuple(offs), tuple(views), len(offs))))
            out.append((fn, tuple(new)))
            out_ops.append(plan_ops[i])
            out_ops.append(plan_ops[i])
        elif fc_flags[i] and len(args) == _FC_ARGS:
            _tile_fc(fn, args, f, base, bmv, cap, out, out_ops, plan_ops[i])
        else:
            raise ValueError("op %d: its constants (%d bytes) do not fit the stream buffer "
                             "(%d bytes); load with a larger stream= buffer"
                             % (plan_ops[i], op_span(refs), cap))
    gc.collect()
    return tuple(out), tuple(out_ops)


def _tile_fc(fn, args, f, base, bmv, cap, out, out_ops, index):
    inp, w, b, m, s, outv, batches, depth, odepth = args[:9]
    tail = args[9:]
    for r in (w, b, m, s):
        if not isinstance(r, ConstRef):
            raise ValueError("op %d: FULLY_CONNECTED streamed with a non-constant weight" % index)
    rows = cap // (_a4(depth) + 12)
    if rows < 1:
        raise ValueError("op %d: one output row (%d bytes) does not fit the stream buffer"
                         % (index, depth + 12))
    inmv = memoryview(inp)
    omv = memoryview(outv)
    o0 = 0
    while o0 < odepth:
        n = min(rows, odepth - o0)
        wb = _a4(n * depth)
        offs = (base + w.off + o0 * depth, base + b.off + 4 * o0, base + m.off + 4 * o0,
                base + s.off + 4 * o0)
        views = (bmv[0:n * depth], bmv[wb:wb + 4 * n], bmv[wb + 4 * n:wb + 8 * n],
                 bmv[wb + 8 * n:wb + 12 * n])
        out.append((fetch, (f, offs, views, 4)))
        out_ops.append(index)
        for bi in range(batches):
            out.append((fn, (inmv[bi * depth:(bi + 1) * depth], views[0], views[1], views[2],
                             views[3], omv[bi * odepth + o0:bi * odepth + o0 + n], 1, depth,
                             n) + tail))
            out_ops.append(index)
        o0 += n
