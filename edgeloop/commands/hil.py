"""`edgeloop hil`: run the HIL bench (pytest on hil_tests/) with JUnit XML and HTML reports."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgeloop.errors import EdgeLoopError

HIL_TESTS = Path(__file__).resolve().parent.parent.parent / "hil_tests"


def pytest_args(
    board: str, board_profile: str | None, k: str | None, out: Path, extra: list[str]
) -> list[str]:
    """The pytest command line the bench runs (also what CI can run directly)."""
    args = [
        str(HIL_TESTS),
        "--board", board,
        "--hil-out", str(out),
        f"--junitxml={out / 'junit.xml'}",
        f"--html={out / 'report.html'}",
        "--self-contained-html",
        "--import-mode=importlib",
        "-p", "no:cacheprovider",
        "-q",
    ]
    if board_profile:
        args += ["--board-profile", board_profile]
    if k:
        args += ["-k", k]
    return args + extra


def hil(
    board: Annotated[
        str,
        typer.Option("--board", help="virtual, a serial port (/dev/ttyUSB0) or socket://host:port"),
    ] = "virtual",
    board_profile: Annotated[
        str | None,
        typer.Option("--board-profile", help="esp32, esp32s3, esp32c3, virtual"),
    ] = None,
    k: Annotated[str | None, typer.Option("-k", help="only scenarios matching EXPR")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="report folder")] = Path("build/hil"),
    jobs: Annotated[int, typer.Option("-n", help="parallel pytest workers (virtual only)")] = 1,
) -> None:
    """Run the HIL scenarios against a board; JUnit XML and HTML reports go to OUT."""
    from edgeloop.extras import board_needs, require_board_tools

    if not HIL_TESTS.is_dir():
        raise EdgeLoopError(f"the HIL scenarios are not installed here ({HIL_TESTS} is missing)")
    if board != "virtual" and "://" not in board and not Path(board).exists():
        raise EdgeLoopError(
            f"--board {board}: no such serial port (see `edgeloop devices`), "
            "or use --board virtual"
        )
    extra: list[str] = []
    if jobs > 1:
        if board != "virtual":
            raise EdgeLoopError("-n > 1 needs the virtual board (one real board runs one test)")
        extra += ["-n", str(jobs)]
    require_board_tools("hil", ["pytest", "pytest-html"] + board_needs(board == "virtual"))
    import pytest

    out.mkdir(parents=True, exist_ok=True)
    code = pytest.main(pytest_args(board, board_profile, k, out, extra))
    typer.echo(f"reports: {out / 'junit.xml'}, {out / 'report.html'}; timelines under {out}/")
    if code != 0:
        raise typer.Exit(int(code))


def register(app: typer.Typer) -> None:
    app.command("hil")(hil)
