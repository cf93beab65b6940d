"""Fixtures for the field-window tests: virtual boards with the device code, and the trained
rotating-machine run (the HIL bench's cached one) deployed with its twin's recording."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edgeloop.boards import get_board, with_sim_heap
from edgeloop.firmware import build_firmware
from edgeloop.link import deploy as dp
from edgeloop.link.virtual import VirtualTransport
from edgeloop.twins import machine_recording
from edgeloop.vboard import VirtualBoard


@pytest.fixture
def fw_board(tmp_path: Path) -> VirtualBoard:
    """A virtual board (ESP32-sized heap) with firmware_micropython/ copied as source."""
    board = VirtualBoard(tmp_path / "board", "esp32")
    build_firmware(board.root, None)
    return board


@pytest.fixture(scope="session")
def trained_run() -> Path:
    from hil_tests.model import ensure_run_locked

    return ensure_run_locked()  # the HIL bench's run and lock: the suite trains once


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A folder with a short path: on the virtual board every module's __file__ holds the
    folder's path (a real board's are a few bytes), and on the 100 KB heap next to the
    vibration model a pytest tmp path's ~70 bytes a module are the difference."""
    root = Path(tempfile.mkdtemp(prefix="fl", dir="/tmp"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def deployed(short_dir: Path, trained_run: Path) -> Callable[..., VirtualTransport]:
    """deployed(seconds, fault_at, **config) -> a virtual ESP32 (100 KB + the simulated chips'
    share) holding the run, playing the machine twin (healthy, then a bearing fault)."""

    def make(seconds: float = 30.0, fault_at: float = 10.0, **config) -> VirtualTransport:
        profile = with_sim_heap(get_board("esp32"))  # + the simulated chips' share
        board = VirtualTransport(short_dir / "vb", profile)
        plan = dp.plan_deploy(
            trained_run, get_board("virtual"), virtual=True,
            sim_recording=lambda units, rate: machine_recording(
                units, rate, seconds=seconds, fault_at_s=fault_at),
        )
        cfg = json.loads(plan.files["config.json"])
        for key, value in config.items():
            if isinstance(value, dict):
                cfg.setdefault(key, {}).update(value)
            else:
                cfg[key] = value
        plan.files["config.json"] = json.dumps(cfg).encode()
        assert dp.deploy(board, plan).verified
        return board

    return make


@pytest.fixture
def read_status() -> Callable[..., list[dict]]:
    """read_status(board, seconds) -> the app's console lines, as JSON objects."""
    return _read_status


def _read_status(board: VirtualTransport, seconds: float = 180) -> list[dict]:
    raw = list(board.console(seconds=seconds))
    try:
        return [json.loads(line) for line in raw]
    except ValueError:
        pytest.fail("the board printed a line that is not a JSON status:\n" + "\n".join(raw[-30:]))
