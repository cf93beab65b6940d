"""Weights that stay in flash (elrt/stream.py): a bundle too big for the heap is loaded without
its constants and each op reads them from the file through one buffer; fully-connected layers
larger than the buffer run in tiles. Outputs stay bit-exact with TFLM, invoke() still
allocates nothing, and what cannot be streamed is refused with the op named."""

from __future__ import annotations

import json

import numpy as np
import pytest
from factory import exact, random_inputs, run_tflm
from factory.singleop import build
from factory.tflm import io_details

from benchmarks.models import benchmark_model
from converters import convert_tflite
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
