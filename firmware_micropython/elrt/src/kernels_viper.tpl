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
# text is generated: firmware_micropython/elrt/src/kernels_viper.tpl, split at its `#%module`
# lines, with the inlined blocks (requantization, clamps, 4-channel group paths) expanded by
# tools/gen_kernels.py; edit those and run `make kernels` (a test checks they agree).
# No kernel allocates: no lists, tuples, floats, big ints, keyword or *args calls.

#%module kv_requant
# kv_requant: the reference requantization (tests; not used by elrt)
import micropython


@micropython.viper
def multiply_by_quantized_multiplier(x: int, multiplier: int, shift: int) -> int:
    """TFLM MultiplyByQuantizedMultiplier (double rounding) for any int32 x and multiplier, with
    C's int32 wrap of x * 2**shift; the reference copy of the block inlined in the kernels.
    For tests and load-time use: on a 32-bit board its int arguments/result may be boxed."""
    #@CONSTS()
    if shift > 0:
        lbit = 1
        lbit = lbit << (31 - shift)
        hib = x & lbit
        x = (x & (lbit - 1)) << shift
        if hib:
            x = x + sgn
    # SaturatingRoundingDoublingHighMul(x, multiplier)
    if x == sgn:
        if multiplier == sgn:
            r = msk
        else:
            r = 0 - multiplier
    elif multiplier == sgn:
        r = 0 - x
    else:
        neg = 0
        u = x
        if x < 0:
            u = 0 - x
            neg = 1
        m = multiplier
        if m < 0:
            m = 0 - m
            neg = neg ^ 1
        uh = u >> 16
        ul = u & 0xFFFF
        mh = m >> 16
        ml = m & 0xFFFF
        bb = uh * ml
        cc = ul * mh
        q = ul * (ml >> 1)
        t = (q & 0x7FFF) << 1
        if ml & 1:
            t = t + ul
        # |x| * |m| = top * 2**32 + (mid & 0xFFFF) * 2**16 + (t & 0xFFFF)
        mid = (bb & 0xFFFF) + (cc & 0xFFFF) + (q >> 15) + (t >> 16)
        top = uh * mh + (bb >> 16) + (cc >> 16) + (mid >> 16)
        rr = ((mid & 0x7FFF) << 16) + (t & 0xFFFF)  # the product mod 2**31
        r = (top << 1) + ((mid >> 15) & 1)  # the product >> 31
        # nudge 2**30 (product >= 0) or 1 - 2**30 (< 0), then truncate toward zero
        if neg:
            if rr > half:
                r = r + 1
            r = 0 - r
        elif rr >= half:
            r = r + 1
    # RoundingDivideByPOT(r, -shift): ties away from zero
    if shift < 0:
        e = 0 - shift
        rmask = -1 - (-1 << e)
        thr = rmask >> 1
        if r < 0:
            thr = thr + 1
        rem = r & rmask
        r = r >> e
        if rem > thr:
            r = r + 1
    return r


@micropython.viper
def _requantize_inline(x: int, multiplier, shift) -> int:
    """The kernels' inline requantization as they expand it (#@RQSETUP then #@RQ, multiplier
    and shift read as int32 words from 4-byte buffers), for 0 <= multiplier < 2**31 and any
    int32 x; tests hold it to TFLM's MultiplyByQuantizedMultiplier (private: kernels_py has no
    twin of it)."""
    #@CONSTS()
    pm = ptr32(multiplier)
    ps = ptr32(shift)
    #@RQSETUP(c, pm, ps, 0)
    #@RQ(x, r, c)
    return r

#%module kv_fc
# kv_fc: FULLY_CONNECTED
import micropython


#@PARK_AREA()


@micropython.viper
def fully_connected(input, filter, bias, output_multiplier, output_shift, output, batches,
                    accum_depth, output_depth, output_offset, output_activation_min,
                    output_activation_max):
    """output[b, o] = clamp(MBQM(bias[o] + sum_i filter[o, i] * input[b, i]) + output_offset)
    (the input zero point is folded into the bias)."""
    #@PARKED_CALL(_fully_connected)


@micropython.viper
def _fully_connected():
    # Dot products use sum(x * w) = sum(x * (w ^ 128)) - 128 * sum(x) over an 8x unrolled head
    # (w ^ 128 is w + 128, unsigned: one operation less per MAC), the head's sum(x) computed once
    # per batch row; |partial sums| <= 128 * 255 * 8192 < 2**28 with the head capped at 8192.
    # Output channels go four per pass over the row (FC4: one input load serves four weight
    # rows), the last odepth % 4 one at a time.
    acc = 0
    xa = 0
    wa = 0
    #@CONSTS()
    a = _A
    xa0 = int(ptr8(a[0]))
    wa0 = int(ptr8(a[1]))
    pb = ptr32(a[2])
    pm = ptr32(a[3])
    ps = ptr32(a[4])
    po = ptr8(a[5])
    batches = int(a[6])
    depth = int(a[7])
    odepth = int(a[8])
    ooff = int(a[9])
    amin = int(a[10])
    amax = int(a[11])
    head = depth - (depth & 7)
    if head > 8192:
        head = 8192
    # A per-tensor layer (every output's multiplier and shift the same, as TFLite quantizes
    # FULLY_CONNECTED unless asked for per-channel): requantization parts set up once.
    uni = 1
    cm = pm[0]
    csl = ps[0]
    i = 1
    while i < odepth:
        if pm[i] != cm or ps[i] != csl:
            uni = 0
            break
        i += 1
    if uni:
        #@RQSETUP(c, pm, ps, 0)
        #@RQSETUP(c0, pm, ps, 0)
        #@RQSETUP(c1, pm, ps, 0)
        #@RQSETUP(c2, pm, ps, 0)
        #@RQSETUP(c3, pm, ps, 0)
    o_i = 0
    b = 0
    while b < batches:
        xb = xa0 + b * depth
        px = ptr8(xb)
        sx = 0
        i = 0
        while i < head:
            sx += (px[i] ^ 128) - 128
            i += 1
        sx = sx << 7
        o = 0
        #@FC4()
        while o < odepth:
            if uni == 0:
                #@RQSETUP(c, pm, ps, o)
            acc = 0
            xa = xb
            wa = wa0 + o * depth
            xe = xa + head
            while xa < xe:
                px = ptr8(xa)
                pw = ptr8(wa)
                acc += (((px[0] ^ 128) - 128) * (pw[0] ^ 128)
                        + ((px[1] ^ 128) - 128) * (pw[1] ^ 128)
                        + ((px[2] ^ 128) - 128) * (pw[2] ^ 128)
                        + ((px[3] ^ 128) - 128) * (pw[3] ^ 128)
                        + ((px[4] ^ 128) - 128) * (pw[4] ^ 128)
                        + ((px[5] ^ 128) - 128) * (pw[5] ^ 128)
                        + ((px[6] ^ 128) - 128) * (pw[6] ^ 128)
                        + ((px[7] ^ 128) - 128) * (pw[7] ^ 128))
                xa += 8
                wa += 8
            acc = acc - sx
            px = ptr8(xa)
            pw = ptr8(wa)
            n = depth - head
            i = 0
            while i < n:
                acc += ((px[i] ^ 128) - 128) * ((pw[i] ^ 128) - 128)
                i += 1
            bo = pb[o]
            if bo & sgn:
                bo = (bo & msk) + sgn
            acc = acc + bo
            #@RQ(acc, r, c)
            r = r + ooff
            #@CLAMP(r, po[o_i])
            o_i += 1
            o += 1
        b += 1

#%module kv_conv
# kv_conv: CONV_2D (also Conv1D)
import micropython


#@PARK_AREA()


@micropython.viper
def conv_2d(input, filter, bias, output_multiplier, output_shift, output, batches,
            input_height, input_width, input_depth, output_height, output_width, output_depth,
            filter_height, filter_width, stride_height, stride_width, dilation_height_factor,
            dilation_width_factor, padding_top, padding_left, input_offset, output_offset,
            output_activation_min, output_activation_max):
    """TFLM ConvPerChannel with a folded bias; out-of-bounds taps read -input_offset."""
    #@PARKED_CALL(_conv_2d)


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
    #@CONSTS()
    a = _A
    pf = ptr8(a[1])
    pb = ptr32(a[2])
    pm = ptr32(a[3])
    ps = ptr32(a[4])
    po = ptr8(a[5])
    #@GEOMETRY(ic)
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
    # pointwise: a 1x1 filter at stride 1 without padding (#@CONV4 runs its pixels flat)
    pw1 = fast and kh == 1 and kw == 1 and sh == 1 and sw == 1 and pt == 0 and pl == 0
    pw1 = pw1 and oh == ih and ow == iw
    npx = oh * ow
    if dw == 1:
        frl = kw * ic  # full-row run length
        fnrun = 1
    else:
        frl = ic
        fnrun = kw
    o = 0
    #@CONV4()
    while o < oc:
        fo = fa0 + o * ksz
        pf = ptr8(fo)
        fs = 0
        i = 0
        while i < ksz:
            fs += (pf[i] ^ 128) - 128
            i += 1
        #@RQSETUP(c, pm, ps, o)
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
                #@TAPS(y)
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
                        #@TAPS(x)
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
                    #@RQ(acc, r, c)
                    r = r + ooff
                    #@CLAMP(r, po[ob + (oy * ow + ox) * oc])
                    ox += 1
                oy += 1
            b += 1
        o += 1

#%module kv_dw
# kv_dw: DEPTHWISE_CONV_2D
import micropython


#@PARK_AREA()


@micropython.viper
def depthwise_conv_2d(input, filter, bias, output_multiplier, output_shift, output, batches,
                      input_height, input_width, input_depth, output_height, output_width,
                      output_depth, filter_height, filter_width, stride_height, stride_width,
                      dilation_height_factor, dilation_width_factor, padding_top, padding_left,
                      depth_multiplier, input_offset, output_offset, output_activation_min,
                      output_activation_max):
    """TFLM DepthwiseConvPerChannel with a folded bias; output channel = ic * depth_multiplier
    + m; out-of-bounds taps read -input_offset."""
    #@PARKED_CALL(_depthwise_conv_2d)


@micropython.viper
def _depthwise_conv_2d():
    # As _conv_2d (border pixels: TFLM's accumulation; interior pixels: bias - 128 * sum(filter)
    # + sum w * (x ^ 128)), taps strided by the channel counts, 3-wide filter rows unrolled.
    acc = 0
    px = ptr8(_A[0])
    pw = ptr8(_A[1])
    #@CONSTS()
    a = _A
    pb = ptr32(a[2])
    pm = ptr32(a[3])
    ps = ptr32(a[4])
    po = ptr8(a[5])
    #@GEOMETRY(icn)
    dm = int(a[21])
    ioff = int(a[22])
    ooff = int(a[23])
    amin = int(a[24])
    amax = int(a[25])
    zp = 0 - ioff
    offm = ioff - 128
    xbase = int(px)
    fa0 = int(pw)
    xstep = dw * icn
    xstep2 = xstep + xstep
    oc2 = oc + oc
    isz = ih * iw * icn
    osz = oh * ow * oc
    kw3 = kw == 3
    k33 = kw3 and kh == 3
    kall = kh * kw * oc
    ystep = dh * iw * icn
    o = 0
    #@DW4()
    while o < oc:
        ic = o // dm
        pw = ptr8(fa0 + o)
        fs = 0
        i = 0
        k = kh * kw * oc
        while i < k:
            fs += (pw[i] ^ 128) - 128
            i += oc
        #@RQSETUP(c, pm, ps, o)
        bo = pb[o]
        if bo & sgn:
            bo = (bo & msk) + sgn
        base_b = bo + zp * fs
        base_i = bo - (fs << 7)
        b = 0
        while b < batches:
            xa0 = xbase + b * isz + ic
            ob = b * osz + o
            oy = 0
            while oy < oh:
                iy0 = oy * sh - pt
                #@TAPS(y)
                rowin = ky0 == 0 and ky1 == kh
                ox = 0
                while ox < ow:
                    ix0 = ox * sw - pl
                    if rowin and ix0 >= 0 and ix0 + dw * (kw - 1) < iw:
                        acc = 0
                        ky = 0
                        while ky < kh:
                            px = ptr8(xa0 + ((iy0 + dh * ky) * iw + ix0) * icn)
                            pw = ptr8(fa0 + ky * kw * oc + o)
                            if kw3:
                                acc += (((pw[0] ^ 128) - 128) * (px[0] ^ 128)
                                        + ((pw[oc] ^ 128) - 128) * (px[xstep] ^ 128)
                                        + ((pw[oc2] ^ 128) - 128) * (px[xstep2] ^ 128))
                            else:
                                xi = 0
                                wi = 0
                                k = 0
                                while k < kw:
                                    acc += ((pw[wi] ^ 128) - 128) * (px[xi] ^ 128)
                                    xi += xstep
                                    wi += oc
                                    k += 1
                            ky += 1
                        acc = acc + base_i
                    else:
                        #@TAPS(x)
                        n = kx1 - kx0
                        acc = base_b
                        ky = ky0
                        while ky < ky1:
                            px = ptr8(xa0 + ((iy0 + dh * ky) * iw + ix0 + dw * kx0) * icn)
                            pw = ptr8(fa0 + (ky * kw + kx0) * oc + o)
                            xi = 0
                            wi = 0
                            k = 0
                            while k < n:
                                acc += ((px[xi] ^ 128) + offm) * ((pw[wi] ^ 128) - 128)
                                xi += xstep
                                wi += oc
                                k += 1
                            ky += 1
                    #@RQ(acc, r, c)
                    r = r + ooff
                    #@CLAMP(r, po[ob + (oy * ow + ox) * oc])
                    ox += 1
                oy += 1
            b += 1
        o += 1

#%module kv_pool
# kv_pool: MAX_POOL_2D, AVERAGE_POOL_2D
import micropython


@micropython.viper
def max_pool_2d(input, output, batches: int, input_height: int, input_width: int, depth: int,
                output_height: int, output_width: int, filter_height: int, filter_width: int,
                stride_height: int, stride_width: int, padding_top: int, padding_left: int,
                output_activation_min: int, output_activation_max: int):
    """TFLM MaxPool int8: max over the in-bounds taps of each window, then clamp."""
    po = ptr8(output)
    amin = output_activation_min
    amax = output_activation_max
    isz = input_height * input_width * depth
    o_i = 0
    b = 0
    while b < batches:
        pi = ptr8(int(ptr8(input)) + b * isz)
        oy = 0
        while oy < output_height:
            iy0 = oy * stride_height - padding_top
            y0 = iy0
            if y0 < 0:
                y0 = 0
            y1 = iy0 + filter_height
            if y1 > input_height:
                y1 = input_height
            ox = 0
            while ox < output_width:
                ix0 = ox * stride_width - padding_left
                x0 = ix0
                if x0 < 0:
                    x0 = 0
                x1 = ix0 + filter_width
                if x1 > input_width:
                    x1 = input_width
                c = 0
                while c < depth:
                    m = 0
                    iy = y0
                    while iy < y1:
                        p = (iy * input_width + x0) * depth + c
                        ix = x0
                        while ix < x1:
                            v = pi[p] ^ 128
                            if v > m:
                                m = v
                            p += depth
                            ix += 1
                        iy += 1
                    m = m - 128
                    #@CLAMP(m, po[o_i])
                    o_i += 1
                    c += 1
                ox += 1
            oy += 1
        b += 1


@micropython.viper
def average_pool_2d(input, output, batches: int, input_height: int, input_width: int,
                    depth: int, output_height: int, output_width: int, filter_height: int,
                    filter_width: int, stride_height: int, stride_width: int, padding_top: int,
                    padding_left: int, output_activation_min: int, output_activation_max: int):
    """TFLM AveragePool int8: in-bounds sum / in-bounds count, rounded half away from zero with
    C division, then clamp."""
    po = ptr8(output)
    amin = output_activation_min
    amax = output_activation_max
    isz = input_height * input_width * depth
    o_i = 0
    b = 0
    while b < batches:
        pi = ptr8(int(ptr8(input)) + b * isz)
        oy = 0
        while oy < output_height:
            iy0 = oy * stride_height - padding_top
            y0 = iy0
            if y0 < 0:
                y0 = 0
            y1 = iy0 + filter_height
            if y1 > input_height:
                y1 = input_height
            ox = 0
            while ox < output_width:
                ix0 = ox * stride_width - padding_left
                x0 = ix0
                if x0 < 0:
                    x0 = 0
                x1 = ix0 + filter_width
                if x1 > input_width:
                    x1 = input_width
                n = (y1 - y0) * (x1 - x0)
                c = 0
                while c < depth:
                    s = 0
                    iy = y0
                    while iy < y1:
                        p = (iy * input_width + x0) * depth + c
                        ix = x0
                        while ix < x1:
                            s += (pi[p] ^ 128) - 128
                            p += depth
                            ix += 1
                        iy += 1
                    if n > 0:
                        if s > 0:
                            s = (s + (n >> 1)) // n
                        else:
                            s = 0 - (((n >> 1) - s) // n)
                    #@CLAMP(s, po[o_i])
                    o_i += 1
                    c += 1
                ox += 1
            oy += 1
        b += 1

#%module kv_mean
# kv_mean: MEAN
import micropython


@micropython.viper
def mean(input, output, outer_size: int, reduce_size: int, inner_size: int, mode: int,
         input_zero_point: int, output_zero_point: int, multiplier, shift: int):
    """MEAN over the middle axis of [outer, reduce, inner] (bundle modes: 0 QuantizedMeanOrSum,
    1 integer Mean, 2 same quantization); multiplier is a 4-byte int32 buffer."""
    #@CONSTS()
    pm = ptr32(multiplier)
    pi = ptr8(input)
    po = ptr8(output)
    amin = -128
    amax = 127
    n = reduce_size
    cm = pm[0]
    cmh = cm >> 16
    cml = cm & 0xFFFF
    if cml & 0x8000:  # the low half signed, as #@RQSETUP takes it
        cml = cml - 65536
        cmh = cmh + 1
    csl = shift
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
    zn = input_zero_point * n
    o_i = 0
    o = 0
    while o < outer_size:
        base = o * reduce_size * inner_size
        i = 0
        while i < inner_size:
            s = 0
            p = base + i
            k = 0
            while k < n:
                s += (pi[p] ^ 128) - 128
                p += inner_size
                k += 1
            if mode == 2:
                if s >= 0:
                    r = s // n
                else:
                    r = 0 - ((0 - s) // n)
            else:
                s = s - zn
                #@RQ(s, r, c)
                if mode == 1:
                    if r > 0:
                        r = (r + (n >> 1)) // n
                    else:
                        r = 0 - (((n >> 1) - r) // n)
                r = r + output_zero_point
            #@CLAMP(r, po[o_i])
            o_i += 1
            i += 1
        o += 1

#%module kv_eltwise
# kv_eltwise: ADD, SUB, MUL (broadcasting)
import micropython


@micropython.viper
def add(input1, input2, output, left_shift: int, input1_offset: int, input1_multiplier,
        input1_shift: int, input2_offset: int, input2_multiplier, input2_shift: int,
        output_offset: int, output_multiplier, output_shift: int, output_activation_min: int,
        output_activation_max: int, broadcast):
    """TFLM int8 Add. Multipliers are 4-byte int32 buffers; broadcast is 12 int32 words
    [d0..d3, s1_0..s1_3, s2_0..s2_3]: 4-D output dims and per-input element strides."""
    #@ADD_SUB(+)


@micropython.viper
def sub(input1, input2, output, left_shift: int, input1_offset: int, input1_multiplier,
        input1_shift: int, input2_offset: int, input2_multiplier, input2_shift: int,
        output_offset: int, output_multiplier, output_shift: int, output_activation_min: int,
        output_activation_max: int, broadcast):
    """TFLM int8 Sub: add() with the rescaled input2 subtracted (TFLM's SubElementwise)."""
    #@ADD_SUB(-)


@micropython.viper
def mul(input1, input2, output, input1_offset: int, input2_offset: int, output_offset: int,
        output_multiplier, output_shift: int, output_activation_min: int,
        output_activation_max: int, broadcast):
    """TFLM int8 Mul: MBQM((x1 + off1) * (x2 + off2)) + output_offset, clamped; broadcast as
    add()."""
    #@CONSTS()
    p1 = ptr8(input1)
    p2 = ptr8(input2)
    po = ptr8(output)
    amin = output_activation_min
    amax = output_activation_max
    pbc = ptr32(broadcast)
    d0 = pbc[0]
    d1 = pbc[1]
    d2 = pbc[2]
    d3 = pbc[3]
    a0 = pbc[4]
    a1 = pbc[5]
    a2 = pbc[6]
    a3 = pbc[7]
    b0 = pbc[8]
    b1 = pbc[9]
    b2 = pbc[10]
    b3 = pbc[11]
    #@RQSETUP2(c, output_multiplier, output_shift)
    o_i = 0
    i0 = 0
    while i0 < d0:
        i1 = 0
        while i1 < d1:
            i2 = 0
            while i2 < d2:
                j1 = i0 * a0 + i1 * a1 + i2 * a2
                j2 = i0 * b0 + i1 * b1 + i2 * b2
                k = 0
                while k < d3:
                    v = (((p1[j1] ^ 128) - 128) + input1_offset) * (
                        ((p2[j2] ^ 128) - 128) + input2_offset)
                    #@RQ(v, r, c)
                    r = r + output_offset
                    #@CLAMP(r, po[o_i])
                    o_i += 1
                    j1 += a3
                    j2 += b3
                    k += 1
                i2 += 1
            i1 += 1
        i0 += 1

#%module kv_lut
# kv_lut: LUT (LOGISTIC, TANH, RELU*, HARD_SWISH, QUANTIZE), DEQUANTIZE, QUANTIZE_F32
import array
import struct

import micropython


@micropython.viper
def lut(input, table, output, n_elements: int):
    """Elementwise int8 -> int8: out[i] = table[in[i] + 128] (tables built by the converter)."""
    pi = ptr8(input)
    po = ptr8(output)
    pt = ptr8(table)
    i = 0
    while i < n_elements:
        po[i] = pt[pi[i] ^ 128]
        i += 1


@micropython.viper
def dequantize(input, table, output, n_elements: int):
    """int8 -> float32 through a 256-entry float32 table (bit patterns; no float math here)."""
    pi = ptr8(input)
    po = ptr8(output)
    pt = ptr8(table)
    i = 0
    k = 0
    while i < n_elements:
        j = (pi[i] ^ 128) << 2
        po[k] = pt[j]
        po[k + 1] = pt[j + 1]
        po[k + 2] = pt[j + 2]
        po[k + 3] = pt[j + 3]
        k += 4
        i += 1


_F32 = array.array("f", [0.0])


def quantize_f32(input, output, n_elements, zero_point, scale):
    """float32 -> int8 as TFLM AffineQuantize: round_half_away(float32(x / scale)) + zero_point,
    clamped. Float math gains nothing from viper, so this is the bytecode kernel's arithmetic.
    Model-input only; floats are heap objects in MicroPython, so this op allocates."""
    f = _F32
    for i in range(n_elements):
        f[0] = struct.unpack_from("<f", input, i << 2)[0] / scale
        q = f[0]
        # Round half away from zero, exactly at any float width: q + 0.5 itself rounds in
        # float32 (0.49999997 + 0.5 == 1.0 on an ESP32), a - int(a) never does. |q| >= 256
        # clamps anyway (and stays a small int).
        a = q if q >= 0 else -q
        r = 256
        if a < 256.0:
            r = int(a)
            if a - r >= 0.5:
                r += 1
        r = (r if q >= 0 else -r) + zero_point
        if r < -128:
            r = -128
        elif r > 127:
            r = 127
        output[i] = r & 0xFF

#%module kv_move
# kv_move: CONCATENATION, PAD
import micropython


@micropython.viper
def concatenation(input, output, outer_size: int, copy_size: int, output_stride: int,
                  output_start: int):
    """One input of a CONCATENATION, viewed as [outer, copy_size], written to the output viewed
    as [outer, output_stride] at column output_start (the runtime calls it once per input)."""
    pi = ptr8(input)
    po = ptr8(output)
    src = 0
    dst = output_start
    o = 0
    while o < outer_size:
        i = 0
        while i < copy_size:
            po[dst + i] = pi[src + i]
            i += 1
        src += copy_size
        dst += output_stride
        o += 1


@micropython.viper
def pad(input, output, d0: int, d1: int, d2: int, d3: int, b0: int, b1: int, b2: int, b3: int,
        a0: int, a1: int, a2: int, a3: int, pad_value: int):
    """PAD / PADV2 of a tensor padded on the left to 4-D [d0..d3]: b_k before and a_k after axis
    k, padded elements = pad_value."""
    pi = ptr8(input)
    po = ptr8(output)
    o1 = d1 + b1 + a1
    o2 = d2 + b2 + a2
    o3 = d3 + b3 + a3
    v = pad_value & 0xFF
    n = (d0 + b0 + a0) * o1 * o2 * o3
    i = 0
    while i < n:
        po[i] = v
        i += 1
    src = 0
    i0 = 0
    while i0 < d0:
        i1 = 0
        while i1 < d1:
            i2 = 0
            while i2 < d2:
                dst = (((i0 + b0) * o1 + i1 + b1) * o2 + i2 + b2) * o3 + b3
                i = 0
                while i < d3:
                    po[dst + i] = pi[src + i]
                    i += 1
                src += d3
                i2 += 1
            i1 += 1
        i0 += 1

#%module kv_softmax
# kv_softmax: SOFTMAX
import micropython


@micropython.viper
def softmax(input, exp_lut, exp_acc_lut, output, outer_size: int, depth: int):
    """TFLM int8 Softmax (output zero point -128, scale 1/256) from the converter's exp LUTs
    indexed by d = row_max - x. The reciprocal is gemmlowp's one_over_one_plus_x_for_x_in_0_1
    (three Newton-Raphson steps); its seven high-muls run through one inlined
    SaturatingRoundingDoublingHighMul block, all within int32."""
    #@CONSTS()
    pi = ptr8(input)
    po = ptr8(output)
    pe = ptr32(exp_lut)
    pa = ptr32(exp_acc_lut)
    c48 = int(1515870810)
    cn32 = -1010580540
    one29 = 1
    one29 = one29 << 29
    o = 0
    while o < outer_size:
        base = o * depth
        mx = -128
        c = 0
        while c < depth:
            v = (pi[base + c] ^ 128) - 128
            if v > mx:
                mx = v
            c += 1
        total = 0
        c = 0
        while c < depth:
            ex = pa[mx - ((pi[base + c] ^ 128) - 128)]
            if ex & sgn:
                ex = (ex & msk) + sgn
            total += ex
            c += 1
        # headroom = clz32(total), total in [1, 2**31)
        clz = 0
        while clz < 31 and not (total & (half >> clz)):
            clz += 1
        clz += 1
        # shifted_sum_minus_one = (total << clz) - 2**31, without leaving int32
        lead = 1
        lead = lead << (31 - clz)
        sm1 = (total - lead) << clz
        # half_denominator = RoundingHalfSum(sm1, One) = (sm1 + 2**31) >> 1, as sm1 >= 0
        hden = (sm1 >> 1) + half
        xx = 0
        hx = 0
        step = 0
        while step < 7:
            if step == 0:
                a = hden
                bm = cn32
            elif step & 1:
                a = hden
                bm = xx
            else:
                a = xx
                bm = one29 - hx
            #@SRDHM(a, bm, r)
            if step == 0:
                xx = c48 + r
            elif step & 1:
                hx = r
            else:
                # xx += SaturatingRoundingMultiplyByPOT<2>(r)
                if r >= one29:
                    r = msk
                elif r < 0 - one29:
                    r = sgn
                else:
                    r = r << 2
                xx = xx + r
            step += 1
        # scale = SaturatingRoundingMultiplyByPOT<1>(xx)
        if xx >= half:
            scale = msk
        elif xx < 0 - half:
            scale = sgn
        else:
            scale = xx << 1
        e = 35 - clz  # num_bits_over_unit + 31 - 8, up to 34 for sums >= 2**28
        wide = e > 31  # then every scaled value (in [0, 2**31)) rounds to 0, as golden.py has it
        if wide:
            e = 31
        rmask = -1 - (-1 << e)
        rthr = rmask >> 1
        c = 0
        while c < depth:
            a = pe[mx - ((pi[base + c] ^ 128) - 128)]
            if a & sgn:
                a = (a & msk) + sgn
            bm = scale
            #@SRDHM(a, bm, r)
            thr = rthr
            if r < 0:
                thr = thr + 1
            rem = r & rmask
            r = r >> e
            if rem > thr:
                r = r + 1
            if wide:
                r = 0
            r = r - 128
            if r > 127:
                r = 127
            elif r < -128:
                r = -128
            po[base + c] = r
            c += 1
        o += 1
