"""edgeloop.toml: examples load, bad values name file and key, device config round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from trainer.config import device_config, load_config, parse_config, to_toml
from trainer.errors import TrainerError
from trainer.features import fit_calibration

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["rotating_machine", "wearable"])
def test_examples_load_and_round_trip(name, tmp_path):
    cfg = load_config(ROOT / "examples" / name / "edgeloop.toml")
    assert cfg.window & (cfg.window - 1) == 0 and cfg.classes
    p = tmp_path / "edgeloop.toml"
    p.write_text(to_toml(cfg))
    again = load_config(p)
    assert again.with_(source="") == cfg.with_(source="")


@pytest.mark.parametrize(
    "text,key",
    [
        ("[window]\nsize = 9000", "[window.size]"),  # any length in 8..8192 works
        ("[sensor]\nchannels = []", "[sensor.channels]"),
        ("[sensor]\nsample_rat = 1", "[sensor.sample_rat] unknown key"),
        ("[features]\nchain = ['fft', 'dc']", "[features.chain]"),
        ("[features]\nchain = ['dc', 'fft']\nfft_bins = 7", "[features.fft_bins]"),
        ("[labels]\nclasses = ['a', 'b']\nhealthy = 'c'", "[labels.healthy]"),
        ("[decision]\nn = 6\nm = 5", "[decision]"),
        ("[model]\nname = 'resnet'", "[model.name]"),
        ("[board]\nprofile = 'pico'", "[board.profile]"),
        ("[sensor]\nchannels = ['a', 'b']\ncounts_per_unit = [1, 2, 3]", "[sensor.counts_per_unit]"),
        ("[window]\nsize = 'big'", "[window.size] must be int"),
        ("[extra]\nx = 1", "[extra] unknown table"),
    ],
)
def test_errors_name_file_and_key(tmp_path, text, key):
    p = tmp_path / "edgeloop.toml"
    p.write_text(text)
    with pytest.raises(TrainerError) as exc:
        load_config(p)
    assert str(p) in str(exc.value) and key in str(exc.value)


def test_invalid_toml_and_missing_file(tmp_path):
    p = tmp_path / "e.toml"
    p.write_text("[window\nsize = 1")
    with pytest.raises(TrainerError, match="not valid TOML"):
        load_config(p)
    with pytest.raises(TrainerError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_device_config_needs_calibration_then_is_json(windows_from_machine):
    cfg = parse_config({"labels": {"classes": ["normal", "bearing"], "healthy": "normal"}})
    with pytest.raises(TrainerError, match="calibration"):
        device_config(cfg)
    w = windows_from_machine(4, cfg.window)
    cal = fit_calibration(w, cfg.features)
    cal.set_input_quant(0.0078125, -3)
    d = json.loads(json.dumps(device_config(cfg.with_(calibration=cal), (1 / 256, -128))))
    pre = d["preprocess"]
    assert pre["input_zero_point"] == -3 and pre["input_shape"] == list(cfg.input_shape)
    assert len(pre["twiddle"]) == cfg.window // 2
    assert d["decision"]["fault_classes"] == [1] and d["decision"]["threshold_q"] == 77
    rows = sum(b["rows"] for b in pre["blocks"])
    assert rows == cfg.input_shape[0]
    assert all(2**13 <= m < 2**14 for b in pre["blocks"] for m in b["mult"])
    assert np.isfinite(pre["input_scale"])
