"""What a HIL session found: one record per window, stops, faults, resets, and the summary.

The result model is plain data (JSON via `to_json`, saved by `save_result`) so reports, the
bench's JUnit properties and the demo read the same figures.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class WindowRecord:
    k: int
    t_end_s: float
    status: str = "pending"  # ok | skipped | lost
    cls: int = -1
    decision: int = 0
    latency_us: int = 0
    heap_free: int = 0
    outputs: list[int] = field(default_factory=list)
    reason: str = ""


@dataclass
class SessionResult:
    sample_rate: float
    window: int
    stride: int
    duration_s: float = 0.0
    windows: list[WindowRecord] = field(default_factory=list)
    stops: list[dict] = field(default_factory=list)  # {"window", "t_s"} stop commands applied
    sensor_faults: list[dict] = field(default_factory=list)
    resets: list[float] = field(default_factory=list)  # sim time of each HELLO after the first
    banners: list[float] = field(default_factory=list)  # boot banners / ROM reset lines seen
    corrupt_frames: int = 0
    pongs: list[dict] = field(default_factory=list)
    timeline: dict[str, list[float]] = field(default_factory=dict)
    fault_at_s: float | None = None
    broken_at_s: float | None = None
    wall_s: float = 0.0
    hello: dict = field(default_factory=dict)
    error: str = ""  # why the run ended early (board exited / went silent), with its output
    samples: np.ndarray | None = None  # the host's int16 encoding of every sample (keep_samples)

    # summary ---------------------------------------------------------------------------------
    @property
    def n_windows(self) -> int:
        return len(self.windows)

    def count(self, status: str) -> int:
        return sum(1 for w in self.windows if w.status == status)

    @property
    def lost(self) -> list[WindowRecord]:
        return [w for w in self.windows if w.status == "lost"]

    @property
    def first_stop_s(self) -> float | None:
        return self.stops[0]["t_s"] if self.stops else None

    @property
    def false_stops(self) -> int:
        """Stops before the fault was injected (or any stop when no fault was injected)."""
        cutoff = self.fault_at_s if self.fault_at_s is not None else float("inf")
        return sum(1 for s in self.stops if s["t_s"] < cutoff)

    @property
    def detection_latency_s(self) -> float | None:
        if self.fault_at_s is None:
            return None
        after = [s["t_s"] for s in self.stops if s["t_s"] >= self.fault_at_s]
        return (after[0] - self.fault_at_s) if after else None

    def lost_reasons(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for w in self.lost:
            out[w.reason] = out.get(w.reason, 0) + 1
        return out

    def summary(self) -> dict:
        lat = [w.latency_us for w in self.windows if w.status == "ok"]
        heap = [w.heap_free for w in self.windows if w.status in ("ok", "skipped")]
        return {
            "duration_s": self.duration_s,
            "wall_s": round(self.wall_s, 3),
            "windows": self.n_windows,
            "answered": self.count("ok"),
            "skipped_sensor_fault": self.count("skipped"),
            "lost": self.count("lost"),
            "lost_reasons": self.lost_reasons(),
            "stops": len(self.stops),
            "first_stop_s": self.first_stop_s,
            "health_at_stop": self.stops[0]["health"] if self.stops else None,
            "false_stops": self.false_stops,
            "fault_at_s": self.fault_at_s,
            "detection_latency_s": self.detection_latency_s,
            "breakdowns": 1 if self.broken_at_s is not None else 0,
            "broken_at_s": self.broken_at_s,
            "sensor_fault_reports": len(self.sensor_faults),
            "board_resets": len(self.resets),
            "boot_banners": len(self.banners),
            "corrupt_frames": self.corrupt_frames,
            "error": self.error,
            "latency_us_max": max(lat) if lat else None,
            "latency_us_median": float(np.median(lat)) if lat else None,
            "heap_free_min": min(heap) if heap else None,
        }

    def to_json(self) -> dict:
        d = self.summary()
        d["windows_detail"] = [asdict(w) for w in self.windows]
        d["stops_detail"] = self.stops
        d["sensor_faults_detail"] = self.sensor_faults
        return d



def save_result(res: SessionResult, path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res.to_json(), indent=1, default=float))
    return path

