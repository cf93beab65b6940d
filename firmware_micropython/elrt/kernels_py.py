# EdgeLoop int8 kernels, plain bytecode (the fallback where viper is unavailable).
#
# One pure function per op, positional arguments only (a keyword or *args call allocates), the
# parameter names of TFLM's reference kernels. kernels_viper.py exports the same names with the
# same signatures; elrt dispatches to one set.
#
# Conventions shared by both kernel sets:
# - int8 tensors are byte buffers (bytearray / memoryview of the arena, bytes / memoryview of the
#   bundle's constant section); values are sign-extended on load with (v ^ 128) - 128 and stored
#   with & 0xFF.
# - int32 vectors (bias, output_multiplier, output_shift, LUTs of int32) are byte buffers of
#   little-endian int32, 4-byte aligned. Per-channel vectors always have one entry per output
#   channel (the loader expands per-tensor quantization); a scalar quantity (ADD, MUL, MEAN, ...)
#   is a 1-entry vector. Multipliers are passed in buffers, never as Python ints: a multiplier is
#   >= 2**30, which would be a heap-allocated big int on a 32-bit board.
# - Small scalars (dims, offsets, shifts, activation bounds) are plain int arguments.
# - Bytecode ints are 31-bit on the ESP32 (larger values allocate): the requantization splits the
#   32x32->64 product into 15-bit digits so every partial stays below 2**30 for accumulators
#   below 2**30, and within int32 for any int32 input (tests/runtime checks both bounds).
# - Filter layouts are TFLite's: FULLY_CONNECTED [out, in], CONV_2D [out, kh, kw, in],
#   DEPTHWISE_CONV_2D [1, kh, kw, in * depth_multiplier]; activations are NHWC with batch 1
#   for the spatial ops.
from micropython import const

_M15 = const(0x7FFF)


def _s8(v):
    return (v ^ 128) - 128


def _i32(buf, i):
    # Little-endian int32 from a byte buffer; the result is a small int when |v| < 2**30.
    j = i << 2
    return buf[j] | (buf[j + 1] << 8) | (buf[j + 2] << 16) | (((buf[j + 3] ^ 128) - 128) << 24)


def _shift(buf, i):
    # A shift is in [-31, 31]: its low byte, sign-extended, is the whole value.
    return (buf[i << 2] ^ 128) - 128


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
    mask = (1 << e) - 1
    rem = y & mask
    thr = mask >> 1
    if y < 0:
        thr += 1
    y >>= e
    if rem > thr:
        y += 1
    return y


def _requant(x, mbuf, sbuf, c):
    # MultiplyByQuantizedMultiplier(x, output_multiplier[c], output_shift[c]) reading the
    # multiplier bytes directly, so no value >= 2**30 is ever created.
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
    return _rdbpot(_srdhm(x, top, mh, ml), -s)


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


def fully_connected(input, filter, bias, output, batches, input_depth, output_depth,
                    input_offset, output_offset, output_multiplier, output_shift,
                    output_activation_min, output_activation_max):
    """output[b, o] = act(requant(bias[o] + sum_i filter[o, i] * (input[b, i] + input_offset)))."""
    ioff = input_offset - 128
    for b in range(batches):
        ib = b * input_depth
        ob = b * output_depth
        for o in range(output_depth):
            acc = _i32(bias, o)
            fi = o * input_depth
            for i in range(input_depth):
                acc += ((filter[fi + i] ^ 128) - 128) * ((input[ib + i] ^ 128) + ioff)
            acc = _requant(acc, output_multiplier, output_shift, o) + output_offset
            if acc < output_activation_min:
                acc = output_activation_min
            elif acc > output_activation_max:
                acc = output_activation_max
            output[ob + o] = acc & 0xFF


def conv_2d(input, filter, bias, output, input_height, input_width, input_depth,
            filter_height, filter_width, output_height, output_width, output_depth,
            stride_height, stride_width, dilation_height_factor, dilation_width_factor,
            padding_height, padding_width, input_offset, output_offset, output_multiplier,
            output_shift, output_activation_min, output_activation_max):
    """TFLM ConvPerChannel, batch 1: taps outside the input (padding) contribute nothing."""
    ioff = input_offset - 128
    fstride = filter_height * filter_width * input_depth
    o_i = 0
    for oy in range(output_height):
        iy0 = oy * stride_height - padding_height
        for ox in range(output_width):
            ix0 = ox * stride_width - padding_width
            for oc in range(output_depth):
                acc = _i32(bias, oc)
                fbase = oc * fstride
                for ky in range(filter_height):
                    iy = iy0 + ky * dilation_height_factor
                    if iy < 0 or iy >= input_height:
                        continue
                    for kx in range(filter_width):
                        ix = ix0 + kx * dilation_width_factor
                        if ix < 0 or ix >= input_width:
                            continue
                        ip = (iy * input_width + ix) * input_depth
                        fp = fbase + (ky * filter_width + kx) * input_depth
                        for ic in range(input_depth):
                            acc += ((filter[fp + ic] ^ 128) - 128) * ((input[ip + ic] ^ 128) + ioff)
                acc = _requant(acc, output_multiplier, output_shift, oc) + output_offset
                if acc < output_activation_min:
                    acc = output_activation_min
                elif acc > output_activation_max:
                    acc = output_activation_max
                output[o_i] = acc & 0xFF
                o_i += 1


def depthwise_conv_2d(input, filter, bias, output, input_height, input_width, input_depth,
                      filter_height, filter_width, output_height, output_width, depth_multiplier,
                      stride_height, stride_width, dilation_height_factor, dilation_width_factor,
                      padding_height, padding_width, input_offset, output_offset,
                      output_multiplier, output_shift, output_activation_min,
                      output_activation_max):
    """TFLM DepthwiseConvPerChannel, batch 1; output channel = ic * depth_multiplier + m."""
    ioff = input_offset - 128
    output_depth = input_depth * depth_multiplier
    o_i = 0
    for oy in range(output_height):
        iy0 = oy * stride_height - padding_height
        for ox in range(output_width):
            ix0 = ox * stride_width - padding_width
            for oc in range(output_depth):
                ic = oc // depth_multiplier
                acc = _i32(bias, oc)
                for ky in range(filter_height):
                    iy = iy0 + ky * dilation_height_factor
                    if iy < 0 or iy >= input_height:
                        continue
                    for kx in range(filter_width):
                        ix = ix0 + kx * dilation_width_factor
                        if ix < 0 or ix >= input_width:
                            continue
                        v = input[(iy * input_width + ix) * input_depth + ic]
                        w = filter[(ky * filter_width + kx) * output_depth + oc]
                        acc += ((w ^ 128) - 128) * ((v ^ 128) + ioff)
                acc = _requant(acc, output_multiplier, output_shift, oc) + output_offset
                if acc < output_activation_min:
                    acc = output_activation_min
                elif acc > output_activation_max:
                    acc = output_activation_max
                output[o_i] = acc & 0xFF
                o_i += 1


def max_pool_2d(input, output, input_height, input_width, depth, filter_height, filter_width,
                output_height, output_width, stride_height, stride_width, padding_height,
                padding_width, output_activation_min, output_activation_max):
    """TFLM MaxPool int8, batch 1: max over the in-bounds part of each window, then clamp."""
    o_i = 0
    for oy in range(output_height):
        iy0 = oy * stride_height - padding_height
        y0 = iy0 if iy0 > 0 else 0
        y1 = iy0 + filter_height
        if y1 > input_height:
            y1 = input_height
        for ox in range(output_width):
            ix0 = ox * stride_width - padding_width
            x0 = ix0 if ix0 > 0 else 0
            x1 = ix0 + filter_width
            if x1 > input_width:
                x1 = input_width
            for c in range(depth):
                m = -128
                for iy in range(y0, y1):
                    p = (iy * input_width + x0) * depth + c
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


def average_pool_2d(input, output, input_height, input_width, depth, filter_height,
                    filter_width, output_height, output_width, stride_height, stride_width,
                    padding_height, padding_width, output_activation_min, output_activation_max):
    """TFLM AveragePool int8, batch 1: sum over the in-bounds window, divide by its element
    count rounding half away from zero, clamp."""
    o_i = 0
    for oy in range(output_height):
        iy0 = oy * stride_height - padding_height
        y0 = iy0 if iy0 > 0 else 0
        y1 = iy0 + filter_height
        if y1 > input_height:
            y1 = input_height
        for ox in range(output_width):
            ix0 = ox * stride_width - padding_width
            x0 = ix0 if ix0 > 0 else 0
            x1 = ix0 + filter_width
            if x1 > input_width:
                x1 = input_width
            n = (y1 - y0) * (x1 - x0)
            for c in range(depth):
                s = 0
                for iy in range(y0, y1):
                    p = (iy * input_width + x0) * depth + c
                    for _ in range(x0, x1):
                        s += (input[p] ^ 128) - 128
                        p += depth
                if n == 0:
                    s = 0
                elif s > 0:
                    s = (s + (n >> 1)) // n
                else:
                    s = -((-s + (n >> 1)) // n)
                if s < output_activation_min:
                    s = output_activation_min
                elif s > output_activation_max:
                    s = output_activation_max
                output[o_i] = s & 0xFF
                o_i += 1


def mean(input, output, outer_size, reduce_size, inner_size, input_offset, output_offset,
         output_multiplier, output_shift, output_activation_min, output_activation_max):
    """Input viewed as [outer, reduce, inner]: output[o, i] = act(requant(sum_r (input[o, r, i]
    + input_offset)) + output_offset); the converter folds 1/reduce_size into the multiplier."""
    o_i = 0
    for o in range(outer_size):
        base = o * reduce_size * inner_size
        for i in range(inner_size):
            s = input_offset * reduce_size
            p = base + i
            for _ in range(reduce_size):
                s += (input[p] ^ 128) - 128
                p += inner_size
            s = _requant(s, output_multiplier, output_shift, 0) + output_offset
            if s < output_activation_min:
                s = output_activation_min
            elif s > output_activation_max:
                s = output_activation_max
            output[o_i] = s & 0xFF
            o_i += 1


def add(input1, input2, output, outer_size, inner_size, input1_outer_stride,
        input1_inner_stride, input2_outer_stride, input2_inner_stride, input1_offset,
        input2_offset, output_offset, left_shift, input1_multiplier, input1_shift,
        input2_multiplier, input2_shift, output_multiplier, output_shift,
        output_activation_min, output_activation_max):
    """TFLM int8 Add; broadcasting as two nested loops with per-input strides (0 = broadcast)."""
    o_i = 0
    for o in range(outer_size):
        p1 = o * input1_outer_stride
        p2 = o * input2_outer_stride
        for _ in range(inner_size):
            a = (((input1[p1] ^ 128) - 128) + input1_offset) << left_shift
            b = (((input2[p2] ^ 128) - 128) + input2_offset) << left_shift
            s = _requant(a, input1_multiplier, input1_shift, 0) + _requant(
                b, input2_multiplier, input2_shift, 0)
            s = _requant(s, output_multiplier, output_shift, 0) + output_offset
            if s < output_activation_min:
                s = output_activation_min
            elif s > output_activation_max:
                s = output_activation_max
            output[o_i] = s & 0xFF
            o_i += 1
            p1 += input1_inner_stride
            p2 += input2_inner_stride


def mul(input1, input2, output, outer_size, inner_size, input1_outer_stride,
        input1_inner_stride, input2_outer_stride, input2_inner_stride, input1_offset,
        input2_offset, output_offset, output_multiplier, output_shift, output_activation_min,
        output_activation_max):
    """TFLM int8 Mul: requant((x1 + off1) * (x2 + off2)) + output_offset, clamped."""
    o_i = 0
    for o in range(outer_size):
        p1 = o * input1_outer_stride
        p2 = o * input2_outer_stride
        for _ in range(inner_size):
            a = ((input1[p1] ^ 128) - 128) + input1_offset
            b = ((input2[p2] ^ 128) - 128) + input2_offset
            s = _requant(a * b, output_multiplier, output_shift, 0) + output_offset
            if s < output_activation_min:
                s = output_activation_min
            elif s > output_activation_max:
                s = output_activation_max
            output[o_i] = s & 0xFF
            o_i += 1
            p1 += input1_inner_stride
            p2 += input2_inner_stride


def lut(input, output, size, table):
    """Elementwise int8 -> int8 through a 256-byte table indexed by the input's raw byte
    (LOGISTIC, TANH, RELU, RELU6, LEAKY_RELU, HARD_SWISH, QUANTIZE int8->int8)."""
    for i in range(size):
        output[i] = table[input[i]]


def lut32(input, output, size, table):
    """Elementwise int8 -> 4-byte value through a 1024-byte table (DEQUANTIZE to float32)."""
    for i in range(size):
        j = input[i] << 2
        k = i << 2
        output[k] = table[j]
        output[k + 1] = table[j + 1]
        output[k + 2] = table[j + 2]
        output[k + 3] = table[j + 3]


def copy(input, input_start, output, output_start, size):
    """Byte copy between buffers (CONCATENATION slices, PAD interior rows)."""
    for i in range(size):
        output[output_start + i] = input[input_start + i]


def concatenation(input, output, outer_size, copy_size, output_stride, output_start):
    """Place one input, viewed as [outer, copy_size], into the output viewed as
    [outer, output_stride] at column output_start (one call per input)."""
    for o in range(outer_size):
        src = o * copy_size
        dst = o * output_stride + output_start
        for i in range(copy_size):
            output[dst + i] = input[src + i]


def pad(input, output, input_height, input_width, depth, output_height, output_width,
        pad_top, pad_left, pad_value):
    """PAD of an NHWC tensor (batch 1) in H and W; channel/batch padding is refused at convert
    time. pad_value is the output zero point."""
    v = pad_value & 0xFF
    n = output_height * output_width * depth
    for i in range(n):
        output[i] = v
    row = input_width * depth
    for y in range(input_height):
        src = y * row
        dst = ((y + pad_top) * output_width + pad_left) * depth
        for i in range(row):
            output[dst + i] = input[src + i]


def softmax(input, output, outer_size, depth, exp_table, diff_min):
    """TFLM int8 Softmax (output scale 1/256, zero point -128). exp_table holds, for
    d = 0..255, the int32 raw of exp_on_negative_values(rescaled(-d)) in Q0.31 (computed by
    the converter, as TFLM does at prepare time); entries for -d < diff_min are ignored."""
    for o in range(outer_size):
        base = o * depth
        mx = -128
        for c in range(depth):
            v = (input[base + c] ^ 128) - 128
            if v > mx:
                mx = v
        # sum_of_exps in Q12.19: Rescale<12>(exp) = RoundingDivideByPOT(exp, 12)
        total = 0
        for c in range(depth):
            d = mx - ((input[base + c] ^ 128) - 128)
            if -d >= diff_min:
                total += _rdbpot(_i32(exp_table, d), 12)
        nbits, scale = _reciprocal(total, 12)
        e = nbits + 23  # num_bits_over_unit + 31 - 8
        for c in range(depth):
            d = mx - ((input[base + c] ^ 128) - 128)
            if -d >= diff_min:
                ex = _i32(exp_table, d)
                r = _rdbpot(_srdhm_i(scale, ex), e) - 128
                if r > 127:
                    r = 127
                elif r < -128:
                    r = -128
            else:
                r = -128
            output[base + c] = r & 0xFF


def _srdhm_i(a, b):
    # SaturatingRoundingDoublingHighMul on two plain int32 values.
    if a == -2147483648 and b == -2147483648:
        return 2147483647
    top = b >> 30
    r = b & 0x3FFFFFFF
    return _srdhm(a, top, r >> 15, r & _M15)


def _sat_shl(x, n):
    # gemmlowp SaturatingRoundingMultiplyByPOT with a positive exponent: saturating x << n.
    lim = (1 << (31 - n))
    if x >= lim:
        return 2147483647
    if x < -lim:
        return -2147483648
    return x << n


def _reciprocal(x, integer_bits):
    # TFLM GetReciprocal: (num_bits_over_unit, raw Q0.31 of 1 / (1 + shifted x)) by gemmlowp's
    # one_over_one_plus_x_for_x_in_0_1 (three Newton-Raphson steps in Q2.29).
    # CountLeadingZeros(uint32 x): x >= 1 here, leading zeros of a 32-bit word
    clz = 0
    t = x
    while clz < 32 and not (t & 0x80000000):
        t <<= 1
        clz += 1
    nbits = integer_bits - clz
    a = ((x << clz) & 0xFFFFFFFF) - 0x80000000  # shifted_sum_minus_one, int32
    # half_denominator = RoundingHalfSum(a, One) with One = INT32_MAX in Q0.31
    s = a + 2147483647
    half = (s + 1) >> 1 if s >= 0 else -((-s + 1) >> 1)
    c48 = 1515870810
    cn32 = -1010580540
    xx = c48 + _srdhm_i(half, cn32)
    one = 1 << 29
    for _ in range(3):
        hx = _srdhm_i(half, xx)
        xx = xx + _sat_shl(_srdhm_i(xx, one - hx), 2)
    return nbits, _sat_shl(xx, 1)
