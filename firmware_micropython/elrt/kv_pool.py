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
                    if m < amin:
                        m = amin
                    if m > amax:
                        m = amax
                    po[o_i] = m
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
                    if s < amin:
                        s = amin
                    if s > amax:
                        s = amax
                    po[o_i] = s
                    o_i += 1
                    c += 1
                ox += 1
            oy += 1
        b += 1
