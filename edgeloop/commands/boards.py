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
    from edgeloop.link.transport import BoardError

    if board_profile:
        return get_board(board_profile)
    if virtual:
        return get_board("virtual")
    try:  # e.g. "ESP32S3 module with ESP32S3", "ESP32C3 module with ESP32C3"
        machine = str(transport.eval("__import__('os').uname().machine")).upper()
    except BoardError:
        machine = ""
    for key, name in (("ESP32S3", "esp32s3"), ("ESP32C3", "esp32c3"), ("ESP32", "esp32")):
        if key in machine.replace("-", ""):
            return get_board(name)
    raise EdgeLoopError(
        f"could not tell which board is on the port ({machine or 'no answer'}): "
        "give --board-profile esp32|esp32s3|esp32c3"
    )


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
) -> None:
    """Put the runtime, app, config and model on a board; skip what is there; verify."""
    from edgeloop.link.deploy import deploy as run_deploy
    from edgeloop.link.deploy import plan_deploy
    from edgeloop.link.transport import open_transport
    from edgeloop.twins import machine_recording
    from trainer.runs import check_run

    check_run(source)  # a run's model, bundle and config.json must still belong together
    virtual = board == "virtual"
    with open_transport(port, board, board_dir, board_profile, baud) as transport:
        profile = _profile_for(transport, board_profile, virtual)
        plan = plan_deploy(source, profile, virtual=virtual,
                           sim_recording=machine_recording if virtual else None)

        def progress(path: str, size: int) -> None:
            if not as_json:
                typer.echo(f"  copy {path} ({size} B)", err=True)

        if not as_json:
            typer.echo(f"deploying {source} to the {transport.name} ({profile.name})", err=True)
        result = run_deploy(transport, plan, verify=verify, progress=progress)
    if as_json:
        typer.echo(json.dumps(result.to_json()))
    else:
        typer.echo(
            f"copied {len(result.copied)} files ({result.bytes_copied} B), "
            f"skipped {len(result.skipped)} unchanged; config from {plan.config_source}"
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
    from edgeloop.link.flash import plan_flash, run_flash

    plan = plan_flash(port, firmware, chip, erase, baud)
    typer.echo(f"flashing {plan.firmware} to the {plan.chip} on {port} at {hex(plan.offset)}")
    run_flash(plan)
    typer.echo(f"done: next, `edgeloop deploy RUN --port {port}`")


def devices(
    all_ports: Annotated[bool, typer.Option("--all", help="also ports without USB ids")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List serial ports with a guess of the chip behind each."""
    from edgeloop.link.devices import list_devices

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


def _pretty(line: str) -> str:
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
    return (
        f"w={obj.get('w')} {obj.get('label')} score={obj.get('score')} {alarm} "
        f"infer={obj.get('us', 0) / 1000:.1f} ms free={obj.get('free')} B "
        f"errors={obj.get('errors')}"
    )


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
    from edgeloop.link.transport import open_transport

    with open_transport(port, board, board_dir, board_profile, baud) as transport:
        try:
            for line in transport.console(seconds):
                typer.echo(line if raw else _pretty(line))
        except KeyboardInterrupt:
            pass


def register(app: typer.Typer) -> None:
    app.command("deploy")(deploy)
    app.command("flash")(flash)
    app.command("devices")(devices)
    app.command("monitor")(monitor)
