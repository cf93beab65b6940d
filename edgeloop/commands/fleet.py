"""`edgeloop fleet ...`: boards that report over MQTT and take signed over-the-air updates."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Annotated

import typer

from edgeloop.fleet.errors import FleetError

fleet_app = typer.Typer(help="A fleet of boards on MQTT: provisioning, telemetry, signed OTA.",
                        no_args_is_help=True)

Home = Annotated[Path | None, typer.Option(
    "--home", help="fleet folder (devices, keys, database); default $EDGELOOP_FLEET_HOME or ./fleet")]
BrokerUrl = Annotated[str | None, typer.Option(
    "--broker", help="mqtt://host:port of a running broker (Mosquitto or any MQTT 3.1.1)")]
Kind = Annotated[str, typer.Option(
    "--broker-kind", help="broker to start when no --broker: embedded (amqtt) or mosquitto")]


def _interrupt_on_sigterm() -> None:
    """SIGTERM (a service manager, a test) stops like Ctrl-C, so boards and broker are stopped."""

    def handler(signum, frame):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _fleet(home: Path | None):  # type: ignore[no-untyped-def]
    from edgeloop.fleet.registry import Fleet

    return Fleet.open(home)


@fleet_app.command("keygen")
def keygen(home: Home = None,
           force: Annotated[bool, typer.Option(help="replace an existing key")] = False) -> None:
    """Make the Ed25519 key that signs OTA bundles (boards get only its public half)."""
    f = _fleet(home)
    f.init()
    pub = f.keygen(force=force)
    typer.echo(f"signing key: {f.private_key_path} (keep it secret)\npublic key:  {f.public_key_path} "
               f"({pub.hex()[:16]}...)")


@fleet_app.command("add")
def add(devices: Annotated[list[str], typer.Argument(help="device ids")], home: Home = None) -> None:
    """Provision devices: each gets its own MQTT password and ACL entry."""
    f = _fleet(home)
    for d in devices:
        f.add(d)
        typer.echo(f"provisioned {d}: may publish under {f.prefix}/{d}/ and read {f.prefix}/{d}/cmd")
    typer.echo(f"credentials in {f.devices_path} (mode 600); a running broker needs "
               "`edgeloop fleet acl` (external) or a restart of `fleet up`/`serve`/`broker`")


@fleet_app.command("remove")
def remove(device: str, home: Home = None) -> None:
    """Withdraw a device's credentials."""
    _fleet(home).remove(device)
    typer.echo(f"removed {device}")


@fleet_app.command("acl")
def acl(out: Annotated[Path, typer.Option("--out", "-o", help="folder for passwd and acl")] = Path("fleet-broker"),
        home: Home = None) -> None:
    """Write a Mosquitto password file and ACL for an external broker."""
    from edgeloop.fleet.broker import write_passwd

    f = _fleet(home)
    out.mkdir(parents=True, exist_ok=True)
    write_passwd(out / "passwd", f.users())
    (out / "acl").write_text(f.acl())
    typer.echo(f"wrote {out / 'passwd'} and {out / 'acl'}: in mosquitto.conf set "
               f"password_file and acl_file to them, allow_anonymous false")


@fleet_app.command("broker")
def broker(home: Home = None, kind: Kind = "embedded",
           port: Annotated[int, typer.Option(help="loopback port")] = 1883) -> None:
    """Run the fleet's broker in the foreground (its users and ACL from the fleet folder)."""
    from edgeloop.fleet.up import start_broker

    _interrupt_on_sigterm()
    b = start_broker(_fleet(home), kind, port)
    typer.echo(f"{b.kind} broker on {b.address.url}; Ctrl-C stops it")
    try:
        while b.proc is not None and b.proc.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        b.stop()


@fleet_app.command("serve")
def serve(home: Home = None, broker_url: BrokerUrl = None, kind: Kind = "embedded",
          port: Annotated[int, typer.Option(help="port of the broker started here")] = 1883,
          seconds: Annotated[float, typer.Option(help="stop after this long (0: never)")] = 0) -> None:
    """Ingest every device's telemetry into SQLite (<home>/fleet.db); bad messages are counted."""
    from edgeloop.fleet.broker import parse_broker
    from edgeloop.fleet.serve import Ingestor
    from edgeloop.fleet.up import remember_broker, start_broker

    _interrupt_on_sigterm()
    f = _fleet(home)
    b = None
    if broker_url:
        addr = parse_broker(broker_url)
        remember_broker(f, addr)
    else:
        b = start_broker(f, kind, port)
        addr = b.address
        typer.echo(f"{b.kind} broker on {addr.url}")
    ing = Ingestor(f, addr).start()
    typer.echo(f"ingesting into {f.db_path}; Ctrl-C stops")
    t0 = time.monotonic()
    try:
        while not seconds or time.monotonic() - t0 < seconds:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        ing.stop()
        if b is not None:
            b.stop()
    c = ing.counts
    typer.echo(f"kept {dict(c.kept)}, dropped {dict(c.rejected)}, duplicates {c.duplicates}")


@fleet_app.command("status")
def status(home: Home = None,
           watch: Annotated[bool, typer.Option(help="refresh every second until Ctrl-C")] = True,
           seconds: Annotated[float, typer.Option(help="with --watch: stop after this long")] = 0,
           as_json: Annotated[bool, typer.Option("--json", help="print the rows as JSON")] = False) -> None:
    """Devices, model version, last seen, alarms, free heap, reconnects (from `serve`'s database)."""
    from rich.console import Console
    from rich.live import Live

    from edgeloop.fleet.status import table
    from edgeloop.fleet.store import device_rows

    f = _fleet(home)
    if not f.db_path.is_file():
        raise FleetError(f"no telemetry yet in {f.db_path}: run `edgeloop fleet serve` or `fleet up`")
    if as_json:
        typer.echo(json.dumps(device_rows(f.db_path), indent=1))
        return
    console = Console()
    if not watch or not console.is_terminal:
        console.print(table(f.db_path))
        return
    t0 = time.monotonic()
    try:
        with Live(table(f.db_path), console=console, refresh_per_second=2) as live:
            while not seconds or time.monotonic() - t0 < seconds:
                time.sleep(1)
                live.update(table(f.db_path))
    except KeyboardInterrupt:
        pass


def _devices(f, devices: str | None, all_: bool) -> list[str]:  # type: ignore[no-untyped-def]
    known = sorted(f.devices())
    if all_ == bool(devices):
        raise FleetError("give either --devices a,b,c or --all")
    if all_:
        if not known:
            raise FleetError(f"no devices in {f.devices_path}: edgeloop fleet add ID")
        return known
    wanted = [d.strip() for d in devices.split(",") if d.strip()] if devices else []
    unknown = [d for d in wanted if d not in known]
    if unknown:
        raise FleetError(f"not provisioned: {', '.join(unknown)} (edgeloop fleet add ...)")
    return wanted


@fleet_app.command("push")
def push(run: Annotated[Path, typer.Argument(help="run folder, .elb or .tflite")],
         devices: Annotated[str | None, typer.Option("--devices", help="comma-separated ids")] = None,
         all_: Annotated[bool, typer.Option("--all", help="every provisioned device")] = False,
         canary: Annotated[int, typer.Option(help="update this many first; stop if any fails")] = 0,
         parallel: Annotated[int, typer.Option(help="devices updated at once")] = 4,
         home: Home = None, broker_url: BrokerUrl = None,
         report: Annotated[Path | None, typer.Option(help="write the results as JSON")] = None) -> None:
    """Roll a signed model out over the air: canaries first, health checked, stop on failure."""
    from edgeloop.boards import get_board
    from edgeloop.fleet.push import Pusher
    from edgeloop.fleet.signing import make_bundle
    from edgeloop.fleet.up import known_broker
    from edgeloop.link.deploy import load_model

    f = _fleet(home)
    targets = _devices(f, devices, all_)
    addr = known_broker(f, broker_url)
    model, _, _ = load_model(run, get_board("esp32"))
    version = f.next_version()
    bundle = make_bundle(model, version, f.private_key_pem(), run=Path(run).name)
    typer.echo(f"version {version}: {len(bundle.data)} bytes signed, to {len(targets)} devices"
               + (f", {canary} canaries first" if canary else ""))

    def progress(r) -> None:  # type: ignore[no-untyped-def]
        mark = typer.style("ok", fg="green") if r.ok else typer.style("FAILED", fg="red")
        extra = f" verify {r.verify_ms} ms" if r.verify_ms is not None else ""
        typer.echo(f"  {r.device}: {mark} {r.stage} {r.seconds:.1f} s{extra} {r.reason}")

    with Pusher(f, addr) as p:
        res = p.rollout(targets, bundle.data, version, canary=canary, parallel=parallel,
                        progress=progress)
    if report:
        report.write_text(json.dumps(res.to_json(), indent=1))
    if res.stopped:
        typer.secho(f"rollout stopped: not sent to {', '.join(res.skipped) or 'none'}; failed "
                    "boards kept or restored their previous model", fg="red")
    if not res.ok:
        raise typer.Exit(1)
    typer.echo(f"all {len(res.results)} devices run version {version}")


@fleet_app.command("deploy")
def deploy_cmd(run: Annotated[Path, typer.Argument(help="run folder, .elb or .tflite")],
               device: Annotated[str, typer.Option("--device", "-d", help="provisioned device id")],
               broker_url: Annotated[str, typer.Option(
                   "--broker", help="mqtt://host:port as the BOARD reaches it (e.g. the LAN address)")],
               port: Annotated[str | None, typer.Option("--port", "-p", help="serial port")] = None,
               board: Annotated[str | None, typer.Option("--board", help="virtual")] = None,
               board_dir: Annotated[Path | None, typer.Option("--dir", help="virtual board folder")] = None,
               board_profile: Annotated[str, typer.Option("--board-profile")] = "esp32",
               home: Home = None) -> None:
    """Deploy a run to a board as a fleet member: MQTT identity, Wi-Fi secrets, OTA key."""
    from edgeloop.boards import get_board
    from edgeloop.fleet.broker import parse_broker
    from edgeloop.fleet.provision import fleet_plan
    from edgeloop.link.deploy import deploy as run_deploy
    from edgeloop.link.deploy import plan_deploy
    from edgeloop.link.transport import open_transport
    from edgeloop.twins import machine_recording

    f = _fleet(home)
    f.password(device)
    addr = parse_broker(broker_url)
    virtual = board == "virtual"
    profile = get_board("virtual" if virtual else board_profile)
    with open_transport(port, board, board_dir, profile.name) as transport:
        plan = plan_deploy(run, profile, virtual=virtual,
                           sim_recording=machine_recording if virtual else None)
        plan = fleet_plan(f, plan, device, addr, transport)
        result = run_deploy(transport, plan, verify=True)
    typer.echo(f"{device}: copied {len(result.copied)} files, skipped {len(result.skipped)}; "
               f"on-board inference {'verified' if result.verified else 'MISMATCH'}; "
               f"it reports to {addr.url} under {f.prefix}/{device}/")
    if not result.verified:
        raise typer.Exit(1)


@fleet_app.command("collect")
def collect_cmd(device: Annotated[str, typer.Argument(help="device id")],
                label: Annotated[str, typer.Option("--label", "-l", help="class of the recording")],
                out: Annotated[Path, typer.Option("--out", "-o", help="dataset folder")] = Path("data"),
                windows: Annotated[int, typer.Option(help="windows of samples to record")] = 20,
                channels: Annotated[str | None, typer.Option(help="column names, e.g. ax,ay,az")] = None,
                home: Home = None, broker_url: BrokerUrl = None) -> None:
    """Record a board's raw samples remotely into OUT/LABEL/*.csv (what `train --data` reads)."""
    from edgeloop.fleet.collect import collect
    from edgeloop.fleet.up import known_broker

    f = _fleet(home)
    names = [c.strip() for c in channels.split(",")] if channels else None
    rec = collect(f, known_broker(f, broker_url), device, label, out, windows, names)
    typer.echo(f"{rec.path}: {rec.samples} samples at {rec.rate:g} Hz from {device}")


@fleet_app.command("up")
def up(run: Annotated[Path, typer.Argument(help="run folder, .elb or .tflite for the boards")],
       virtual: Annotated[int, typer.Option("--virtual", help="virtual boards to start")] = 5,
       home: Home = None, broker_url: BrokerUrl = None, kind: Kind = "embedded",
       port: Annotated[int, typer.Option(help="port of the broker started here")] = 1883,
       micropython: Annotated[str | None, typer.Option(
           help="MicroPython executable for the boards (e.g. the ESP32-arithmetic build)")] = None,
       seconds: Annotated[float, typer.Option(help="stop after this long (0: Ctrl-C)")] = 0) -> None:
    """Bring up a broker, N virtual boards running RUN and the ingest, with a live status table."""
    from rich.console import Console
    from rich.live import Live

    from edgeloop.fleet.broker import parse_broker
    from edgeloop.fleet.status import table
    from edgeloop.fleet.up import VirtualFleet

    f = _fleet(home)
    addr = parse_broker(broker_url) if broker_url else None
    _interrupt_on_sigterm()
    vf = VirtualFleet(f, run, virtual, broker=addr, broker_kind=kind, port=port, exe=micropython)
    console = Console()
    try:
        vf.start()
        console.print(f"broker {vf.address.url} ({vf.broker.kind if vf.broker else 'external'}); "
                      f"{virtual} virtual boards in {f.home / 'boards'}; "
                      f"`edgeloop fleet status|push --home {f.home}` from another terminal")
        t0 = time.monotonic()
        with Live(table(f.db_path), console=console, refresh_per_second=2,
                  auto_refresh=console.is_terminal) as live:
            while not seconds or time.monotonic() - t0 < seconds:
                time.sleep(1)
                if vf.ingest is not None:
                    vf.ingest.flush()
                live.update(table(f.db_path))
                dead = [b.device for b in vf.boards if not b.alive]
                if dead:
                    raise FleetError(f"virtual boards stopped: {', '.join(dead)}; see "
                                     f"{vf.boards[0].log_path.parent.parent}/*/console.log")
        if not console.is_terminal:
            console.print(table(f.db_path))
    except KeyboardInterrupt:
        pass
    finally:
        vf.stop()


def register(app: typer.Typer) -> None:
    app.add_typer(fleet_app, name="fleet")
