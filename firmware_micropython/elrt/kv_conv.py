# EdgeLoop int8 kernels, viper fast path (the default where the firmware has viper).
#
# Same function names and positional signatures as kernels_py.py, same arithmetic, bit-exact
# with TFLM; elrt dispatches to one set. Scalars are typed `int` (machine words), buffers are
# untyped objects read through ptr8/ptr32.
#
# Every intermediate stays within int32, because a viper int is a machine word: 32 bits on the
# ESP32 family, 64 on the virtual board. tests/viper runs this very source in CPython with every
# arithmetic result checked against int32, and on the virtual board against kernels_py. Rules:
# - no integer literal >= 2**30 (mpy-cross would make it a boxed object): such constants are
#   built by runtime shifts (sgn = INT32_MIN, msk = INT32_MAX, half = 2**30) or int(literal);
# - ptr8 loads are unsigned: int8 values are sign-extended with (v ^ 128) - 128;
# - ptr32 loads zero-extend on a 64-bit board: signed words are re-signed with
#   `if v & sgn: v = (v & msk) + sgn` (a no-op on a 32-bit board);
# - int32 buffers (bias, multipliers, shifts, the softmax table) must be 4-byte aligned, as the
#   bundle lays them out (Xtensa faults on unaligned 32-bit loads);
# - MultiplyByQuantizedMultiplier (TFLM double rounding) is computed on 16-bit halves, the 64-bit
#   product never exists. The block is inlined in each kernel (a viper call boxes int arguments:
#   a big int, i.e. an allocation, on a 32-bit board for a multiplier >= 2**30). Kernels assume
#   0 <= multiplier < 2**31, which TFLM's QuantizeMultiplier guarantees.
# - Hot loops read through raw addresses (ptr8(address)) and are unrolled 4x or 8x.
# The set is split into small modules, one per op family (elrt imports only those the loaded
# model needs: on an ESP32 native code is copied into scarce executable IRAM at import). This
# text is generated: tests/viper/kernels_src/kernels_viper.tpl, split at its `#%module` lines,
# with the inlined blocks (requantization, clamps, 4-channel group paths) expanded by
# tests/viper/kernels_src/gen.py; edit those and run `python tests/viper/kernels_src/gen.py`
# (a test checks they agree).
# No kernel allocates: no lists, tuples, floats, big ints, keyword or *args calls.

# kv_conv: CONV_2D (also Conv1D)
import micropython


# The three MAC-heavy kernels are a thin public wrapper that parks its arguments in _A and calls
# a zero-argument implementation: viper keeps a function's first locals in machine registers and
# arguments come first, so with 12-26 arguments no loop variable would get one. The
# implementations declare their hottest locals (accumulator, two addresses) first. _A is
# preallocated; storing into it allocates nothing. Kernels never run concurrently.
_A = [0] * 26


@micropython.viper
def conv_2d(input, filter, bias, output_multiplier, output_shift, output, batches,
            input_height, input_width, input_depth, output_height, output_width, output_depth,
            filter_height, filter_width, stride_height, stride_width, dilation_height_factor,
            dilation_width_factor, padding_top, padding_left, input_offset, output_offset,
            output_activation_min, output_activation_max):
    """TFLM ConvPerChannel with a folded bias; out-of-bounds taps read -input_offset."""
    a = _A
    a[0] = input
    a[1] = filter
    a[2] = bias
    a[3] = output_multiplier
    a[4] = output_shift
    a[5] = output
    a[6] = batches
    a[7] = input_height
    a[8] = input_width
    a[9] = input_depth
    a[10] = output_height
    a[11] = output_width
    a[12] = output_depth
    a[13] = filter_height
    a[14] = filter_width
    a[15] = stride_height
    a[16] = stride_width
    a[17] = dilation_height_factor
    a[18] = dilation_width_factor
    a[19] = padding_top
    a[20] = padding_left
    a[21] = input_offset
    a[22] = output_offset
    a[23] = output_activation_min
    a[24] = output_activation_max
    _conv_2d()
    a[0] = 0  # drop the buffer references: _A must not keep an unloaded model's memory alive
    a[1] = 0
    a[2] = 0
    a[3] = 0
    a[4] = 0
    a[5] = 0


@micropython.viper
def _conv_2d():
    # Output channel outermost (its requantization parts and filter sum computed once).
    # Border pixels: acc = bias + zp * sum(filter) + sum over in-bounds taps of w * (x - zp),
    # i.e. TFLM's accumulation with the folded bias. Interior pixels (whole window inside, filter
    # of <= 8192 taps): acc = (bias - 128 * sum(filter)) + sum w * (x ^ 128), x ^ 128 being
    # x + 128 unsigned; the in-bounds taps of a filter row form one contiguous run when the
    # width dilation is 1, read through raw addresses, unrolled 8x then 4x (border runs 4x).
    acc = 0
    xa = 0
    wa = 0
    sgn = -1
    sgn = sgn << 31
    msk = -1 - sgn
    half = 1
    half = half << 30
    a = _A
    pf = ptr8(a[1])
    pb = ptr32(a[2])
    pm = ptr32(a[3])
    ps = ptr32(a[4])
    po = ptr8(a[5])
    batches = int(a[6])
    ih = int(a[7])
    iw = int(a[8])
    ic = int(a[9])
    oh = int(a[10])
    ow = int(a[11])
    oc = int(a[12])
    kh = int(a[13])
    kw = int(a[14])
    sh = int(a[15])
    sw = int(a[16])
    dh = int(a[17])
    dw = int(a[18])
    pt = int(a[19])
    pl = int(a[20])
    ioff = int(a[21])
    ooff = int(a[22])
    amin = int(a[23])
    amax = int(a[24])
    zp = 0 - ioff
    offm = ioff - 128
    xbase = int(ptr8(a[0]))
    fa0 = int(pf)
    ksz = kh * kw * ic
    fast = ksz <= 8192
    xstep = dw * ic
    isz = ih * iw * ic
    osz = oh * ow * oc
    if dw == 1:
        frl = kw * ic  # full-row run length
        fnrun = 1
    else:
        frl = ic
        fnrun = kw
    o = 0
    ks0 = 0
    ks1 = ksz
    ks2 = ksz + ksz
    ks3 = ks2 + ksz
    while o + 3 < oc:
        fo = fa0 + o * ksz
        pf = ptr8(fo + 0 * ksz)
        fs0 = 0
        i = 0
        while i < ksz:
            fs0 += (pf[i] ^ 128) - 128
            i += 1
        bo = pb[o + 0]
        if bo & sgn:
            bo = (bo & msk) + sgn
        bb0 = bo + zp * fs0
        bi0 = bo - (fs0 << 7)
        c0m = pm[o + 0]
        c0mh = c0m >> 16
        c0ml = c0m & 0xFFFF
        c0sl = ps[o + 0]
        if c0sl & sgn:
            c0sl = (c0sl & msk) + sgn
        c0lb = 0
        c0e = 0
        c0rm = 0
        c0rt = 0
        if c0sl > 0:
            c0lb = 1
            c0lb = c0lb << (31 - c0sl)
        elif c0sl < 0:
            c0e = 0 - c0sl
            c0rm = -1 - (-1 << c0e)
            c0rt = c0rm >> 1
        pf = ptr8(fo + 1 * ksz)
        fs1 = 0
        i = 0
        while i < ksz:
            fs1 += (pf[i] ^ 128) - 128
            i += 1
        bo = pb[o + 1]
        if bo & sgn:
            bo = (bo & msk) + sgn
        bb1 = bo + zp * fs1
        bi1 = bo - (fs1 << 7)
        c1m = pm[o + 1]
        c1mh = c1m >> 16
        c1ml = c1m & 0xFFFF
        c1sl = ps[o + 1]
        if c1sl & sgn:
            c1sl = (c1sl & msk) + sgn
        c1lb = 0
        c1e = 0
        c1rm = 0
        c1rt = 0
        if c1sl > 0:
            c1lb = 1
            c1lb = c1lb << (31 - c1sl)
        elif c1sl < 0:
            c1e = 0 - c1sl
            c1rm = -1 - (-1 << c1e)
            c1rt = c1rm >> 1
        pf = ptr8(fo + 2 * ksz)
        fs2 = 0
        i = 0
        while i < ksz:
            fs2 += (pf[i] ^ 128) - 128
            i += 1
        bo = pb[o + 2]
        if bo & sgn:
            bo = (bo & msk) + sgn
        bb2 = bo + zp * fs2
        bi2 = bo - (fs2 << 7)
        c2m = pm[o + 2]
        c2mh = c2m >> 16
        c2ml = c2m & 0xFFFF
        c2sl = ps[o + 2]
        if c2sl & sgn:
            c2sl = (c2sl & msk) + sgn
        c2lb = 0
        c2e = 0
        c2rm = 0
        c2rt = 0
        if c2sl > 0:
            c2lb = 1
            c2lb = c2lb << (31 - c2sl)
        elif c2sl < 0:
            c2e = 0 - c2sl
            c2rm = -1 - (-1 << c2e)
            c2rt = c2rm >> 1
        pf = ptr8(fo + 3 * ksz)
        fs3 = 0
        i = 0
        while i < ksz:
            fs3 += (pf[i] ^ 128) - 128
            i += 1
        bo = pb[o + 3]
        if bo & sgn:
            bo = (bo & msk) + sgn
        bb3 = bo + zp * fs3
        bi3 = bo - (fs3 << 7)
        c3m = pm[o + 3]
        c3mh = c3m >> 16
        c3ml = c3m & 0xFFFF
        c3sl = ps[o + 3]
        if c3sl & sgn:
            c3sl = (c3sl & msk) + sgn
        c3lb = 0
        c3e = 0
        c3rm = 0
        c3rt = 0
        if c3sl > 0:
            c3lb = 1
            c3lb = c3lb << (31 - c3sl)
        elif c3sl < 0:
            c3e = 0 - c3sl
            c3rm = -1 - (-1 << c3e)
            c3rt = c3rm >> 1
        b = 0
        while b < batches:
            xa0 = xbase + b * isz
            ob = b * osz + o
            oy = 0
            while oy < oh:
                iy0 = oy * sh - pt
                ky0 = 0
                while ky0 < kh and iy0 + dh * ky0 < 0:
                    ky0 += 1
                ky1 = kh
                while ky1 > ky0 and iy0 + dh * (ky1 - 1) >= ih:
                    ky1 -= 1
                rowin = fast and ky0 == 0 and ky1 == kh
                ox = 0
                while ox < ow:
                    ix0 = ox * sw - pl
                    if rowin and ix0 >= 0 and ix0 + dw * (kw - 1) < iw:
                        acc = 0
                        acc1 = 0
                        acc2 = 0
                        acc3 = 0
                        ky = 0
                        while ky < kh:
                            xs = xa0 + ((iy0 + dh * ky) * iw + ix0) * ic
                            ws = fo + ky * kw * ic
                            j = 0
                            while j < fnrun:
                                xa = xs + j * xstep
                                wa = ws + j * ic
                                xe = xa + frl - 7
                                while xa < xe:
                                    px = ptr8(xa)
                                    p0 = ptr8(wa)
                                    p1 = ptr8(wa + ks1)
                                    p2 = ptr8(wa + ks2)
                                    p3 = ptr8(wa + ks3)
                                    x0 = px[0] ^ 128
                                    x1 = px[1] ^ 128
                                    x2 = px[2] ^ 128
                                    x3 = px[3] ^ 128
                                    x4 = px[4] ^ 128
                                    x5 = px[5] ^ 128
                                    x6 = px[6] ^ 128
                                    x7 = px[7] ^ 128
                                    acc += (((p0[0] ^ 128) - 128) * x0 + ((p0[1] ^ 128) - 128) * x1
                                        + ((p0[2] ^ 128) - 128) * x2 + ((p0[3] ^ 128) - 128) * x3
                                        + ((p0[4] ^ 128) - 128) * x4 + ((p0[5] ^ 128) - 128) * x5
                                        + ((p0[6] ^ 128) - 128) * x6 + ((p0[7] ^ 128) - 128) * x7)
                                    acc1 += (((p1[0] ^ 128) - 128) * x0 + ((p1[1] ^ 128) - 128) * x1
                                        + ((p1[2] ^ 128) - 128) * x2 + ((p1[3] ^ 128) - 128) * x3
                                        + ((p1[4] ^ 128) - 128) * x4 + ((p1[5] ^ 128) - 128) * x5
                                        + ((p1[6] ^ 128) - 128) * x6 + ((p1[7] ^ 128) - 128) * x7)
                                    acc2 += (((p2[0] ^ 128) - 128) * x0 + ((p2[1] ^ 128) - 128) * x1
                                        + ((p2[2] ^ 128) - 128) * x2 + ((p2[3] ^ 128) - 128) * x3
                                        + ((p2[4] ^ 128) - 128) * x4 + ((p2[5] ^ 128) - 128) * x5
                                        + ((p2[6] ^ 128) - 128) * x6 + ((p2[7] ^ 128) - 128) * x7)
                                    acc3 += (((p3[0] ^ 128) - 128) * x0 + ((p3[1] ^ 128) - 128) * x1
                                        + ((p3[2] ^ 128) - 128) * x2 + ((p3[3] ^ 128) - 128) * x3
                                        + ((p3[4] ^ 128) - 128) * x4 + ((p3[5] ^ 128) - 128) * x5
                                        + ((p3[6] ^ 128) - 128) * x6 + ((p3[7] ^ 128) - 128) * x7)
                                    xa += 8
                                    wa += 8
                                xe = xe + 4
                                if xa < xe:
                                    px = ptr8(xa)
                                    p0 = ptr8(wa)
                                    p1 = ptr8(wa + ks1)
                                    p2 = ptr8(wa + ks2)
                                    p3 = ptr8(wa + ks3)
                                    x0 = px[0] ^ 128
                                    x1 = px[1] ^ 128
                                    x2 = px[2] ^ 128
                                    x3 = px[3] ^ 128
                                    acc += (((p0[0] ^ 128) - 128) * x0 + ((p0[1] ^ 128) - 128) * x1
                                        + ((p0[2] ^ 128) - 128) * x2 + ((p0[3] ^ 128) - 128) * x3)
                                    acc1 += (((p1[0] ^ 128) - 128) * x0 + ((p1[1] ^ 128) - 128) * x1
                                        + ((p1[2] ^ 128) - 128) * x2 + ((p1[3] ^ 128) - 128) * x3)
                                    acc2 += (((p2[0] ^ 128) - 128) * x0 + ((p2[1] ^ 128) - 128) * x1
                                        + ((p2[2] ^ 128) - 128) * x2 + ((p2[3] ^ 128) - 128) * x3)
                                    acc3 += (((p3[0] ^ 128) - 128) * x0 + ((p3[1] ^ 128) - 128) * x1
                                        + ((p3[2] ^ 128) - 128) * x2 + ((p3[3] ^ 128) - 128) * x3)
                                    xa += 4
                                    wa += 4
                                xe = xe + 3
                                while xa < xe:
                                    px = ptr8(xa)
                                    x0 = px[0] ^ 128
                                    pw = ptr8(wa + ks0)
                                    acc += ((pw[0] ^ 128) - 128) * x0
                                    pw = ptr8(wa + ks1)
                                    acc1 += ((pw[0] ^ 128) - 128) * x0
                                    pw = ptr8(wa + ks2)
                                    acc2 += ((pw[0] ^ 128) - 128) * x0
                                    pw = ptr8(wa + ks3)
                                    acc3 += ((pw[0] ^ 128) - 128) * x0
                                    xa += 1
                                    wa += 1
                                j += 1
                            ky += 1
                        acc = acc + bi0
                        acc1 = acc1 + bi1
                        acc2 = acc2 + bi2
                        acc3 = acc3 + bi3
                    else:
                        kx0 = 0
                        while kx0 < kw and ix0 + dw * kx0 < 0:
                            kx0 += 1
                        kx1 = kw
                        while kx1 > kx0 and ix0 + dw * (kx1 - 1) >= iw:
                            kx1 -= 1
                        if dw == 1:
                            nrun = 1
                            rl = (kx1 - kx0) * ic
                        else:
                            nrun = kx1 - kx0
                            rl = ic
                        acc = bb0
                        acc1 = bb1
                        acc2 = bb2
                        acc3 = bb3
                        ky = ky0
                        while ky < ky1:
                            xs = xa0 + ((iy0 + dh * ky) * iw + ix0 + dw * kx0) * ic
                            ws = fo + (ky * kw + kx0) * ic
                            j = 0
                            while j < nrun:
                                xa = xs + j * xstep
                                wa = ws + j * ic
                                xe = xa + rl
                                while xa < xe:
                                    px = ptr8(xa)
                                    x0 = (px[0] ^ 128) + offm
                                    pw = ptr8(wa + ks0)
                                    acc += x0 * ((pw[0] ^ 128) - 128)
                                    pw = ptr8(wa + ks1)
                                    acc1 += x0 * ((pw[0] ^ 128) - 128)
                                    pw = ptr8(wa + ks2)
                                    acc2 += x0 * ((pw[0] ^ 128) - 128)
                                    pw = ptr8(wa + ks3)
                                    acc3 += x0 * ((pw[0] ^ 128) - 128)
                                    xa += 1
                                    wa += 1
                                j += 1
                            ky += 1
                    oidx = ob + (oy * ow + ox) * oc
                    # r = MultiplyByQuantizedMultiplier(acc, c0m, shift) on 16-bit halves
                    xq = acc
                    if c0lb:
                        hib = xq & c0lb
                        xq = (xq & (c0lb - 1)) << c0sl
                        if hib:
                            xq = xq + sgn
                    if xq == sgn:
                        r = 0 - c0m
                    else:
                        u = xq
                        if xq < 0:
                            u = 0 - xq
                        uh = u >> 16
                        ul = u & 0xFFFF
                        bb = uh * c0ml
                        cc = ul * c0mh
                        q = ul * (c0ml >> 1)
                        t = (q & 0x7FFF) << 1
                        if c0ml & 1:
                            t = t + ul
                        mid = (bb & 0xFFFF) + (cc & 0xFFFF) + (q >> 15) + (t >> 16)
                        top = uh * c0mh + (bb >> 16) + (cc >> 16) + (mid >> 16)
                        rr = ((mid & 0x7FFF) << 16) + (t & 0xFFFF)
                        r = (top << 1) + ((mid >> 15) & 1)
                        if xq < 0:
                            if rr > half:
                                r = r + 1
                            r = 0 - r
                        elif rr >= half:
                            r = r + 1
                    if c0e:
                        thr = c0rt
                        if r < 0:
                            thr = thr + 1
                        rem = r & c0rm
                        r = r >> c0e
                        if rem > thr:
                            r = r + 1
                    r = r + ooff
                    if r < amin:
                        r = amin
                    if r > amax:
                        r = amax
                    po[oidx + 0] = r
                    # r = MultiplyByQuantizedMultiplier(acc1, c1m, shift) on 16-bit halves
                    xq = acc1
                    if c1lb:
                        hib = xq & c1lb
                        xq = (xq & (c1lb - 1)) << c1sl
                        if hib:
                            xq = xq + sgn
                    if xq == sgn:
                        r = 0 - c1m
                    else:
                        u = xq
                        if xq < 0:
                            u = 0 - xq
                        uh = u >> 16
                        ul = u & 0xFFFF
                        bb = uh * c1ml
                        cc = ul * c1mh
                        q = ul * (c1ml >> 1)
                        t = (q & 0x7FFF) << 1
                        if c1ml & 1:
                            t = t + ul
                        mid = (bb & 0xFFFF) + (cc & 0xFFFF) + (q >> 15) + (t >> 16)
                        top = uh * c1mh + (bb >> 16) + (cc >> 16) + (mid >> 16)
                        rr = ((mid & 0x7FFF) << 16) + (t & 0xFFFF)
                        r = (top << 1) + ((mid >> 15) & 1)
                        if xq < 0:
                            if rr > half:
                                r = r + 1
                            r = 0 - r
                        elif rr >= half:
                            r = r + 1
                    if c1e:
                        thr = c1rt
                        if r < 0:
                            thr = thr + 1
                        rem = r & c1rm
                        r = r >> c1e
                        if rem > thr:
                            r = r + 1
                    r = r + ooff
                    if r < amin:
                        r = amin
                    if r > amax:
                        r = amax
                    po[oidx + 1] = r
                    # r = MultiplyByQuantizedMultiplier(acc2, c2m, shift) on 16-bit halves
                    xq = acc2
                    if c2lb:
                        hib = xq & c2lb
                        xq = (xq & (c2lb - 1)) << c2sl
                        if hib:
                            xq = xq + sgn
                    if xq == sgn:
                        r = 0 - c2m
                    else:
                        u = xq
                        if xq < 0:
                            u = 0 - xq
                        uh = u >> 16
                        ul = u & 0xFFFF
                        bb = uh * c2ml
                        cc = ul * c2mh
                        q = ul * (c2ml >> 1)
                        t = (q & 0x7FFF) << 1
                        if c2ml & 1:
                            t = t + ul
                        mid = (bb & 0xFFFF) + (cc & 0xFFFF) + (q >> 15) + (t >> 16)
                        top = uh * c2mh + (bb >> 16) + (cc >> 16) + (mid >> 16)
                        rr = ((mid & 0x7FFF) << 16) + (t & 0xFFFF)
                        r = (top << 1) + ((mid >> 15) & 1)
                        if xq < 0:
                            if rr > half:
                                r = r + 1
                            r = 0 - r
                        elif rr >= half:
                            r = r + 1
                    if c2e:
                        thr = c2rt
                        if r < 0:
                            thr = thr + 1
                        rem = r & c2rm
                        r = r >> c2e
                        if rem > thr:
                            r = r + 1
                    r = r + ooff
                    if r < amin:
                        r = amin
                    if r > amax:
                        r = amax
                    po[oidx + 2] = r
                    # r = MultiplyByQuantizedMultiplier(acc3, c3m, shift) on 16-bit halves
                    xq = acc3
                    if c3lb:
                        hib = xq & c3lb
                        xq = (xq & (c3lb - 1)) << c3sl
                        if hib:
                            xq = xq + sgn
                    if xq == sgn:
                        r = 0 - c3m
                    else:
                        u = xq
                        if xq < 0:
                            u = 0 - xq
                        uh = u >> 16
                        ul = u & 0xFFFF
                        bb = uh * c3ml
                        cc = ul * c3mh
                        q = ul * (c3ml >> 1)
                        t = (q & 0x7FFF) << 1
                        if c3ml & 1:
                            t = t + ul
                        mid = (bb & 0xFFFF) + (cc & 0xFFFF) + (q >> 15) + (t >> 16)
                        top = uh * c3mh + (bb >> 16) + (cc >> 16) + (mid >> 16)
                        rr = ((mid & 0x7FFF) << 16) + (t & 0xFFFF)
                        r = (top << 1) + ((mid >> 15) & 1)
                        if xq < 0:
                            if rr > half:
                                r = r + 1
                            r = 0 - r
                        elif rr >= half:
                            r = r + 1
                    if c3e:
                        thr = c3rt
                        if r < 0:
                            thr = thr + 1
                        rem = r & c3rm
                        r = r >> c3e
                        if rem > thr:
                            r = r + 1
                    r = r + ooff
                    if r < amin:
                        r = amin
                    if r > amax:
                        r = amax
                    po[oidx + 3] = r
                    ox += 1
                oy += 1
            b += 1
        o += 4
    while o < oc:
        fo = fa0 + o * ksz
        pf = ptr8(fo)
        fs = 0
        i = 0
        while i < ksz:
            fs += (pf[i] ^ 128) - 128
            i += 1
        cm = pm[o]
        cmh = cm >> 16
        cml = cm & 0xFFFF
        csl = ps[o]
        if csl & sgn:
            csl = (csl & msk) + sgn
        clb = 0
        ce = 0
        crm = 0
        crt = 0
        if csl > 0:
            clb = 1
            clb = clb << (31 - csl)
        elif csl < 0:
            ce = 0 - csl
            crm = -1 - (-1 << ce)
            crt = crm >> 1
        bo = pb[o]
        if bo & sgn:
            bo = (bo & msk) + sgn
        base_b = bo + zp * fs
        base_i = bo - (fs << 7)
        b = 0
        while b < batches:
            xa0 = xbase + b * isz
            ob = b * osz + o
            oy = 0
            while oy < oh:
                iy0 = oy * sh - pt
                ky0 = 0
                while ky0 < kh and iy0 + dh * ky0 < 0:
                    ky0 += 1
                ky1 = kh
                while ky1 > ky0 and iy0 + dh * (ky1 - 1) >= ih:
                    ky1 -= 1
                rowin = fast and ky0 == 0 and ky1 == kh
                ox = 0
                while ox < ow:
                    ix0 = ox * sw - pl
                    if rowin and ix0 >= 0 and ix0 + dw * (kw - 1) < iw:
                        acc = 0
                        ky = 0
                        while ky < kh:
                            xs = xa0 + ((iy0 + dh * ky) * iw + ix0) * ic
                            ws = fo + ky * kw * ic
                            j = 0
                            while j < fnrun:
                                xa = xs + j * xstep
                                wa = ws + j * ic
                                xe = xa + frl - 7
                                while xa < xe:
                                    px = ptr8(xa)
                                    pw = ptr8(wa)
                                    acc += (((pw[0] ^ 128) - 128) * (px[0] ^ 128)
                                            + ((pw[1] ^ 128) - 128) * (px[1] ^ 128)
                                            + ((pw[2] ^ 128) - 128) * (px[2] ^ 128)
                                            + ((pw[3] ^ 128) - 128) * (px[3] ^ 128)
                                            + ((pw[4] ^ 128) - 128) * (px[4] ^ 128)
                                            + ((pw[5] ^ 128) - 128) * (px[5] ^ 128)
                                            + ((pw[6] ^ 128) - 128) * (px[6] ^ 128)
                                            + ((pw[7] ^ 128) - 128) * (px[7] ^ 128))
                                    xa += 8
                                    wa += 8
                                xe = xe + 4
                                if xa < xe:
                                    px = ptr8(xa)
                                    pw = ptr8(wa)
                                    acc += (((pw[0] ^ 128) - 128) * (px[0] ^ 128)
                                            + ((pw[1] ^ 128) - 128) * (px[1] ^ 128)
                                            + ((pw[2] ^ 128) - 128) * (px[2] ^ 128)
                                            + ((pw[3] ^ 128) - 128) * (px[3] ^ 128))
                                    xa += 4
                                    wa += 4
                                xe = xe + 3
                                while xa < xe:
                                    px = ptr8(xa)
                                    pw = ptr8(wa)
                                    acc += ((pw[0] ^ 128) - 128) * (px[0] ^ 128)
                                    xa += 1
                                    wa += 1
                                j += 1
                            ky += 1
                        acc = acc + base_i
                    else:
                        kx0 = 0
                        while kx0 < kw and ix0 + dw * kx0 < 0:
                            kx0 += 1
                        kx1 = kw
                        while kx1 > kx0 and ix0 + dw * (kx1 - 1) >= iw:
                            kx1 -= 1
                        if dw == 1:
                            nrun = 1
                            rl = (kx1 - kx0) * ic
                        else:
                            nrun = kx1 - kx0
                            rl = ic
                        acc = base_b
                        ky = ky0
                        while ky < ky1:
                            xs = xa0 + ((iy0 + dh * ky) * iw + ix0 + dw * kx0) * ic
                            ws = fo + (ky * kw + kx0) * ic
                            j = 0
                            while j < nrun:
                                xa = xs + j * xstep
                                wa = ws + j * ic
                                xe = xa + rl - 3
                                while xa < xe:
                                    px = ptr8(xa)
                                    pw = ptr8(wa)
                                    acc += (((px[0] ^ 128) + offm) * ((pw[0] ^ 128) - 128)
                                            + ((px[1] ^ 128) + offm) * ((pw[1] ^ 128) - 128)
                                            + ((px[2] ^ 128) + offm) * ((pw[2] ^ 128) - 128)
                                            + ((px[3] ^ 128) + offm) * ((pw[3] ^ 128) - 128))
                                    xa += 4
                                    wa += 4
                                xe = xe + 3
                                while xa < xe:
                                    px = ptr8(xa)
                                    pw = ptr8(wa)
                                    acc += ((px[0] ^ 128) + offm) * ((pw[0] ^ 128) - 128)
                                    xa += 1
                                    wa += 1
                                j += 1
                            ky += 1
                    # r = MultiplyByQuantizedMultiplier(acc, cm, shift) on 16-bit halves
                    xq = acc
                    if clb:
                        hib = xq & clb
                        xq = (xq & (clb - 1)) << csl
                        if hib:
                            xq = xq + sgn
                    if xq == sgn:
                        r = 0 - cm
                    else:
                        u = xq
                        if xq < 0:
                            u = 0 - xq
                        uh = u >> 16
                        ul = u & 0xFFFF
                        bb = uh * cml
                        cc = ul * cmh
                        q = ul * (cml >> 1)
                        t = (q & 0x7FFF) << 1
                        if cml & 1:
                            t = t + ul
                        mid = (bb & 0xFFFF) + (cc & 0xFFFF) + (q >> 15) + (t >> 16)
                        top = uh * cmh + (bb >> 16) + (cc >> 16) + (mid >> 16)
                        rr = ((mid & 0x7FFF) << 16) + (t & 0xFFFF)
                        r = (top << 1) + ((mid >> 15) & 1)
                        if xq < 0:
                            if rr > half:
                                r = r + 1
                            r = 0 - r
                        elif rr >= half:
                            r = r + 1
                    if ce:
                        thr = crt
                        if r < 0:
                            thr = thr + 1
                        rem = r & crm
                        r = r >> ce
                        if rem > thr:
                            r = r + 1
                    r = r + ooff
                    if r < amin:
                        r = amin
                    if r > amax:
                        r = amax
                    po[ob + (oy * ow + ox) * oc] = r
                    ox += 1
                oy += 1
            b += 1
        o += 1
