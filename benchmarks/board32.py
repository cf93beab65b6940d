"""The 32-bit virtual board the benches use for figures a real ESP32 would give (its word size,
so its object sizes): micropython-esp32sem, from $EDGELOOP_ESP32SEM or beside the clone (CI's
shared/tools). Never committed; a bench without it says so."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def esp32sem() -> str | None:
    env = os.environ.get("EDGELOOP_ESP32SEM")
    if env and Path(env).is_file():
        return env
    for up in (ROOT.parent, ROOT.parent.parent):  # CI: shared/ beside the clone
        beside = up / "shared" / "tools" / "micropython-esp32sem"
        if beside.is_file():
            return str(beside)
    return None
