"""User datasets: CSV folders (the Edge Impulse layout) and NPZ arrays -> windows and splits.

CSV layout: one file per recording, a header row, one column per channel (names as in the
config's [sensor] channels), an optional timestamp column in milliseconds, the label from a
label column or from the sub-folder (`DATA/<label>/*.csv`) or the file name (`DATA/<label>.*.csv`).
`DATA/training` + `DATA/testing` (Edge Impulse export) or an explicit test folder give the test
split; otherwise train/val/test are drawn per class BY RECORDING, so no recording's windows are
in two splits. Nothing is silently dropped: bad rows, columns, rates and short data are errors
that name the file and line.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from trainer.config import Config
from trainer.errors import TrainerError
from trainer.twins import to_counts

RATE_TOLERANCE = 0.05  # relative: a file's rate vs the config's, and jitter between samples
UNLABELLED = "unlabelled"  # DATA/unlabelled/: field windows waiting for `edgeloop label`


@dataclass
class Rec:
    """One recording (or a labelled run of one file): samples [n, C] in physical units."""

    source: str  # file name (and line range) for messages
    label: str
    data: np.ndarray
    group: str  # recordings sharing a group always land in the same split


@dataclass
class Windows:
    """Windows of int16 counts [n, T, C] with class indices and the recording of each."""

    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, mask: np.ndarray) -> Windows:
        return Windows(self.x[mask], self.y[mask], self.groups[mask], self.classes)


@dataclass
class Splits:
    train: Windows
    val: Windows
    test: Windows
    classes: tuple[str, ...]
    report: dict = field(default_factory=dict)


def _not_utf8(path: Path, exc: UnicodeDecodeError) -> str:
    return (f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start});"
            " save it as a UTF-8 CSV")


def _read_csv(path: Path, cfg: Config, folder_label: str | None) -> list[Rec]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip() for h in next(reader)]
            rows = list(reader)
        except StopIteration:
            raise TrainerError(f"{path}: empty file (expected a header row)") from None
        except UnicodeDecodeError as exc:
            raise TrainerError(_not_utf8(path, exc)) from None
    if len(set(header)) != len(header):
        dup = [h for h, n in Counter(header).items() if n > 1]
        raise TrainerError(f"{path}:1: duplicate column(s) {', '.join(dup)}")
    ts = cfg.timestamp_column if cfg.timestamp_column in header else None
    lab = cfg.label_column if cfg.label_column and cfg.label_column in header else None
    if cfg.label_column and lab is None and folder_label is None:
        raise TrainerError(f"{path}:1: missing label column {cfg.label_column!r}")
    missing = [c for c in cfg.channels if c not in header]
    if missing:
        raise TrainerError(
            f"{path}:1: missing column(s) {', '.join(missing)} (header: {', '.join(header)})"
        )
    extra = [h for h in header if h not in cfg.channels and h not in (ts, lab)]
    if extra:
        raise TrainerError(
            f"{path}:1: extra column(s) {', '.join(extra)}; add them to [sensor] channels "
            "or remove them"
        )
    idx = [header.index(c) for c in cfg.channels]
    if not rows:
        raise TrainerError(f"{path}: no data rows")
    data = np.empty((len(rows), len(idx)))
    stamps = np.empty(len(rows)) if ts else None
    labels: list[str] = []
    for i, row in enumerate(rows):
        line = i + 2
        if len(row) != len(header):
            raise TrainerError(f"{path}:{line}: {len(row)} fields, header has {len(header)}")
        for j, k in enumerate(idx):
            cell = row[k].strip()
            try:
                v = float(cell)
            except ValueError:
                raise TrainerError(
                    f"{path}:{line}: column {cfg.channels[j]!r}: not a number: {cell!r}"
                ) from None
            if not math.isfinite(v):
                raise TrainerError(f"{path}:{line}: column {cfg.channels[j]!r} is {cell} (NaN row)")
            data[i, j] = v
        if ts:
            try:
                stamps[i] = float(row[header.index(ts)])
            except ValueError:
                raise TrainerError(f"{path}:{line}: bad timestamp {row[header.index(ts)]!r}") from None
        if lab:
            labels.append(row[header.index(lab)].strip())
    if stamps is not None and len(stamps) > 1:
        _check_rate(path, stamps, cfg.sample_rate, cfg.source)
    if not lab:
        assert folder_label is not None
        return [Rec(str(path), folder_label, data, str(path))]
    # a label column may change within a file: each run is a recording, one group per file
    out, start = [], 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            if not labels[start]:
                raise TrainerError(f"{path}:{start + 2}: empty label")
            src = f"{path}:{start + 2}-{i + 1}"
            out.append(Rec(src, labels[start], data[start:i], str(path)))
            start = i
    return out


def _check_rate(path: Path, stamps: np.ndarray, rate: float, source: str = "the config") -> None:
    dt = np.diff(stamps)
    if (dt <= 0).any():
        i = int(np.argmax(dt <= 0))
        raise TrainerError(f"{path}:{i + 3}: timestamp does not increase ({stamps[i + 1]:g})")
    med = float(np.median(dt))
    file_rate = 1000.0 / med
    if abs(file_rate - rate) > RATE_TOLERANCE * rate:
        raise TrainerError(
            f"{path}: sample rate {file_rate:.4g} Hz (from timestamps, ms) differs from "
            f"{rate:g} Hz {_rate_origin(source)}"
        )
    bad = np.flatnonzero(np.abs(dt - med) > 0.5 * med)
    if bad.size:
        i = int(bad[0])
        raise TrainerError(
            f"{path}:{i + 3}: sample interval {dt[i]:g} ms where the file's is {med:g} ms "
            "(mixed sample rates or a gap)"
        )


def _rate_origin(source: str) -> str:
    """Where the expected rate came from: the config, or (no edgeloop.toml) the first CSV."""
    if source.endswith(".toml"):
        return f"([sensor] sample_rate in {source}); resample it or fix the config"
    return (f"(the rate of {source}, as there is no edgeloop.toml); all recordings need one rate:"
            " resample it")


def load_csv_folder(root: Path | str, cfg: Config) -> list[Rec]:
    """All recordings under root: <label>/*.csv, <label>.*.csv, or label from a column."""
    root = Path(root)
    if not root.is_dir():
        raise TrainerError(f"{root}: data folder not found")
    # field windows not labelled yet (OUT/unlabelled/, edgeloop label) are no training data
    files = sorted(f for f in root.rglob("*.csv")
                   if UNLABELLED not in f.relative_to(root).parts[:-1])
    if not files:
        raise TrainerError(f"{root}: no .csv files found"
                           + (f" outside {UNLABELLED}/ (label them: `edgeloop label {root}`)"
                              if (root / UNLABELLED).is_dir() else ""))
    recs: list[Rec] = []
    for f in files:
        rel = f.relative_to(root)
        if cfg.label_column:
            folder_label = None
        elif len(rel.parts) >= 2:
            folder_label = rel.parts[-2]
        else:
            folder_label = f.name.split(".")[0]
        recs += _read_csv(f, cfg, folder_label)
    return recs


def load_npz(path: Path | str, cfg: Config) -> list[Rec]:
    """X [n, t, c] (physical units), y [n] (names or indices; optional `classes`, `groups`)."""
    path = Path(path)
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise TrainerError(f"{path}: not a readable .npz: {exc}") from None
    for k in ("X", "y"):
        if k not in z:
            raise TrainerError(f"{path}: missing array {k!r} (has {', '.join(z.files)})")
    x, y = z["X"], z["y"]
    if x.ndim != 3 or x.shape[2] != len(cfg.channels):
        raise TrainerError(
            f"{path}: X must be [n, t, {len(cfg.channels)}] for channels {cfg.channels}, "
            f"got {x.shape}"
        )
    if len(y) != len(x):
        raise TrainerError(f"{path}: X has {len(x)} rows but y has {len(y)}")
    bad = np.flatnonzero(~np.isfinite(x).all(axis=(1, 2)))
    if bad.size:
        raise TrainerError(f"{path}: X[{bad[0]}] contains NaN/inf")
    classes = [str(c) for c in z["classes"]] if "classes" in z else None
    groups = z["groups"] if "groups" in z else np.arange(len(x))
    out = []
    for i in range(len(x)):
        lab = classes[int(y[i])] if classes is not None and y.dtype.kind in "iu" else str(y[i])
        out.append(Rec(f"{path}[{i}]", lab, x[i].astype(np.float64), f"{path}#{groups[i]}"))
    return out


def load_recordings(path: Path | str, cfg: Config) -> list[Rec]:
    p = Path(path)
    if p.suffix == ".npz":
        return load_npz(p, cfg)
    return load_csv_folder(p, cfg)


def window_recordings(recs: list[Rec], cfg: Config, classes: tuple[str, ...]) -> Windows:
    """Cut every recording into windows (size, stride); too-short recordings are errors."""
    xs, ys, gs = [], [], []
    for r in recs:
        n = len(r.data)
        if n < cfg.window:
            raise TrainerError(
                f"{r.source}: {n} samples, fewer than one window ({cfg.window}); "
                "record longer or use a smaller [window] size"
            )
        if r.label not in classes:
            raise TrainerError(f"{r.source}: label {r.label!r} is not in classes {classes}")
        starts = range(0, n - cfg.window + 1, cfg.stride)
        cpu = np.asarray(cfg.counts_per_unit, np.float64)
        over = np.abs(r.data * cpu) > 32768.5  # the rail itself is a sensor saturating
        if over.mean() > 0.01:  # a sensor clips now and then; a wrong scale clips everything
            ch = cfg.channels[int(np.argmax(over.sum(axis=0)))]
            raise TrainerError(
                f"{r.source}: {over.mean():.1%} of the values exceed the int16 sensor range at "
                f"[sensor] counts_per_unit = {cfg.counts_per_unit} (worst: {ch!r}); lower it"
            )
        counts = to_counts(r.data, cpu)
        xs.append(np.stack([counts[s : s + cfg.window] for s in starts]))
        ys += [classes.index(r.label)] * len(starts)
        gs += [r.group] * len(starts)
    return Windows(np.concatenate(xs), np.asarray(ys, np.int64), np.asarray(gs), classes)


def _class_order(recs: list[Rec], cfg: Config) -> tuple[str, ...]:
    found = sorted({r.label for r in recs})
    if cfg.classes is None:
        return tuple(found)
    unknown = [c for c in found if c not in cfg.classes]
    if unknown:
        src = next(r.source for r in recs if r.label == unknown[0])
        raise TrainerError(f"{src}: label {unknown[0]!r} is not in [labels] classes {cfg.classes}")
    return cfg.classes


def split_by_recording(
    recs: list[Rec], val_frac: float, test_frac: float, seed: int
) -> tuple[list[Rec], list[Rec], list[Rec]]:
    """Per class, whole groups (recordings) go to train, val or test; never split apart."""
    rng = np.random.default_rng(seed)
    by_class: dict[str, list[str]] = {}
    for r in recs:
        lst = by_class.setdefault(r.label, [])
        if r.group not in lst:
            lst.append(r.group)
    assign: dict[str, str] = {}
    for label in sorted(by_class):
        groups = [g for g in by_class[label] if g not in assign]
        need = (test_frac > 0) + (val_frac > 0) + 1
        if len(groups) < need:
            raise TrainerError(
                f"class {label!r} has {len(groups)} recording(s); splitting by recording needs "
                f">= {need} (record more, or give a test folder)"
            )
        order = [groups[i] for i in rng.permutation(len(groups))]
        n_test = max(1, round(test_frac * len(order))) if test_frac > 0 else 0
        n_val = max(1, round(val_frac * len(order))) if val_frac > 0 else 0
        for i, g in enumerate(order):
            assign[g] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    parts = {"train": [], "val": [], "test": []}
    for r in recs:
        parts[assign[r.group]].append(r)
    return parts["train"], parts["val"], parts["test"]


def balance_report(splits: dict[str, Windows], classes: tuple[str, ...]) -> dict:
    """Windows per class per split, and the most/least represented ratio of the training set."""
    rep: dict = {}
    for name, w in splits.items():
        counts = np.bincount(w.y, minlength=len(classes))
        rep[name] = {c: int(n) for c, n in zip(classes, counts, strict=True)}
        rep[name + "_recordings"] = int(len(set(w.groups.tolist())))
    tr = np.array(list(rep["train"].values()))
    rep["train_imbalance"] = float(tr.max() / max(tr.min(), 1))
    return rep


def load_splits(
    data: Path | str | Sequence[Path | str],
    cfg: Config,
    test: Path | str | None = None,
    val_frac: float = 0.2,
    test_frac: float = 0.2,
    seed: int = 0,
    min_windows: int = 4,
) -> Splits:
    """Load, split by recording, window; errors for classes with too few windows.

    `data` is one dataset or several (trainer.sources): each is split on its own, the first
    exactly as if alone; report["sources"] says which recording went where."""
    from trainer.sources import (
        SourceSplit,
        as_sources,
        check_sources_agree,
        lenient_split,
        source_toml,
    )

    sources = as_sources(data)
    if len(sources) > 1:
        check_sources_agree(cfg, sources)
    test_recs = load_recordings(test, cfg) if test is not None else None
    loaded: list[tuple[Path, list[Rec], list[Rec] | None]] = []
    for src in sources:
        root, own_test = src, None
        if test is None and root.is_dir() and (root / "training").is_dir() and (
                root / "testing").is_dir():  # an Edge Impulse export
            root, own_test = root / "training", root / "testing"
        recs = load_recordings(root, cfg)
        loaded.append((src, recs, load_recordings(own_test, cfg) if own_test else None))
    everything = [r for _, recs, own in loaded for r in recs + (own or [])] + (test_recs or [])
    classes = _class_order(everything, cfg)
    if cfg.task == "classify" and len(classes) < 2:  # e.g. --data pointed at one class's folder
        raise TrainerError(
            f"{sources[0]}: only one class ({', '.join(classes) or 'none'}) to classify; give "
            "the folder that holds one sub-folder per class (or a label column)"
        )
    parts: list[tuple[SourceSplit, list[Rec], list[Rec], list[Rec]]] = []
    for i, (src, recs, own_test) in enumerate(loaded):
        split = split_by_recording if i == 0 else lenient_split
        rseed: int | list[int] = seed if i == 0 else [seed, i]
        if test_recs is not None or own_test is not None:
            tr, va, _ = split(recs, val_frac, 0.0, rseed)
            te = own_test or []
        else:
            tr, va, te = split(recs, val_frac, test_frac, rseed)
        info = SourceSplit(src, source_toml(src))
        for name, rs in (("train", tr), ("val", va), ("test", te)):
            info.groups[name] = sorted({r.group for r in rs})
        parts.append((info, tr, va, te))
    tr = [r for _, a, _, _ in parts for r in a]
    va = [r for _, _, b, _ in parts for r in b]
    te = test_recs if test_recs is not None else [r for *_, c in parts for r in c]
    w = {n: window_recordings(r, cfg, classes) for n, r in (("train", tr), ("val", va), ("test", te))}
    anomaly = cfg.task == "anomaly"
    for name, win in w.items():
        counts = np.bincount(win.y, minlength=len(classes))
        need = min_windows if name == "train" else 1
        for ci, n in enumerate(counts):
            # an anomaly model trains on the healthy class only; the others may be absent
            if anomaly and (name != "train" or classes[ci] != cfg.healthy):
                continue
            if n < need:
                raise TrainerError(
                    f"class {classes[ci]!r} has {n} window(s) in the {name} split (need >= "
                    f"{need}); record more data or reduce [window] size/stride"
                )
    report = balance_report(w, classes)
    for info, *_ in parts:
        for name, win in w.items():
            info.windows[name] = int(np.isin(win.groups, info.groups[name]).sum())
    if test_recs is not None:
        report["test_source"] = str(test)
    report["sources"] = [info.to_report() for info, *_ in parts]
    return Splits(w["train"], w["val"], w["test"], classes, report)
