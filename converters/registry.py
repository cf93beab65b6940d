"""The op registry: one row per bundle op, the single source of truth for what EdgeLoop runs.

Everything that names ops is derived from OPS: the converter's supported TFLite builtins and
lowering table (converters/compile.py), the bundle's opcodes, parameter names and tensor counts
(converters/bundle.py), the trainer's allowed ops, the kernel families used for code-size and
import decisions, and the device-side table firmware_micropython/elrt/optable.py, which
tools/gen_optable.py writes from this file (`make generated`; a test fails when it is stale).
Adding an op is one row here plus the pieces docs/adding-an-op.md lists.

Imports nothing but the standard library, so the trainer, the benchmarks and the generator can
read it without numpy or the tflite schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# How the device loader passes a bundle param to the kernel (one letter per param):
ARG_INT = "i"  # as a small int
ARG_NEG = "n"  # negated: a zero point handed to the kernel as TFLM's offset
ARG_WORD = "w"  # its 4 bytes as a view (an int32 multiplier stays out of Python ints)
ARG_F32 = "f"  # the float32 whose bits it holds
ARG_TAIL = "t"  # this and every later param as one view of int32 words (broadcast strides)
ARG_KINDS = (ARG_INT, ARG_NEG, ARG_WORD, ARG_F32, ARG_TAIL)


@dataclass(frozen=True)
class OpSpec:
    """One op: a bundle opcode with its kernel, or a TFLite op that becomes an arena alias."""

    name: str  # bundle op name (TFLM's name where there is one)
    opcode: int | None  # bundle opcode; None for an alias (no bundle record, no kernel)
    tflite: tuple[str, ...]  # the TFLite builtins lowered by `lower` (or aliased)
    params: tuple[str, ...] | None = ()  # ordered param names; None: variable (see the spec)
    tensors: int | None = 0  # tensor ids per record (inputs, constants, output); None: variable
    family: str = ""  # viper kernel module elrt/kv_<family>.py; ops of a family load together
    kernel: str = ""  # kernel function name in kernels_py and kv_<family>
    lower: str = ""  # function in converters/lower.py that emits the record
    args: dict[str, str] = field(default_factory=dict)  # param -> ARG_* other than ARG_INT
    alias: bool = False

    def arg_kinds(self) -> str:
        """One ARG_* letter per param, in record order ('' for variable-length records)."""
        if self.params is None:
            return ""
        return "".join(self.args.get(p, ARG_INT) for p in self.params)


def _p(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_CONV = ("batches in_h in_w in_c out_h out_w out_c k_h k_w stride_h stride_w dil_h dil_w "
         "pad_top pad_left")
_POOL = _p("batches in_h in_w channels out_h out_w filter_h filter_w stride_h stride_w "
           "pad_top pad_left act_min act_max")
_BROADCAST = "d0 d1 d2 d3 s1_0 s1_1 s1_2 s1_3 s2_0 s2_1 s2_2 s2_3"
_ADD_PARAMS = _p("left_shift input1_offset input1_multiplier input1_shift input2_offset "
                 "input2_multiplier input2_shift output_offset output_multiplier output_shift "
                 "act_min act_max " + _BROADCAST)
_ADD_ARGS = {"input1_multiplier": ARG_WORD, "input2_multiplier": ARG_WORD,
             "output_multiplier": ARG_WORD, "d0": ARG_TAIL}

OPS: tuple[OpSpec, ...] = (
    OpSpec("FULLY_CONNECTED", 1, ("FULLY_CONNECTED",),
           _p("batches accum_depth output_depth output_offset act_min act_max"),
           6, "fc", "fully_connected", "fully_connected"),
    OpSpec("CONV_2D", 2, ("CONV_2D",),
           _p(_CONV + " input_zero_point output_offset act_min act_max"),
           6, "conv", "conv_2d", "conv_2d", {"input_zero_point": ARG_NEG}),
    OpSpec("DEPTHWISE_CONV_2D", 3, ("DEPTHWISE_CONV_2D",),
           _p(_CONV + " depth_multiplier input_zero_point output_offset act_min act_max"),
           6, "dw", "depthwise_conv_2d", "depthwise_conv_2d", {"input_zero_point": ARG_NEG}),
    OpSpec("MAX_POOL_2D", 4, ("MAX_POOL_2D",), _POOL, 2, "pool", "max_pool_2d", "max_pool_2d"),
    OpSpec("AVERAGE_POOL_2D", 5, ("AVERAGE_POOL_2D",), _POOL, 2, "pool", "average_pool_2d",
           "average_pool_2d"),
    OpSpec("MEAN", 6, ("MEAN",),
           _p("outer reduce inner mode input_zero_point output_zero_point multiplier shift"),
           2, "mean", "mean", "mean", {"multiplier": ARG_WORD}),
    OpSpec("ADD", 7, ("ADD",), _ADD_PARAMS, 3, "eltwise", "add", "add", _ADD_ARGS),
    OpSpec("MUL", 8, ("MUL",),
           _p("input1_offset input2_offset output_offset output_multiplier output_shift "
              "act_min act_max " + _BROADCAST),
           3, "eltwise", "mul", "mul", {"output_multiplier": ARG_WORD, "d0": ARG_TAIL}),
    OpSpec("SOFTMAX", 9, ("SOFTMAX",), _p("outer depth"), 4, "softmax", "softmax", "softmax"),
    OpSpec("LUT", 10, ("LOGISTIC", "TANH", "RELU", "RELU6", "LEAKY_RELU", "HARD_SWISH"),
           _p("n_elements"), 3, "lut", "lut", "elementwise"),
    OpSpec("CONCATENATION", 11, ("CONCATENATION",), None, None, "move", "concatenation",
           "concatenation"),
    OpSpec("PAD", 12, ("PAD", "PADV2"), _p("d0 d1 d2 d3 b0 b1 b2 b3 a0 a1 a2 a3 pad_value"),
           2, "move", "pad", "pad"),
    OpSpec("DEQUANTIZE", 13, ("DEQUANTIZE",), _p("n_elements"), 3, "lut", "dequantize",
           "dequantize"),
    # QUANTIZE float32 -> int8; an int8 -> int8 QUANTIZE (requantize) is lowered to a LUT
    OpSpec("QUANTIZE_F32", 14, ("QUANTIZE",), _p("n_elements zero_point scale_f32_bits"),
           2, "lut", "quantize_f32", "quantize", {"scale_f32_bits": ARG_F32}),
    OpSpec("SUB", 15, ("SUB",), _ADD_PARAMS, 3, "eltwise", "sub", "sub", _ADD_ARGS),
    OpSpec("RESHAPE", None, ("RESHAPE", "EXPAND_DIMS", "SQUEEZE"), alias=True),
)

BUNDLE_OPS: tuple[OpSpec, ...] = tuple(op for op in OPS if not op.alias)
BY_NAME: dict[str, OpSpec] = {op.name: op for op in BUNDLE_OPS}
BY_OPCODE: dict[int, OpSpec] = {op.opcode: op for op in BUNDLE_OPS if op.opcode is not None}
OPCODE: dict[str, int] = {op.name: op.opcode for op in BUNDLE_OPS if op.opcode is not None}
# TFLite builtins the converter accepts, in registry order
SUPPORTED_OPS: tuple[str, ...] = tuple(dict.fromkeys(t for op in OPS for t in op.tflite))
ALIAS_OPS: tuple[str, ...] = tuple(t for op in OPS if op.alias for t in op.tflite)
# bundle opcode -> viper kernel family (elrt/kv_<family>.py)
OP_FAMILY: dict[int, str] = {c: op.family for c, op in BY_OPCODE.items()}
# family -> its kernel functions, in registry order ("fc" is imported with elrt itself)
FAMILY_KERNELS: dict[str, tuple[str, ...]] = {}
for _op in BUNDLE_OPS:
    FAMILY_KERNELS.setdefault(_op.family, ())
    if _op.kernel not in FAMILY_KERNELS[_op.family]:
        FAMILY_KERNELS[_op.family] += (_op.kernel,)
del _op


def lowering(name: str) -> str:
    """Name of the converters/lower.py function for a supported, non-alias TFLite builtin."""
    for op in BUNDLE_OPS:
        if name in op.tflite:
            return op.lower
    raise KeyError(name)


def kernel_families(opcodes) -> set[str]:
    """The viper module families a bundle's opcodes make elrt import at load (besides fc)."""
    return {OP_FAMILY.get(int(c), "?") for c in opcodes} - {"fc"}


def check() -> None:
    """Raise ValueError if the table is inconsistent (run by the generator and the tests)."""
    seen: set[str] = set()
    codes = [op.opcode for op in BUNDLE_OPS]
    if sorted(codes) != list(range(1, len(codes) + 1)):  # type: ignore[type-var]
        raise ValueError(f"opcodes must be 1..{len(codes)} without gaps, got {codes}")
    for op in OPS:
        for t in op.tflite:
            if t in seen:
                raise ValueError(f"TFLite builtin {t} appears in two rows")
            seen.add(t)
        if op.alias:
            continue
        if not (op.family and op.kernel and op.lower):
            raise ValueError(f"{op.name}: family, kernel and lower are required")
        if not all(w.isidentifier() for w in (op.name, op.family, op.kernel)):
            raise ValueError(f"{op.name}: name, family and kernel must be identifiers (the "
                             "board's op table keeps them as space-separated words)")
        if (op.params is None) != (op.tensors is None):
            raise ValueError(f"{op.name}: params and tensors are both variable or both fixed")
        unknown = set(op.args) - set(op.params or ())
        bad = {k for k in op.args.values() if k not in ARG_KINDS}
        if unknown or bad:
            raise ValueError(f"{op.name}: args name unknown params {unknown} or kinds {bad}")
        kinds = op.arg_kinds()
        if ARG_TAIL in kinds and set(kinds[kinds.index(ARG_TAIL) + 1:]) - {ARG_INT}:
            raise ValueError(f"{op.name}: params after the {ARG_TAIL!r} one are part of its view")
