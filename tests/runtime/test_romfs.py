"""A bundle on a real ROMFS mount is used in place: the virtual board has no romfs partition
(no `vfs.rom_ioctl`), but its `vfs.VfsRom` is the same filesystem driver an ESP32 build with
ROMFS mounts at /rom. A ROMFS image made by mpremote's writer (what `mpremote romfs deploy`
writes to flash) is mounted from a buffer standing in for the flash, and elrt loads
/rom/model.elb through the file's memoryview: no copy of the weights, nothing streamed, output
bit-exact with TFLM; an image that leaves the bundle at an odd address is refused by name."""

from __future__ import annotations

import json

import numpy as np
import pytest
from factory import exact, random_inputs, run_tflm
from factory.singleop import build
from factory.tflm import io_details

from converters import convert_tflite

romfs = pytest.importorskip("mpremote.romfs", reason="mpremote (the board extra) writes ROMFS")

_SCRIPT = """
import gc, json, vfs, elrt
f = open("rom.img", "rb")
img = bytearray(f.read())  # the flash the ROMFS partition maps
f.close()
vfs.mount(vfs.VfsRom(img), "/rom")
f = open("in.bin", "rb")
x = f.read()
f.close()
res = {}
for stream in (None, True):
    m = elrt.Model()
    gc.collect()
    free0 = gc.mem_free()
    try:
        m.load("/rom/model.elb", stream=stream)
    except elrt.BundleError as e:
        res[str(stream)] = {"error": str(e)}
        continue
    gc.collect()
    used = free0 - gc.mem_free()
    m.input[:] = x
    m.invoke()
    res[str(stream)] = {"used": used, "arena": m.arena_bytes, "stream": m.stream_bytes,
                        "in_place": isinstance(m._bundle, memoryview), "y": list(bytes(m.output))}
    m = None
print("RESULT" + json.dumps(res))
"""


def _image(bundle: bytes, aligned: bool) -> bytes:
    """A ROMFS image holding model.elb, its data 4-aligned in the image (or deliberately not):
    a filler file before it is grown until the bundle lands where wanted."""
    for pad in range(8):
        w = romfs.VfsRomWriter()
        w.mkfile("a.txt", b"x" * pad)
        w.mkfile("model.elb", bundle)
        img = w.finalise()
        at = img.find(bundle)
        if (at % 4 == 0) == aligned:
            return img
    raise AssertionError("no filler size placed the bundle as wanted")


@pytest.mark.parametrize("aligned", [True, False])
def test_bundle_on_a_romfs_mount_is_used_in_place(board, aligned: bool) -> None:
    tflite = build("FULLY_CONNECTED", in_features=96, units=64, seed=21)
    bundle = convert_tflite(tflite).bundle
    weights = 96 * 64
    (board.root / "rom.img").write_bytes(_image(bundle, aligned))
    ins, _ = io_details(tflite)
    x = random_inputs(tuple(ins[0]["shape"]), 1, seed=3)
    (board.root / "in.bin").write_bytes(x.tobytes())
    out = json.loads(board.run(_SCRIPT).check("romfs load").stdout.split("RESULT", 1)[1])
    for stream in ("None", "True"):
        r = out[stream]
        if not aligned:
            assert "not 4-byte aligned" in r["error"] and "ROMFS" in r["error"], r
            continue
        assert "error" not in r, r
        # in place: the file's flash bytes, neither copied nor streamed through a buffer
        assert r["in_place"] and r["stream"] == 0
        assert r["arena"] <= r["used"] < len(bundle) - weights + r["arena"], r
        ours = np.array(r["y"], np.uint8).view(np.int8)
        exact.assert_same(ours, run_tflm(tflite, x).reshape(-1), f"romfs stream={stream}",
                          "fc")
