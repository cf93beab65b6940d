"""Field windows on disk: DIR/unlabelled/<name>.csv + <name>.json, moved to DIR/<label>/.

A labelled window keeps its sidecar beside it as provenance, gaining "label", "labelled_by"
("key" or "twin") and "labelled_utc"; the dataset reader (trainer.data) reads the CSV and
ignores the JSON. Moves are whole: the sidecar is written at the destination first, then the
CSV is renamed over, then the old sidecar removed, so an interruption never loses a window.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from edgeloop.collect.dataset import check_label
from edgeloop.collect.field import UNLABELLED
from edgeloop.errors import EdgeLoopError

REQUIRED = ("outputs", "guess", "reason", "labels", "channels", "counts_per_unit",
            "sample_rate")
LABEL_KEYS = ("label", "labelled_by", "labelled_utc")


class LabelError(EdgeLoopError):
    """A window or sidecar the labeller cannot use; the message names the file."""


@dataclass
class FieldItem:
    """One field window: its CSV and the sidecar's content."""

    csv: Path
    meta: dict

    @property
    def sidecar(self) -> Path:
        return self.csv.with_suffix(".json")

    @property
    def name(self) -> str:
        return self.csv.stem

    @property
    def twin(self) -> dict | None:
        t = self.meta.get("twin")
        return t if isinstance(t, dict) else None


def load_sidecar(csv_path: Path) -> dict:
    """The sidecar of a window's CSV; LabelError naming the file when missing or damaged."""
    side = csv_path.with_suffix(".json")
    if not side.is_file():
        raise LabelError(f"{side}: missing (every field window is a .csv with its .json "
                         "sidecar; pull the window again with `edgeloop collect --field`)")
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise LabelError(f"{side}: not UTF-8 text (byte {exc.start})") from None
    except ValueError as exc:
        raise LabelError(f"{side}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise LabelError(f"{side}: not a field-window sidecar (a JSON object expected)")
    missing = [k for k in REQUIRED if k not in meta]
    if missing:
        raise LabelError(f"{side}: not a field-window sidecar: missing {', '.join(missing)}")
    if not isinstance(meta["labels"], list) or not isinstance(meta["outputs"], list):
        raise LabelError(f"{side}: 'labels' and 'outputs' must be lists")
    return meta


def pending(root: Path | str) -> list[FieldItem]:
    """Every window waiting in root/unlabelled/, sidecars checked up front (oldest name first)."""
    root = Path(root)
    if not root.is_dir():
        raise LabelError(f"{root}: no such folder")
    folder = root / UNLABELLED
    items = [FieldItem(p, load_sidecar(p)) for p in sorted(folder.glob("*.csv"))]
    orphans = [p for p in sorted(folder.glob("*.json")) if not p.with_suffix(".csv").exists()]
    if orphans:
        raise LabelError(f"{orphans[0]}: a sidecar without its window "
                         f"{orphans[0].with_suffix('.csv').name} (remove it, or pull again)")
    return items


def classes_of(items: list[FieldItem], extra: list[str] | None = None) -> list[str]:
    """The run's classes (the model's labels, in its order; an anomaly model's dataset
    classes), then any extra class the user names."""
    out: list[str] = []
    for it in items:
        for lab in it.meta.get("classes") or it.meta["labels"]:
            if str(lab) not in out:
                out.append(str(lab))
    for lab in extra or []:
        if lab not in out:
            out.append(lab)
    for lab in out:
        try:
            check_label(lab)
        except EdgeLoopError as exc:
            raise LabelError(str(exc)) from None
    return out


def _write_json(path: Path, meta: dict) -> None:
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(json.dumps(meta, indent=1) + "\n")
    os.replace(tmp, path)


def move_to(item: FieldItem, root: Path, label: str, by: str) -> FieldItem:
    """The window into root/<label>/ with its sidecar; returns it where it now is."""
    check_label(label)
    dest = Path(root) / label / item.csv.name
    if dest.exists():
        raise LabelError(f"{dest}: already exists; not overwriting a labelled window")
    dest.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(item.meta, label=label, labelled_by=by,
                labelled_utc=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    _write_json(dest.with_suffix(".json"), meta)
    os.replace(item.csv, dest)
    item.sidecar.unlink(missing_ok=True)
    return FieldItem(dest, meta)


def move_back(item: FieldItem, root: Path) -> FieldItem:
    """Undo a label: the window back into root/unlabelled/, its label keys dropped."""
    dest = Path(root) / UNLABELLED / item.csv.name
    meta = {k: v for k, v in item.meta.items() if k not in LABEL_KEYS}
    _write_json(dest.with_suffix(".json"), meta)
    os.replace(item.csv, dest)
    item.sidecar.unlink(missing_ok=True)
    return FieldItem(dest, meta)
