"""Fixtures for the HIL link tests: a virtual board running hil.py with a stand-in model.

The stand-in (a high-frequency-energy detector in plain MicroPython with elrt's Model
attributes) keeps these link/accounting tests independent of the converter and runtime; the
scenarios in hil_tests/ run the real trained int8 model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeloop.firmware import build_firmware

STANDIN = '''
from array import array


class Model:
    """elrt.Model's interface; output class 1 when channel 0 has high-frequency energy."""

    def __init__(self, window, channels, threshold, slow_every=0):
        self.buf_in = array("b", bytes(window * channels))
        self.buf_out = array("b", bytes(2))
        self.input = memoryview(self.buf_in)
        self.output = memoryview(self.buf_out)
        self.input_scale = 1 / 32
        self.input_zero_point = 0
        self.output_scale = 1 / 256
        self.output_zero_point = -128
        self.window = window
        self.channels = channels
        self.threshold = threshold
        self.slow_every = slow_every
        self.calls = 0

    def invoke(self):
        self.calls += 1
        if self.slow_every and self.calls % self.slow_every == 0:
            import time
            time.sleep_ms(700)  # a board that sometimes stalls (GC, flash write, Wi-Fi)
        x = self.buf_in
        c = self.channels
        e = 0
        prev = x[0]
        i = c
        end = self.window * c
        while i < end:  # (range() with a variable step would allocate)
            d = x[i] - prev
            e += d if d > 0 else -d
            prev = x[i]
            i += c
        hot = e > self.threshold
        self.buf_out[0] = -128 if hot else 127
        self.buf_out[1] = 127 if hot else -128
'''

HILMAIN = '''
import json, hil, standin
cfg = json.load(open("config.json"))
s = cfg["standin"]
hil.main(cfg, model=standin.Model(cfg["window"], cfg["channels"], s["threshold"],
                                  s.get("slow_every", 0)))
'''

BASE_CONFIG = {
    "mode": "hil",
    "channels": 3,
    "window": 128,
    "stride": 128,
    "sample_rate_hz": 1000,
    "decision": {"alarm_classes": [1], "threshold": 0.5, "n": 3, "m": 5, "latch": True},
    "hil": {"input": "frames", "lsb_per_g": 2048},
    "standin": {"threshold": 400},
}


def make_board(root: Path, **overrides: object) -> Path:
    build_firmware(root, None)
    cfg = json.loads(json.dumps(BASE_CONFIG))
    for key, value in overrides.items():
        if isinstance(value, dict):
            cfg.setdefault(key, {}).update(value)
        else:
            cfg[key] = value
    (root / "config.json").write_text(json.dumps(cfg))
    (root / "standin.py").write_text(STANDIN)
    (root / "hilmain.py").write_text(HILMAIN)
    return root


@pytest.fixture
def standin_board(tmp_path: Path) -> Path:
    return make_board(tmp_path / "board")


@pytest.fixture
def make_standin_board(tmp_path: Path):
    """Factory: make_standin_board(name, **config_overrides) -> board folder."""
    return lambda name="b", **kw: make_board(tmp_path / name, **kw)
