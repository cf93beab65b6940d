"""The arithmetic corners where a 32-bit float32 board (an ESP32) and the 64-bit virtual board
part ways, each held to TFLM on whichever board runs the suite (`make test` on the PyPI unix
port, `make test-esp32sem` on a 32-bit build): float-input rounding, SOFTMAX's int32 sum at its
largest accepted depth, and the loader's refusal of buffers the ptr32 kernels would fault on."""

from __future__ import annotations

import numpy as np
import pytest
from factory import exact, singleop

import converters
from converters.errors import ConvertError
from edgeloop.infer import prepare_board


def _near_ties(scale: float) -> np.ndarray:
    """Float inputs x whose float32 quotient x / scale is a rounding tie k + 0.5 or one step
    below or above it, among them 0.49999997 (0.5 - 2**-25): float32(q + 0.5) rounds that to
    1.0, TFLM's round() to 0."""
    s = np.float32(scale)
    big = np.float32(1e9)
    out = []
    for k in [0, 1, 2, 3, 7, 40, 60]:
        for sign in (1, -1):
            tie = np.float32(sign * (k + 0.5))
            for q in (np.nextafter(tie, np.float32(0)), tie, np.nextafter(tie, sign * big)):
                lo = hi = q * s  # walk the float32 neighbours of q * s for an exact quotient
                for _ in range(64):
                    hit = next((x for x in (lo, hi) if x / s == q), None)
                    if hit is not None:
                        out.append(hit)
                        break
                    lo, hi = np.nextafter(lo, -big), np.nextafter(hi, big)
    return np.array(out, np.float32)


def _float_quantize(which: str) -> bytes:
    if which == "pow2":  # x = q * scale exactly: every corner is reachable
        return singleop._unary("QUANTIZE", (1, 32), None, singleop.Quant(1 / 64, 5),
                               in_dtype="float32")
    return singleop.quantize((1, 32), from_float=True, seed=int(which))


@pytest.mark.parametrize("kernels", ["viper", "bytecode"])
@pytest.mark.parametrize("which", ["pow2", "0", "3"])
def test_float_input_rounding_matches_tflm_at_ties(which: str, kernels: str) -> None:
    model = _float_quantize(which)
    scale, _ = exact._float_input_quant(model)
    ties = _near_ties(scale)
    if which == "pow2":
        assert np.any(ties / np.float32(scale) == np.float32(0.49999997))
    x = np.resize(ties, (4, 1, 32)).astype(np.float32)
    x[3] = x[3, :, ::-1]
    ref, _ = exact.device_vs_tflm(model, x, f"QUANTIZE float {which}", kernels=kernels)
    assert ref.size == 4 * 32


def test_softmax_at_its_largest_depth_is_exact() -> None:
    """Near-equal values: the sum of exponentials comes close to 4095 * 2**19, just below 2**31
    (a 32-bit board's int32 holds it; one more class and TFLM's sum could wrap). The reference
    is converters.golden (TFLM's arithmetic with its int32 wrap; held to TFLM on small depths):
    the tflite-micro Python interpreter itself aborts on SOFTMAX rows of more than ~500."""
    from converters.golden import run_bundle
    from edgeloop.infer import run_batch_virtual

    model = singleop.softmax((1, 4095), seed=1)
    bundle = converters.convert_tflite(model).bundle
    x = np.full((3, 1, 4095), 126, np.int8)
    x[0] = 0
    x[1, 0, ::97] = 127
    x[2, 0, :] = np.arange(4095) % 5 + 120
    ref = run_bundle(bundle, x)
    y, stats = run_batch_virtual(bundle, x, "virtual", kernels="viper")
    exact.assert_same(y, ref, f"virtual board ({stats['kernels']} kernels)", "SOFTMAX 4095")
    assert stats["kernels"] == "viper"
    small = singleop.softmax((1, 400), seed=1)  # and golden == TFLM where TFLM runs
    exact.golden_vs_tflm(small, np.full((2, 1, 400), 126, np.int8), "SOFTMAX 400")


def test_softmax_deeper_than_int32_sums_is_refused() -> None:
    with pytest.raises(ConvertError, match="SOFTMAX over 4096 values.*at most 4095"):
        converters.convert_tflite(singleop.softmax((1, 4096), seed=1))


@pytest.fixture(scope="module")
def elrt_board(tmp_path_factory):
    board = prepare_board(tmp_path_factory.mktemp("align"))
    bundle = converters.convert_tflite(singleop.fully_connected(seed=2)).bundle
    (board.root / "m.elb").write_bytes(bundle)
    return board


def test_loader_refuses_a_misaligned_buffer(elrt_board) -> None:
    code = (
        "import elrt\n"
        "b = open('m.elb', 'rb').read()\n"
        "buf = bytearray(len(b) + 4)\n"
        "m = elrt.Model()\n"
        "mv = memoryview(buf)\n"
        "mv[4:] = b\n"
        "m.load(mv[4:])\n"
        "print('aligned ok', m.n_ops)\n"
        "mv[1:1 + len(b)] = b\n"
        "try:\n"
        "    m.load(mv[1:1 + len(b)])\n"
        "except elrt.BundleError as e:\n"
        "    print('refused:', e)\n"
        "m.invoke()\n"  # the aligned model loaded before is untouched
        "print('still runs')\n"
    )
    out = elrt_board.run(code).check("alignment").stdout
    assert "aligned ok" in out and "still runs" in out
    assert "refused: bundle body at address" in out and "not 4-byte aligned" in out


def test_loader_refuses_a_misaligned_int32_constant(elrt_board) -> None:
    """A bundle whose bias tensor sits at an odd offset of the constant section (a hand-edited
    or foreign writer's file): refused by name, before any kernel reads it with ptr32."""
    import binascii
    import struct

    from converters.bundle import BODY_HEADER_SIZE, HEADER_SIZE, TENSOR_FMT

    blob = bytearray((elrt_board.root / "m.elb").read_bytes())
    body = blob[HEADER_SIZE:]
    n_t = struct.unpack_from("<I", body, 0)[0]
    tsize = struct.calcsize(TENSOR_FMT)
    for k in range(n_t):
        at = BODY_HEADER_SIZE + k * tsize
        f = list(struct.unpack_from(TENSOR_FMT, body, at))
        if f[0] == 2 and f[1] == 1:  # the first int32 constant
            f[4] += 2
            f[5] -= 4  # stays inside the constant section
            struct.pack_into(TENSOR_FMT, body, at, *f)
            break
    else:
        pytest.fail("no int32 constant in the model")
    blob[HEADER_SIZE:] = body
    struct.pack_into("<I", blob, 12, binascii.crc32(bytes(body)) & 0xFFFFFFFF)
    (elrt_board.root / "bad.elb").write_bytes(bytes(blob))
    code = (
        "import elrt\n"
        "try:\n"
        "    elrt.Model().load('bad.elb')\n"
        "except elrt.BundleError as e:\n"
        "    print('refused:', e)\n"
    )
    out = elrt_board.run(code).check("alignment").stdout
    assert f"refused: tensor {k}: int32 data at offset" in out and "4-byte aligned" in out
