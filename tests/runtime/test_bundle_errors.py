"""A corrupt, truncated, foreign or too-big bundle is refused on the board with a clear
elrt.BundleError, and the model loaded before keeps working with unchanged outputs."""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np
from factory import random_inputs, singleop


def _variants(good: bytes) -> dict[str, tuple[bytes, str]]:
    body = good[16:]
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x40
    wrong_version = bytearray(good)
    struct.pack_into("<H", wrong_version, 4, 7)
    bad_magic = b"TFL3" + good[4:]
    short_header = good[:10]
    # a consistent header + CRC around a body whose op list points past the end
    junk = bytearray(body)
    struct.pack_into("<I", junk, 7 * 4, len(body) * 4)  # ops_len
    resealed = struct.pack("<4sHHII", b"ELMB", 1, 16, len(junk), zlib.crc32(junk)) + bytes(junk)
    return {
        "bad_crc": (bytes(flipped), "CRC32"),
        "truncated": (good[: len(good) - 9], "truncated"),
        "short_header": (short_header, "truncated"),
        "wrong_magic": (bad_magic, "not an EdgeLoop bundle"),
        "wrong_version": (bytes(wrong_version), "format version 7 not supported"),
        "bad_layout": (resealed, "past"),
        "empty": (b"", "truncated"),
    }


_SCRIPT = """
import json, elrt
m = elrt.Model()
m.load("good.elb")
x = open("x.bin", "rb").read()
m.input[:] = x
m.invoke()
before = bytes(m.output)
res = {"before": list(before)}
for name in NAMES:
    try:
        if name.endswith("_buf"):
            m.load(open(name[:-4] + ".elb", "rb").read())
        else:
            m.load(name + ".elb")
        res[name] = ["loaded", ""]
    except elrt.BundleError as e:
        m.input[:] = x
        m.invoke()
        res[name] = [type(e).__name__, str(e), bytes(m.output) == before]
try:
    m.load("missing.elb")
except elrt.BundleError as e:
    res["missing"] = ["BundleError", str(e), True]
print("RESULT" + json.dumps(res))
"""


def test_corrupt_bundles_refused_and_old_model_kept(board) -> None:
    model = singleop.build("FULLY_CONNECTED", in_features=12, units=5, seed=11)
    from factory import exact

    from converters import convert_tflite

    good = convert_tflite(model).bundle
    x = random_inputs((1, 12), 1, seed=3)
    variants = _variants(good)
    # activations of 2 x 72 KB: more than the 100 KB heap holds (big weights would be streamed)
    big = convert_tflite(singleop.build("CONV_2D", h=96, w=96, cin=8, cout=8, seed=1))
    (board.root / "good.elb").write_bytes(good)
    (board.root / "x.bin").write_bytes(x.tobytes())
    for name, (data, _) in variants.items():
        (board.root / f"{name}.elb").write_bytes(data)
    names = [*variants, *(n + "_buf" for n in variants), "too_big"]
    variants["too_big"] = (big.bundle, "model does not fit in RAM")
    (board.root / "too_big.elb").write_bytes(big.bundle)
    res = board.run(f"NAMES = {names!r}\n" + _SCRIPT).check("bundle error script")
    out = json.loads(res.stdout.split("RESULT", 1)[1])
    before = np.array(out["before"], np.uint8).view(np.int8)
    exact.matches_tflm(before, model, x, "the model loaded before the corrupt ones")
    for name in names:
        want = variants[name.removesuffix("_buf")][1]
        kind, message, still_same = out[name]
        assert kind == "BundleError", (name, out[name])
        assert want in message, (name, message)
        assert still_same, f"{name}: the old model's output changed after a failed load"
    assert "cannot read bundle missing.elb" in out["missing"][1]


def test_table_crc_on_the_board(board) -> None:
    """The fallback CRC (ports without binascii.crc32) agrees with binascii on MicroPython."""
    code = (
        "import binascii, elrt\n"
        "b = memoryview(bytes(range(256)) * 3 + b'ELMB')\n"
        "print('SAME', elrt.crc32_table(b) == binascii.crc32(b) & 0xFFFFFFFF)\n"
    )
    assert "SAME True" in board.run(code).check("crc").stdout
