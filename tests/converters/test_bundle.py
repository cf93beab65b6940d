"""Bundle container and layout: read-back, integrity checks, the arena plan."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from factory import singleop
from factory.keras_models import keras_tflite, usable_seeds
from hypothesis import given, settings
from hypothesis import strategies as st

from converters import ConvertError, convert_tflite
from converters import bundle as B
from converters.plan import Buffer, plan


@pytest.fixture(scope="module")
def blob() -> bytes:
    return convert_tflite(keras_tflite(usable_seeds(1)[0])).bundle


def test_header(blob):
    magic, ver, hsize, body_len, crc = struct.unpack_from("<4sHHII", blob, 0)
    assert (magic, ver, hsize) == (b"ELMB", 1, 16)
    assert len(blob) == 16 + body_len
    b = B.parse_bundle(blob)
    assert b.ops and b.inputs and b.outputs and b.arena_bytes % 4 == 0


def test_layout_is_aligned_and_records_documented(blob):
    b = B.parse_bundle(blob)
    body = memoryview(blob)[16:]
    head = struct.unpack_from(B.BODY_HEADER_FMT, body, 0)
    for off in head[5:10]:
        assert off % 4 == 0
    for t in b.tensors:
        assert t.offset % 4 == 0
    for op in b.ops:
        names = B.PARAM_NAMES[op.opcode]
        assert names is None or len(names) == len(op.params)


def test_op_output_never_overlaps_its_inputs(blob):
    b = B.parse_bundle(blob)
    for op in b.ops:
        out = b.tensors[op.tensors[-1]]
        for tid in op.tensors[:-1]:
            t = b.tensors[tid]
            if t.kind == B.KIND_ARENA:
                assert t.offset + t.nbytes <= out.offset or out.offset + out.nbytes <= t.offset


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda b: b[:-1], "truncated"),
        (lambda b: b[:10], "truncated"),
        (lambda b: b"ELMX" + b[4:], "magic"),
        (lambda b: b[:4] + struct.pack("<H", 2) + b[6:], "version 2"),
        (lambda b: b[:-5] + bytes([b[-5] ^ 1]) + b[-4:], "CRC"),
        (lambda b: b[:40] + bytes([b[40] ^ 0x10]) + b[41:], "CRC"),
    ],
)
def test_corrupt_bundle_refused(blob, mutate, match):
    with pytest.raises(ConvertError, match=match):
        B.parse_bundle(mutate(blob))


def test_reshape_is_a_free_alias():
    model = singleop.build("RESHAPE", seed=2)
    b = B.parse_bundle(convert_tflite(model).bundle)
    assert b.ops == []
    i, o = b.tensors[b.inputs[0]], b.tensors[b.outputs[0]]
    assert (i.offset, i.nbytes) == (o.offset, o.nbytes) and i.shape != o.shape


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 300), st.integers(-1, 12), st.integers(0, 8)),
                min_size=1, max_size=14))
def test_plan_never_overlaps_live_buffers(specs):
    bufs = [Buffer(k, size, first, min(first + span, 13)) for k, (size, first, span)
            in enumerate(specs)]
    arena = plan(bufs)
    for a in bufs:
        assert a.offset % 4 == 0 and a.offset + a.size <= arena
        for b in bufs:
            if a is not b and a.first <= b.last and b.first <= a.last:
                assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset
    peak = max(sum(-(-b.size // 4) * 4 for b in bufs if b.first <= t <= b.last)
               for t in range(-1, 14))
    assert arena >= peak


def test_plan_reuses_memory_in_a_chain():
    bufs = [Buffer(k, 100, k - 1, k) for k in range(6)]  # each lives across one op
    assert plan(bufs) == 200


def test_tensor_dims_and_quantization_in_table():
    model = singleop.build("FULLY_CONNECTED", in_features=12, units=5, seed=4)
    b = B.parse_bundle(convert_tflite(model).bundle)
    t_in, t_out = b.tensors[b.inputs[0]], b.tensors[b.outputs[0]]
    assert t_in.shape == (1, 12) and t_out.shape == (1, 5)
    assert t_in.dtype == B.DT_INT8 and t_in.scale > 0 and -128 <= t_in.zero_point <= 127
    fc = b.ops[0]
    w = np.frombuffer(b.tensors[fc.tensors[1]].data, np.int8).reshape(5, 12)
    assert w.shape == (5, 12)
