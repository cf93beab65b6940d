"""Fixtures for the boards tests: virtual boards holding the device code, fake hardware images."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from edgeloop.firmware import build_firmware
from edgeloop.vboard import VirtualBoard


@pytest.fixture
def fw_board(tmp_path: Path) -> VirtualBoard:
    """A virtual board with firmware_micropython/ copied as source (no mpy-cross: fast)."""
    board = VirtualBoard(tmp_path / "board", "virtual")
    build_firmware(board.root, None)
    return board


def _esp_image(chip_id: int, partition_table: bool = True) -> bytes:
    head = bytearray(0x9000)
    head[0] = 0xE9
    head[1] = 3  # segments
    head[12:14] = chip_id.to_bytes(2, "little")
    if partition_table:  # at flash 0x8000: file offset 0x7000 on ESP32 (image at 0x1000)
        at = 0x8000 - (0x1000 if chip_id == 0 else 0)
        head[at : at + 2] = b"\xaa\x50"
    return bytes(head)


@pytest.fixture
def esp_image():
    """Build a minimal MicroPython .bin: image magic 0xE9, chip id at 12, partition table."""
    return _esp_image


WINDOW, CHANNELS, CLASSES = 32, 3, 3
CACHE = Path(__file__).resolve().parents[2] / "build" / "cache" / "boards"


def _keras_int8(seed: int) -> bytes:
    """A small dense classifier over a [32, 3] window, int8-quantized by TensorFlow."""
    import numpy as np
    import tensorflow as tf

    keras = tf.keras
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((WINDOW, CHANNELS), batch_size=1),
            keras.layers.Reshape((WINDOW * CHANNELS,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(CLASSES, activation="softmax"),
        ]
    )
    rng = np.random.default_rng(seed)
    rep = rng.normal(0, 1.0, size=(64, WINDOW, CHANNELS)).astype(np.float32)

    def representative():
        for x in rep:
            yield [x[None]]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()


def model_tflite(seed: int) -> bytes:
    """Cached under build/cache/boards (the TF conversion is the slow part of these tests)."""
    path = CACHE / f"dense_{WINDOW}x{CHANNELS}_{CLASSES}_seed{seed}.tflite"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _keras_int8(seed)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path.read_bytes()


@pytest.fixture(scope="session")
def bundles() -> dict[int, bytes]:
    """Two different converted models (seed 0 and 1), as deploy would put them on a board."""
    from converters import convert_tflite

    return {seed: convert_tflite(model_tflite(seed)).bundle for seed in (0, 1)}


@pytest.fixture(scope="session")
def tflite_model() -> bytes:
    """The seed-0 int8 .tflite (what `edgeloop train` leaves in a run folder)."""
    return model_tflite(0)


def _read_status(board) -> list[dict]:
    raw: list[str] = []
    try:
        for line in board.console(seconds=120):
            raw.append(line)
    except Exception as exc:  # noqa: BLE001 - the unix port prints its traceback on stdout
        pytest.fail(f"{exc}\n" + "\n".join(raw[-30:]))
    try:
        return [json.loads(line) for line in raw]
    except ValueError:
        pytest.fail("the board printed a line that is not a JSON status:\n" + "\n".join(raw[-30:]))


@pytest.fixture
def read_status():
    """Run the board's main.py; its console as JSON objects (any other line fails, shown)."""
    return _read_status
