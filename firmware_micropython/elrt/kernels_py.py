# EdgeLoop int8 kernels, plain bytecode (the fallback where viper is unavailable).
#
# One pure function per op, positional arguments only (a keyword or *args call allocates), the
# parameter names of TFLM's reference kernels. The viper modules kv_*.py (one per op family)
# export the same names with the same signatures; elrt dispatches each family to one set.
#
# Conventions shared by both kernel sets:
# - int8 tensors are byte buffers (bytearray / memoryview of the arena, bytes / memoryview of the
#   bundle's constant section); values are sign-extended on load ((v ^ 128) - 128, or the _S8
#   table) and stored with & 0xFF.
# - int32 vectors (bias, output_multiplier, output_shift, LUTs of int32) are byte buffers of
#   little-endian int32, 4-byte aligned, one entry per output channel (the bundle stores
#   per-tensor quantization per channel too). Multipliers stay in buffers, never Python ints: a
#   multiplier is >= 2**30, which would be a heap-allocated big int on a 32-bit board.
# - Small scalars (dims, offsets, shifts, activation bounds) are plain int arguments.
# - Bytecode ints are 31-bit on the ESP32 (larger values allocate): the requantization splits the
#   32x32->64 product into 15-bit digits so every partial stays below 2**30 for accumulators
#   below 2**30, and within int32 for any int32 input (tests/runtime checks both bounds).
# - Arguments follow docs/bundle-format.md: tensors in the op record's order, then its params in
#   order (TFLM names). Biases have the input zero point folded in (bias - zp * sum(weights)), so
#   FC/conv accumulate raw int8 products; a convolution tap outside the input reads the value
#   -input_offset (the input zero point), which with the folded bias equals TFLM skipping it.
# - Filter layouts are TFLite's: FULLY_CONNECTED [out, in], CONV_2D [out, kh, kw, in],
#   DEPTHWISE_CONV_2D [kh, kw, in * depth_multiplier]; activations are NHWC.
# - A scalar multiplier (ADD, MUL, MEAN) is a 4-byte buffer (a memoryview of the op record word),
#   a scalar shift a plain int.
from micropython import const
import array

_M15 = const(0x7FFF)
# Sign extension by table: one subscript instead of an xor and a subtraction per operand.
_S8 = tuple(range(128)) + tuple(range(-128, 0))


def _i32(buf, i):
    # Little-endian int32 from a byte buffer; the result is a small int when |v| < 2**30.
    j = i << 2
    return buf[j] | (buf[j + 1] << 8) | (buf[j + 2] << 16) | (((buf[j + 3] ^ 128) - 128) << 24)


def _srdhm(x, top, mh, ml):
    # TFLM SaturatingRoundingDoublingHighMul(x, M) for M = top*2**30 + mh*2**15 + ml
    # (top in -2..1, mh and ml in [0, 2**15)), without the M == x == INT32_MIN saturation case.
    # (x*M + nudge) / 2**31 truncated toward zero equals floor((x*M + 2**30) / 2**31) for both
    # signs, computed on 15-bit digits of x: x = xh*2**15 + xl.
    xh = x >> 15
    xl = x & _M15
    v1 = xh * ml + ((xl * ml) >> 15)
    v2 = xl * mh + (v1 & _M15)
    p = xh * mh
    w = (v1 >> 15) + (v2 >> 15) + top * (x & 1) + 1
    f = (p >> 1) + (((p & 1) + w) >> 1)
    # plus top * (x >> 1), added term by term so no partial leaves int32
    if top == 1:
        return f + (x >> 1)
    if top == 0:
        return f
    f -= x >> 1
    if top == -2:
        f -= x >> 1
    return f


def _rdbpot(y, e):
    # TFLM RoundingDivideByPOT(y, e): shift right, ties away from zero.
    if e <= 0:
        return y
    mask = ~(-1 << e)  # 2**e - 1 without forming 2**31 when e == 31
    rem = y & mask
    thr = mask >> 1
    if y < 0:
        thr += 1
    y >>= e
    if rem > thr:
        y += 1
    return y


def _requant_s(x, mbuf, j, s):
    # MultiplyByQuantizedMultiplier(x, int32 at mbuf[j:j+4], s) without creating big ints.
    b3 = mbuf[j + 3]
    ml = mbuf[j] | ((mbuf[j + 1] & 0x7F) << 8)
    mh = (mbuf[j + 1] >> 7) | (mbuf[j + 2] << 1) | ((b3 & 0x3F) << 9)
    top = b3 >> 6
    if top > 1:
        top -= 4
    if s > 0:
        return _srdhm(x << s, top, mh, ml)
    return _rdbpot(_srdhm(x, top, mh, ml), -s)


def _requant(x, mbuf, sbuf, c):
    # MultiplyByQuantizedMultiplier(x, output_multiplier[c], output_shift[c]) reading the
    # multiplier bytes directly, so no value >= 2**30 is ever created. _srdhm and _rdbpot are
    # inlined: this runs once per output element and calls cost more than the arithmetic.
    j = c << 2
    b3 = mbuf[j + 3]
    ml = mbuf[j] | ((mbuf[j + 1] & 0x7F) << 8)
    mh = (mbuf[j + 1] >> 7) | (mbuf[j + 2] << 1) | ((b3 & 0x3F) << 9)
    top = b3 >> 6
    if top > 1:
        top -= 4
    s = (sbuf[j] ^ 128) - 128
    if s > 0:
        return _srdhm(x << s, top, mh, ml)
    xh = x >> 15
    xl = x & _M15
    v1 = xh * ml + ((xl * ml) >> 15)
    v2 = xl * mh + (v1 & _M15)
    p = xh * mh
    w = (v1 >> 15) + (v2 >> 15) + top * (x & 1) + 1
    y = (p >> 1) + (((p & 1) + w) >> 1)
    if top == 1:
        y += x >> 1
    elif top != 0:
        y -= x >> 1
        if top == -2:
            y -= x >> 1
    if s == 0:
        return y
    e = -s
    mask = ~(-1 << e)
    rem = y & mask
    thr = mask >> 1
    if y < 0:
        thr += 1
    y >>= e
    if rem > thr:
        y += 1
    return y


def multiply_by_quantized_multiplier(x, multiplier, shift):
    """TFLM MultiplyByQuantizedMultiplier (double rounding) on plain ints, any int32 operands.
    For tests and load-time use; kernels use the byte-buffer form."""
    if shift > 0:
        x = x << shift
    if x == -2147483648 and multiplier == -2147483648:
        y = 2147483647
    else:
        top = multiplier >> 30
        r = multiplier & 0x3FFFFFFF
        y = _srdhm(x, top, r >> 15, r & _M15)
    return _rdbpot(y, -shift) if shift < 0 else y


def _clamp8(v, lo, hi):
    if v < lo:
        v = lo
    elif v > hi:
        v = hi
    return v & 0xFF


def _cdiv_round(a, n):
    # (a + n//2) / n for a > 0, else (a - n//2) / n, C division truncating toward zero.
    h = n >> 1
    if a > 0:
        return (a + h) // n
    return -((h - a) // n)


def fully_connected(input, filter, bias, output_multiplier, output_shift, output, batches,
                    accum_depth, output_depth, output_offset, output_activation_min,
                    output_activation_max):
    """output[b, o] = clamp(MBQM(bias[o] + sum_i filter[o, i] * input[b, i]) + output_offset)."""
    for b in range(batches):
        ib = b * accum_depth
        ob = b * output_depth
        S = _S8
        d = -ib
        o = 0
        while o < output_depth:
            acc = _i32(bias, o)
            if o + 1 < output_depth:
                # two outputs per pass over the input row: each input value is loaded once
                acc1 = _i32(bias, o + 1)
                d1 = d + accum_depth
                for i in range(ib, ib + accum_depth):
                    v = S[input[i]]
                    acc += S[filter[i + d]] * v
                    acc1 += S[filter[i + d1]] * v
                acc1 = _requant(acc1, output_multiplier, output_shift, o + 1) + output_offset
                if acc1 < output_activation_min:
                    acc1 = output_activation_min
                elif acc1 > output_activation_max:
                    acc1 = output_activation_max
                output[ob + o + 1] = acc1 & 0xFF
            else:
                for i in range(ib, ib + accum_depth):
                    acc += S[filter[i + d]] * S[input[i]]
            acc = _requant(acc, output_multiplier, output_shift, o) + output_offset
            if acc < output_activation_min:
                acc = output_activation_min
            elif acc > output_activation_max:
                acc = output_activation_max
            output[ob + o] = acc & 0xFF
            d += 2 * accum_depth
            o += 2


def conv_2d(input, filter, bias, output_multiplier, output_shift, output, batches,
            input_height, input_width, input_depth, output_height, output_width, output_depth,
            filter_height, filter_width, stride_height, stride_width, dilation_height_factor,
            dilation_width_factor, padding_top, padding_left, input_offset, output_offset,
            output_activation_min, output_activation_max):
    """TFLM ConvPerChannel with a folded bias; out-of-bounds taps read -input_offset."""
    zp = -input_offset
    S = _S8
    fstride = filter_height * filter_width * input_depth
    in_size = input_height * input_width * input_depth
    o_i = 0
    for b in range(batches):
        ibase = b * in_size
        for oy in range(output_height):
            iy0 = oy * stride_height - padding_top
            for ox in range(output_width):
                ix0 = ox * stride_width - padding_left
                oc = 0
                while oc < output_depth:
                    if oc + 1 < output_depth:
                        # two output channels per pass: each input value is loaded once
                        acc = _i32(bias, oc)
                        acc1 = _i32(bias, oc + 1)
                        fp = oc * fstride
                        for ky in range(filter_height):
                            iy = iy0 + ky * dilation_height_factor
                            row_in = 0 <= iy < input_height
                            for kx in range(filter_width):
                                ix = ix0 + kx * dilation_width_factor
                                if row_in and 0 <= ix < input_width:
                                    ip = ibase + (iy * input_width + ix) * input_depth
                                    d = fp - ip
                                    d1 = d + fstride
                                    for i in range(ip, ip + input_depth):
                                        v = S[input[i]]
                                        acc += S[filter[i + d]] * v
                                        acc1 += S[filter[i + d1]] * v
                                else:
                                    for i in range(fp, fp + input_depth):
                                        acc += S[filter[i]] * zp
                                        acc1 += S[filter[i + fstride]] * zp
                                fp += input_depth
                        acc1 = _requant(acc1, output_multiplier, output_shift, oc + 1)
                        acc1 += output_offset
                        if acc1 < output_activation_min:
                            acc1 = output_activation_min
                        elif acc1 > output_activation_max:
                            acc1 = output_activation_max
                        output[o_i + 1] = acc1 & 0xFF
                    else:
                        acc = _i32(bias, oc)
                        fp = oc * fstride
                        for ky in range(filter_height):
                            iy = iy0 + ky * dilation_height_factor
                            row_in = 0 <= iy < input_height
                            for kx in range(filter_width):
                                ix = ix0 + kx * dilation_width_factor
                                if row_in and 0 <= ix < input_width:
                                    ip = ibase + (iy * input_width + ix) * input_depth
                                    d = fp - ip
                                    for i in range(ip, ip + input_depth):
                                        acc += S[filter[i + d]] * S[input[i]]
                                else:
                                    for i in range(fp, fp + input_depth):
                                        acc += S[filter[i]] * zp
                                fp += input_depth
                    acc = _requant(acc, output_multiplier, output_shift, oc) + output_offset
                    if acc < output_activation_min:
                        acc = output_activation_min
                    elif acc > output_activation_max:
                        acc = output_activation_max
                    output[o_i] = acc & 0xFF
                    o_i += 2 if oc + 1 < output_depth else 1
                    oc += 2


def depthwise_conv_2d(input, filter, bias, output_multiplier, output_shift, output, batches,
                      input_height, input_width, input_depth, output_height, output_width,
                      output_depth, filter_height, filter_width, stride_height, stride_width,
                      dilation_height_factor, dilation_width_factor, padding_top, padding_left,
                      depth_multiplier, input_offset, output_offset, output_activation_min,
                      output_activation_max):
    """TFLM DepthwiseConvPerChannel with a folded bias; output channel = ic * depth_multiplier + m;
    out-of-bounds taps read -input_offset."""
    zp = -input_offset
    S = _S8
    in_size = input_height * input_width * input_depth
    xstep = dilation_width_factor * input_depth
    o_i = 0
    for b in range(batches):
        ibase = b * in_size
        for oy in range(output_height):
            iy0 = oy * stride_height - padding_top
            for ox in range(output_width):
                ix0 = ox * stride_width - padding_left
                for oc in range(output_depth):
                    ic = oc // depth_multiplier
                    acc = _i32(bias, oc)
                    fp = oc
                    for ky in range(filter_height):
                        iy = iy0 + ky * dilation_height_factor
                        if 0 <= iy < input_height:
                            ip = ibase + (iy * input_width + ix0) * input_depth + ic
                            ix = ix0
                            for kx in range(filter_width):
                                if 0 <= ix < input_width:
                                    acc += S[filter[fp]] * S[input[ip]]
                                else:
                                    acc += S[filter[fp]] * zp
                                fp += output_depth
                                ip += xstep
                                ix += dilation_width_factor
                        else:
                            for kx in range(filter_width):
                                acc += S[filter[fp]] * zp
                                fp += output_depth
                    acc = _requant(acc, output_multiplier, output_shift, oc) + output_offset
                    if acc < output_activation_min:
                        acc = output_activation_min
                    elif acc > output_activation_max:
                        acc = output_activation_max
                    output[o_i] = acc & 0xFF
                    o_i += 1


def max_pool_2d(input, output, batches, input_height, input_width, depth, output_height,
                output_width, filter_height, filter_width, stride_height, stride_width,
                padding_top, padding_left, output_activation_min, output_activation_max):
    """TFLM MaxPool int8: max over the in-bounds taps of each window, then clamp."""
    in_size = input_height * input_width * depth
    o_i = 0
    for b in range(batches):
        ibase = b * in_size
        for oy in range(output_height):
            iy0 = oy * stride_height - padding_top
            y0 = iy0 if iy0 > 0 else 0
            y1 = iy0 + filter_height
            if y1 > input_height:
                y1 = input_height
            for ox in range(output_width):
                ix0 = ox * stride_width - padding_left
                x0 = ix0 if ix0 > 0 else 0
                x1 = ix0 + filter_width
                if x1 > input_width:
                    x1 = input_width
                for c in range(depth):
                    m = -128
                    for iy in range(y0, y1):
                        p = ibase + (iy * input_width + x0) * depth + c
                        for _ in range(x0, x1):
                            v = (input[p] ^ 128) - 128
                            if v > m:
                                m = v
                            p += depth
                    if m < output_activation_min:
                        m = output_activation_min
                    elif m > output_activation_max:
                        m = output_activation_max
                    output[o_i] = m & 0xFF
                    o_i += 1


def average_pool_2d(input, output, batches, input_height, input_width, depth, output_height,
                    output_width, filter_height, filter_width, stride_height, stride_width,
                    padding_top, padding_left, output_activation_min, output_activation_max):
    """TFLM AveragePool int8: in-bounds sum / in-bounds count, rounded half away from zero with
    C division, then clamp."""
    in_size = input_height * input_width * depth
    o_i = 0
    for b in range(batches):
        ibase = b * in_size
        for oy in range(output_height):
            iy0 = oy * stride_height - padding_top
            y0 = iy0 if iy0 > 0 else 0
            y1 = iy0 + filter_height
            if y1 > input_height:
                y1 = input_height
            for ox in range(output_width):
                ix0 = ox * stride_width - padding_left
                x0 = ix0 if ix0 > 0 else 0
                x1 = ix0 + filter_width
                if x1 > input_width:
                    x1 = input_width
                n = (y1 - y0) * (x1 - x0)
                for c in range(depth):
                    s = 0
                    for iy in range(y0, y1):
                        p = ibase + (iy * input_width + x0) * depth + c
                        for _ in range(x0, x1):
                            s += (input[p] ^ 128) - 128
                            p += depth
                    if n > 0:
                        s = _cdiv_round(s, n)
                    output[o_i] = _clamp8(s, output_activation_min, output_activation_max)
                    o_i += 1


def mean(input, output, outer_size, reduce_size, inner_size, mode, input_zero_point,
         output_zero_point, multiplier, shift):
    """MEAN over the middle axis of [outer, reduce, inner] (bundle modes: 0 QuantizedMeanOrSum,
    1 integer Mean, 2 same quantization); multiplier is a 4-byte int32 buffer."""
    n = reduce_size
    o_i = 0
    for o in range(outer_size):
        base = o * reduce_size * inner_size
        for i in range(inner_size):
            s = 0
            p = base + i
            for _ in range(n):
                s += (input[p] ^ 128) - 128
                p += inner_size
            if mode == 2:
                s = s // n if s >= 0 else -((-s) // n)
            else:
                s = _requant_s(s - input_zero_point * n, multiplier, 0, shift)
                if mode == 1:
                    s = _cdiv_round(s, n)
                s += output_zero_point
            output[o_i] = _clamp8(s, -128, 127)
            o_i += 1


def add(input1, input2, output, left_shift, input1_offset, input1_multiplier, input1_shift,
        input2_offset, input2_multiplier, input2_shift, output_offset, output_multiplier,
        output_shift, output_activation_min, output_activation_max, broadcast):
    """TFLM int8 Add. Multipliers are 4-byte int32 buffers; broadcast is 12 int32 words
    [d0..d3, s1_0..s1_3, s2_0..s2_3]: 4-D output dims and per-input element strides."""
    _add_sub(input1, input2, output, left_shift, input1_offset, input1_multiplier, input1_shift,
             input2_offset, input2_multiplier, input2_shift, output_offset, output_multiplier,
             output_shift, output_activation_min, output_activation_max, broadcast, False)


def sub(input1, input2, output, left_shift, input1_offset, input1_multiplier, input1_shift,
        input2_offset, input2_multiplier, input2_shift, output_offset, output_multiplier,
        output_shift, output_activation_min, output_activation_max, broadcast):
    """TFLM int8 Sub: add() with the rescaled input2 subtracted (TFLM's SubElementwise)."""
    _add_sub(input1, input2, output, left_shift, input1_offset, input1_multiplier, input1_shift,
             input2_offset, input2_multiplier, input2_shift, output_offset, output_multiplier,
             output_shift, output_activation_min, output_activation_max, broadcast, True)


def _add_sub(input1, input2, output, left_shift, input1_offset, input1_multiplier, input1_shift,
             input2_offset, input2_multiplier, input2_shift, output_offset, output_multiplier,
             output_shift, output_activation_min, output_activation_max, broadcast, subtract):
    d0 = _i32(broadcast, 0)
    d1 = _i32(broadcast, 1)
    d2 = _i32(broadcast, 2)
    d3 = _i32(broadcast, 3)
    a0 = _i32(broadcast, 4)
    a1 = _i32(broadcast, 5)
    a2 = _i32(broadcast, 6)
    a3 = _i32(broadcast, 7)
    b0 = _i32(broadcast, 8)
    b1 = _i32(broadcast, 9)
    b2 = _i32(broadcast, 10)
    b3 = _i32(broadcast, 11)
    o_i = 0
    for i0 in range(d0):
        for i1 in range(d1):
            for i2 in range(d2):
                p1 = i0 * a0 + i1 * a1 + i2 * a2
                p2 = i0 * b0 + i1 * b1 + i2 * b2
                for _ in range(d3):
                    x = (((input1[p1] ^ 128) - 128) + input1_offset) << left_shift
                    y = (((input2[p2] ^ 128) - 128) + input2_offset) << left_shift
                    x = _requant_s(x, input1_multiplier, 0, input1_shift)
                    y = _requant_s(y, input2_multiplier, 0, input2_shift)
                    s = x - y if subtract else x + y
                    s = _requant_s(s, output_multiplier, 0, output_shift) + output_offset
                    output[o_i] = _clamp8(s, output_activation_min, output_activation_max)
                    o_i += 1
                    p1 += a3
                    p2 += b3


def mul(input1, input2, output, input1_offset, input2_offset, output_offset, output_multiplier,
        output_shift, output_activation_min, output_activation_max, broadcast):
    """TFLM int8 Mul: MBQM((x1 + off1) * (x2 + off2)) + output_offset, clamped; broadcast as
    add()."""
    d0 = _i32(broadcast, 0)
    d1 = _i32(broadcast, 1)
    d2 = _i32(broadcast, 2)
    d3 = _i32(broadcast, 3)
    a0 = _i32(broadcast, 4)
    a1 = _i32(broadcast, 5)
    a2 = _i32(broadcast, 6)
    a3 = _i32(broadcast, 7)
    b0 = _i32(broadcast, 8)
    b1 = _i32(broadcast, 9)
    b2 = _i32(broadcast, 10)
    b3 = _i32(broadcast, 11)
    o_i = 0
    for i0 in range(d0):
        for i1 in range(d1):
            for i2 in range(d2):
                p1 = i0 * a0 + i1 * a1 + i2 * a2
                p2 = i0 * b0 + i1 * b1 + i2 * b2
                for _ in range(d3):
                    x = ((input1[p1] ^ 128) - 128) + input1_offset
                    y = ((input2[p2] ^ 128) - 128) + input2_offset
                    s = _requant_s(x * y, output_multiplier, 0, output_shift) + output_offset
                    output[o_i] = _clamp8(s, output_activation_min, output_activation_max)
                    o_i += 1
                    p1 += a3
                    p2 += b3


_SCRATCH = array.array("i", [0, 0, 0, 0])


def _reciprocal(total, out):
    """TFLM GetReciprocal(total, 12) for 0 < total < 2**30, with small ints only: writes
    (num_bits_over_unit, top, mh, ml) of the Q0.31 scale to out (a tuple return would
    allocate); gemmlowp one_over_one_plus_x_for_x_in_0_1, three Newton-Raphson steps in Q2.29."""
    n = 0
    t = total
    while t:
        t >>= 1
        n += 1
    clz = 32 - n
    # half_denominator = RoundingHalfSum(shifted_sum_minus_one, One) = 2**30 + r
    r = (total - (1 << (n - 1))) << (clz - 1)
    hm = r >> 15
    hl = r & _M15
    # x = 48/17 + (-32/17) * half_denominator, 48/17 = 1515870810 = 442128986 + 2 * 2**29
    x = _srdhm(-1010580540, 1, hm, hl) + 442128986 + 536870912 + 536870912
    for k in range(3):
        om = 536870912 - _srdhm(x, 1, hm, hl)  # One(Q2.29) - half_denominator * x
        r = om & 0x3FFFFFFF
        p = _srdhm(x, om >> 30, r >> 15, r & _M15)
        if p >= 536870912:  # Rescale<2>: saturating << 2
            d = 2147483647
        elif p < -536870912:
            d = -2147483648
        else:
            d = p << 2
        if k < 2:
            x += d
    # scale = saturating (x + d) << 1, kept in parts: x + d may be exactly 2**30
    out[0] = 12 - clz
    if x - 536870912 >= 536870912 - d:
        out[1] = 1
        out[2] = _M15
        out[3] = _M15
        return
    x += d
    r = (x & 0x1FFFFFFF) << 1
    out[1] = x >> 29
    out[2] = r >> 15
    out[3] = r & _M15


def softmax(input, exp_lut, exp_acc_lut, output, outer_size, depth):
    """TFLM int8 Softmax (output zero point -128, scale 1/256) from the converter's exp LUTs,
    indexed by d = row_max - x. Small ints only: the Q0.31 values (exp, 1/sum) stay split in
    15-bit digits, as in the requantization."""
    for o in range(outer_size):
        base = o * depth
        mx = -128
        for c in range(base, base + depth):
            v = (input[c] ^ 128) - 128
            if v > mx:
                mx = v
        total = 0
        for c in range(base, base + depth):
            total += _i32(exp_acc_lut, mx - ((input[c] ^ 128) - 128))
        q = _SCRATCH
        _reciprocal(total, q)
        e = q[0] + 23  # num_bits_over_unit + 31 - 8
        st = q[1]
        sh = q[2]
        sl = q[3]
        for c in range(base, base + depth):
            j = (mx - ((input[c] ^ 128) - 128)) << 2
            # exp = xt * 2**30 + xh * 2**15 + xl (0 <= exp < 2**31)
            b3 = exp_lut[j + 3]
            xl = exp_lut[j] | ((exp_lut[j + 1] & 0x7F) << 8)
            xh = (exp_lut[j + 1] >> 7) | (exp_lut[j + 2] << 1) | ((b3 & 0x3F) << 9)
            xt = b3 >> 6
            output[c] = _softmax_out(xt, xh, xl, st, sh, sl, e)


def _softmax_out(xt, xh, xl, mt, mh, ml, e):
    # clamp(RoundingDivideByPOT(SRDHM(x, M), e) - 128) for 0 <= x, M < 2**31 given in 15-bit
    # digits (tops 0/1), e >= 15: the 62-bit product is summed column by column with carries.
    c1 = xh * ml + ((xl * ml) >> 15)
    c1b = (c1 & _M15) + xl * mh
    c2 = xh * mh + (c1 >> 15)
    c2b = (c2 & _M15) + (c1b >> 15) + xt * ml + xl * mt
    c3 = xt * mh + xh * mt + (c2 >> 15) + (c2b >> 15)
    # product + 2**30 = Y * 2**30 + (< 2**30), Y = xt*mt*2**30 + c3*2**15 + (c2b & M15) + 1;
    # SRDHM = Y >> 1 and the rounding shift by e gives (Y + 2**e) >> (e + 1)
    z = (c2b & _M15) + 1
    v = xt * mt * 32768 + c3 + (z >> 15) + (1 << (e - 15))
    v = (v >> (e - 14)) - 128
    if v > 127:
        v = 127
    return v & 0xFF


def lut(input, table, output, n_elements):
    """Elementwise int8 -> int8: out[i] = table[in[i] + 128] (LOGISTIC, TANH, RELU, RELU6,
    LEAKY_RELU, HARD_SWISH, QUANTIZE int8 -> int8; tables built by the converter)."""
    for i in range(n_elements):
        output[i] = table[input[i] ^ 128]


def dequantize(input, table, output, n_elements):
    """int8 -> float32 through a 256-entry float32 table (bit patterns; no float math here)."""
    k = 0
    for i in range(n_elements):
        j = (input[i] ^ 128) << 2
        output[k] = table[j]
        output[k + 1] = table[j + 1]
        output[k + 2] = table[j + 2]
        output[k + 3] = table[j + 3]
        k += 4


_F32 = array.array("f", [0.0])


def quantize_f32(input, output, n_elements, zero_point, scale):
    """float32 -> int8 as TFLM AffineQuantize: round_half_away(float32(x / scale)) + zero_point,
    clamped. Model-input only; floats are heap objects in MicroPython, so this op allocates."""
    import struct
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
        output[i] = _clamp8((r if q >= 0 else -r) + zero_point, -128, 127)


def concatenation(input, output, outer_size, copy_size, output_stride, output_start):
    """One input of a CONCATENATION, viewed as [outer, copy_size], written to the output viewed
    as [outer, output_stride] at column output_start (the runtime calls it once per input)."""
    src = 0
    dst = output_start
    for o in range(outer_size):
        for i in range(copy_size):
            output[dst + i] = input[src + i]
        src += copy_size
        dst += output_stride


def pad(input, output, d0, d1, d2, d3, b0, b1, b2, b3, a0, a1, a2, a3, pad_value):
    """PAD / PADV2 of a tensor padded on the left to 4-D [d0..d3]: b_k before and a_k after axis
    k, padded elements = pad_value."""
    o1 = d1 + b1 + a1
    o2 = d2 + b2 + a2
    o3 = d3 + b3 + a3
    v = pad_value & 0xFF
    for i in range((d0 + b0 + a0) * o1 * o2 * o3):
        output[i] = v
    src = 0
    for i0 in range(d0):
        for i1 in range(d1):
            for i2 in range(d2):
                dst = (((i0 + b0) * o1 + i1 + b1) * o2 + i2 + b2) * o3 + b3
                for i in range(d3):
                    output[dst + i] = input[src + i]
                src += d3
