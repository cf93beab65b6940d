"""`edgeloop label --from-twin`: label simulated field windows with the twin's own truth.

A window pulled from the virtual board carries, in its sidecar's "twin", the state that made
its samples (edgeloop.twins.TwinRecording -> samples.truth.json -> edgeloop.collect.field):
{"label": the majority state, "purity": its share of the window's samples, "labels": {...}}.
A window that straddles a change of state below `min_purity` is left unlabelled (its label
would be half wrong); a window without truth is an error naming its sidecar.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgeloop.label.store import LabelError, move_to, pending


@dataclass
class TwinLabels:
    labelled: dict[str, int] = field(default_factory=dict)
    mixed: list[Path] = field(default_factory=list)  # below min_purity: left unlabelled

    def describe(self) -> str:
        parts = ", ".join(f"{n} {lab}" for lab, n in sorted(self.labelled.items())) or "none"
        text = f"labelled {sum(self.labelled.values())} window(s) from the twin's truth ({parts})"
        if self.mixed:
            text += (f"; {len(self.mixed)} window(s) span a change of state and stay in "
                     "unlabelled/ (label them by key, or lower --min-purity)")
        return text


def label_from_twin(root: Path | str, min_purity: float = 0.9) -> TwinLabels:
    """Move every window whose twin truth is at least min_purity pure to root/<state>/."""
    if not 0.5 < min_purity <= 1.0:
        raise LabelError(f"--min-purity must be in (0.5, 1], got {min_purity:g}")
    root = Path(root)
    items = pending(root)
    for it in items:  # all checked before anything moves
        t = it.twin
        if t is None or not isinstance(t.get("label"), str) or "purity" not in t:
            raise LabelError(f"{it.sidecar}: no twin truth (\"twin\" is "
                             f"{it.meta.get('twin')!r}): --from-twin needs windows pulled from "
                             "a virtual board playing a twin's recording; label these by key")
    out = TwinLabels()
    for it in items:
        t = it.twin
        assert t is not None
        if float(t["purity"]) < min_purity:
            out.mixed.append(it.csv)
            continue
        move_to(it, root, t["label"], "twin")
        out.labelled[t["label"]] = out.labelled.get(t["label"], 0) + 1
    return out
