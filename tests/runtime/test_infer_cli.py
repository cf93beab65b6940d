"""`edgeloop infer` and run_batch_virtual: outputs equal tflite-micro, stats are reported, and
bad inputs are refused naming the expected shape."""

from __future__ import annotations

import json

import numpy as np
import pytest
from factory import exact, random_inputs
from factory.singleop import build
from typer.testing import CliRunner

from edgeloop.cli import app
from edgeloop.infer import InferError, run_batch_virtual


@pytest.fixture(scope="module")
def conv(tmp_path_factory):
    from converters import convert_tflite

    model = build("CONV_2D", seed=3)
    path = tmp_path_factory.mktemp("infer") / "model.elb"
    path.write_bytes(convert_tflite(model).bundle)
    return model, path


def test_cli_infer_writes_outputs(conv, tmp_path) -> None:
    model, bundle = conv
    x = random_inputs((1, 8, 8, 3), 40, seed=4)
    np.save(tmp_path / "x.npy", x)
    res = CliRunner().invoke(app, ["infer", str(bundle), "--board", "virtual", "--input",
                                   str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"),
                                   "--kernels", "bytecode", "--json"])
    assert res.exit_code == 0, res.output
    stats = json.loads(res.output.strip().splitlines()[-1])
    y = np.load(tmp_path / "y.npy")
    assert y.shape == exact.matches_tflm(y, model, x, "edgeloop infer").shape
    assert stats["samples"] == 40 and stats["kernels"] == "bytecode"
    assert stats["arena_bytes"] > 0 and stats["model_heap_bytes"] > stats["arena_bytes"]


def test_large_batch_streams_through_files(conv) -> None:
    model, bundle = conv
    x = random_inputs((1, 8, 8, 3), 300, seed=9)
    y, stats = run_batch_virtual(bundle.read_bytes(), x, kernels="auto")
    assert y.shape == exact.matches_tflm(y, model, x, "edgeloop infer").shape
    assert len(stats["latency_ms"]) == 300 and stats["median_ms"] > 0


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (np.zeros((2, 8, 8), np.int8), "expected (batch, 1, 8, 8, 3) or (batch, 8, 8, 3)"),
        (np.zeros((2, 1, 8, 8, 3), np.float32), "dtype float32, the model input is int8"),
        (np.zeros((0, 1, 8, 8, 3), np.int8), "batch >= 1"),
    ],
)
def test_bad_inputs_refused(conv, x, message: str) -> None:
    with pytest.raises(InferError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_batch_virtual(conv[1].read_bytes(), x)


def test_cli_accepts_a_tflite_style_batch(conv, tmp_path) -> None:
    """(N, 8, 8, 3) for a (1, 8, 8, 3) model is what a TFLite user passes: it was refused."""
    model, bundle = conv
    x = random_inputs((1, 8, 8, 3), 6, seed=7)  # (6, 1, 8, 8, 3)
    np.save(tmp_path / "x.npy", x.reshape(6, 8, 8, 3))
    res = CliRunner().invoke(app, ["infer", str(bundle), "--input", str(tmp_path / "x.npy"),
                                   "--output", str(tmp_path / "y.npy"), "--json"])
    assert res.exit_code == 0, res.output
    y = np.load(tmp_path / "y.npy")
    want = exact.matches_tflm(y, model, x, "edgeloop infer, a TFLite-style batch")
    assert y.shape == (6, *want.shape[2:])


def test_cli_a_tflite_or_text_file_gets_a_hint(conv, tmp_path) -> None:
    model, bundle = conv
    tfl = tmp_path / "m.tflite"
    tfl.write_bytes(model)
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 8, 8, 3), np.int8))
    r = CliRunner()
    res = r.invoke(app, ["infer", str(tfl), "-i", str(tmp_path / "x.npy"), "-o",
                         str(tmp_path / "y.npy")])
    assert isinstance(res.exception, InferError)  # was: magic b'\x1c\x00\x00\x00' != b'ELMB'
    assert "is a .tflite model, not a bundle: run `edgeloop convert" in str(res.exception)
    txt = tmp_path / "x.csv.npy"
    txt.write_text("1,2,3\n4,5,6\n")
    res = r.invoke(app, ["infer", str(bundle), "-i", str(txt), "-o", str(tmp_path / "y.npy")])
    assert isinstance(res.exception, InferError)  # was: "pickled (object) data"
    assert "is a text file and not a .npy array" in str(res.exception)
    assert "pickle" not in str(res.exception) and not (tmp_path / "y.npy").exists()


def test_cli_bad_kernel_choice(conv, tmp_path) -> None:
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 8, 8, 3), np.int8))
    res = CliRunner().invoke(app, ["infer", str(conv[1]), "--input", str(tmp_path / "x.npy"),
                                   "--output", str(tmp_path / "y.npy"), "--kernels", "fast"])
    assert res.exit_code != 0
    assert "--kernels must be one of auto, viper, bytecode" in str(res.exception)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "file is empty or truncated"), ("npz", "is an .npz archive, not one array")],
)
def test_cli_unreadable_input_file_is_one_error(conv, tmp_path, content, message) -> None:
    """An empty file used to end in click's bare "aborted" (EOFError), an .npz in a shape error."""
    x = tmp_path / "x.npy"
    if content == "npz":
        with open(x, "wb") as f:
            np.savez(f, X=np.zeros((1, 1, 8, 8, 3), np.int8))
    else:
        x.write_bytes(content)
    res = CliRunner().invoke(app, ["infer", str(conv[1]), "--input", str(x),
                                   "--output", str(tmp_path / "y.npy")])
    assert isinstance(res.exception, InferError)
    assert str(res.exception).startswith(f"{x} ") and message in str(res.exception)


def test_model_too_big_for_the_heap_is_reported() -> None:
    from converters import convert_tflite

    # 2 x 72 KB of activations cannot live in a 100 KB ESP32 heap
    model = build("CONV_2D", h=96, w=96, cin=8, cout=8, seed=1)
    with pytest.raises(InferError, match="model does not fit in RAM: MemoryError"):
        run_batch_virtual(convert_tflite(model).bundle, random_inputs((1, 96, 96, 8), 1),
                          profile="esp32")


def test_weights_bigger_than_the_heap_are_streamed() -> None:
    from converters import convert_tflite

    # 160 KB of weights do not fit a 100 KB ESP32 heap: elrt reads them from the file per op
    model = build("FULLY_CONNECTED", in_features=320, units=500, seed=1)
    x = random_inputs((1, 320), 2)
    y, stats = run_batch_virtual(convert_tflite(model).bundle, x, profile="esp32")
    exact.matches_tflm(y, model, x, "edgeloop infer, weights streamed")
    assert stats["model_heap_bytes"] < 100 * 1024


def test_transport_hook_with_the_link_transport(conv, tmp_path) -> None:
    """run_batch_transport drives any edgeloop.link Transport; here the virtual one, with elrt
    deployed as a flashed board has it."""
    from edgeloop.firmware import build_firmware
    from edgeloop.infer import elrt_sources, run_batch_transport
    from edgeloop.vboard import mpy_arch

    model, bundle = conv
    build_firmware(tmp_path, mpy_arch(), elrt_sources())
    from edgeloop.link.virtual import VirtualTransport

    transport = VirtualTransport(tmp_path, "esp32")
    x = random_inputs((1, 8, 8, 3), 5, seed=2)
    y, stats = run_batch_transport(transport, bundle.read_bytes(), x, kernels="bytecode")
    assert y.shape == exact.matches_tflm(y, model, x, "edgeloop infer").shape
    assert stats["kernels"] == "bytecode" and len(stats["latency_ms"]) == 5
    # a corrupt bundle is caught on the host before it is sent
    bad = bytearray(bundle.read_bytes())
    bad[-1] ^= 0xFF
    with pytest.raises(InferError, match="CRC32 mismatch"):
        run_batch_transport(transport, bytes(bad), x)
    # a failure on the board comes back with the board's own message
    from converters import convert_tflite

    big = convert_tflite(build("CONV_2D", h=96, w=96, cin=8, cout=8, seed=1)).bundle
    with pytest.raises(InferError, match="refused the model: .*does not fit in RAM"):
        run_batch_transport(transport, big, random_inputs((1, 96, 96, 8), 1))


def test_batch_larger_than_the_board_heap() -> None:
    """20,000 inputs (320 KB in, 320 KB out) through a 100 KB board: inputs, outputs and
    timings stream through files, so the batch size is not bounded by the heap."""
    from converters import convert_tflite

    model = build("RELU", shape=(1, 16), seed=3)
    x = random_inputs((1, 16), 20000, seed=5)
    y, stats = run_batch_virtual(convert_tflite(model).bundle, x, profile="esp32")
    assert y.shape == exact.matches_tflm(y, model, x, "edgeloop infer").shape
    assert len(stats["latency_ms"]) == 20000


def test_cli_infer_profile_times_every_op_on_the_board(tmp_path) -> None:
    """--profile: ms per op and per family from the board's own clock, MACs from the bundle;
    the outputs are the same as without it."""
    from benchmarks.models import benchmark_model
    from converters import convert_tflite

    model = benchmark_model("vibration_cnn1d")
    conv = convert_tflite(model)
    (tmp_path / "m.elb").write_bytes(conv.bundle)
    x = random_inputs((1, 128, 3), 4, seed=5)
    np.save(tmp_path / "x.npy", x)
    args = ["infer", str(tmp_path / "m.elb"), "-i", str(tmp_path / "x.npy"), "-o",
            str(tmp_path / "y.npy"), "--board", "esp32", "--kernels", "viper", "--profile"]
    res = CliRunner().invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    prof = json.loads(res.output.strip().splitlines()[-1])["profile"]
    exact.matches_tflm(np.load(tmp_path / "y.npy"), model, x, "edgeloop infer --profile")
    n_ops = conv.report["n_ops"]
    assert [r["index"] for r in prof["ops"]] == list(range(n_ops))
    reported = [r for r in conv.report["ops"] if not r.get("alias")]
    for p, r in zip(prof["ops"], reported, strict=True):  # MACs from the bundle == convert's
        if p["family"] in ("fc", "conv", "dw"):
            assert p["macs"] == r["macs"] > 0, (p, r)
    assert {"conv", "fc"} <= set(prof["families"])
    assert prof["total_ms"] > 0 and abs(sum(r["share"] for r in prof["ops"]) - 1) < 1e-6
    assert all(f["mmac_per_s"] > 0 for k, f in prof["families"].items() if k in ("conv", "fc"))
    text = CliRunner().invoke(app, args)
    assert text.exit_code == 0 and "per family" in text.output and "MMAC/s" in text.output


def test_infer_on_a_deployed_board_leaves_its_model_alone(conv, tmp_path) -> None:
    """`infer --port` on a board that `deploy` set up: the user's model.elb is the same bytes
    afterwards (it was overwritten), and no scratch file stays behind, also after a failure."""
    from converters import convert_tflite
    from edgeloop.firmware import build_firmware
    from edgeloop.infer import elrt_sources, run_on_deployed_board
    from edgeloop.link.virtual import VirtualTransport
    from edgeloop.vboard import mpy_arch

    model, bundle = conv
    build_firmware(tmp_path, mpy_arch(), elrt_sources())
    deployed = convert_tflite(build("FULLY_CONNECTED", in_features=16, units=4, seed=3)).bundle
    (tmp_path / "model.elb").write_bytes(deployed)
    before = sorted(p.name for p in tmp_path.iterdir())
    transport = VirtualTransport(tmp_path, "esp32")
    x = random_inputs((1, 8, 8, 3), 3, seed=4)
    y, _ = run_on_deployed_board(transport, bundle.read_bytes(), x, kernels="bytecode")
    exact.matches_tflm(y, model, x, "edgeloop infer --port")
    assert (tmp_path / "model.elb").read_bytes() == deployed
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    big = convert_tflite(build("CONV_2D", h=96, w=96, cin=8, cout=8, seed=1)).bundle
    with pytest.raises(InferError, match="refused the model"):
        run_on_deployed_board(transport, big, random_inputs((1, 96, 96, 8), 1))
    assert (tmp_path / "model.elb").read_bytes() == deployed
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    import shutil

    shutil.rmtree(tmp_path / "elrt")  # a board without the runtime
    with pytest.raises(InferError, match="no working elrt runtime.*edgeloop deploy"):
        run_on_deployed_board(transport, bundle.read_bytes(), x)
