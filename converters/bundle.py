"""Device bundle format (`model.elb`): constants, writer and reader.

The layout is specified in docs/bundle-format.md; this module is its executable form. The reader
(`parse_bundle`) is used by the golden executor and the tests, so every bundle the converter writes
is read back through the same code the spec describes.
"""

from __future__ import annotations

import binascii
import functools
import importlib.util
import struct
from dataclasses import dataclass, field
from pathlib import Path

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


@functools.cache
def device_extents():
    """elrt's load-time check of op params against tensor sizes, run here from its own source
    (firmware_micropython/elrt/extents.py is plain Python): host and board refuse alike."""
    path = Path(__file__).resolve().parents[1] / "firmware_micropython" / "elrt" / "extents.py"
    spec = importlib.util.spec_from_file_location("_elrt_extents", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.check_extents


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
    if hsize < HEADER_SIZE or hsize & 3:
        raise ConvertError(f"bad bundle header size {hsize} (must be >= 16, a multiple of 4)")
    if len(mv) < hsize + body_len:
        raise ConvertError(
            f"bundle truncated: {len(mv)} bytes, header says {hsize + body_len}"
        )
    body = mv[hsize : hsize + body_len]
    if binascii.crc32(body) & 0xFFFFFFFF != crc:
        raise ConvertError("bundle CRC32 mismatch: file corrupt")
    # Below: the checks elrt's loader makes on the board, in the same order and words, so a
    # bundle the board refuses is refused here (a valid CRC says nothing about the content).
    if body_len < BODY_HEADER_SIZE:
        raise ConvertError(f"bundle body too short for its header ({body_len} bytes)")
    (n_t, n_ops, n_in, n_out, arena, t_off, ops_off, ops_len, io_off, c_off, c_len,
     _flags) = struct.unpack_from(BODY_HEADER_FMT, body, 0)
    if t_off + n_t * TENSOR_SIZE > body_len or io_off + 4 * (n_in + n_out) > body_len:
        raise ConvertError("tensor table or io list runs past the bundle body")
    if ops_off + ops_len > body_len or c_off + c_len > body_len:
        raise ConvertError("op list or constant section runs past the bundle body")
    if n_in < 1 or n_out < 1:
        raise ConvertError(f"bundle declares {n_in} inputs and {n_out} outputs")
    if ops_off & 3 or c_off & 3:
        raise ConvertError(f"op list (offset {ops_off}) or constant section (offset {c_off}) "
                           "not 4-byte aligned in the bundle body")
    tensors = []
    for i in range(n_t):
        dt, kind, ndim, _r, off, nbytes, zp, scale, *dims = struct.unpack_from(
            TENSOR_FMT, body, t_off + i * TENSOR_SIZE
        )
        if dt not in DTYPE_NP or kind not in (KIND_ARENA, KIND_CONST) or ndim > MAX_DIMS:
            raise ConvertError(f"tensor {i}: bad dtype/kind/ndim {dt}/{kind}/{ndim}")
        shape = tuple(dims[:ndim])
        if any(d < 1 for d in shape) or tensor_nbytes(dt, shape) != nbytes:
            raise ConvertError(f"tensor {i}: nbytes {nbytes} does not match shape {shape}")
        size = np.dtype(DTYPE_NP[dt]).itemsize
        if off & (size - 1):
            raise ConvertError(f"tensor {i}: data at offset {off} in the "
                               f"{'constant section' if kind else 'arena'} is not {size}-byte "
                               "aligned (its kernels read it in words)")
        t = Tensor(dt, kind, shape, off, nbytes, zp, scale)
        if kind == KIND_CONST:
            if off + nbytes > c_len:
                raise ConvertError(f"tensor {i} ({nbytes} bytes at {off}) lies outside the "
                                   "constant section")
            t.data = bytes(body[c_off + off : c_off + off + nbytes])
        elif off + nbytes > arena:
            raise ConvertError(f"tensor {i} ({nbytes} bytes at {off}) lies outside the arena")
        tensors.append(t)
    io = struct.unpack_from(f"<{n_in + n_out}i", body, io_off)
    for k in io:
        if not 0 <= k < n_t:
            raise ConvertError(f"io list: tensor id {k} out of range ({n_t} tensors)")
        if tensors[k].kind != KIND_ARENA:
            raise ConvertError(f"io tensor {k} is not an arena tensor")
    ops = []
    pos = ops_off
    end = ops_off + ops_len
    for k in range(n_ops):
        if pos + 12 > end:
            raise ConvertError(f"op list truncated at op {k}")
        opcode, nt, np_ = struct.unpack_from("<3i", body, pos)
        if opcode not in OPCODE_NAMES:
            raise ConvertError(f"op {k}: unknown opcode {opcode} (this runtime knows "
                               f"{min(OPCODE_NAMES)}..{max(OPCODE_NAMES)})")
        name = OPCODE_NAMES[opcode]
        want, names = TENSOR_COUNTS[opcode], PARAM_NAMES[opcode]
        if (want is not None and nt != want) or (names is not None and np_ != len(names)):
            raise ConvertError(f"op {k} {name}: {nt} tensors/{np_} params, expected "
                               f"{want}/{len(names or ())}")
        if nt < 1 or np_ < 0 or pos + 4 * (3 + nt + np_) > end:
            raise ConvertError(f"op {k} {name} runs past the op list")
        words = struct.unpack_from(f"<{nt + np_}i", body, pos + 12)
        pos += 4 * (3 + nt + np_)
        ids = list(words[:nt])
        for t in ids:
            if not 0 <= t < n_t:
                raise ConvertError(f"op {k} {name}: tensor id {t} out of range ({n_t} tensors)")
        if tensors[ids[-1]].kind != KIND_ARENA:
            raise ConvertError(f"op {k} {name} writes a constant tensor")
        prm = list(words[nt:])
        if name == "MEAN" and prm[1] < 1:
            raise ConvertError(f"op {k} MEAN: reduce size {prm[1]}")
        if name == "CONCATENATION" and (np_ < 2 or nt != prm[0] + 1 or np_ != 2 + prm[0]):
            raise ConvertError(f"op {k} CONCATENATION: {prm[0] if prm else '?'} inputs but "
                               f"{nt} tensors/{np_} params")
        bad = device_extents()(f"op {k} {name}", opcode, [
            (np.dtype(DTYPE_NP[tensors[t].dtype]).itemsize, tensors[t].nbytes) for t in ids], prm)
        if bad:  # a param asking for more than its tensor holds: the board refuses it too
            raise ConvertError(bad)
        ops.append(Op(opcode, ids, prm))
    return Bundle(tensors, ops, list(io[:n_in]), list(io[n_in:]), arena, version, c_len)
