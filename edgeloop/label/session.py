"""The labeller's state: which window is shown, a key per class, skip and undo.

Driven by keys (`press`), so the terminal front end (edgeloop/commands/label.py) and the tests
run the same code: the front end reads a key and redraws, a test passes a list of keys.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from edgeloop.label.store import FieldItem, LabelError, classes_of, move_back, move_to, pending

SKIP, UNDO, QUIT = "s", "u", "q"
_KEYS = "1234567890abcdefghijklmnoprtvwxyz"  # s, u, q are the commands


def key_map(classes: list[str]) -> dict[str, str]:
    """key -> class: 1..9, 0, then letters (s skip, u undo, q quit are never a class)."""
    if len(classes) > len(_KEYS):
        raise LabelError(f"{len(classes)} classes; the labeller has keys for {len(_KEYS)}")
    return dict(zip(_KEYS, classes, strict=False))


@dataclass
class Labeller:
    """Windows of root/unlabelled/ one at a time; a class key moves the shown one to
    root/<class>/, s skips it (it stays unlabelled), u undoes the last step, q quits."""

    root: Path
    extra_classes: list[str] = field(default_factory=list)
    items: list[FieldItem] = field(init=False)
    classes: list[str] = field(init=False)
    keys: dict[str, str] = field(init=False)
    pos: int = 0
    history: list[tuple[str, int, FieldItem]] = field(default_factory=list)
    labelled: dict[str, int] = field(default_factory=dict)
    skipped: int = 0
    quit: bool = False

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.items = pending(self.root)
        self.classes = classes_of(self.items, self.extra_classes)
        self.keys = key_map(self.classes)

    @property
    def current(self) -> FieldItem | None:
        return None if self.quit or self.pos >= len(self.items) else self.items[self.pos]

    @property
    def done(self) -> bool:
        return self.current is None

    def press(self, key: str) -> str:
        """One key; what it did, as a short message for the status line."""
        item = self.current
        if key == QUIT:
            self.quit = True
            return "quit"
        if key == UNDO:
            return self._undo()
        if item is None:
            return "nothing left to label (u undoes, q quits)"
        if key == SKIP:
            self.history.append(("skip", self.pos, item))
            self.skipped += 1
            self.pos += 1
            return f"skipped {item.name}"
        label = self.keys.get(key)
        if label is None:
            return f"key {key!r} is no class (see the keys below)"
        moved = move_to(item, self.root, label, "key")
        self.items[self.pos] = moved
        self.history.append(("label", self.pos, moved))
        self.labelled[label] = self.labelled.get(label, 0) + 1
        self.pos += 1
        return f"{item.name} -> {label}/"

    def _undo(self) -> str:
        if not self.history:
            return "nothing to undo"
        what, pos, item = self.history.pop()
        if what == "label":
            label = item.meta["label"]
            self.items[pos] = move_back(item, self.root)
            self.labelled[label] -= 1
            if not self.labelled[label]:
                del self.labelled[label]
            msg = f"undone: {item.name} back to unlabelled/"
        else:
            self.skipped -= 1
            msg = f"undone: skip of {item.name}"
        self.pos = pos
        self.quit = False
        return msg

    def run(self, keys: Iterable[str], show: Callable[[Labeller, str], None] | None = None) -> None:
        """Press keys until they run out, q, or (when no undo may follow) all are labelled."""
        message = ""
        if show is not None:
            show(self, message)
        for key in keys:
            message = self.press(key)
            if show is not None:
                show(self, message)
            if self.quit:
                break

    def summary(self) -> str:
        left = len(list((self.root / "unlabelled").glob("*.csv")))
        parts = ", ".join(f"{n} {lab}" for lab, n in sorted(self.labelled.items())) or "none"
        return f"labelled {sum(self.labelled.values())} window(s) ({parts}); {left} left unlabelled"
