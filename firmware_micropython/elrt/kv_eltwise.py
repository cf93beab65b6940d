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

# kv_eltwise: ADD, MUL (broadcasting)
import micropython


@micropython.viper
def add(input1, input2, output, left_shift: int, input1_offset: int, input1_multiplier,
        input1_shift: int, input2_offset: int, input2_multiplier, input2_shift: int,
        output_offset: int, output_multiplier, output_shift: int, output_activation_min: int,
        output_activation_max: int, broadcast):
    """TFLM int8 Add. Multipliers are 4-byte int32 buffers; broadcast is 12 int32 words
    [d0..d3, s1_0..s1_3, s2_0..s2_3]: 4-D output dims and per-input element strides."""
    sgn = -1
    sgn = sgn << 31
    msk = -1 - sgn
    half = 1
    half = half << 30
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
    am = ptr32(input1_multiplier)[0]
    amh = am >> 16
    aml = am & 0xFFFF
    asl = input1_shift
    if asl & sgn:
        asl = (asl & msk) + sgn
    alb = 0
    ae = 0
    arm = 0
    art = 0
    if asl > 0:
        alb = 1
        alb = alb << (31 - asl)
    elif asl < 0:
        ae = 0 - asl
        arm = -1 - (-1 << ae)
        art = arm >> 1
    bm = ptr32(input2_multiplier)[0]
    bmh = bm >> 16
    bml = bm & 0xFFFF
    bsl = input2_shift
    if bsl & sgn:
        bsl = (bsl & msk) + sgn
    blb = 0
    be = 0
    brm = 0
    brt = 0
    if bsl > 0:
        blb = 1
        blb = blb << (31 - bsl)
    elif bsl < 0:
        be = 0 - bsl
        brm = -1 - (-1 << be)
        brt = brm >> 1
    cm = ptr32(output_multiplier)[0]
    cmh = cm >> 16
    cml = cm & 0xFFFF
    csl = output_shift
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
                    va = (((p1[j1] ^ 128) - 128) + input1_offset) << left_shift
                    vb = (((p2[j2] ^ 128) - 128) + input2_offset) << left_shift
                    # ra = MultiplyByQuantizedMultiplier(va, am, shift) on 16-bit halves
                    xq = va
                    if alb:
                        hib = xq & alb
                        xq = (xq & (alb - 1)) << asl
                        if hib:
                            xq = xq + sgn
                    if xq == sgn:
                        ra = 0 - am
                    else:
                        u = xq
                        if xq < 0:
                            u = 0 - xq
                        uh = u >> 16
                        ul = u & 0xFFFF
                        bb = uh * aml
                        cc = ul * amh
                        q = ul * (aml >> 1)
                        t = (q & 0x7FFF) << 1
                        if aml & 1:
                            t = t + ul
                        mid = (bb & 0xFFFF) + (cc & 0xFFFF) + (q >> 15) + (t >> 16)
                        top = uh * amh + (bb >> 16) + (cc >> 16) + (mid >> 16)
                        rr = ((mid & 0x7FFF) << 16) + (t & 0xFFFF)
                        ra = (top << 1) + ((mid >> 15) & 1)
                        if xq < 0:
                            if rr > half:
                                ra = ra + 1
                            ra = 0 - ra
                        elif rr >= half:
                            ra = ra + 1
                    if ae:
                        thr = art
                        if ra < 0:
                            thr = thr + 1
                        rem = ra & arm
                        ra = ra >> ae
                        if rem > thr:
                            ra = ra + 1
                    # rb = MultiplyByQuantizedMultiplier(vb, bm, shift) on 16-bit halves
                    xq = vb
                    if blb:
                        hib = xq & blb
                        xq = (xq & (blb - 1)) << bsl
                        if hib:
                            xq = xq + sgn
                    if xq == sgn:
                        rb = 0 - bm
                    else:
                        u = xq
                        if xq < 0:
                            u = 0 - xq
                        uh = u >> 16
                        ul = u & 0xFFFF
                        bb = uh * bml
                        cc = ul * bmh
                        q = ul * (bml >> 1)
                        t = (q & 0x7FFF) << 1
                        if bml & 1:
                            t = t + ul
                        mid = (bb & 0xFFFF) + (cc & 0xFFFF) + (q >> 15) + (t >> 16)
                        top = uh * bmh + (bb >> 16) + (cc >> 16) + (mid >> 16)
                        rr = ((mid & 0x7FFF) << 16) + (t & 0xFFFF)
                        rb = (top << 1) + ((mid >> 15) & 1)
                        if xq < 0:
                            if rr > half:
                                rb = rb + 1
                            rb = 0 - rb
                        elif rr >= half:
                            rb = rb + 1
                    if be:
                        thr = brt
                        if rb < 0:
                            thr = thr + 1
                        rem = rb & brm
                        rb = rb >> be
                        if rem > thr:
                            rb = rb + 1
                    vs = ra + rb
                    # r = MultiplyByQuantizedMultiplier(vs, cm, shift) on 16-bit halves
                    xq = vs
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
                    r = r + output_offset
                    if r < amin:
                        r = amin
                    if r > amax:
                        r = amax
                    po[o_i] = r
                    o_i += 1
                    j1 += a3
                    j2 += b3
                    k += 1
                i2 += 1
            i1 += 1
        i0 += 1


@micropython.viper
def mul(input1, input2, output, input1_offset: int, input2_offset: int, output_offset: int,
        output_multiplier, output_shift: int, output_activation_min: int,
        output_activation_max: int, broadcast):
    """TFLM int8 Mul: MBQM((x1 + off1) * (x2 + off2)) + output_offset, clamped; broadcast as
    add()."""
    sgn = -1
    sgn = sgn << 31
    msk = -1 - sgn
    half = 1
    half = half << 30
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
    cm = ptr32(output_multiplier)[0]
    cmh = cm >> 16
    cml = cm & 0xFFFF
    csl = output_shift
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
                    # r = MultiplyByQuantizedMultiplier(v, cm, shift) on 16-bit halves
                    xq = v
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
                    r = r + output_offset
                    if r < amin:
                        r = amin
                    if r > amax:
                        r = amax
                    po[o_i] = r
                    o_i += 1
                    j1 += a3
                    j2 += b3
                    k += 1
                i2 += 1
            i1 += 1
        i0 += 1
