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

# kv_fc: FULLY_CONNECTED
import micropython


# The three MAC-heavy kernels are a thin public wrapper that parks its arguments in _A and calls
# a zero-argument implementation: viper keeps a function's first locals in machine registers and
# arguments come first, so with 12-26 arguments no loop variable would get one. The
# implementations declare their hottest locals (accumulator, two addresses) first. _A is
# preallocated; storing into it allocates nothing. Kernels never run concurrently.
_A = [0] * 26


@micropython.viper
def fully_connected(input, filter, bias, output_multiplier, output_shift, output, batches,
                    accum_depth, output_depth, output_offset, output_activation_min,
                    output_activation_max):
    """output[b, o] = clamp(MBQM(bias[o] + sum_i filter[o, i] * input[b, i]) + output_offset)
    (the input zero point is folded into the bias)."""
    a = _A
    a[0] = input
    a[1] = filter
    a[2] = bias
    a[3] = output_multiplier
    a[4] = output_shift
    a[5] = output
    a[6] = batches
    a[7] = accum_depth
    a[8] = output_depth
    a[9] = output_offset
    a[10] = output_activation_min
    a[11] = output_activation_max
    _fully_connected()
    a[0] = 0  # drop the buffer references: _A must not keep an unloaded model's memory alive
    a[1] = 0
    a[2] = 0
    a[3] = 0
    a[4] = 0
    a[5] = 0


@micropython.viper
def _fully_connected():
    # Dot products use sum(x * w) = sum(x * (w ^ 128)) - 128 * sum(x) over an 8x unrolled head
    # (w ^ 128 is w + 128, unsigned: one operation less per MAC), the head's sum(x) computed once
    # per batch row; |partial sums| <= 128 * 255 * 8192 < 2**28 with the head capped at 8192.
    acc = 0
    xa = 0
    wa = 0
    sgn = -1
    sgn = sgn << 31
    msk = -1 - sgn
    half = 1
    half = half << 30
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
        while o < odepth:
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
            po[o_i] = r
            o_i += 1
            o += 1
        b += 1
