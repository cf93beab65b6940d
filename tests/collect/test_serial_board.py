"""`edgeloop collect --port` at mpremote's and pyserial's boundary: the firmware is copied with
mpremote's file calls, the collect script is started from the raw REPL, and its frames come
over a serial object. Behind the fakes a real MicroPython process runs the script (its stdin and
stdout are the serial line), so everything EdgeLoop sends to a real board runs for real."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

import mpremote.transport_serial
import pytest
from factory.collecting import offset_in, read_counts

from edgeloop.boards import get_board
from edgeloop.collect.dataset import Dataset
from edgeloop.collect.session import Session
from edgeloop.collect.start import Source, load_sensor_config, open_board, sensor_part
from edgeloop.collect.twin import twin_samples
from edgeloop.firmware import FIRMWARE_DIR
from edgeloop.vboard import VirtualBoard, mpy_arch


class PipeSerial:
    """pyserial's read/write/in_waiting/timeout over a process's stdout/stdin."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.buf = bytearray()
        self.cond = threading.Condition()
        self.timeout = None
        self.dtr = self.rts = False

    def attach(self, proc: subprocess.Popen) -> None:
        self.proc = proc

        def pump() -> None:
            while data := os.read(proc.stdout.fileno(), 65536):
                with self.cond:
                    self.buf += data
                    self.cond.notify_all()

        threading.Thread(target=pump, daemon=True).start()

    @property
    def in_waiting(self) -> int:
        return len(self.buf)

    def read(self, n: int = 1) -> bytes:
        with self.cond:
            if not self.buf:
                self.cond.wait(self.timeout or 0.05)
            out, self.buf[:] = bytes(self.buf[:n]), self.buf[n:]
            return out

    def write(self, data: bytes) -> None:
        if self.proc is not None:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()


class Mpremote:
    """mpremote's SerialTransport surface over a virtual board's folder and processes."""

    root: Path

    def __init__(self, device: str, baudrate: int = 115200, **kw: object) -> None:
        self.board = VirtualBoard(self.root)
        self.serial = PipeSerial()
        self.in_raw_repl = False
        self.started: list[str] = []

    def enter_raw_repl(self, soft_reset: bool = True) -> None:
        self.in_raw_repl = True

    def exec_raw(self, command: str, timeout: float = 10, data_consumer: object = None):
        res = self.board.run(command)
        err = "" if res.returncode == 0 else res.stdout + res.stderr
        return res.stdout.encode(), err.encode()

    def exec_raw_no_follow(self, command: str) -> None:
        self.started.append(command)
        script = self.board.root / "_started.py"
        script.write_text(command)
        self.serial.attach(self.board.spawn(script.name))

    def fs_writefile(self, dest: str, data: bytes, chunk_size: int = 256, **kw: object) -> None:
        (self.board.root / dest).write_bytes(data)

    def fs_readfile(self, src: str, chunk_size: int = 256, **kw: object) -> bytes:
        return (self.board.root / src).read_bytes()

    def close(self) -> None:
        p = self.serial.proc
        if p is not None and p.poll() is None:
            p.kill()
            p.wait()


@pytest.fixture
def port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    if mpy_arch() != get_board("virtual").mpy_arch:
        pytest.skip("the serial stand-in runs x64 .mpy files; this board executable is "
                    f"{mpy_arch()}")
    Mpremote.root = tmp_path / "board"
    Mpremote.root.mkdir()
    monkeypatch.setattr(mpremote.transport_serial, "SerialTransport", Mpremote)
    p = tmp_path / "ttyUSB0"
    p.write_text("")
    return str(p)


def test_collect_over_a_serial_port(tmp_path, port):
    cfg = load_sensor_config(None, "rotating_machine")
    # no machine.I2C behind this stand-in board: its "sensor" is the simulated chip (simhw/,
    # which collect never copies to a real board) playing samples.s16
    samples = twin_samples("rotating_machine", "healthy", 20, 1000.0, cfg.channels, 2048.0)
    (Mpremote.root / "samples.s16").write_bytes(samples)
    shutil.copytree(FIRMWARE_DIR / "simhw", Mpremote.root / "simhw")
    src = Source(port=port, baud=115200, profile="virtual")
    link, meta = open_board(src, cfg, 0)
    copied = sorted(p.name for p in Mpremote.root.rglob("*.mpy"))
    assert "collect.mpy" in copied and "hardware.mpy" in copied
    assert (Mpremote.root / "collect.json").is_file() and meta["baud"] == 115200
    session = Session(link, Dataset(tmp_path / "data", cfg, port, meta), baud=115200)
    assert session.budget.fits and "58% of 115200 baud" in session.budget.describe()
    try:
        session.streamed("healthy", 1500, 2, on_gap="restart")
    finally:
        link.close()
    assert link.link.name == f"board on {port}"
    import numpy as np

    played = np.frombuffer(samples, "<i2").reshape(-1, 3)
    recs = read_counts(tmp_path / "data")["healthy"]
    assert len(recs) == 2
    for _, counts in recs:
        assert counts.shape == (1500, 3)
        offset_in(played, counts)
    assert sensor_part(cfg)["sensors"][0]["driver"] == "mpu6050"
