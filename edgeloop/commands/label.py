"""`edgeloop label DIR`: label the field windows waiting in DIR/unlabelled/ (a key per class),
or with the twin's truth (--from-twin); labelled windows join DIR/<label>/ for `train`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from edgeloop.errors import EdgeLoopError


def label(
    data: Annotated[Path, typer.Argument(help="dataset folder holding unlabelled/ field windows")],
    from_twin: Annotated[
        bool, typer.Option("--from-twin", help="label by the simulated twin's truth (windows "
                           "pulled from a virtual board)")
    ] = False,
    min_purity: Annotated[
        float, typer.Option("--min-purity", help="--from-twin: the share of a window's samples "
                            "its state must have")
    ] = 0.9,
    classes: Annotated[
        str | None, typer.Option(help="more classes than the model's, comma-separated (e.g. a "
                                 "new fault)")
    ] = None,
    png: Annotated[
        bool, typer.Option("--png", help="also plot the shown window to DIR/.label/window.png")
    ] = False,
) -> None:
    """Label field windows: each window's channels, the model's guess; a key per class, s
    skip, u undo, q quit. Labelled windows move to DIR/<label>/ with their .json."""
    con = Console()
    if from_twin:
        from edgeloop.label.twin import label_from_twin

        con.print(label_from_twin(data, min_purity).describe())
        return
    import sys

    from edgeloop.label.session import Labeller

    extra = [c.strip() for c in classes.split(",") if c.strip()] if classes else []
    lab = Labeller(data, extra)
    if lab.done:
        con.print(f"nothing to label in {Path(data) / 'unlabelled'}", markup=False)
        return
    if not sys.stdin.isatty():
        raise EdgeLoopError("the labeller reads keys from a terminal; without one use "
                            "--from-twin (simulated runs)")
    with _cbreak(sys.stdin.fileno()) as fd:
        try:
            lab.run(_keys(fd), lambda labeller, msg: _show(con, labeller, msg, png))
        except KeyboardInterrupt:  # Ctrl-C: what is labelled stays labelled
            pass
    con.print(lab.summary(), markup=False)


@contextmanager
def _cbreak(fd: int) -> Iterator[int]:
    """The terminal in cbreak mode for the whole session, not per key: click's getchar sets raw
    mode with TCSAFLUSH on every key and so dropped the keys typed while a window was drawn."""
    import termios
    import tty

    old = termios.tcgetattr(fd)
    tty.setcbreak(fd, termios.TCSANOW)
    try:
        yield fd
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)


def _keys(fd: int) -> Iterator[str]:
    """Keys as typed, each one on its own (keys typed ahead arrive together); an escape sequence
    (an arrow key) is one key, which no class has."""
    while True:
        chunk = os.read(fd, 32).decode(errors="replace")
        if not chunk or chunk[0] == "\x04":  # Ctrl-D (Ctrl-C is SIGINT in cbreak mode)
            yield "q"
            return
        if chunk[0] == "\x1b":
            yield chunk
            continue
        yield from (c.lower() for c in chunk)


def _show(con: Console, lab, message: str, png: bool) -> None:
    from edgeloop.label.view import plot_png, render

    con.clear()
    item = lab.current
    if item is None:
        con.print(f"{message}\nall windows seen: u undoes the last, q quits", markup=False)
        return
    con.print(render(item, lab.keys, f"{lab.pos + 1}/{len(lab.items)}", message,
                     width=max(16, min(96, con.width - 40))))
    if png:
        path = plot_png(item, Path(lab.root) / ".label" / "window.png")
        con.print(f"plot: {path}", style="dim", markup=False)


def register(app: typer.Typer) -> None:
    app.command("label")(label)
