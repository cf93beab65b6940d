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

# kv_softmax: SOFTMAX
import micropython


@micropython.viper
def softmax(input, exp_lut, exp_acc_lut, output, outer_size: int, depth: int):
    """TFLM int8 Softmax (output zero point -128, scale 1/256) from the converter's exp LUTs
    indexed by d = row_max - x. The reciprocal is gemmlowp's one_over_one_plus_x_for_x_in_0_1
    (three Newton-Raphson steps); its seven high-muls run through one inlined
    SaturatingRoundingDoublingHighMul block, all within int32."""
    sgn = -1
    sgn = sgn << 31
    msk = -1 - sgn
    half = 1
    half = half << 30
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
            # r = SaturatingRoundingDoublingHighMul(a, bm) on 16-bit halves
            if a == sgn:
                if bm == sgn:
                    r = msk
                else:
                    r = 0 - bm
            elif bm == sgn:
                r = 0 - a
            else:
                neg = 0
                u = a
                if u < 0:
                    u = 0 - u
                    neg = 1
                mm = bm
                if mm < 0:
                    mm = 0 - mm
                    neg = neg ^ 1
                uh = u >> 16
                ul = u & 0xFFFF
                mh = mm >> 16
                ml = mm & 0xFFFF
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
                if neg:
                    if rr > half:
                        r = r + 1
                    r = 0 - r
                elif rr >= half:
                    r = r + 1
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
            # r = SaturatingRoundingDoublingHighMul(a, bm) on 16-bit halves
            if a == sgn:
                if bm == sgn:
                    r = msk
                else:
                    r = 0 - bm
            elif bm == sgn:
                r = 0 - a
            else:
                neg = 0
                u = a
                if u < 0:
                    u = 0 - u
                    neg = 1
                mm = bm
                if mm < 0:
                    mm = 0 - mm
                    neg = neg ^ 1
                uh = u >> 16
                ul = u & 0xFFFF
                mh = mm >> 16
                ml = mm & 0xFFFF
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
                if neg:
                    if rr > half:
                        r = r + 1
                    r = 0 - r
                elif rr >= half:
                    r = r + 1
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
