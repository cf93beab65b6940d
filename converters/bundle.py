"""Device bundle format (`model.elb`): constants, writer and reader.

The layout is specified in docs/bundle-format.md; this module is its executable form. The reader
(`parse_bundle`) is used by the golden executor and the tests, so every bundle the converter writes
is read back through the same code the spec describes.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass, field

import numpy as np

from converters.errors import ConvertError
from converters.registry import BY_OPCODE

MAGIC = b"ELMB"
FORMAT_VERSION = 1
HEADER_SIZE = 16
HEADER_FMT = "<4sHHII"
BODY_HEADER_FMT = "<12I"
BODY_HEADER_SIZE = 48
TENSOR_FMT = "<BBBBIIif4i"
TENSOR_SIZE = 36
MAX_DIMS = 4

# dtypes
DT_INT8 = 1
DT_INT32 = 2
DT_FLOAT32 = 3
DT_INT16 = 4
DTYPE_NP = {DT_INT8: np.int8, DT_INT32: np.int32, DT_FLOAT32: np.float32, DT_INT16: np.int16}
NP_DTYPE = {np.dtype(v): k for k, v in DTYPE_NP.items()}

# tensor kinds
KIND_ARENA = 0
KIND_CONST = 1

# opcodes, their names, param names (None: variable length, see the spec) and tensor counts
# (None: variable, CONCATENATION): all from the op registry
OPCODE_NAMES: dict[int, str] = {c: op.name for c, op in BY_OPCODE.items()}
PARAM_NAMES: dict[int, list[str] | None] = {
    c: None if op.params is None else list(op.params) for c, op in BY_OPCODE.items()
}
TENSOR_COUNTS: dict[int, int | None] = {c: op.tensors for c, op in BY_OPCODE.items()}


def _align4(n: int) -> int:
    return (n + 3) & ~3


@dataclass
class Tensor:
    """One tensor table entry (offset: arena offset, or offset in the constant section)."""

    dtype: int
    kind: int
    shape: tuple[int, ...]
    offset: int = 0
    nbytes: int = 0
    zero_point: int = 0
    scale: float = 0.0
    data: bytes | None = None  # const tensors only (set by the writer/reader)
    name: str = ""


@dataclass
class Op:
    opcode: int
    tensors: list[int]
    params: list[int]

    @property
    def name(self) -> str:
        return OPCODE_NAMES.get(self.opcode, f"OP{self.opcode}")

    def p(self) -> dict[str, int]:
        """Params by name (CONCATENATION: n_inputs, outer, copy_<j>)."""
        names = PARAM_NAMES.get(self.opcode)
        if names is None:
            names = ["n_inputs", "outer"] + [f"copy_{j}" for j in range(len(self.params) - 2)]
        return dict(zip(names, self.params, strict=True))


@dataclass
class Bundle:
    tensors: list[Tensor]
    ops: list[Op]
    inputs: list[int]
    outputs: list[int]
    arena_bytes: int
    format_version: int = FORMAT_VERSION
    const_bytes: int = 0
    extra: dict = field(default_factory=dict)


def tensor_nbytes(dtype: int, shape: tuple[int, ...]) -> int:
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(DTYPE_NP[dtype]).itemsize


def write_bundle(b: Bundle) -> bytes:
    """Serialize: const tensors get offsets in the constant section, arena offsets are kept."""
    consts = bytearray()
    seen: dict[bytes, int] = {}  # identical constants (per-tensor mult/shift, LUTs) stored once
    for t in b.tensors:
        if t.kind == KIND_CONST:
            assert t.data is not None, t.name
            t.nbytes = len(t.data)
            if t.data in seen:
                t.offset = seen[t.data]
                continue
            t.offset = seen[t.data] = len(consts)
            consts += t.data
            consts += b"\0" * (_align4(len(consts)) - len(consts))
        if len(t.shape) > MAX_DIMS:
            raise ConvertError(f"tensor {t.name!r} has rank {len(t.shape)} > {MAX_DIMS}")
    tensor_tab = bytearray()
    for t in b.tensors:
        dims = list(t.shape) + [1] * (MAX_DIMS - len(t.shape))
        tensor_tab += struct.pack(
            TENSOR_FMT, t.dtype, t.kind, len(t.shape), 0, t.offset, t.nbytes,
            int(t.zero_point), float(t.scale), *dims,
        )
    io = struct.pack(f"<{len(b.inputs) + len(b.outputs)}i", *b.inputs, *b.outputs)
    ops = bytearray()
    for op in b.ops:
        words = [op.opcode, len(op.tensors), len(op.params), *op.tensors, *op.params]
        ops += struct.pack(f"<{len(words)}i", *words)
    tensors_off = BODY_HEADER_SIZE
    io_off = tensors_off + len(tensor_tab)
    ops_off = io_off + len(io)
    const_off = _align4(ops_off + len(ops))
    head = struct.pack(
        BODY_HEADER_FMT, len(b.tensors), len(b.ops), len(b.inputs), len(b.outputs),
        b.arena_bytes, tensors_off, ops_off, len(ops), io_off, const_off, len(consts), 0,
    )
    body = head + tensor_tab + io + ops
    body += b"\0" * (const_off - len(body)) + consts
    crc = binascii.crc32(body) & 0xFFFFFFFF
    return struct.pack(HEADER_FMT, MAGIC, FORMAT_VERSION, HEADER_SIZE, len(body), crc) + body


def parse_bundle(data: bytes | bytearray | memoryview) -> Bundle:
    """Read and validate a bundle; raises ConvertError naming what is wrong and where."""
    mv = memoryview(data).cast("B")
    if len(mv) < HEADER_SIZE:
        raise ConvertError(f"bundle truncated: {len(mv)} bytes, header needs {HEADER_SIZE}")
    magic, version, hsize, body_len, crc = struct.unpack_from(HEADER_FMT, mv, 0)
    if magic != MAGIC:
        raise ConvertError(f"not an EdgeLoop bundle: magic {bytes(magic)!r} != {MAGIC!r}")
    if version != FORMAT_VERSION:
        raise ConvertError(f"bundle format version {version} unsupported (reader: 1)")
    if hsize < HEADER_SIZE:
        raise ConvertError(f"bad header_size {hsize}")
    if len(mv) < hsize + body_len:
        raise ConvertError(
            f"bundle truncated: {len(mv)} bytes, header says {hsize + body_len}"
        )
    body = mv[hsize : hsize + body_len]
    if binascii.crc32(body) & 0xFFFFFFFF != crc:
        raise ConvertError("bundle CRC32 mismatch: file corrupt")
    if body_len < BODY_HEADER_SIZE:
        raise ConvertError("bundle body shorter than its header")
    (n_t, n_ops, n_in, n_out, arena, t_off, ops_off, ops_len, io_off, c_off, c_len,
     _flags) = struct.unpack_from(BODY_HEADER_FMT, body, 0)
    if t_off + n_t * TENSOR_SIZE > body_len or c_off + c_len > body_len:
        raise ConvertError("bundle sections exceed body length")
    tensors = []
    for i in range(n_t):
        dt, kind, ndim, _r, off, nbytes, zp, scale, *dims = struct.unpack_from(
            TENSOR_FMT, body, t_off + i * TENSOR_SIZE
        )
        if dt not in DTYPE_NP or kind not in (KIND_ARENA, KIND_CONST) or ndim > MAX_DIMS:
            raise ConvertError(f"tensor {i}: bad dtype/kind/ndim {dt}/{kind}/{ndim}")
        shape = tuple(dims[:ndim])
        if tensor_nbytes(dt, shape) != nbytes:
            raise ConvertError(f"tensor {i}: nbytes {nbytes} does not match shape {shape}")
        t = Tensor(dt, kind, shape, off, nbytes, zp, scale)
        if kind == KIND_CONST:
            if off + nbytes > c_len:
                raise ConvertError(f"tensor {i}: const data outside the constant section")
            t.data = bytes(body[c_off + off : c_off + off + nbytes])
        elif off + nbytes > arena:
            raise ConvertError(f"tensor {i}: arena range {off}+{nbytes} > arena {arena}")
        tensors.append(t)
    io = struct.unpack_from(f"<{n_in + n_out}i", body, io_off)
    ops = []
    pos = ops_off
    for k in range(n_ops):
        if pos + 12 > ops_off + ops_len:
            raise ConvertError(f"op {k}: record outside the op list")
        opcode, nt, np_ = struct.unpack_from("<3i", body, pos)
        words = struct.unpack_from(f"<{nt + np_}i", body, pos + 12)
        pos += 4 * (3 + nt + np_)
        ids = list(words[:nt])
        if opcode not in OPCODE_NAMES:
            raise ConvertError(f"op {k}: unknown opcode {opcode}")
        want = TENSOR_COUNTS[opcode]
        if (want is not None and nt != want) or any(not 0 <= t < n_t for t in ids):
            raise ConvertError(f"op {k} ({OPCODE_NAMES[opcode]}): bad tensor ids {ids}")
        names = PARAM_NAMES[opcode]
        if names is not None and len(names) != np_:
            raise ConvertError(f"op {k} ({OPCODE_NAMES[opcode]}): {np_} params, want {len(names)}")
        ops.append(Op(opcode, ids, list(words[nt:])))
    return Bundle(tensors, ops, list(io[:n_in]), list(io[n_in:]), arena, version, c_len)
