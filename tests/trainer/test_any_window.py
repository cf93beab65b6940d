"""Windows of any length (100 samples at 100 Hz, 200, 3000, ...), not only powers of two: the
board (preprocess.py on the virtual board, both kernel sets) computes the host's int8 model input
bit for bit, allocates nothing, and every intermediate stays a 32-bit board's small int.
Run with EDGELOOP_MICROPYTHON=../shared/tools/micropython-esp32sem for the ESP32's arithmetic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trainer.config import Config, parse_config, preprocess_config
from trainer.errors import TrainerError
from trainer.features import (
    WINDOW_MAX,
    WINDOW_MIN,
    FeatureSpec,
    compute_features,
    fit_calibration,
    quantize_input,
)

PREPROCESS = Path(__file__).resolve().parents[2] / "firmware_micropython" / "preprocess.py"
ALL_BLOCKS = ("mean", "dc", "rms", "peak", "raw", "fft")
SMALL = 1 << 30


def calibrated(cfg: Config, windows: np.ndarray, scale: float = 2 / 255, zp: int = -1):
    cal = fit_calibration(windows, cfg.features)
    cal.set_input_quant(scale, zp)
    return cal


def host_and_board(board_dir, board_preprocess, cfg, windows, kernels="viper", lock=False,
                   train=None):
    cal = calibrated(cfg, windows if train is None else train)
    host = quantize_input(compute_features(windows, cfg.features, cal.shift, check=True), cal,
                          True)
    # a window of thousands of samples (and this script's buffers of several of them) needs
    # more than the 100 KB board's heap: the ESP32-S3 profile's 2 MB
    profile = "esp32s3" if cfg.window >= 1000 else "virtual"
    board = board_preprocess(board_dir, preprocess_config(cfg, cal), windows, lock, kernels,
                             profile)
    return host.reshape(len(windows), -1), board


@pytest.mark.parametrize("kernels", ["viper", "python"])
@pytest.mark.parametrize("window,decimate,bins", [
    (100, 5, 16),     # 1 s at 100 Hz: FFT padded to 128
    (200, 8, 32),     # 2 s at 100 Hz
    (3000, 100, 16),  # 3 s at 1 kHz: FFT padded to 4096
    (24, 3, 4),
    (256, 4, 32),     # a power of two keeps the shift paths
])
def test_any_window_host_equals_board(board_dir, board_preprocess, windows_from_machine, window,
                                      decimate, bins, kernels):
    n_per = 1 if window >= 1000 else 3
    windows = windows_from_machine(n_per, window, seed=window)
    cfg = Config(window=window, features=FeatureSpec(ALL_BLOCKS, bins, "sqrt", decimate))
    host, board = host_and_board(board_dir, board_preprocess, cfg, windows, kernels, lock=True)
    np.testing.assert_array_equal(board, host)


@pytest.mark.parametrize("kernels", ["viper", "python"])
@pytest.mark.parametrize("window", [100, 3000, WINDOW_MAX - 1])
def test_extreme_inputs_any_window(board_dir, board_preprocess, window, kernels):
    """Rails, full-scale square waves, impulses and noise: the rms sum reaches its 2**39 bound,
    the mean sum its 2**28 one."""
    rng = np.random.default_rng(window)
    t = np.arange(window)
    ws = [np.full((window, 2), 32767), np.full((window, 2), -32768),
          np.where(t % 2, 32767, -32768)[:, None].repeat(2, 1),
          rng.integers(-32768, 32768, size=(window, 2))]
    if window < 4000:
        imp = np.zeros((window, 2), int)
        imp[window // 3] = (-32768, 32767)
        ws.append(imp)
    w = np.stack(ws).astype(np.int16)
    train = np.concatenate([w, rng.integers(-3000, 3000, size=(6, window, 2)).astype(np.int16)])
    dec = next(d for d in (100, 50, 10, 7, 3, 1) if window % d == 0)
    cfg = Config(channels=("a", "b"), window=window,
                 features=FeatureSpec(ALL_BLOCKS, 8, "sqrt", dec, shift=0))
    host, board = host_and_board(board_dir, board_preprocess, cfg, w, kernels, train=train)
    np.testing.assert_array_equal(board, host)


# Random chains over any window length, host == board: test_preprocess_board.py's
# test_random_configs_host_equals_board draws windows of any length as well as powers of two.


def board_rms_division(t: int, total: int) -> int:
    """The board's rms division of hi * 2**28 + lo by a window that is not a power of two,
    in Python integers, asserting every intermediate is a 31-bit small int."""
    hi, lo = total >> 28, total & ((1 << 28) - 1)
    r = (hi << 14) + (lo >> 14)
    q = r // t
    r = ((r - q * t) << 14) + (lo & 0x3FFF)
    for v in (hi, lo, r, q, q << 14, r // t, (q << 14) + r // t):
        assert -SMALL <= v < SMALL, (t, total, v)
    return (q << 14) + r // t


@settings(max_examples=400, deadline=None)
@given(t=st.integers(WINDOW_MIN, WINDOW_MAX), frac=st.floats(0, 1), data=st.data())
def test_rms_long_division_is_exact_and_32bit_safe(t, frac, data):
    """sum y^2 over a window is at most t * 2**26 (|y| <= 8192): up to 2**39, beyond one word.
    The board's two 14-bit steps give floor(sum / t) exactly with every step a small int."""
    top = t * (1 << 26)
    total = data.draw(st.sampled_from([0, top, top - 1, int(top * frac), t - 1, t, 1 << 28]))
    total = min(total, top)
    assert board_rms_division(t, total) == total // t
    # the mean: |sum of t int16 counts| <= t * 32768 <= 2**28
    assert t * 32768 <= 1 << 28


@settings(max_examples=30, deadline=None)
@given(window=st.integers(WINDOW_MIN, WINDOW_MAX), amp=st.integers(1, 32767),
       kind=st.sampled_from(["rail", "square", "noise"]), seed=st.integers(0, 2**16))
def test_intermediates_fit_32bit_small_ints_any_window(window, amp, kind, seed):
    rng = np.random.default_rng(seed)
    if kind == "rail":
        x = np.full((window, 1), -32768)
    elif kind == "square":
        x = np.where(np.arange(window) % 2, amp, -amp - 1)[:, None]
    else:
        x = rng.integers(-amp - 1, amp + 1, size=(window, 1))
    w = np.clip(x, -32768, 32767).astype(np.int16)[None]
    dec = next(d for d in (16, 10, 5, 3, 2, 1) if window % d == 0)
    spec = FeatureSpec(ALL_BLOCKS, 4, "sqrt", dec, shift=0)
    f = compute_features(w, spec, 0, check=True)
    assert np.abs(f).max() <= 32768
    cal = fit_calibration(w, spec)
    cal.set_input_quant(1 / 255, 0)
    quantize_input(f, cal, check=True)


def test_board_refuses_windows_outside_its_proven_range(board_dir):
    from edgeloop.vboard import VirtualBoard

    code = (
        "import preprocess\n"
        "for t in (4, 8193):\n"
        "    try:\n"
        "        preprocess.Preprocessor({'window': t, 'channels': 1, 'shift': 0, 'dc': 0,\n"
        "                                 'input_zero_point': 0, 'blocks': []})\n"
        "    except preprocess.PreprocessError as e:\n"
        "        print('refused', e)\n"
        "try:\n"
        "    preprocess.Preprocessor({'window': 100, 'channels': 1, 'shift': 0, 'dc': 0,\n"
        "        'input_zero_point': 0, 'blocks': [{'kind': 'raw', 'rows': 14, 'decimate': 7,\n"
        "        'off': [0], 'mult': [1], 'sh': [1]}]})\n"
        "except preprocess.PreprocessError as e:\n"
        "    print('refused', e)\n"
    )
    out = VirtualBoard(board_dir).run(code).check("refusals").stdout
    assert out.count("refused") == 3, out
    assert "window must be 8..8192 samples, got 4" in out
    assert "raw decimate 7 must divide the window 100" in out


def toml(window: int, **features) -> dict:
    return {"sensor": {"channels": ["x"], "sample_rate": 100.0},
            "window": {"size": window}, "features": {"chain": list(ALL_BLOCKS), **features}}


def test_config_takes_any_window_and_explains_what_does_not_divide():
    cfg = parse_config(toml(100), "p/edgeloop.toml")
    assert cfg.window == 100 and cfg.features.fft_bins == 16
    assert cfg.input_shape == (1 + 1 + 1 + 100 + 16, 1)
    assert parse_config(toml(10), "p").features.fft_bins == 8  # default adapts: 16 -> 8
    with pytest.raises(TrainerError, match=r"window 100 gives 64 FFT magnitudes \(the FFT pads "
                                           r"the window to 128 samples\), which fft_bins = 12"):
        parse_config(toml(100, fft_bins=12), "p/edgeloop.toml")
    with pytest.raises(TrainerError, match=r"raw_decimate\] raw_decimate = 8 must divide the "
                                           r"window 100 into equal rows: try 4, 5, 10"):
        parse_config(toml(100, raw_decimate=8), "p/edgeloop.toml")
    with pytest.raises(TrainerError, match=r"window.size\] must be 8..8192 samples, got 9000"):
        parse_config(toml(9000), "p")
    pre = preprocess_config(cfg, calibrated(cfg, np.zeros((2, 100, 1), np.int16)))
    assert len(pre["twiddle"]) == 64 and pre["window"] == 100


def test_train_options_take_any_window_in_range():
    from trainer.train import check_options

    for w in (WINDOW_MIN, 100, 200, 3000, WINDOW_MAX):
        check_options(w, None, None, None, None)
    for w in (WINDOW_MIN - 1, WINDOW_MAX + 1, 0):
        with pytest.raises(TrainerError, match=r"--window must be 8..8192 samples"):
            check_options(w, None, None, None, None)


@pytest.mark.filterwarnings("ignore")
def test_train_a_100_sample_window(tmp_path, board_dir, board_preprocess):
    """What a user types: `train --window 100`: the run holds the padded FFT's twiddles and the
    board's preprocessing under the run's own config.json equals the host's (`deploy` of such
    a run verifies like any other: it checks the model, not the window)."""
    import json
    import os
    import subprocess
    import sys

    from trainer.config import load_run
    from trainer.twins import synthesize, write_csv_dataset

    data = write_csv_dataset(synthesize("rotating_machine", per_class=3, duration_s=1.5, seed=2),
                             tmp_path / "d")
    env = {**os.environ, "PYTHONPATH": str(PREPROCESS.parents[1])}
    cli = [sys.executable, "-m", "edgeloop.cli"]
    res = subprocess.run([*cli, "train", "--data", str(data), "--out", str(tmp_path / "run"),
                          "--window", "100", "--epochs", "1"], capture_output=True, text=True,
                         cwd=tmp_path, env=env, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    dev = json.loads((tmp_path / "run" / "config.json").read_text())
    assert dev["window"] == 100 and dev["preprocess"]["window"] == 100
    assert len(dev["preprocess"]["twiddle"]) == 64  # FFT of 128: the window zero-padded
    cfg = load_run(tmp_path / "run")
    cal = cfg.calibration
    rng = np.random.default_rng(0)
    w = rng.integers(-4000, 4000, size=(5, 100, len(cfg.channels))).astype(np.int16)
    host = quantize_input(compute_features(w, cfg.features, cal.shift, check=True), cal, True)
    board = board_preprocess(board_dir, dev["preprocess"], w)
    np.testing.assert_array_equal(board, host.reshape(len(w), -1))
