"""The dataset reader and field windows: unlabelled/ and the .json sidecars are no data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeloop.collect.field import write_window
from edgeloop.resources import example_config
from trainer.config import load_config
from trainer.data import load_csv_folder
from trainer.errors import TrainerError


def _window(base, seed: int) -> np.ndarray:
    raw = np.random.default_rng(seed).integers(-3000, 3000, size=(256, 3)).astype(np.int16)
    side = {"channels": ["ax", "ay", "az"], "counts_per_unit": [2048.0] * 3,
            "sample_rate": 1000.0, "uid": f"u{seed}"}
    write_window(base, raw, side)
    return raw


def test_reader_leaves_unlabelled_windows_and_sidecars_out(tmp_path) -> None:
    cfg = load_config(example_config("rotating_machine"))
    raws = {}
    for label in ("normal", "bearing"):
        for i in range(2):
            raws[f"{label}/w{i}"] = _window(tmp_path / label / f"w{i}", len(raws))
    _window(tmp_path / "unlabelled" / "waiting", 99)
    (tmp_path / "normal" / "stray.json").write_text(json.dumps({"not": "data"}))
    recs = load_csv_folder(tmp_path, cfg)
    assert sorted(r.label for r in recs) == ["bearing", "bearing", "normal", "normal"]
    assert not any("unlabelled" in Path(r.source).relative_to(tmp_path).parts for r in recs)
    for r in recs:  # the CSV gives back the board's counts exactly
        key = f"{r.label}/{r.source.rsplit('/', 1)[1][:-4]}"
        assert np.array_equal(np.round(r.data * 2048).astype(np.int16), raws[key])


def test_only_unlabelled_windows_say_to_label_them(tmp_path) -> None:
    cfg = load_config(example_config("rotating_machine"))
    _window(tmp_path / "unlabelled" / "a", 1)
    with pytest.raises(TrainerError, match=r"no .csv files found outside unlabelled/ .*edgeloop label"):
        load_csv_folder(tmp_path, cfg)
