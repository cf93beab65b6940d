"""Weights that stay in flash (elrt/stream.py): a bundle too big for the heap is loaded without
its constants and each op reads them from the file through one buffer; fully-connected layers
larger than the buffer run in tiles of output rows, convolutions in tiles of output channels.
Outputs stay bit-exact with TFLM, invoke() still allocates nothing, and what cannot be streamed
is refused with the op named."""

from __future__ import annotations

import json

import numpy as np
import pytest
from factory import exact, random_inputs, run_tflm
from factory.singleop import build
from factory.tflm import io_details

from benchmarks.models import benchmark_model
from converters import convert_tflite
from edgeloop import vboard
from edgeloop.infer import run_batch_virtual


@pytest.mark.parametrize("kernels", ["viper", "bytecode"])
def test_ad_autoencoder_runs_on_the_esp32_profile(kernels: str) -> None:
    """~270 KB of weights on a 100 KB heap: streamed (tiled FC), bit-exact with TFLM."""
    tflite = benchmark_model("ad_autoencoder")
    bundle = convert_tflite(tflite).bundle
    assert len(bundle) > 100 * 1024
    x = exact.model_inputs(tflite, 3 if kernels == "viper" else 2, 4)
    _, stats = exact.device_vs_tflm(tflite, x, "ad_autoencoder streamed", kernels=kernels,
                                    profile="esp32")
    assert stats["model_heap_bytes"] < 100 * 1024


_SCRIPT = """
import json, gc, micropython, elrt
elrt.use_kernels(KERNELS)
res = {}
for name, stream in CASES:
    m = elrt.Model()
    try:
        m.load(name + ".elb", stream=stream)
    except elrt.BundleError as e:
        res[name + "/" + str(stream)] = {"error": str(e)}
        continue
    f = open(name + ".in", "rb")
    f.readinto(m.input)
    f.close()
    gc.collect()
    micropython.heap_lock()
    try:
        m.invoke()
        err = ""
    except MemoryError:
        err = "MemoryError"
    micropython.heap_unlock()
    res[name + "/" + str(stream)] = {"err": err, "y": list(bytes(m.output)),
                                     "stream": m.stream_bytes, "steps": len(m.plan_ops)}
print("RESULT" + json.dumps(res))
"""


def _run(board, models: dict[str, bytes], cases, kernels: str) -> dict:
    for name, tflite in models.items():
        (board.root / f"{name}.elb").write_bytes(convert_tflite(tflite).bundle)
        ins, _ = io_details(tflite)
        x = random_inputs(tuple(ins[0]["shape"]), 1, seed=7)
        (board.root / f"{name}.in").write_bytes(x.tobytes())
        np.save(board.root / f"{name}.npy", x)
    script = f"KERNELS = {kernels!r}\nCASES = {cases!r}\n" + _SCRIPT
    return json.loads(board.run(script).check("stream script").stdout.split("RESULT", 1)[1])


def test_forced_streaming_and_tiles_are_exact_and_allocation_free(board, kernels) -> None:
    models = {
        "fc": build("FULLY_CONNECTED", in_features=60, units=37, seed=2),
        "conv": build("CONV_2D", seed=3),
        "dw": build("DEPTHWISE_CONV_2D", seed=4),
        "softmax": build("SOFTMAX", seed=5),
    }
    cases = [("fc", False), ("fc", True), ("fc", 700), ("fc", 200), ("conv", True),
             ("dw", True), ("softmax", True)]
    out = _run(board, models, cases, kernels)
    for name, stream in cases:
        r = out[f"{name}/{stream}"]
        assert "error" not in r, r
        assert r["err"] == "", f"{name} stream={stream}: invoke allocated"
        x = np.load(board.root / f"{name}.npy")
        ours = np.array(r["y"], np.uint8).view(np.int8)
        exact.assert_same(ours, run_tflm(models[name], x).reshape(-1), f"stream={stream}", name)
        assert (r["stream"] > 0) == (stream is not False)
    # a 200-byte buffer holds two of the 60-input rows: the 37 outputs run in tiles
    assert out["fc/200"]["steps"] > out["fc/700"]["steps"] > out["fc/False"]["steps"]


def test_conv_runs_in_output_channel_tiles(board, kernels) -> None:
    """Filters larger than the buffer: tiles of output channels (the last one shorter), each
    written into the buffer and copied into its channels of the output; strides, VALID padding
    and a 1-channel last tile included. Exact and allocation-free like the whole op."""
    models = {
        # 13 channels of 3x3x8 filters over 6x6 pixels: 72 + 12 + 36 B a channel, so a 500 B
        # buffer holds 4 (tiles 4, 4, 4, 1) and 130 B one
        "ct": build("CONV_2D", h=6, w=6, cin=8, cout=13, seed=11),
        "cs": build("CONV_2D", h=9, w=7, cin=5, cout=10, kh=3, kw=2, stride=(2, 1),
                    padding="VALID", activation="RELU", seed=12),
    }
    cases = [("ct", True), ("ct", 500), ("ct", 130), ("cs", True), ("cs", 200)]
    out = _run(board, models, cases, kernels)
    for name, stream in cases:
        r = out[f"{name}/{stream}"]
        assert "error" not in r, r
        assert r["err"] == "", f"{name} stream={stream}: invoke allocated"
        x = np.load(board.root / f"{name}.npy")
        ours = np.array(r["y"], np.uint8).view(np.int8)
        exact.assert_same(ours, run_tflm(models[name], x).reshape(-1), f"stream={stream}", name)
    # whole: a read step and the conv; tiled: one step runs every tile
    assert out["ct/True"]["steps"] == 2 and out["ct/500"]["steps"] == 1
    assert out["ct/130"]["stream"] == 130 and out["cs/200"]["steps"] == 1


def test_resnet8_streams_within_the_esp32_heap(tmp_path) -> None:
    """ResNet-8 (87 KB bundle, 48 KB arena) on a 100 KB heap: its 3x3x64x64 convolutions run in
    output-channel tiles through a buffer sized to what the arena leaves, bit-exact with TFLM.
    The 100 KB holds on a 32-bit board (the ESP32's word size, e.g. micropython-esp32sem); on
    the 64-bit unix port every object is about 1.6x larger and the same load needs ~105 KB."""
    from edgeloop.infer import prepare_board

    tflite = benchmark_model("resnet8_cifar")
    bundle = convert_tflite(tflite).bundle
    ident = vboard.identify()
    heap = 100 * 1024 if ident.word_bits == 32 else 112 * 1024
    vb = prepare_board(tmp_path / "b")
    (vb.root / "m.elb").write_bytes(bundle)
    x = exact.model_inputs(tflite, 2, 4)
    ys = []
    for sample in x:
        (vb.root / "in.bin").write_bytes(sample.tobytes())
        res = vb.run(_RESNET_SCRIPT, heap_bytes=heap, timeout=600).check("resnet-8 streamed")
        r = json.loads(res.stdout.split("RESULT", 1)[1])
        assert r["err"] == "", "invoke allocated"
        assert 0 < r["stream"] <= 16384 and r["free"] > 0, r
        ys.append(np.array(r["y"], np.uint8).view(np.int8))
    exact.matches_tflm(np.stack(ys).reshape(len(x), -1), tflite, x,
                       f"resnet-8 streamed on a {heap // 1024} KB heap ({ident.word_bits}-bit)")


_RESNET_SCRIPT = """
import gc, json, micropython, elrt
m = elrt.Model()
m.load("m.elb", stream=True)
f = open("in.bin", "rb")
f.readinto(m.input)
f.close()
err = "MemoryError"  # a global made before the lock: storing a new one may grow the dict
gc.collect()
micropython.heap_lock()
try:
    m.invoke()
    err = ""
except MemoryError:
    pass
micropython.heap_unlock()
gc.collect()
print("RESULT" + json.dumps({"err": err, "y": list(bytes(m.output)), "stream": m.stream_bytes,
                             "free": gc.mem_free()}))
"""


def test_too_small_buffer_for_a_conv_names_the_op(board) -> None:
    out = _run(board, {"conv": build("CONV_2D", seed=3)}, [("conv", 8)], "bytecode")
    assert "op 0" in out["conv/8"]["error"] and "stream" in out["conv/8"]["error"]


def test_corrupt_bundle_is_refused_when_streamed(board) -> None:
    bundle = bytearray(convert_tflite(build("FULLY_CONNECTED", seed=2)).bundle)
    bundle[-3] ^= 0x40  # a weight byte: only the CRC over the streamed constants sees it
    (board.root / "bad.elb").write_bytes(bytes(bundle))
    res = board.run("import elrt\nm = elrt.Model()\ntry:\n    m.load('bad.elb', stream=True)\n"
                    "except elrt.BundleError as e:\n    print('REFUSED', e)\n")
    assert "REFUSED bundle corrupt: body CRC32" in res.stdout, res.stdout + res.stderr


def test_streamed_model_fits_where_the_whole_bundle_does_not() -> None:
    """The converter's choice agrees with the board: AD autoencoder on esp32 is 'stream'."""
    conv = convert_tflite(benchmark_model("ad_autoencoder"), heap_limit=100 * 1024)
    assert conv.report["memory_mode"] == "stream"
    assert conv.report["stream"]["buffer_bytes"] > 0
    assert conv.report["estimated_heap_bytes"] <= 100 * 1024
    x = random_inputs(tuple(io_details(benchmark_model("ad_autoencoder"))[0][0]["shape"]), 1)
    y, stats = run_batch_virtual(conv.bundle, x, "esp32")
    assert stats["model_heap_bytes"] <= conv.report["estimated_heap_bytes"]
