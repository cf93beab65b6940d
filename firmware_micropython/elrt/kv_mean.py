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

# kv_mean: MEAN
import micropython


@micropython.viper
def mean(input, output, outer_size: int, reduce_size: int, inner_size: int, mode: int,
         input_zero_point: int, output_zero_point: int, multiplier, shift: int):
    """MEAN over the middle axis of [outer, reduce, inner] (bundle modes: 0 QuantizedMeanOrSum,
    1 integer Mean, 2 same quantization); multiplier is a 4-byte int32 buffer."""
    sgn = -1
    sgn = sgn << 31
    msk = -1 - sgn
    half = 1
    half = half << 30
    pm = ptr32(multiplier)
    pi = ptr8(input)
    po = ptr8(output)
    amin = -128
    amax = 127
    n = reduce_size
    cm = pm[0]
    cmh = cm >> 16
    cml = cm & 0xFFFF
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
                # r = MultiplyByQuantizedMultiplier(s, cm, shift) on 16-bit halves
                xq = s
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
                if mode == 1:
                    if r > 0:
                        r = (r + (n >> 1)) // n
                    else:
                        r = 0 - (((n >> 1) - r) // n)
                r = r + output_zero_point
            if r < amin:
                r = amin
            if r > amax:
                r = amax
            po[o_i] = r
            o_i += 1
            i += 1
        o += 1
