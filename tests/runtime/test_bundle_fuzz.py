"""Bundles whose CRC is valid but whose content is not (a converter bug, or a crafted file): the
host parser and the on-board elrt loader must refuse each with a clear error, or run it; never a
traceback, a MicroPython crash or a hang. Mutations are generated with hypothesis over real
bundles of every op, with the CRC (and body length) recomputed so only the content checks stand
between the bytes and the kernels. The case counts are printed (`pytest -s`)."""

from __future__ import annotations

import binascii
import functools
import json
import struct

import numpy as np
import pytest
from factory.singleop import build
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from converters import convert_tflite
from converters.bundle import BODY_HEADER_FMT, HEADER_FMT, HEADER_SIZE, parse_bundle
from converters.errors import ConvertError
from edgeloop.infer import InferError, model_io

MODELS = {
    "FULLY_CONNECTED": {}, "CONV_2D": {}, "DEPTHWISE_CONV_2D": {}, "MAX_POOL_2D": {},
    "AVERAGE_POOL_2D": {}, "MEAN": {}, "ADD": {}, "MUL": {}, "SOFTMAX": {}, "LOGISTIC": {},
    "CONCATENATION": {}, "PAD": {}, "QUANTIZE": {}, "DEQUANTIZE": {},
}
INTERESTING = (0, 1, 2, 3, -1, -2, 0x7FFFFFFF, -0x80000000, 0xFFFF, 255, 256, 4096)


@functools.cache
def real_bundles() -> dict[str, bytes]:
    return {op: convert_tflite(build(op, seed=1, **kw)).bundle for op, kw in MODELS.items()}


@pytest.fixture(scope="module")
def bundles() -> dict[str, bytes]:
    return real_bundles()


def resign(body: bytes | bytearray) -> bytes:
    """A bundle around `body` with a correct header: length and CRC32 recomputed."""
    crc = binascii.crc32(body) & 0xFFFFFFFF
    return struct.pack(HEADER_FMT, b"ELMB", 1, HEADER_SIZE, len(body), crc) + bytes(body)


def structure_end(body: bytes) -> int:
    """Bytes of the body that are structure (header, tensor table, io list, op list)."""
    f = struct.unpack_from(BODY_HEADER_FMT, body, 0)
    return min(len(body), f[9])  # const_off: weights follow


@st.composite
def mutations(draw) -> tuple[str, str, bytes]:
    bundles = real_bundles()
    op = draw(st.sampled_from(sorted(bundles)))
    body = bytearray(bundles[op][HEADER_SIZE:])
    end = structure_end(body)
    kind = draw(st.sampled_from(["word", "word", "word", "byte", "cut", "grow"]))
    if kind == "word":  # a 32-bit field of the structure set to an edge value or nudged
        i = draw(st.integers(0, end // 4 - 1)) * 4
        old = struct.unpack_from("<i", body, i)[0]
        new = draw(st.one_of(st.sampled_from(INTERESTING), st.integers(-3, 3).map(
            lambda d: old + d), st.integers(-(2**31), 2**31 - 1)))
        new = (new + 2**31) % 2**32 - 2**31
        struct.pack_into("<i", body, i, new)
        what = f"word {i // 4}: {old} -> {new}"
    elif kind == "byte":
        i = draw(st.integers(0, len(body) - 1))
        x = draw(st.integers(1, 255))
        body[i] ^= x
        what = f"byte {i} ^= {x}"
    elif kind == "cut":
        n = draw(st.integers(0, len(body) - 1))
        body = body[:n]
        what = f"cut to {n} bytes"
    else:
        n = draw(st.integers(1, 64))
        body += bytes(draw(st.binary(min_size=n, max_size=n)))
        what = f"{n} bytes appended"
    return op, what, resign(body)


def host_outcome(bundle: bytes) -> str:
    """What the host does with a bundle: 'refused: ...' or 'ok'; anything else propagates."""
    try:
        b = parse_bundle(bundle)
        model_io(bundle)
    except (ConvertError, InferError) as exc:
        msg = str(exc)
        assert msg and "\n" not in msg, msg
        return "refused: " + msg
    from converters.golden import run_bundle

    t = b.tensors[b.inputs[0]]
    x = np.zeros((1, *t.shape), DTYPE_OF.get(t.dtype, np.int8))
    try:
        run_bundle(bundle, x)
    except ConvertError as exc:
        return "refused: " + str(exc)
    return "ok"


DTYPE_OF = {1: np.int8, 2: np.int32, 3: np.float32, 4: np.int16}
HOST_CASES: list[str] = []


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=mutations())
def test_host_reads_every_mutated_bundle_cleanly(case) -> None:
    op, what, bundle = case
    try:
        HOST_CASES.append(host_outcome(bundle))
    except Exception as exc:  # a traceback a user would see
        raise AssertionError(f"{op} bundle, {what}: host raised {type(exc).__name__}: {exc}") from exc


def test_host_fuzz_report() -> None:
    refused = sum(c.startswith("refused") for c in HOST_CASES)
    print(f"\nhost: {len(HOST_CASES)} mutated bundles, {refused} refused, "
          f"{len(HOST_CASES) - refused} ran")


def test_out_of_range_model_input_is_refused_on_the_host(bundles) -> None:
    """The issue's case: infer died with IndexError in model_io."""
    body = bytearray(bundles["FULLY_CONNECTED"][HEADER_SIZE:])
    io_off = struct.unpack_from(BODY_HEADER_FMT, body, 0)[8]
    struct.pack_into("<i", body, io_off, 999)
    with pytest.raises(InferError, match="tensor id 999 out of range"):
        model_io(resign(body))


# On the board: load (and run, when loaded) each mutated bundle in one MicroPython process; one
# line per case. A crash or hang of the process is the failure this test exists to catch.
DEVICE_SCRIPT = """
import elrt
n = %d
for i in range(n):
    try:
        m = elrt.Model()
        m.load("case%%d.elb" %% i)
    except elrt.BundleError as e:
        print("CASE", i, "refused", str(e).replace("\\n", " "))
        continue
    try:
        m.invoke()
    except elrt.BundleError as e:
        print("CASE", i, "refused at run", str(e).replace("\\n", " "))
        continue
    except Exception as e:
        print("CASE", i, "RAISED", type(e).__name__, e)
        continue
    print("CASE", i, "ran")
"""


@pytest.mark.parametrize("batch", range(4))
def test_board_loader_on_mutated_bundles(bundles, tmp_path, batch, record_property) -> None:
    from edgeloop.infer import prepare_board

    cases: list[tuple[str, str, bytes]] = []

    @settings(max_examples=60, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(m=mutations())
    def collect(m):
        cases.append(m)

    collect()
    board = prepare_board(tmp_path / "board")
    for i, (_, _, b) in enumerate(cases):
        (tmp_path / "board" / f"case{i}.elb").write_bytes(b)
    res = board.run(DEVICE_SCRIPT % len(cases), timeout=600)
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("CASE ")]
    assert res.returncode == 0, (res.stdout[-2000:], res.stderr[-2000:])
    assert len(lines) == len(cases)
    bad = [(cases[int(ln.split()[1])][:2], ln) for ln in lines if " RAISED " in ln]
    assert not bad, bad[:5]
    # the host reads bundles through the same checks (and a few more: every tensor of the
    # table, not only those an op uses): what the board refuses, the host refuses too, but for
    # running out of the board's RAM
    for ln in lines:
        i = int(ln.split()[1])
        if " refused" in ln and "does not fit in RAM" not in ln:
            assert host_outcome(cases[i][2]).startswith("refused"), (cases[i][:2], ln)
    summary = {"cases": len(cases), "refused": sum(" refused" in ln for ln in lines),
               "ran": sum(ln.endswith(" ran") for ln in lines)}
    record_property("board_fuzz", json.dumps(summary))
    print(f"\nboard batch {batch}: {summary}")


@pytest.mark.parametrize("arena", [0x7FFFFFF0, 0xFFFFFFF0])
def test_an_arena_past_the_boards_word_is_refused_on_the_board(bundles, tmp_path, arena) -> None:
    """A declared arena no board could hold: refused as not fitting, never an OverflowError (a
    32-bit board's bytearray() raised one for a size past its word; the fuzz found it)."""
    from edgeloop.infer import prepare_board

    body = bytearray(bundles["FULLY_CONNECTED"][HEADER_SIZE:])
    struct.pack_into("<I", body, 16, arena)  # the body header's arena_bytes
    board = prepare_board(tmp_path / "board")
    (tmp_path / "board" / "case0.elb").write_bytes(resign(body))
    res = board.run(DEVICE_SCRIPT % 1, timeout=120)
    assert res.returncode == 0, (res.stdout[-2000:], res.stderr[-2000:])
    assert "CASE 0 refused model does not fit in RAM" in res.stdout, res.stdout
