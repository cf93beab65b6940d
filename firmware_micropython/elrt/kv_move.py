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
