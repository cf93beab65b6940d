"""Helpers for tests/collect: `edgeloop collect` in a child process, a dataset read back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from edgeloop.link.transport import ByteStream

CLI = "import sys\nfrom edgeloop.cli import main\nsys.argv = ['edgeloop', *sys.argv[1:]]\nmain()\n"


def cli_args(*args: str) -> list[str]:
    return [sys.executable, "-c", CLI, "collect", *args]


def run_cli(*args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(cli_args(*args), capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)


def read_counts(out: Path) -> dict[str, list[tuple[Path, np.ndarray]]]:
    """Every recording in a dataset as the trainer reads it, back in sensor counts."""
    from trainer.config import load_config
    from trainer.data import load_csv_folder

    cfg = load_config(out / "edgeloop.toml")
    cpu = np.asarray(cfg.counts_per_unit, np.float64)
    found: dict[str, list] = {}
    for r in load_csv_folder(out, cfg):
        counts = np.rint(r.data * cpu).astype(np.int64)
        assert np.abs(r.data * cpu - counts).max() < 1e-3  # the CSV gives back exact counts
        found.setdefault(r.label, []).append((Path(r.source), counts.astype(np.int16)))
    return found


def board_samples(board_dir: Path, channels: int = 3) -> np.ndarray:
    """What the virtual board's simulated chips played (the twin, in counts)."""
    return np.fromfile(board_dir / "collect.s16", "<i2").reshape(-1, channels)


def offset_in(haystack: np.ndarray, rec: np.ndarray) -> int:
    """Where rec sits in haystack as one contiguous slice (asserts it does)."""
    hits = np.flatnonzero((haystack[: len(haystack) - len(rec) + 1] == rec[0]).all(axis=1))
    for h in hits:
        if np.array_equal(haystack[h:h + len(rec)], rec):
            return int(h)
    raise AssertionError("the recording is not a contiguous slice of what the sensor saw")


def no_partials(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.name.endswith(".part")]


class Garbled(ByteStream):
    """A board's byte stream with bytes flipped once `after` bytes have passed (a noisy line)."""

    def __init__(self, inner: ByteStream, after: int, flips: int = 3) -> None:
        self.inner, self.after, self.flips = inner, after, flips
        self.name = inner.name
        self.seen = 0

    def start(self, on_bytes, on_eof, on_text=None) -> None:
        def noisy(data: bytes) -> None:
            if self.flips and self.seen + len(data) > self.after:
                b = bytearray(data)
                i = max(0, self.after - self.seen)
                for k in range(min(self.flips, len(b) - i)):
                    b[i + k] ^= 0x5A
                self.flips = 0
                data = bytes(b)
            self.seen += len(data)
            on_bytes(data)

        self.inner.start(noisy, on_eof, on_text)

    def write(self, data: bytes) -> None:
        self.inner.write(data)

    def restart(self, hard: bool = False, farewell: bytes = b"") -> str:
        return self.inner.restart(hard, farewell)

    def close(self) -> None:
        self.inner.close()
