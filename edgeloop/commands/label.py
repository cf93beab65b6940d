"""`edgeloop label DIR`: label the field windows waiting in DIR/unlabelled/ (a key per class),
or with the twin's truth (--from-twin); labelled windows join DIR/<label>/ for `train`."""

from __future__ import annotations

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
    lab.run(_keys(), lambda labeller, msg: _show(con, labeller, msg, png))
    con.print(lab.summary(), markup=False)


def _keys():
    while True:
        key = typer.getchar()
        if key in ("\x03", "\x04"):  # Ctrl-C, Ctrl-D: what is labelled stays labelled
            yield "q"
            return
        yield key.lower()


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
