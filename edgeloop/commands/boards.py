"""Board commands: deploy, flash, devices, monitor."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from edgeloop.boards import get_board
from edgeloop.errors import EdgeLoopError

PORT_HELP = "serial port of a real board (e.g. /dev/ttyUSB0, COM3) or socket://host:port"
BOARD_HELP = "'virtual' for the virtual board (instead of --port)"


def _profile_for(transport, board_profile: str | None, virtual: bool):
    from edgeloop.link.devices import profile_from_board

    if board_profile:
        return get_board(board_profile)
    if virtual:
        return get_board("virtual")
    name = profile_from_board(transport)
    if name is None:
        raise EdgeLoopError(
            "could not tell which board is on the port: give --board-profile esp32|esp32s3|esp32c3"
        )
    return get_board(name)


def _declared_profile(source: Path, given: dict | None) -> str | None:
    """The run's `[board] profile` (config.json "board"), if it names a known profile."""
    from edgeloop.link.deploy import config_beside, read_config

    path = None if given is not None else config_beside(source)
    cfg = given if given is not None else (read_config(path) if path is not None else {})
    name = cfg.get("board") if isinstance(cfg, dict) else None
    if not isinstance(name, str):
        return None
    try:
        return get_board(name).name
    except ValueError:
        return None


def _check_declared(profile, declared: str | None) -> str | None:
    """A real board smaller than the run's declared profile: a warning for the user (the
    model's fit was checked; the app's own heap is what may not suffice)."""
    if declared is None or declared == profile.name:
        return None
    want = get_board(declared)
    if want.heap_bytes <= profile.heap_bytes:
        return None
    return (f"warning: the run was made for an {declared} ([board] profile, "
            f"{want.heap_bytes // 1024} KB heap) but this board is an {profile.name} "
            f"({profile.heap_bytes // 1024} KB): the app may run out of memory; "
            f"--board-profile {profile.name} silences this")


def deploy(
    source: Annotated[
        Path, typer.Argument(help="run folder (model + config.json), .elb or .tflite")
    ],
    port: Annotated[str | None, typer.Option("--port", "-p", help=PORT_HELP)] = None,
    board: Annotated[str | None, typer.Option("--board", help=BOARD_HELP)] = None,
    board_profile: Annotated[
        str | None,
        typer.Option(
            "--board-profile", help="esp32, esp32s3, esp32c3 (default: asked from the board)"
        ),
    ] = None,
    board_dir: Annotated[
        Path | None,
        typer.Option("--dir", help="virtual board folder (default build/vboard/<profile>)"),
    ] = None,
    baud: Annotated[int, typer.Option("--baud")] = 115200,
    verify: Annotated[
        bool, typer.Option("--verify/--no-verify", help="one inference vs golden")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="the run's config.json (default: beside the model)"),
    ] = None,
    gate_data: Annotated[
        list[Path] | None,
        typer.Option("--gate-data", help="held-out labelled field windows to compare the run "
                     "with the deployed one on (default: the run's own held-out field split)"),
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option("--baseline", help="the run on the board, when the board cannot say "
                     "(its model's sha256 is checked)"),
    ] = None,
    gate_tolerance: Annotated[
        float, typer.Option("--gate-tolerance", help="accuracy a set may lose and still pass")
    ] = 0.0,
    force: Annotated[
        bool, typer.Option("--force", help="deploy even if the run is worse than the board's")
    ] = False,
) -> None:
    """Put the runtime, app, config and model on a board; skip what is there; verify.

    A run replacing another run's model is gated (edgeloop.gate): it must be no worse on the
    deployed run's test set and on the held-out field set, or it is refused with the figures."""
    from edgeloop.extras import board_needs, require_board_tools
    from edgeloop.link.deploy import deploy as run_deploy
    from edgeloop.link.deploy import plan_deploy, read_config, require_config
    from edgeloop.link.transport import open_transport
    from edgeloop.twins import domain_answer, domain_recording, machine_recording
    from trainer.runs import check_run, run_folder_of

    if not 0.0 <= gate_tolerance < 1.0:
        raise EdgeLoopError(f"--gate-tolerance must be in [0, 1), got {gate_tolerance:g}")
    for p in [*(gate_data or ()), *([baseline] if baseline else [])]:
        if not p.exists():
            raise EdgeLoopError(f"{p} does not exist")
    check_run(source)  # a run's model, bundle and config.json must still belong together
    if config is not None:
        check_run(config)
    given = read_config(config) if config is not None else None
    if given is None:
        require_config(source)  # before a board is opened: nothing to undo
    virtual = board == "virtual"
    require_board_tools("deploy", board_needs(virtual))
    declared = _declared_profile(source, given)
    chosen = board_profile or (declared if virtual else None)
    why = "--board-profile" if board_profile else "the run's [board] profile"
    with open_transport(port, board, board_dir, chosen, baud) as transport:
        profile = _profile_for(transport, chosen, virtual)
        if not chosen:
            why = "the virtual board's default" if virtual else "asked from the board"
            warning = None if virtual else _check_declared(profile, declared)
            if warning:
                typer.echo(warning, err=True)
        run = run_folder_of(source) if config is None else None
        gate = None
        if run is not None:  # a run replaces the board's model only if it is no worse
            from edgeloop.gate import check_gate

            if not as_json:
                typer.echo("gate: comparing with the model on the board ...", err=True)
            gate = check_gate(transport, run, baseline, gate_data, force, gate_tolerance)
            if not as_json:
                typer.echo(gate.message(), err=True)
        plan = plan_deploy(source, profile, virtual=virtual, config=given,
                           sim_recording=machine_recording if virtual else None,
                           sim_world=domain_recording if virtual else None,
                           sim_answer=domain_answer if virtual else None)

        def progress(path: str, size: int) -> None:
            if not as_json:
                typer.echo(f"  copy {path} ({size} B)", err=True)

        if not as_json:
            typer.echo(f"deploying {source} to the {transport.name} (profile {profile.name}: "
                       f"{why})", err=True)
        result = run_deploy(transport, plan, verify=verify, progress=progress)
        if run is not None and (result.verified or not verify):
            from edgeloop.gate import write_record

            write_record(transport, run, gate)  # the board now says which run it holds
    if as_json:
        typer.echo(json.dumps(result.to_json() | {"profile": profile.name}
                              | ({"gate": gate.to_json()} if gate else {})))
    else:
        typer.echo(
            f"copied {len(result.copied)} files ({result.bytes_copied} B), "
            f"skipped {len(result.skipped)} unchanged; config from {config or plan.config_source}"
        )
        if verify:
            v = result.verify_detail
            state = "verified" if result.verified else "MISMATCH"
            typer.echo(
                f"on-board inference {state} against the golden executor "
                f"(input {v.get('input_shape')}, kernels {v.get('kernels')})"
            )
    if verify and not result.verified:
        raise typer.Exit(1)


def flash(
    port: Annotated[str, typer.Option("--port", "-p", help=PORT_HELP)],
    firmware: Annotated[
        Path, typer.Option("--firmware", help="MicroPython .bin from micropython.org")
    ],
    chip: Annotated[str, typer.Option("--chip", help="auto, esp32, esp32s3, esp32c3")] = "auto",
    erase: Annotated[bool, typer.Option("--erase", help="erase the whole flash first")] = False,
    baud: Annotated[int, typer.Option("--baud")] = 460800,
) -> None:
    """Write a MicroPython firmware image with esptool (chip detected, offset per chip)."""
    from edgeloop.extras import require_board_tools
    from edgeloop.link.flash import plan_flash, run_flash

    require_board_tools("flash", ["serial", "esptool"])
    plan = plan_flash(port, firmware, chip, erase, baud)
    typer.echo(f"flashing {plan.firmware} to the {plan.chip} on {port} at {hex(plan.offset)}")
    run_flash(plan)
    typer.echo(f"done: next, `edgeloop deploy RUN --port {port}`")


def devices(
    all_ports: Annotated[bool, typer.Option("--all", help="also ports without USB ids")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List serial ports with a guess of the chip behind each."""
    from edgeloop.extras import require_board_tools
    from edgeloop.link.devices import list_devices

    require_board_tools("devices", ["serial"])
    found = list_devices(all_ports)
    if as_json:
        typer.echo(json.dumps([d.to_json() for d in found]))
        return
    if not found:
        typer.echo("no serial boards found (is the USB cable a data cable? driver installed?)")
        return
    for d in found:
        typer.echo(
            f"{d.port}\t{d.vid_pid or '-'}\t{d.bridge or d.description or '-'}\t"
            f"{d.chip_guess or 'unknown chip'}"
        )


def _pretty(
    line: str, quant: tuple[float, int, bool] | None = None, actions: list[str] | None = None
) -> str:
    """One status line for people: the score as a probability (or an anomaly score) in the
    model's own units when the board's config.json says how to dequantize it, and each named
    action's output (`heating=ON`) when the run has [[actions]]."""
    try:
        obj = json.loads(line)
    except ValueError:
        return line
    if not isinstance(obj, dict):
        return line
    if "event" in obj:
        rest = " ".join(f"{k}={v}" for k, v in obj.items() if k != "event")
        return f"[{obj['event']}] {rest}"
    alarm = "ALARM" if obj.get("alarm") else "ok"
    score = obj.get("score")
    shown = f"score={score}"
    if quant is not None and isinstance(score, int):
        value = (score - quant[1]) * quant[0]
        shown = f"score={value:.3f}" if obj.get("label") == "anomaly" or quant[2] else f"p={value:.2f}"
    outs = ""
    levels = obj.get("out")
    if isinstance(levels, list):
        names = actions if actions and len(actions) == len(levels) else [
            f"out{i}" for i in range(len(levels))]
        outs = "".join(f" {n}={'ON' if v else 'off'}" for n, v in zip(names, levels, strict=True))
    return (
        f"w={obj.get('w')} {obj.get('label')} {shown} {alarm}{outs} "
        f"infer={obj.get('us', 0) / 1000:.1f} ms free={obj.get('free')} B "
        f"errors={obj.get('errors')}"
    )


def _action_names(transport) -> list[str]:
    """The names of the board's [[actions]] (config.json "actions"), in the status' order."""
    from edgeloop.link.transport import LinkError

    try:
        acts = json.loads(transport.fs_read("config.json")).get("actions") or []
        return [str(a.get("name", a.get("kind"))) for a in acts]
    except (LinkError, ValueError, TypeError, AttributeError):
        return []


def _output_quant(transport) -> tuple[float, int, bool] | None:
    """(output_scale, output_zero_point, anomaly) from the board's config.json, if it has them."""
    from edgeloop.link.transport import LinkError

    try:
        dec = json.loads(transport.fs_read("config.json")).get("decision", {})
        return float(dec["output_scale"]), int(dec["output_zero_point"]), bool(dec.get("anomaly"))
    except (LinkError, ValueError, KeyError, TypeError, AttributeError):
        return None  # an older deploy: show the raw int8 score


def _virtual_app_board(board_dir: Path | None, board_profile: str | None):
    """The virtual board the standalone app was deployed to: --dir, else the profile's default
    folder, else (no --board-profile) the most recently deployed one under build/vboard/. Its
    heap: vboard.app_profile (the profile's, as this executable's objects need it, plus what
    the simulated hardware takes)."""
    from edgeloop.link.transport import default_virtual_dir
    from edgeloop.link.virtual import VirtualTransport
    from edgeloop.vboard import app_profile

    root = board_dir or default_virtual_dir(get_board(board_profile or "virtual").name)
    name = board_profile
    if not board_dir and not board_profile and not (root / "main.py").is_file():
        deployed = sorted(root.parent.glob("*/config.json"), key=lambda p: p.stat().st_mtime)
        if deployed:
            root = deployed[-1].parent
    if not (root / "main.py").is_file():  # refuse before a board folder is made
        raise EdgeLoopError(f"no app on the virtual board at {root}: run `edgeloop deploy "
                            f"RUN --board virtual{f' --dir {root}' if board_dir else ''}` first")
    if name is None:  # the profile it was deployed for (config.json "board"), else "virtual"
        try:
            name = get_board(str(json.loads((root / "config.json").read_text()).get("board"))).name
        except (OSError, ValueError, AttributeError):
            name = "virtual"
        if board_dir is None and root.name in ("esp32", "esp32s3", "esp32c3", "virtual"):
            name = root.name  # deploy's default folder is named after the profile it used
    prof = app_profile(name)
    typer.echo(f"monitoring the virtual board at {root} (profile {prof.name}, heap "
               f"{prof.heap_bytes // 1024} KB: see edgeloop.vboard.app_profile)", err=True)
    return VirtualTransport(root, prof)


def monitor(
    port: Annotated[str | None, typer.Option("--port", "-p", help=PORT_HELP)] = None,
    board: Annotated[str | None, typer.Option("--board", help=BOARD_HELP)] = None,
    board_profile: Annotated[str | None, typer.Option("--board-profile")] = None,
    board_dir: Annotated[Path | None, typer.Option("--dir", help="virtual board folder")] = None,
    baud: Annotated[int, typer.Option("--baud")] = 115200,
    seconds: Annotated[float | None, typer.Option("--seconds", help="stop after this long")] = None,
    raw: Annotated[bool, typer.Option("--raw", help="print the JSON lines as they come")] = False,
) -> None:
    """Restart the board's app and show its status lines (Ctrl-C to stop)."""
    from edgeloop.extras import board_needs, require_board_tools
    from edgeloop.link.transport import open_transport

    if seconds is not None and not seconds > 0:
        raise EdgeLoopError(f"--seconds must be > 0, got {seconds:g}")
    require_board_tools("monitor", board_needs(board == "virtual", compile_files=False))
    if board == "virtual" and not port:
        transport = _virtual_app_board(board_dir, board_profile)
    else:
        transport = open_transport(port, board, board_dir, board_profile, baud)
    with transport:
        quant = None if raw else _output_quant(transport)
        names = [] if raw else _action_names(transport)
        try:
            for line in transport.console(seconds):
                typer.echo(line if raw else _pretty(line, quant, names))
        except KeyboardInterrupt:
            pass


def register(app: typer.Typer) -> None:
    app.command("deploy")(deploy)
    app.command("flash")(flash)
    app.command("devices")(devices)
    app.command("monitor")(monitor)
