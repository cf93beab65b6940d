"""`edgeloop hil [RUN]`: run the HIL bench (pytest on hil_tests/) on the user's run or the bench's
own model, with summary.json, JUnit XML and HTML reports.

Everything that can be checked before the bench starts is checked first and is one line with
exit code 2: the board profile, the run folder, a port where no MicroPython answers, a real
board holding another model (replaced only with --replace-model). Each run writes into a fresh
folder OUT/runs/<time>/; only a complete run replaces OUT/summary.json, report.html and
junit.xml, so an interrupted run never overwrites the last good report (its own folder says it
was interrupted).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from edgeloop.errors import EdgeLoopError

HIL_TESTS = Path(__file__).resolve().parent.parent.parent / "hil_tests"
REPORT_FILES = ("summary.json", "report.html", "junit.xml")
KEEP_RUNS = 10  # run folders kept under OUT/runs/ (oldest removed first)
PROBE_S = 8.0  # a port must answer as MicroPython within this
REALTIME_S = 60  # wall-clock seconds of the realtime scenario (make test runs 15)


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
        "--realtime-s", str(REALTIME_S),
    ]
    if board_profile:
        args += ["--board-profile", board_profile]
    if k:
        args += ["-k", k]
    return args + extra


def check_run(run: Path) -> None:
    """A run folder from `edgeloop train`: its model and its device config."""
    if not run.is_dir():
        raise EdgeLoopError(f"{run}: no such run folder (give the --out folder of `edgeloop train`)")
    if not (run / "config.json").is_file():
        raise EdgeLoopError(f"{run}: no config.json (not a run folder from `edgeloop train`)")
    if not any((run / n).is_file() for n in ("model_int8.tflite", "model.elb")):
        raise EdgeLoopError(f"{run}: neither model_int8.tflite nor model.elb")
    from trainer.runs import check_run as check_manifest

    check_manifest(run)  # its model, bundle and config.json must still belong together


def _within(seconds: float, what: str, fn):
    """fn() in a thread, or an EdgeLoopError after `seconds` (a silent port must not hang)."""
    box: dict[str, Any] = {}

    def go() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed over to the caller
            box["error"] = exc

    t = threading.Thread(target=go, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        raise EdgeLoopError(f"{what}: no MicroPython answered within {seconds:.0f} s (is "
                            "MicroPython flashed, the board powered, the baud rate right?)")
    if "error" in box:
        raise box["error"]
    return box["value"]


def probe_board(port: str, baud: int) -> dict[str, Any]:
    """Ask a real board what it is (MicroPython version, .mpy arch, word and float width)."""
    from edgeloop.link.serialport import SerialTransport
    from edgeloop.vboard import IDENTIFY_CODE, VirtualBoardError, parse_identity

    def ask() -> dict[str, Any]:
        with SerialTransport(port, baudrate=baud) as t:
            text = t.exec(IDENTIFY_CODE, timeout=PROBE_S)
        try:
            ident = parse_identity(port, text).as_dict()
        except VirtualBoardError as exc:
            raise EdgeLoopError(f"{port}: the board did not say what it is: {exc}") from None
        ident.pop("executable", None)
        return ident

    return _within(PROBE_S, f"--board {port}", ask)


def check_model_replacement(port: str, baud: int, run: Path, profile: str,
                            allowed: bool) -> None:
    """A real board keeps the user's model unless they said it may be replaced."""
    from edgeloop.boards import get_board
    from edgeloop.link.deploy import MODEL_PATH, load_model
    from edgeloop.link.serialport import SerialTransport

    prof = get_board(profile)
    bundle, _, _ = load_model(run, prof, prof.word_bits)  # a real board: its own word size
    import hashlib

    want = hashlib.sha256(bundle).hexdigest()

    def have() -> str | None:
        with SerialTransport(port, baudrate=baud) as t:
            return t.fs_hash(MODEL_PATH)

    on_board = _within(30.0, f"--board {port}", have)
    if on_board is not None and on_board != want and not allowed:
        raise EdgeLoopError(
            f"the board on {port} holds another model ({MODEL_PATH} sha256 {on_board[:12]}); "
            f"the bench would replace it with {run.name}'s ({want[:12]}): pass --replace-model "
            f"to allow it (then `edgeloop deploy RUN --port {port}` puts yours back)")


def fresh_run_dir(out: Path) -> Path:
    runs = out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    d = runs / f"{stamp}-{os.getpid()}"
    d.mkdir()
    old = sorted(p for p in runs.iterdir() if p.is_dir() and p != d)
    for p in old[: max(0, len(old) - (KEEP_RUNS - 1))]:
        shutil.rmtree(p, ignore_errors=True)
    return d


def promote(run_dir: Path, out: Path) -> None:
    """A complete run's reports become OUT's, each file replaced atomically."""
    for name in REPORT_FILES:
        src = run_dir / name
        if src.is_file():
            tmp = out / f".{name}.tmp"
            shutil.copyfile(src, tmp)
            os.replace(tmp, out / name)
    (out / "LATEST").write_text(f"{run_dir.relative_to(out)}\n")


def hil(
    run: Annotated[
        Path | None,
        typer.Argument(help="run folder from `edgeloop train` (default: the bench's own model)"),
    ] = None,
    board: Annotated[
        str,
        typer.Option("--board", help="virtual, a serial port (/dev/ttyUSB0) or socket://host:port"),
    ] = "virtual",
    board_profile: Annotated[
        str | None,
        typer.Option("--board-profile", help="esp32, esp32s3, esp32c3, virtual"),
    ] = None,
    k: Annotated[str | None, typer.Option("-k", help="only scenarios matching EXPR "
                                          "(-k long: the long-run scenario)")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="report folder")] = Path("build/hil"),
    jobs: Annotated[int, typer.Option("-n", help="parallel pytest workers (virtual only)")] = 1,
    baud: Annotated[int, typer.Option("--baud", help="serial baud rate")] = 115200,
    replace_model: Annotated[
        bool, typer.Option("--replace-model",
                           help="a real board: allow replacing the model deployed on it")
    ] = False,
) -> None:
    """Run the HIL scenarios against a board; summary.json, JUnit XML and HTML go to OUT."""
    from edgeloop.boards import get_board
    from edgeloop.extras import board_needs, require_board_tools

    if not HIL_TESTS.is_dir():
        raise EdgeLoopError(f"the HIL scenarios are not installed here ({HIL_TESTS} is missing)")
    virtual = board == "virtual"
    profile = get_board(board_profile or ("virtual" if virtual else "esp32"))  # one-line error
    if run is not None:
        run = run.resolve()
        check_run(run)
    if not virtual and "://" not in board and not Path(board).exists():
        raise EdgeLoopError(
            f"--board {board}: no such serial port (see `edgeloop devices`), "
            "or use --board virtual"
        )
    extra: list[str] = []
    if jobs > 1:
        if not virtual:
            raise EdgeLoopError("-n > 1 needs the virtual board (one real board runs one test)")
        extra += ["-n", str(jobs)]
    require_board_tools("hil", ["pytest", "pytest-html"] + board_needs(virtual))
    if virtual:
        from edgeloop.vboard import identify

        ident = identify().as_dict()  # one-line error if the executable does not answer
    else:
        ident = probe_board(board, baud)
        if run is None:
            from hil_tests.model import ensure_run_locked

            typer.echo("no run given: training the bench's own model first (hil_tests/model.py)")
            model_run = ensure_run_locked()
        else:
            model_run = run
        check_model_replacement(board, baud, model_run, profile.name, replace_model)
        extra += ["--replace-model", "--baud", str(baud)]  # checked (or allowed) just now
    extra += ["--hil-board-identity", json.dumps(ident)]
    if run is not None:
        extra += ["--hil-run", str(run)]
        typer.echo(f"model under test: {run} (its config.json and model)")
    else:
        typer.echo("model under test: none given, so the bench's own cached rotating-machine "
                   "model (hil_tests/model.py); give a run folder to test yours")
    where = "virtual board" if virtual else board
    typer.echo(f"board: {where}, profile {profile.name}, MicroPython {ident.get('micropython')}"
               f", {ident.get('word_bits')}-bit words, float{ident.get('float_bits')}")
    import pytest

    out.mkdir(parents=True, exist_ok=True)
    run_dir = fresh_run_dir(out)
    code = int(pytest.main(pytest_args(board, profile.name, k, run_dir, extra)))
    summary = _read_summary(run_dir)
    if not summary.get("complete"):
        reason = summary.get("interrupted_reason") or f"pytest exit status {code}"
        typer.secho(f"INTERRUPTED ({reason}): partial report in {run_dir}; the last complete "
                    f"report in {out}/ is unchanged", fg=typer.colors.YELLOW, err=True)
        raise typer.Exit(130 if code == 2 else 3)
    promote(run_dir, out)
    counts = ", ".join(f"{n} {o}" for o, n in sorted(summary.get("counts", {}).items()))
    typer.echo(f"{counts or 'no scenarios ran'}; reports: {out / 'summary.json'}, "
               f"{out / 'report.html'}, {out / 'junit.xml'}; timelines under {run_dir}/")
    if code != 0:
        raise typer.Exit(code)


def _read_summary(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return {}


def register(app: typer.Typer) -> None:
    app.command("hil")(hil)
