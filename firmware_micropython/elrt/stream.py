# elrt.stream: weights that stay in flash. A bundle whose constants do not fit the board's RAM is
# loaded without them: only the headers, tensor table and op list (a few KB) are read, and each
# op's constants are read from the bundle file, just before the op runs, into one buffer
# allocated once at load. A fully-connected layer larger than the buffer runs in tiles of output
# rows, a convolution in tiles of output channels (each tile's weights, biases, multipliers and
# shifts read in turn; a conv tile writes its channels into the buffer, then they are copied to
# their place among the output's channels); any other op must fit the buffer whole. Everything
# is planned at load: the reads are (file offset, view) pairs and every view is made once, so
# invoke() still allocates nothing.
#
#   m.load("model.elb", stream=True)     # or stream=N (buffer bytes); None: when RAM is short
#
# Where the firmware has ROMFS (a file on /rom exposes its flash as a buffer) elrt uses the
# bundle in place instead: no copy, no reads.
import binascii
import gc
import struct

TILE_BYTES = 16384  # default buffer cap for FC and conv constants (tiled when larger)
APP_HEADROOM = 8192  # heap a sized buffer leaves for the application (inputs, outputs, stats)
OP_FC = 1  # FULLY_CONNECTED's bundle opcode (docs/bundle-format.md): streamed in row tiles
OP_CONV = 2  # CONV_2D's: streamed in output-channel tiles
_FC_ARGS = 12  # fully_connected(input, w, bias, mult, shift, output, batches, depth, odepth, ...)
_CONV_ARGS = 25  # conv_2d(input, w, bias, mult, shift, output, batches, ih, iw, ic, oh, ow, oc, ...)


def ref(off, nb):
    """A constant tensor referenced by an op, before the stream plan gives it a buffer view:
    (offset in the constant section, bytes), a tuple (a third of a class instance's heap); no
    other kernel argument is a tuple."""
    return (off, nb)


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
        # The arena first, the largest block, while the heap's free space is still in one piece
        # (a model streamed because it nearly fills the heap fails on fragmentation otherwise);
        # the tables are read into its tail (unused until invoke), the buffer sized after both.
        f.seek(hsize + 16)
        n = struct.unpack("<I", f.read(4))[0] if blen >= 48 else 0
        gc.collect()
        arena = bytearray(n) if n <= gc.mem_free() else None  # None: _build reports it
        try:
            meta, c_off, got = read_meta(f, hsize, blen, 48, bytearray(512), arena)
        except ValueError as e:
            raise elrt.BundleError(str(e))
        elrt._check_crc(got, crc)
        cap = first_cap(meta) if sbytes < 0 else 0
        while True:
            # sized for the model (sbytes -1): a plan that finds no room is made again with
            # half the tile cap (a smaller buffer, more tiles), down to 512 bytes
            try:
                gc.collect()
                sbuf = bytearray(max(meta_buffer_bytes(meta, cap) if cap else sbytes, 4))
                built = model._build(meta, blen, ref, arena)
                steps = list(built[0])  # plan() empties it as it goes
                plan_ops = built[6]
                rest = built[1:6]
                kinds = op_codes(meta, built[4])
                kinds = [kinds[k] for k in plan_ops]
                built = None
                gc.collect()
                steps, plan_ops = plan(steps, plan_ops, f, hsize + c_off, sbuf, kinds)
                break
            except MemoryError:
                if cap <= 512:
                    raise
                sbuf = built = steps = rest = None
                cap = max((cap // 2) & ~3, 512)
            except ValueError as e:
                raise elrt.BundleError(str(e))
    except BaseException:
        f.close()
        raise
    return sbuf, f, (steps,) + rest + (plan_ops,)


def first_cap(meta):
    """The tile cap to try first for a buffer sized for the model: TILE_BYTES, or less when the
    heap left besides the arena (taken already), the plan (about 150 words an op, measured) and
    APP_HEADROOM is smaller, so a model whose arena nearly fills the heap still loads (and the
    application still has room to run it), in smaller tiles."""
    import sys

    gc.collect()
    n_ops = struct.unpack_from("<I", meta, 4)[0]
    word = 8 if sys.maxsize > 0x7FFFFFFF else 4
    room = gc.mem_free() - APP_HEADROOM - 150 * word * n_ops
    return TILE_BYTES if room >= TILE_BYTES else max(room & ~3, 512)


def read_meta(f, hsize, blen, body_header_size, chunk, arena=None):
    """(meta, const_off, CRC32 of the body) from an open bundle file whose container header was
    checked: meta is the body up to the constant section (headers, tensor table, io and op
    lists), read into RAM (into the 4-aligned tail of arena when it has room: a view); the
    constants are only read to check the CRC, through `chunk` (a bytearray). Raises ValueError
    naming what is short or out of place."""
    f.seek(hsize)
    bh = f.read(body_header_size)
    if len(bh) < body_header_size:
        raise ValueError("bundle body too short for its header (%d bytes)" % len(bh))
    c_off = struct.unpack_from("<12I", bh, 0)[9]
    if c_off < body_header_size or c_off > blen:
        raise ValueError("constant section at %d lies outside the body (%d bytes)"
                         % (c_off, blen))
    if arena is not None and len(arena) >= c_off + 4:
        start = (len(arena) - c_off) & ~3
        meta = memoryview(arena)[start:start + c_off]
    else:
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
    spans = sorted(set((r[0], _a4(r[1])) for r in refs))
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
    first, while the heap is still in one piece). Per op, from its const tensors and params."""
    h = struct.unpack_from("<12I", meta, 0)
    n_t, n_ops, t_off, p = h[0], h[1], h[5], h[6]
    op_refs = []
    units = []
    for _ in range(n_ops):
        code, nt, npar = struct.unpack_from("<3i", meta, p)
        refs = []
        for j in range(nt):
            k = struct.unpack_from("<i", meta, p + 12 + 4 * j)[0]
            if 0 <= k < n_t:
                kind, off, nb = struct.unpack_from("<xBxxII", meta, t_off + 36 * k)
                if kind == 1:
                    refs.append((off, nb))
        prm = struct.unpack_from("<%di" % npar, meta, p + 12 + 4 * nt) if npar else ()
        op_refs.append(refs)
        units.append(tile_unit(code, refs, prm))
        p += 4 * (3 + nt + npar)
    return buffer_bytes(op_refs, units, cap)


def tile_unit(code, refs, prm):
    """Buffer bytes one output row (FC) or output channel (conv) takes when the op is tiled:
    its weights, bias, multiplier and shift, and (conv) its channel of the output. 0: the op is
    not tiled (it must fit the buffer whole)."""
    if len(refs) != 4 or refs[1][1] < 4:
        return 0
    per = refs[0][1] // (refs[1][1] // 4)  # weight bytes per output row / channel
    if code == OP_FC:
        return _a4(per) + 12
    if code == OP_CONV and len(prm) >= 6:
        return _a4(per) + 12 + prm[0] * prm[4] * prm[5]  # + its batches * oh * ow outputs
    return 0


def buffer_bytes(op_refs, units, cap=TILE_BYTES):
    """The stream buffer for a model: its largest untiled op's constants, and tiled (FC, conv)
    constants up to `cap` (larger ones are tiled; at least one output row or channel each)."""
    size = 0
    for refs, unit in zip(op_refs, units):
        span = op_span(refs)
        if unit and span > cap:
            span = max(cap, unit)
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


def plan(steps, plan_ops, f, base, buf, codes):
    """The streamed plan: every step whose args hold refs gets a fetch step before it and
    its refs replaced by views into buf; an FC or conv step too large for buf becomes tiles.
    base: the file offset of the constant section; codes[i]: step i's opcode. A list of steps
    is emptied as it is planned (the peak heap holds little of both plans)."""
    bmv = memoryview(buf)
    cap = len(buf)
    out = []
    out_ops = []
    if not isinstance(steps, list):
        steps = list(steps)
    for i in range(len(steps)):
        fn, args = steps[i]
        steps[i] = None  # its refs go as their views come: a lower peak
        refs = [a for a in args if type(a) is tuple]
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
                if type(a) is tuple:
                    for s in where:
                        p, e = where[s]
                        if s <= a[0] < e:
                            a = bmv[p + a[0] - s:p + a[0] - s + a[1]]
                            break
                new.append(a)
            out.append((fetch, (f, tuple(offs), tuple(views), len(offs))))
            out.append((fn, tuple(new)))
            out_ops.append(plan_ops[i])
            out_ops.append(plan_ops[i])
        elif codes[i] == OP_FC and len(args) == _FC_ARGS:
            _tile_fc(fn, args, f, base, bmv, cap, out, out_ops, plan_ops[i])
        elif codes[i] == OP_CONV and len(args) == _CONV_ARGS:
            _tile_conv(fn, args, f, base, bmv, cap, out, out_ops, plan_ops[i])
        else:
            raise ValueError("op %d: its constants (%d bytes) do not fit the stream buffer "
                             "(%d bytes); load with a larger stream= buffer"
                             % (plan_ops[i], op_span(refs), cap))
    gc.collect()
    return tuple(out), tuple(out_ops)


def _const_args(args, index, what):
    for r in args[1:5]:
        if type(r) is not tuple:
            raise ValueError("op %d: %s streamed with a non-constant weight" % (index, what))


def _tile_fc(fn, args, f, base, bmv, cap, out, out_ops, index):
    inp, w, b, m, s, outv, batches, depth, odepth = args[:9]
    tail = args[9:]
    _const_args(args, index, "FULLY_CONNECTED")
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
        offs = (base + w[0] + o0 * depth, base + b[0] + 4 * o0, base + m[0] + 4 * o0,
                base + s[0] + 4 * o0)
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


def _tile_conv(fn, args, f, base, bmv, cap, out, out_ops, index):
    # One plan step runs every tile of n output channels: read their filters, biases,
    # multipliers and shifts, run the conv with output_depth n into the buffer after them, copy
    # that [pixels, n] block into the output's channels o0..o0+n (the move family's
    # CONCATENATION kernel does exactly that). All tiles but the last have the same size, so two
    # sets of views serve them all: the step's heap does not grow with the number of tiles.
    import elrt

    w, b, m, s = args[1:5]
    _const_args(args, index, "CONV_2D")
    batches, oc = args[6], args[12]
    px = batches * args[10] * args[11]
    ksz = w[1] // oc
    per = cap // (ksz + 12 + px)
    while per > 0 and _a4(per * ksz) + (12 + px) * per > cap:
        per -= 1
    if per < 1:
        raise ValueError("op %d: one output channel (%d bytes) does not fit the stream buffer "
                         "(%d bytes)" % (index, _a4(ksz) + 12 + px, cap))
    n_tiles = (oc + per - 1) // per
    last = oc - per * (n_tiles - 1)

    def views(n):
        wb = _a4(n * ksz)
        sc = wb + 12 * n
        return (bmv[0:n * ksz], bmv[wb:wb + 4 * n], bmv[wb + 4 * n:wb + 8 * n],
                bmv[wb + 8 * n:sc], bmv[sc:sc + px * n])

    full = views(per)
    a = list(args)
    st = (elrt._kernels("move")[0].concatenation, full, views(last) if last != per else full,
          per, last, n_tiles, ksz, base + w[0], base + b[0], base + m[0], base + s[0],
          args[5], px, oc)
    out.append((conv_tiles, (f, fn, a, st)))
    out_ops.append(index)


def conv_tiles(f, fn, a, st):
    # The tiles of one streamed CONV_2D (planned by _tile_conv; a: its argument list, whose
    # views and output_depth each tile sets). Allocation-free: small ints and prepared views.
    copy = st[0]
    per = st[3]
    n_tiles = st[5]
    ksz = st[6]
    call = _call
    o0 = 0
    t = 0
    while t < n_tiles:
        v = st[1]
        n = per
        if t == n_tiles - 1:
            v = st[2]
            n = st[4]
        f.seek(st[7] + o0 * ksz)
        f.readinto(v[0])
        f.seek(st[8] + 4 * o0)
        f.readinto(v[1])
        f.seek(st[9] + 4 * o0)
        f.readinto(v[2])
        f.seek(st[10] + 4 * o0)
        f.readinto(v[3])
        a[1] = v[0]
        a[2] = v[1]
        a[3] = v[2]
        a[4] = v[3]
        a[5] = v[4]
        a[12] = n
        call(fn, a)
        copy(v[4], st[11], st[12], n, st[13], o0)
        o0 += n
        t += 1


def _call(fn, a):
    # conv_2d's 25 positional arguments from a list, without building an argument list
    fn(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12],
       a[13], a[14], a[15], a[16], a[17], a[18], a[19], a[20], a[21], a[22], a[23], a[24])
