"""OUT/summary.json: what a HIL run tested, on which board, with which model, and how every
scenario came out (its pass criteria, outcome and key figures).

The file is written when the run starts (`interrupted: true`, `complete: false`), again after
every scenario, and a last time when the run ends: a run cut off by Ctrl-C, a crash or a kill
leaves a summary that says it is incomplete, never one that reads like a pass.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import time
from pathlib import Path
from typing import Any

# The figures a reader looks for first, from each session's SessionResult.summary().
KEY_FIGURES = ("duration_s", "wall_s", "windows", "answered", "lost", "lost_reasons",
               "skipped_sensor_fault", "stops", "false_stops", "fault_at_s",
               "detection_latency_s", "breakdowns", "sensor_fault_reports", "board_resets",
               "latency_us_median", "latency_us_max", "heap_free_min", "lost_samples",
               "duplicated_samples", "overruns", "error",
               "samples", "lost_reported", "skipped", "stride_us", "busy_us_median",
               "busy_us_max", "lag_max", "alerts", "switchings", "actuator_faults")


def criteria_of(item: Any) -> str:
    """A scenario's pass criteria: its `criteria` marker, else the paragraph of its module
    docstring that starts with "Pass" (each scenario file states it there)."""
    mark = item.get_closest_marker("criteria")
    if mark is not None and mark.args:
        return str(mark.args[0])
    doc = inspect.getdoc(getattr(item, "module", None)) or ""
    for para in doc.split("\n\n"):
        if para.lstrip().startswith("Pass"):
            return " ".join(para.split())
    return ""


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class RunSummary:
    """The summary of one HIL run, kept on disk as it goes."""

    def __init__(self, path: Path, board: dict[str, Any]) -> None:
        self.path = Path(path)
        self.t0 = time.time()
        self.data: dict[str, Any] = {
            "complete": False,
            "interrupted": True,  # until the run ends normally
            "interrupted_reason": "the run has not finished (still running, or killed)",
            "started_utc": _utc(self.t0),
            "finished_utc": None,
            "wall_s": None,
            "exit_status": None,
            "board": board,
            "model": None,
            "counts": {},
            "scenarios": [],
        }
        self.write()

    def set_board(self, **facts: Any) -> None:
        self.data["board"].update(facts)
        self.write()

    def set_model(self, model: dict[str, Any]) -> None:
        self.data["model"] = model
        self.write()

    def scenario(self, entry: dict[str, Any]) -> None:
        self.data["scenarios"].append(entry)
        counts: dict[str, int] = {}
        for s in self.data["scenarios"]:
            counts[s["outcome"]] = counts.get(s["outcome"], 0) + 1
        self.data["counts"] = counts
        self.write()

    def finish(self, exit_status: int, interrupted: str | None) -> None:
        now = time.time()
        self.data.update(finished_utc=_utc(now), wall_s=round(now - self.t0, 1),
                         exit_status=exit_status, complete=interrupted is None,
                         interrupted=interrupted is not None, interrupted_reason=interrupted)
        self.write()

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.data, indent=1, default=_jsonable) + "\n")
        os.replace(tmp, self.path)


def figures(summaries: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Key figures of a scenario from its sessions' summaries: per session, and the worst case
    over them (max latency and lost, min heap, sum of false stops)."""
    per = [{"session": name} | {k: _round(s.get(k)) for k in KEY_FIGURES}
           for name, s in summaries]
    if not per:
        return {}

    def vals(key: str) -> list:
        return [p[key] for p in per if isinstance(p.get(key), int | float)]

    worst: dict[str, Any] = {}
    for key, pick in (("detection_latency_s", max), ("latency_us_max", max),
                      ("latency_us_median", max), ("heap_free_min", min)):
        v = vals(key)
        worst[key] = pick(v) if v else None
    for key in ("false_stops", "stops", "lost", "windows", "breakdowns", "lost_samples",
                "duplicated_samples", "overruns"):
        worst[key] = sum(vals(key))
    worst["simulated_s"] = round(sum(vals("duration_s")), 1)
    return worst | {"sessions": per}


def _round(v: Any) -> Any:
    return round(v, 3) if isinstance(v, float) else v


def _utc(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _jsonable(v: Any) -> Any:
    if hasattr(v, "item"):  # numpy scalars
        return v.item()
    return str(v)
