# EdgeLoop int8 kernels, viper fast path. Same names and signatures as kernels_py.
#
# Every intermediate stays within int32, because viper ints are machine words: 32 bits on the
# ESP32 family, 64 on the virtual board. Consequences, checked by tests/viper:
# - no integer literal >= 2**30 (it would become a boxed object); such constants are built with
#   runtime shifts (sgn = INT32_MIN, half = 2**30);
# - ptr8 loads are unsigned: int8 values are sign-extended with (v ^ 128) - 128;
# - ptr32 loads zero-extend on a 64-bit board: signed words are re-signed with _s32 logic;
# - TFLM's MultiplyByQuantizedMultiplier (double rounding) is computed from 16-bit halves, the
#   64-bit product never exists; the requantization block is inlined in each kernel because a
#   viper call boxes its int arguments (a big int, i.e. an allocation, on a 32-bit board).
import micropython


@micropython.viper
def requantize(x: int, mult: int, shift: int) -> int:
    """TFLM MultiplyByQuantizedMultiplier(x, mult, shift) for 0 <= mult < 2**31 (reference copy
    of the block inlined in the kernels; used by tests)."""
    sgn = -1
    sgn = sgn << 31
    half = 1
    half = half << 30
    # left shift with int32 wrap, as TFLM's x * (1 << left), built without overflowing
    if shift > 0:
        lbit = 1
        lbit = lbit << (31 - shift)
        hib = x & lbit
        x = (x & (lbit - 1)) << shift
        if hib:
            x = x + sgn
    # SaturatingRoundingDoublingHighMul(x, mult)
    if x == sgn:
        r = 0 - mult
    else:
        u = x
        if x < 0:
            u = 0 - x
        uh = u >> 16
        ul = u & 0xFFFF
        mh = mult >> 16
        ml = mult & 0xFFFF
        bb = uh * ml
        cc = ul * mh
        q = ul * (ml >> 1)
        t = (q & 0x7FFF) << 1
        if ml & 1:
            t = t + ul
        mid = (bb & 0xFFFF) + (cc & 0xFFFF) + (q >> 15) + (t >> 16)
        top = uh * mh + (bb >> 16) + (cc >> 16) + (mid >> 16)
        rr = ((mid & 0x7FFF) << 16) + (t & 0xFFFF)
        r = (top << 1) + ((mid >> 15) & 1)
        if x < 0:
            if rr > half:
                r = r + 1
            r = 0 - r
        elif rr >= half:
            r = r + 1
    # RoundingDivideByPOT(r, -shift)
    if shift < 0:
        e = 0 - shift
        mask = -1 - (-1 << e)
        thr = mask >> 1
        if r < 0:
            thr = thr + 1
        rem = r & mask
        r = r >> e
        if rem > thr:
            r = r + 1
    return r
