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

# kv_lut: LUT (LOGISTIC, TANH, RELU*, HARD_SWISH, QUANTIZE), DEQUANTIZE, QUANTIZE_F32
import array
import struct

import micropython


@micropython.viper
def lut(input, table, output, n_elements: int):
    """Elementwise int8 -> int8: out[i] = table[in[i] + 128] (tables built by the converter)."""
    pi = ptr8(input)
    po = ptr8(output)
    pt = ptr8(table)
    i = 0
    while i < n_elements:
        po[i] = pt[pi[i] ^ 128]
        i += 1


@micropython.viper
def dequantize(input, table, output, n_elements: int):
    """int8 -> float32 through a 256-entry float32 table (bit patterns; no float math here)."""
    pi = ptr8(input)
    po = ptr8(output)
    pt = ptr8(table)
    i = 0
    k = 0
    while i < n_elements:
        j = (pi[i] ^ 128) << 2
        po[k] = pt[j]
        po[k + 1] = pt[j + 1]
        po[k + 2] = pt[j + 2]
        po[k + 3] = pt[j + 3]
        k += 4
        i += 1


_F32 = array.array("f", [0.0])


def quantize_f32(input, output, n_elements, zero_point, scale):
    """float32 -> int8 as TFLM AffineQuantize: round_half_away(float32(x / scale)) + zero_point,
    clamped. Float math gains nothing from viper, so this is the bytecode kernel's arithmetic.
    Model-input only; floats are heap objects in MicroPython, so this op allocates."""
    f = _F32
    for i in range(n_elements):
        f[0] = struct.unpack_from("<f", input, i << 2)[0] / scale
        q = f[0]
        r = (int(q + 0.5) if q >= 0 else -int(0.5 - q)) + zero_point
        if r < -128:
            r = -128
        elif r > 127:
            r = 127
        output[i] = r & 0xFF
