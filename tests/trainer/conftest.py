"""Fixtures for the trainer tests: small synthetic datasets and a board dir with preprocess.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def board_dir(tmp_path: Path) -> Path:
    """A virtual-board filesystem holding only the device preprocessing module."""
    d = tmp_path / "board"
    d.mkdir()
    shutil.copy(ROOT / "firmware_micropython" / "preprocess.py", d / "preprocess.py")
    return d


def machine_windows(n_per: int, window: int, seed: int = 0) -> np.ndarray:
    """int16 count windows [n, window, 3] from every machine condition plus sensor faults."""
    from trainer.twins import CONDITIONS, RotatingMachine, to_counts

    out = []
    for i, cond in enumerate(CONDITIONS):
        twin = RotatingMachine(seed=seed + i, rpm=1300 + 100 * i)
        if cond != "normal":
            twin.inject_fault(cond, 0.0)
            twin.severity_override = 0.5 + 0.4 * i
        if i == 1:
            twin.sensor_fault("spike", 0.1, 0.3)
        if i == 2:
            twin.sensor_fault("stuck", 0.2, 0.2)
        out.append(to_counts(twin.step(n_per * window), 2048).reshape(n_per, window, 3))
    return np.concatenate(out)


@pytest.fixture
def windows_from_machine():
    return machine_windows


BOARD_SCRIPT = """
import json, preprocess
from array import array
cfg = json.load(open("pcfg.json"))
pp = preprocess.Preprocessor(cfg, {kernels!r})
n = {n}
wlen = pp.window * pp.channels
x = array("h", bytes(2 * wlen))
out = bytearray(pp.out_len)
res = bytearray(n * pp.out_len)
f = open("windows.bin", "rb")
lock = {lock}
if lock:
    import micropython
for i in range(n):
    f.readinto(x)
    if lock:
        micropython.heap_lock()
    pp.run(x, out)
    if lock:
        micropython.heap_unlock()
    res[i * pp.out_len:(i + 1) * pp.out_len] = out
f.close()
open("out.bin", "wb").write(res)
print("done", n)
"""


def run_on_board(
    board_dir: Path, pcfg: dict, windows: np.ndarray, heap_lock: bool = False,
    kernels: str = "viper", profile: str = "virtual",
):
    """Run preprocess.py on the virtual board over int16 windows [n, T, C]; int8 [n, rows*C]."""
    from edgeloop.vboard import VirtualBoard

    (board_dir / "pcfg.json").write_text(json.dumps(pcfg))
    (board_dir / "windows.bin").write_bytes(np.ascontiguousarray(windows, "<i2").tobytes())
    n = len(windows)
    vb = VirtualBoard(board_dir, profile)
    code = BOARD_SCRIPT.format(n=n, lock=heap_lock, kernels=kernels)
    res = vb.run(code, timeout=300).check("preprocess on the board")
    assert f"done {n}" in res.stdout
    return np.frombuffer((board_dir / "out.bin").read_bytes(), np.int8).reshape(n, -1)


@pytest.fixture
def board_preprocess():
    return run_on_board
