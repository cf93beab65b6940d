"""Virtual fleet boards: the MicroPython unix port (or the ESP32-arithmetic build) running the
real device app with its fleet session, each in its own folder, connected over its sockets.

A board folder gets what `deploy` puts on a real board (the firmware as .mpy for the board's
architecture, config.json, model.elb, the simulated sensor's samples) plus the fleet files:
the "fleet" section of config.json, secrets.json (its MQTT password; mode 600), the OTA public
key (fleet_key.bin) and version.json (the installed model version).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from edgeloop.boards import SIM_HEAP, get_board
from edgeloop.fleet.broker import BrokerAddress
from edgeloop.fleet.errors import FleetError
from edgeloop.fleet.registry import Fleet
from edgeloop.vboard import VirtualBoardError, identify, micropython_executable, script_args

RESET_EXIT = 77  # net/node.py: the virtual board's machine.reset()
CA_PATH = "ca.der"  # on the board: the broker's CA (config.json fleet.ca), DER: MicroPython's
# mbedTLS SSLContext.load_verify_locations refuses PEM ("invalid cert"; measured, v1.2x unix)
X64_HEAP_FACTOR = 1.4



def board_arch(exe: str) -> str:
    """The native architecture of a MicroPython executable (the .mpy files must match), as
    edgeloop.vboard.identify() asks it."""
    try:
        return identify(exe).mpy_arch
    except VirtualBoardError as exc:
        raise FleetError(f"{exe} is no MicroPython this project can build for: {exc}") from None


def secrets_json(fleet: Fleet, device: str, env: dict[str, str] | None = None) -> bytes:
    """The board's secrets file: its MQTT login, and Wi-Fi from $EDGELOOP_WIFI_SSID /
    $EDGELOOP_WIFI_PASSWORD (never from a run folder; never logged)."""
    env = os.environ if env is None else env
    s: dict = {"mqtt": {"user": device, "password": fleet.password(device)}}
    if env.get("EDGELOOP_WIFI_SSID"):
        s["wifi"] = {"ssid": env["EDGELOOP_WIFI_SSID"], "password": env.get("EDGELOOP_WIFI_PASSWORD", "")}
    return json.dumps(s).encode()


def fleet_config(device: str, broker: BrokerAddress, prefix: str, **extra: object) -> dict:
    cfg = {"device": device, "broker": broker.host, "port": broker.port, "prefix": prefix,
           "keepalive": 10, "status_ms": 1000}
    if broker.tls:
        cfg["tls"] = True
        if broker.ca:
            cfg["ca"] = CA_PATH
    cfg.update(extra)
    return cfg


def fleet_files(fleet: Fleet, device: str, broker: BrokerAddress, version: int = 0) -> dict[str, bytes]:
    """The files that make a deployed board a fleet member (what deploy adds on a real board)."""
    return {
        "secrets.json": secrets_json(fleet, device),
        "fleet_key.bin": fleet.public_key(),
        "version.json": json.dumps({"version": version}).encode(),
        **ca_file(broker),
    }


def ca_file(broker: BrokerAddress) -> dict[str, bytes]:
    """The broker's CA certificate for the board, in DER ({} unless mqtts://...?ca=)."""
    import ssl

    if not (broker.tls and broker.ca):
        return {}
    data = Path(broker.ca).read_bytes()
    if b"-----BEGIN" not in data:
        return {CA_PATH: data}  # DER already
    text = data.decode("ascii", errors="replace")
    if text.count("-----BEGIN CERTIFICATE-----") != 1:
        raise FleetError(f"{broker.ca}: a board trusts one CA certificate; this file holds "
                         f"{text.count('-----BEGIN CERTIFICATE-----')}: give the one that "
                         "signed the broker's certificate")
    try:
        return {CA_PATH: ssl.PEM_cert_to_DER_cert(text[text.index("-----BEGIN"):])}
    except ValueError as exc:
        raise FleetError(f"{broker.ca}: not a PEM certificate ({exc})") from None


@dataclass
class FleetBoard:
    device: str
    root: Path
    exe: str
    heap: int
    proc: subprocess.Popen | None = None
    resets: int = 0
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.root / "console.log"

    def start(self) -> FleetBoard:
        """Power on. The board's resets (exit code RESET_EXIT, its machine.reset()) start it
        again, as a real board's hardware would."""
        self._stopping = False
        self._spawn()
        self._watch = threading.Thread(target=self._supervise, daemon=True)
        self._watch.start()
        return self

    def _spawn(self) -> None:
        env = dict(os.environ)
        env["MICROPYPATH"] = ".frozen:.:lib"  # relative, as vboard.VirtualBoard: cwd is the root
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.exe, "-X", f"heapsize={self.heap}", *script_args("main.py")],
                                     cwd=self.root, env=env, stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def _supervise(self) -> None:
        while not self._stopping:
            proc = self.proc
            if proc is None:
                return
            code = proc.wait()
            if code != RESET_EXIT or self._stopping:
                return
            self.resets += 1
            self._spawn()

    @property
    def alive(self) -> bool:
        return self.proc is not None and (self.proc.poll() is None or
                                          self.proc.returncode == RESET_EXIT)

    def kill(self) -> None:
        """Power cut: SIGKILL, no clean-up on the board."""
        self._stopping = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        self._stopping = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.kill()

    def console(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def wait_console(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.console(1 << 20)
            if text in out:
                return out
            if not self.alive:
                break
            time.sleep(0.05)
        raise FleetError(f"{self.device}: {text!r} not seen on the console; last output:\n"
                         f"{self.console(1500)}")

    def installed_version(self) -> int:
        try:
            return int(json.loads((self.root / "version.json").read_text()).get("version", 0))
        except (OSError, ValueError):
            return 0


def lay_out_board(fleet: Fleet, device: str, source: Path, broker: BrokerAddress, root: Path,
                  exe: str | None = None, pace_ms: int = 200, extra_config: dict | None = None,
                  version: int = 0, fleet_extra: dict | None = None,
                  config: dict | None = None) -> FleetBoard:
    """Deploy source (a run folder; a bare .elb or .tflite with `config`) to a fresh virtual
    fleet board in root."""
    from edgeloop.firmware import build_firmware
    from edgeloop.link.deploy import plan_deploy
    from edgeloop.twins import domain_recording, machine_recording

    exe = exe or micropython_executable()
    profile = get_board("virtual")
    plan = plan_deploy(Path(source), profile, virtual=True, config=config,
                       sim_recording=machine_recording, sim_world=domain_recording)
    root.mkdir(parents=True, exist_ok=True)
    arch = board_arch(exe)  # plan_deploy built for this process's board: ours may differ
    files = dict(plan.files)
    files = {k: v for k, v in files.items() if not k.endswith(".mpy")}
    build_firmware(root, arch)
    cfg = json.loads(files.pop("config.json"))
    cfg.setdefault("sensor", {})["loop"] = True
    cfg["max_windows"] = 0
    cfg["watchdog"] = False
    cfg["fleet"] = fleet_config(device, broker, fleet.prefix, pace_ms=pace_ms, **(fleet_extra or {}))
    cfg.update(extra_config or {})
    files["config.json"] = json.dumps(cfg, indent=1).encode()
    files["model.elb"] = plan.model
    files.update(fleet_files(fleet, device, broker, version))
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "secrets.json").chmod(0o600)
    # The 64-bit unix port stores every object with 8-byte pointers: the same firmware and model
    # take ~1.4x the heap they take on an ESP32 (measured against the 32-bit ESP32-arithmetic
    # build: fleet layer 27.8 KB vs 20.4 KB). Give it that much more, so a model that fits an
    # ESP32 beside the fleet layer fits here; the 32-bit board gets the profile's heap. Both
    # also get the simulated chips' share (boards.SIM_HEAP), which a real board never loads, as
    # every other virtual board running the app: without it the bench's 100 KB boards ran out.
    heap = profile.heap_bytes if arch == "x86" else int(profile.heap_bytes * X64_HEAP_FACTOR)
    heap += SIM_HEAP
    return FleetBoard(device, root, exe, heap)
