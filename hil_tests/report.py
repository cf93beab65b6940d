"""Per-scenario artefacts: a PNG timeline (signal, model output, decision, stop, twin health)
and the session's JSON, written under build/hil/<scenario>/."""

from __future__ import annotations

import re
from pathlib import Path

from edgeloop.link.report import plot_timeline
from edgeloop.link.results import SessionResult, save_result


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:120]


def write_artifacts(res: SessionResult, out_dir: Path, name: str) -> tuple[Path, Path]:
    d = out_dir / slug(name)
    png = plot_timeline(res, d / "timeline.png", name)
    js = save_result(res, d / "session.json")
    return png, js
