"""`edgeloop collect`: record labelled sensor data from a board into a training dataset.

Layout for extending it (e.g. `--field`, edgeloop/collect/field.py): `collect()` holds the
options and checks them before any board is opened; `_board_session()` opens the board and the
dataset; `_batch()` (--label/--seconds) and `_interactive()` (a live view, keys) record. A new
mode adds its option to `collect()` and branches before `_board_session()`.
"""

from __future__ import annotations

import math
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from edgeloop.errors import EdgeLoopError

PORT_HELP = "serial port of a real board (e.g. /dev/ttyUSB0) or socket://host:port"


def collect(
    out: Annotated[Path, typer.Option("--out", "-o", help="dataset folder (OUT/<label>/*.csv)")],
    label: Annotated[str | None, typer.Option(help="label of the recordings (its folder)")] = None,
    seconds: Annotated[
        float | None, typer.Option(help="length of each recording (omit both for interactive)")
    ] = None,
    count: Annotated[int, typer.Option(help="recordings to make")] = 1,
    board: Annotated[str | None, typer.Option("--board", help="'virtual' (instead of --port)")] = None,
    port: Annotated[str | None, typer.Option("--port", "-p", help=PORT_HELP)] = None,
    baud: Annotated[int, typer.Option("--baud", help="the serial line's baud rate")] = 115200,
    board_profile: Annotated[
        str | None, typer.Option("--board-profile", help="esp32, esp32s3, esp32c3 (default: asked)")
    ] = None,
    board_dir: Annotated[
        Path | None, typer.Option("--dir", help="virtual board folder (default build/vboard/collect/)")
    ] = None,
    twin: Annotated[str, typer.Option(help="virtual board: the twin the sensor sees")] = "rotating_machine",
    state: Annotated[
        str | None, typer.Option(help="virtual board: the twin's state (healthy, bearing_fault...)")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="edgeloop.toml with the sensor "
                                  "(default: the twin's example project)")
    ] = None,
    mode: Annotated[
        str, typer.Option(help="auto | stream | burst (RAM first, then upload)")
    ] = "auto",
    on_gap: Annotated[
        str, typer.Option("--on-gap", help="samples lost mid-recording: restart that recording "
                          "(an error after --retries in a row) or refuse (stop with an error)")
    ] = "restart",
    retries: Annotated[
        int, typer.Option(help="--on-gap restart: restarts in a row before giving up")
    ] = 3,
    labels: Annotated[
        str | None, typer.Option(help="interactive: labels for the keys 1..9, comma-separated")
    ] = None,
    seed: Annotated[int, typer.Option(help="virtual board: the twin's seed")] = 0,
    field: Annotated[
        bool, typer.Option("--field", help="pull the windows a deployed app kept (least sure, "
                           "alarms) into OUT/unlabelled/ (then `edgeloop label OUT`)")
    ] = False,
    name: Annotated[
        str | None, typer.Option("--name", help="--field: the board's name in the file names "
                                 "(default: its chip id; virtual-<folder>)")
    ] = None,
) -> None:
    """Record labelled sensor data from a board: OUT/<label>/<name>.csv + OUT/edgeloop.toml.

    With --label and --seconds: --count recordings of exactly rate x seconds samples each. With
    neither: a live view of the channels; Enter starts/stops a recording, l changes the label.
    With --field: the windows the deployed model was least sure of and every alarm window, as
    OUT/unlabelled/<board>-<stamp>-<n>.csv + .json (outputs, model sha256, board time)."""
    from edgeloop.collect.dataset import check_label
    from edgeloop.collect.start import Source, load_sensor_config

    if field:
        given = [o for o, v in (("--label", label), ("--seconds", seconds), ("--labels", labels),
                                ("--state", state)) if v is not None]
        if given:
            raise EdgeLoopError(f"--field pulls what a deployed app kept: {', '.join(given)} "
                                "do not apply (label the windows with `edgeloop label OUT`)")
        _field(out, board, port, baud, board_profile, board_dir, name)
        return

    if count < 1:
        raise EdgeLoopError(f"--count must be >= 1, got {count}")
    if seconds is not None and not (seconds > 0 and math.isfinite(seconds)):
        raise EdgeLoopError(f"--seconds must be > 0, got {seconds:g}")
    if seconds is not None and label is None:
        raise EdgeLoopError("--seconds needs --label (the folder the recordings go to)")
    if mode not in ("auto", "stream", "burst"):
        raise EdgeLoopError(f"--mode must be auto, stream or burst, not {mode!r}")
    if on_gap not in ("refuse", "restart"):
        raise EdgeLoopError(f"--on-gap must be refuse or restart, not {on_gap!r}")
    if retries < 0:
        raise EdgeLoopError(f"--retries must be >= 0, got {retries}")
    if label is not None:
        check_label(label)
    quick = [check_label(x.strip()) for x in labels.split(",") if x.strip()] if labels else []
    src = Source(board, port, baud, board_profile, board_dir, twin.replace("-", "_"), state, seed)
    src.check()
    cfg = load_sensor_config(config, src.twin)
    from edgeloop.extras import board_needs, require_board_tools

    require_board_tools("collect", board_needs(src.virtual))
    # `kill` (SIGTERM) unwinds like Ctrl-C: complete recordings stay, the partial one goes
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    con = Console(stderr=True)
    if seconds is not None:
        assert label is not None
        _batch(src, cfg, out, label, seconds, count, mode, on_gap, retries, con)
    else:
        from edgeloop.collect.interactive import run_interactive

        if not sys.stdin.isatty():  # before a board is opened
            raise EdgeLoopError("interactive collection (no --seconds) needs a terminal for its "
                                "keys; without one give --label and --seconds")

        with _board_session(src, cfg, out, 600.0, con, loop=True) as (session, ds):
            run_interactive(session, label or (quick[0] if quick else "unlabelled-1"), quick,
                            con)
        _summary(con, session, ds, None)


class _board_session:
    """Open the board and the dataset; on the way out, close the link and turn an interruption
    into its message (complete recordings are on disk already, the partial one never was)."""

    def __init__(self, src, cfg, out: Path, sample_seconds: float, con: Console,
                 loop: bool = False) -> None:
        self.src, self.cfg, self.out, self.seconds, self.con = src, cfg, out, sample_seconds, con
        self.loop = loop
        self.session = None

    def __enter__(self):
        from edgeloop.collect.dataset import Dataset
        from edgeloop.collect.session import Session
        from edgeloop.collect.start import open_board

        ds = Dataset(self.out, self.cfg, self.src.describe())
        self.con.print(f"opening the {self.src.describe()} ...")
        link, meta = open_board(self.src, self.cfg, self.seconds, self.loop)
        ds.extra = meta
        info = link.info
        if info.channels != len(self.cfg.channels):
            link.close()
            raise EdgeLoopError(f"the board samples {info.channels} channels but "
                                f"{self.cfg.source} declares {len(self.cfg.channels)}: "
                                f"{', '.join(self.cfg.channels)}")
        self.session = Session(link, ds, None if self.src.virtual else self.src.baud)
        return self.session, ds

    def __exit__(self, typ, exc, tb) -> bool:
        s = self.session
        if s is None:
            return False
        s.stats.corrupt = s.link.corrupt
        s.link.close()
        kept = len(s.paths)
        where = f"{kept} complete recording(s) kept in {self.out}"
        if typ is KeyboardInterrupt:
            self.con.print(f"interrupted: {where}; the partial one was discarded")
            raise typer.Exit(130)
        if isinstance(exc, EdgeLoopError):
            from edgeloop.collect.errors import CollectError

            raise CollectError(f"{exc} ({where})") from None
        return False


def _batch(src, cfg, out: Path, label: str, seconds: float, count: int, mode: str,
           on_gap: str, retries: int, con: Console) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from edgeloop.collect.budget import budget

    n = round(seconds * cfg.sample_rate)
    if n < 1:
        raise EdgeLoopError(f"--seconds {seconds:g} at {cfg.sample_rate:g} Hz is no sample")
    # the twin plays the whole session plus a margin: a shortfall is reported, never padded
    total = count * seconds * (1.5 if on_gap == "restart" else 1.0) + 10.0
    if on_gap == "restart":
        total += retries * seconds
    measured = None
    if src.virtual:
        from edgeloop.collect.start import probe_virtual

        sps, measured = probe_virtual(src, cfg)
        con.print(f"virtual board throughput (its collect loop flat out, simulated chip in "
                  f"replay): {sps:,.0f} samples/s x {len(cfg.channels)} ch = {measured:,.0f} B/s")
    with _board_session(src, cfg, out, total, con) as (session, ds):
        session.retries = retries
        info = session.info
        if measured:
            session.budget = budget(info.rate_hz, info.channels, None, info.batch, measured)
        b = session.budget
        con.print(f"{info.sensor}: {info.channels} channels at {info.rate_hz:g} Hz "
                  f"(board heap free {info.heap_free:,} B, FIFO {info.fifo} samples)")
        con.print(b.describe())
        use = mode
        if mode == "auto":
            use = "stream" if b.fits else "burst"
            if not b.fits:
                con.print(f"streaming would drop samples: capturing each recording into the "
                          f"board's RAM first (burst: up to {session.burst_capacity():,} samples)")
        elif mode == "stream" and not b.fits:
            raise EdgeLoopError(
                f"{b.describe()}: the stream would lose samples; use --mode burst (or auto), "
                f"a faster --baud, or fewer channels / a lower rate")
        if use == "burst":
            cap = session.burst_capacity()
            con.print(f"burst capture: each recording into the board's RAM, then uploaded "
                      f"(room for {cap:,} samples = {cap / info.rate_hz:.2f} s in "
                      f"{info.heap_free:,} B free)")
        progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                            TextColumn("{task.completed:,.0f}/{task.total:,.0f} samples"),
                            TextColumn("{task.fields[note]}"), TimeRemainingColumn(),
                            console=con, transient=False)
        tasks: list = []

        def on_take(take, path) -> None:
            progress.update(tasks[-1], completed=n, note=f"-> {path.name}")
            if len(session.paths) < count:
                tasks.append(progress.add_task(f"{label} {len(session.paths) + 1}/{count}",
                                               total=n, note=""))

        def on_tick(rec, latest) -> None:
            if not rec.recording:
                return
            s = session.stats
            progress.update(tasks[-1], completed=rec.have,
                            note=f"lost {s.lost}, corrupt {session.link.corrupt}, "
                                 f"restarts {rec.restarts}")

        def on_burst(have: int, phase: str) -> None:
            progress.update(tasks[-1], completed=have, note=phase)

        session.on_take, session.on_tick, session.on_burst = on_take, on_tick, on_burst
        with progress:
            tasks.append(progress.add_task(f"{label} 1/{count}", total=n, note=""))
            if use == "stream":
                session.streamed(label, n, count, on_gap)
            else:
                session.bursts(label, n, count, on_gap)
    _summary(con, session, ds, n)


def _summary(con: Console, session, ds, n: int | None) -> None:
    s = session.stats
    dt = s.seconds()
    bps = session.link.link.bytes_in / dt if dt > 0 else 0.0
    each = f" of {n:,} samples each" if n else ""
    con.print(f"wrote {len(session.paths)} recording(s){each} to {ds.out} "
              f"({s.samples:,} samples received, {s.lost} lost, {s.corrupt} corrupt frames, "
              f"{s.restarts} restarted) in {dt:.1f} s; link carried {bps:,.0f} B/s")
    for p in session.paths:
        con.print(f"  {p}", markup=False, highlight=False)


def _field(out: Path, board: str | None, port: str | None, baud: int, profile: str | None,
           board_dir: Path | None, name: str | None) -> None:
    """Pull the deployed app's field windows; a real board's app is restarted after the read
    (the raw REPL paused it), the virtual board's never stopped."""
    from edgeloop.collect.field import pull_field
    from edgeloop.extras import board_needs, require_board_tools
    from edgeloop.link.transport import open_transport

    require_board_tools("collect", board_needs(port is None and board == "virtual"))
    con = Console(stderr=True)
    with open_transport(port, board, board_dir, profile, baud) as transport:
        con.print(f"reading the field windows kept on the {transport.name} ...", markup=False)
        if port:
            con.print("[yellow]the app is paused for the read and the board reset after it: "
                      "the machine is not watched meanwhile, a latched stop is released[/yellow]")
        res = pull_field(transport, out, board=name)
        if port:
            transport.reset()  # machine.reset(): main.py again, the app restores its ring
            con.print("board restarted: the app runs again with its ring")
    for path, hdr in res.files.items():
        con.print(f"{path}: model {hdr.model_sha256[:12]}, boot {hdr.boot}, "
                  f"{hdr.kept} window(s) kept so far in {hdr.uncertain + hdr.alarms} slots "
                  f"({hdr.alarms_seen} alarm(s))")
    if not res.files:
        con.print("no field windows on the board yet (the app makes field.bin when it starts)")
    con.print(f"wrote {len(res.written)} new window(s) to {Path(out) / 'unlabelled'}; "
              f"{res.duplicates} already pulled" + (", with the twin's truth" if res.truth ==
                                                     "twin" else ""), markup=False)
    if res.overwritten:
        con.print(f"[yellow]{res.overwritten} alarm window(s) were overwritten on the board "
                  "before this pull (more alarms than the ring's alarm slots): pull more "
                  "often or raise config.json field.alarms[/yellow]")
    if res.torn:
        con.print(f"[yellow]{res.torn} window(s) were being written while read: the next pull "
                  "gets them[/yellow]")
    for p in res.written:
        con.print(f"  {p}", markup=False)


def register(app: typer.Typer) -> None:
    app.command("collect")(collect)
