"""Several datasets in one run: `edgeloop train --data base --data field ...`.

Each source is loaded and split by recording on its own: the first (the base) exactly as if it
were trained alone with the same seed, so its test split is the test set of a run trained on it
alone (the gate's "original test set"); each further source (field windows from a board, a new
site's recordings) with its own seed, leniently (a class with one recording trains, with two
one of them is held out). A recording never lands in two splits. The sources must describe the
same sensor: every edgeloop.toml among them must agree with the run's config on sample rate,
channels and units, or the error says which differs and where. The run's report records every
source and which of its recordings went to which split (RUN/report.json "sources").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from trainer.config import Config, load_config
from trainer.errors import TrainerError

RATE_TOLERANCE = 0.05  # relative, as trainer.data: a board samples at 999.7 Hz, not 1000
SPLITS = ("train", "val", "test")

DataArg = Path | str | Sequence[Path | str]


def as_sources(data: DataArg) -> list[Path]:
    """One --data or several, as paths; the same folder twice is refused (its recordings would
    be counted twice and could land in two splits)."""
    items = [data] if isinstance(data, (str, Path)) else list(data)
    if not items:
        raise TrainerError("no --data given")
    paths = [Path(p) for p in items]
    seen: dict[Path, Path] = {}
    for p in paths:
        key = p.resolve()
        if key in seen:
            raise TrainerError(f"--data {p} is given twice (also as {seen[key]})")
        seen[key] = p
    return paths


def source_toml(source: Path) -> Path | None:
    """The edgeloop.toml describing a source (a folder's own, or beside an .npz)."""
    folder = source if source.is_dir() else source.parent
    path = folder / "edgeloop.toml"
    return path if path.is_file() else None


def _units(cfg: Config) -> tuple[str, ...] | None:
    if not cfg.sensors:
        return None
    return tuple(u for s in cfg.sensors for u in s.units)


def _cpu(cfg: Config) -> tuple[float, ...]:
    c = cfg.counts_per_unit
    return tuple(c) if isinstance(c, tuple) else (float(c),) * len(cfg.channels)


def disagreement(cfg: Config, other: Config) -> str:
    """What two configs disagree on among rate, channels and units ("" if nothing)."""
    if abs(other.sample_rate - cfg.sample_rate) > RATE_TOLERANCE * cfg.sample_rate:
        return (f"[sensor] sample_rate {other.sample_rate:g} Hz differs from "
                f"{cfg.sample_rate:g} Hz in {cfg.source}")
    if tuple(other.channels) != tuple(cfg.channels):
        return (f"[sensor] channels {list(other.channels)} differ from {list(cfg.channels)} "
                f"in {cfg.source}")
    a, b = _cpu(cfg), _cpu(other)
    if any(abs(x - y) > 1e-9 * x for x, y in zip(a, b, strict=True)):
        return (f"[sensor] counts_per_unit {list(b)} differs from {list(a)} in {cfg.source} "
                "(the values are in other units or another sensor range)")
    ua, ub = _units(cfg), _units(other)
    if ua is not None and ub is not None and ua != ub:
        return f"[[sensors]] units {list(ub)} differ from {list(ua)} in {cfg.source}"
    return ""


def check_sources_agree(cfg: Config, sources: Sequence[Path]) -> None:
    """Refuse sources whose own edgeloop.toml describes another sensor than the run's config."""
    for src in sources:
        toml = source_toml(src)
        if toml is None or (cfg.source.endswith(".toml") and Path(cfg.source).resolve()
                            == toml.resolve()):
            continue
        diff = disagreement(cfg, load_config(toml))
        if diff:
            raise TrainerError(
                f"{toml}: {diff}: the datasets of one run must share rate, channels and units "
                f"(resample or re-record {src}, or train it on its own)"
            )


@dataclass
class SourceSplit:
    """Which of one source's recordings (groups) went to which split."""

    path: Path
    toml: Path | None
    groups: dict[str, list[str]] = field(default_factory=dict)  # split -> groups
    windows: dict[str, int] = field(default_factory=dict)

    def to_report(self) -> dict:
        return {
            "path": str(self.path), "abs": str(self.path.resolve()),
            "config": str(self.toml) if self.toml else None,
            "recordings": {s: len(self.groups.get(s, [])) for s in SPLITS},
            "windows": {s: int(self.windows.get(s, 0)) for s in SPLITS},
            "split": {s: sorted(relative_group(g, self.path) for g in self.groups.get(s, []))
                      for s in SPLITS},
        }


def relative_group(group: str, root: Path | str) -> str:
    """A recording's group as a path inside its source (how the report names it)."""
    root = str(Path(root))
    if group.startswith(root) and group != root:
        return group[len(root):].lstrip("/\\")
    return group


def lenient_split(recs: list, val_frac: float, test_frac: float,
                  seed: int | list[int]) -> tuple[list, list, list]:
    """A further source's split: like split_by_recording where a class has enough recordings;
    a class with fewer trains on its only one, or holds out one of two (for the gate)."""
    from trainer.data import split_by_recording

    by_class: dict[str, list[str]] = {}
    for r in recs:
        lst = by_class.setdefault(r.label, [])
        if r.group not in lst:
            lst.append(r.group)
    need = (test_frac > 0) + (val_frac > 0) + 1
    small = {g: lab for lab, gs in by_class.items() if len(gs) < need for g in gs}
    big = [r for r in recs if r.group not in small]
    tr, va, te = split_by_recording(big, val_frac, test_frac, seed) if big else ([], [], [])
    rng = np.random.default_rng(seed)
    assign: dict[str, str] = {}
    for label in sorted(set(small.values())):
        gs = [g for g, lab in small.items() if lab == label]
        gs = [gs[i] for i in rng.permutation(len(gs))]
        held = "test" if test_frac > 0 else "val" if val_frac > 0 else "train"
        for i, g in enumerate(gs):
            assign[g] = held if (len(gs) == 2 and i == 0) else "train"
    for r in recs:
        if r.group in small:
            {"train": tr, "val": va, "test": te}[assign[r.group]].append(r)
    return tr, va, te


def held_out_recordings(report: dict) -> list[tuple[str, list[str]]]:
    """(source path, its test recordings) of a run's report; [] for runs from before sources."""
    out = []
    for s in report.get("sources", ()):
        path = s["abs"] if Path(s["abs"]).exists() else s["path"]
        out.append((path, list(s["split"]["test"])))
    return out
