"""`edgeloop demo`: the end-to-end loop on the virtual board (what `make demo` runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="folder for the demo's files")] = Path(
        "build/demo"
    ),
    board: Annotated[str, typer.Option(help="board profile the virtual board emulates")] = "virtual",
    seed: Annotated[int, typer.Option(help="seed of the simulated data and the model")] = 0,
) -> None:
    """Simulate, train, quantize, convert, run on the virtual board vs TFLM, close the loop."""
    from edgeloop.demo import run_demo
    from edgeloop.extras import board_needs, require_board_tools

    require_board_tools("demo", board_needs(virtual=True))
    summary = run_demo(out, board, seed)
    if summary["device_matches_reference"] != summary["windows"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
