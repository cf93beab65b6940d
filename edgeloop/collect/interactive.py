"""Interactive collection: a live view of the incoming channels, keys to record and label.

Keys: Enter starts a recording / stops it (it is written at once); `l` edits the label (type
it, Enter to take it, Esc to keep the old one); 1..9 pick one of --labels; `q` quits (a
recording still open is dropped, like Ctrl-C). `Controller` is the state machine, fed one
key at a time, so it is tested without a terminal; `run_interactive` adds the terminal (keys
read in cbreak mode) and the rich view. Samples lost mid-recording split it: the part before
the gap is kept when it is at least half a second long, recording goes on after it.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable

import numpy as np

from edgeloop.collect.dataset import check_label, units
from edgeloop.collect.errors import CollectError
from edgeloop.collect.session import Session

ENTER = ("\r", "\n")
ESC = "\x1b"
BACKSPACE = ("\x7f", "\b")


class Controller:
    """idle -> recording (Enter) -> idle (Enter: the take is written); `l` edits the label."""

    def __init__(self, session: Session, label: str, quick: list[str] | None = None) -> None:
        self.session = session
        self.label = check_label(label)
        self.quick = list(quick or [])
        self.editing: str | None = None  # the label being typed
        self.quit = False
        self.message = ""
        self.counts: Counter[str] = Counter()
        self.rec = session.start_stream(on_gap="split")
        self.rec.min_samples = max(1, round(session.info.rate_hz / 2))
        session.on_take = self._taken

    @property
    def state(self) -> str:
        if self.editing is not None:
            return "editing"
        return "recording" if self.rec.recording else "idle"

    def _taken(self, take, path) -> None:
        self.counts[take.label] += 1
        self.message = f"wrote {path.name} ({len(take.samples):,} samples, {take.rate_hz:.2f} Hz)"

    def key(self, k: str) -> None:
        if self.editing is not None:
            self._edit(k)
        elif k in ENTER:
            if self.rec.recording:
                take = self.rec.stop()
                if take is None:
                    self.message = "too short: not written"
                else:
                    self.session._write(take)
            else:
                self.rec.start(self.label, None)
                self.message = f"recording {self.label!r}"
        elif k in ("l", "L"):
            self.editing = ""
        elif k.isdigit() and 1 <= int(k) <= len(self.quick) and not self.rec.recording:
            self.label = self.quick[int(k) - 1]
            self.message = f"label {self.label!r}"
        elif k in ("q", "Q"):
            self.rec.abort()
            self.quit = True

    def _edit(self, k: str) -> None:
        assert self.editing is not None
        if k in ENTER:
            try:
                new = check_label(self.editing)
            except CollectError as exc:
                self.message = str(exc)
            else:
                if self.rec.recording:  # a new label ends the take under the old one
                    self.key("\r")
                self.label = new
                self.message = f"label {new!r}"
            self.editing = None
        elif k == ESC:
            self.editing = None
        elif k in BACKSPACE:
            self.editing = self.editing[:-1]
        elif k.isprintable():
            self.editing += k

    def run(self, next_key: Callable[[], str | None],
            on_tick: Callable[[np.ndarray | None], None] | None = None) -> None:
        """Pump the stream until `q`; keys are taken between frames."""

        def tick(rec, latest) -> None:
            while (k := next_key()) is not None and not self.quit:
                self.key(k)
            if on_tick:
                on_tick(latest)

        self.session.on_tick = tick
        try:
            self.session.pump(lambda: self.quit)
        finally:
            self.rec.abort()
            self.session.stop_stream()


class View:
    """The live view: each channel's latest value, range over the last second, a sparkline."""

    BARS = " ▁▂▃▄▅▆▇█"

    def __init__(self, ctl: Controller) -> None:
        self.ctl = ctl
        cfg = ctl.session.dataset.cfg
        self.channels = list(cfg.channels)
        self.units = units(cfg)
        self.cpu = np.broadcast_to(np.asarray(cfg.counts_per_unit, np.float64),
                                   (len(self.channels),))
        n = max(8, int(ctl.session.info.rate_hz))
        self.recent: deque[np.ndarray] = deque(maxlen=n)

    def add(self, latest: np.ndarray | None) -> None:
        if latest is not None:
            self.recent.extend(latest / self.cpu)

    def render(self):
        from rich.markup import escape
        from rich.table import Table

        ctl = self.ctl
        s = ctl.session
        t = Table(expand=True, show_edge=False)
        for col in ("channel", "value", "min (1 s)", "max (1 s)", "last second"):
            t.add_column(col, justify="left" if col in ("channel", "last second") else "right",
                         no_wrap=True, overflow="crop")
        x = np.array(self.recent) if self.recent else np.zeros((0, len(self.channels)))
        for i, name in enumerate(self.channels):
            if len(x):
                v = x[:, i]
                t.add_row(escape(f"{name} [{self.units[i]}]"), f"{v[-1]:.4g}", f"{v.min():.4g}",
                          f"{v.max():.4g}", self._spark(v))
            else:
                t.add_row(name, "-", "-", "-", "")
        state = ctl.state
        if state == "recording":
            head = (f"[bold red]REC[/] {escape(repr(ctl.label))} {ctl.rec.have / s.info.rate_hz:6.1f} s "
                    f"({ctl.rec.have:,} samples)")
        elif state == "editing":
            head = (f"[bold]new label:[/] {escape(ctl.editing or '')}_  (Enter to take it, Esc "
                    f"to keep {escape(repr(ctl.label))})")
        else:
            head = f"[green]idle[/] label {escape(repr(ctl.label))}"
        counts = ", ".join(f"{k}: {v}" for k, v in sorted(ctl.counts.items())) or "none yet"
        quick = "  " + " ".join(f"{i + 1}={q}" for i, q in enumerate(ctl.quick)) if ctl.quick else ""
        foot = (f"written: {counts} | {s.stats.samples:,} samples in, lost {s.stream.lost}, "
                f"corrupt frames {s.link.corrupt}\n[dim]Enter start/stop  l label{escape(quick)}  "
                f"q quit[/]  {escape(ctl.message)}")
        return _stack(head, t, foot)

    def _spark(self, v: np.ndarray, width: int = 30) -> str:
        if len(v) > width:
            v = v[-(len(v) // width) * width:].reshape(width, -1).mean(axis=1)
        lo, hi = float(v.min()), float(v.max())
        if hi - lo < 1e-12:
            return self.BARS[1] * len(v)
        idx = ((v - lo) / (hi - lo) * (len(self.BARS) - 1)).round().astype(int)
        return "".join(self.BARS[i] for i in idx)


def _stack(head: str, table, foot: str):
    from rich.console import Group
    from rich.text import Text

    return Group(Text.from_markup(head), table, Text.from_markup(foot))


def _key_reader(keys: queue.Queue[str], stop: threading.Event) -> None:
    """Characters from the terminal, one at a time (cbreak mode), into `keys`."""
    import os
    import select

    fd = sys.stdin.fileno()
    while not stop.is_set():
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            ch = os.read(fd, 1).decode(errors="replace")
            if not ch:
                return
            keys.put(ch)


def run_interactive(session: Session, label: str, quick: list[str], con) -> None:
    """The terminal session: cbreak keys, the live view redrawn ~10 times a second."""
    if not sys.stdin.isatty():
        raise CollectError("interactive collection needs a terminal (keys: Enter, l, q); "
                           "without one give --label and --seconds")
    import termios
    import tty

    from rich.live import Live

    ctl = Controller(session, label, quick)
    view = View(ctl)
    keys: queue.Queue[str] = queue.Queue()
    stop = threading.Event()
    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd)
    tty.setcbreak(fd)
    reader = threading.Thread(target=_key_reader, args=(keys, stop), daemon=True)
    reader.start()
    last = 0.0

    def next_key() -> str | None:
        try:
            return keys.get_nowait()
        except queue.Empty:
            return None

    try:
        with Live(view.render(), console=con, refresh_per_second=10, transient=False) as live:
            def on_tick(latest) -> None:
                nonlocal last
                view.add(latest)
                if time.monotonic() - last > 0.1:
                    last = time.monotonic()
                    live.update(view.render())

            ctl.run(next_key, on_tick)
            live.update(view.render())
    finally:
        stop.set()
        termios.tcsetattr(fd, termios.TCSADRAIN, old)
