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

# kv_requant: the reference requantization (tests; not used by elrt)
import micropython


@micropython.viper
def multiply_by_quantized_multiplier(x: int, multiplier: int, shift: int) -> int:
    """TFLM MultiplyByQuantizedMultiplier (double rounding) for any int32 x and multiplier, with
    C's int32 wrap of x * 2**shift; the reference copy of the block inlined in the kernels.
    For tests and load-time use: on a 32-bit board its int arguments/result may be boxed."""
    sgn = -1
    sgn = sgn << 31
    msk = -1 - sgn
    half = 1
    half = half << 30
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
