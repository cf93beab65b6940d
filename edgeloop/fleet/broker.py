"""The fleet's MQTT broker: a real Mosquitto when installed, else the embedded amqtt one.

Both are started the same way, on a loopback port with per-device credentials and an ACL that
lets a device publish only under its own topic prefix and subscribe only to its own commands.
`--broker mqtt://host:port` names an external broker instead (Mosquitto or any MQTT 3.1.1 one);
its password file and ACL are then the operator's, made from `fleet acl` / `fleet passwd`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote, urlparse

from edgeloop.fleet.errors import FleetError

DEVICE_TOPICS = ("status", "event", "state", "ota", "data")


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool = False
    ca: str | None = None  # PEM file of the CA that signed the broker's certificate (mqtts)

    @property
    def url(self) -> str:
        ca = f"?ca={quote(self.ca)}" if self.ca else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}{ca}"


def parse_broker(url: str) -> BrokerAddress:
    """mqtt://host:port (1883 by default) or mqtts://host:port (8883); mqtts://host?ca=ca.pem
    trusts that CA (a broker with its own CA, as Mosquitto setups have) instead of the
    system's, on the host and on the boards `fleet deploy` provisions."""
    u = urlparse(url if "://" in url else f"mqtt://{url}")
    if u.scheme not in ("mqtt", "mqtts") or not u.hostname:
        raise FleetError(f"--broker {url!r}: expected mqtt://host:port or mqtts://host:port")
    tls = u.scheme == "mqtts"
    try:
        port = u.port or (8883 if tls else 1883)
    except ValueError as exc:
        raise FleetError(f"--broker {url!r}: {exc}") from None
    query = parse_qs(u.query)
    if set(query) - {"ca"}:
        raise FleetError(f"--broker {url!r}: the only option is ?ca=CA.pem (mqtts)")
    ca = query.get("ca", [None])[-1]
    if ca is not None and not tls:
        raise FleetError(f"--broker {url!r}: ?ca= is for TLS: use mqtts://")
    if ca is not None and not Path(ca).is_file():
        raise FleetError(f"--broker {url!r}: no CA certificate file {ca}")
    return BrokerAddress(u.hostname, port, tls, str(Path(ca).resolve()) if ca else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(host: str, port: int, timeout: float = 10.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise FleetError(f"the broker exited at start (code {proc.returncode})")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise FleetError(f"no broker listening on {host}:{port} after {timeout:.0f} s")


def acl_text(devices: list[str], host_user: str, prefix: str = "el", pattern: bool = False) -> str:
    """Mosquitto ACL: the host reads and writes everything under prefix; each device writes only
    its own data topics and reads only its own commands. pattern=True gives the same rules for
    every user name (%u) at once, for large simulated fleets."""
    lines = [f"user {host_user}", f"topic readwrite {prefix}/#", ""]
    if pattern:
        lines += [f"pattern write {prefix}/%u/{t}" for t in DEVICE_TOPICS]
        lines += [f"pattern read {prefix}/%u/cmd", ""]
    for dev in devices:
        lines.append(f"user {dev}")
        lines += [f"topic write {prefix}/{dev}/{t}" for t in DEVICE_TOPICS]
        lines += [f"topic read {prefix}/{dev}/cmd", ""]
    return "\n".join(lines) + "\n"


def mosquitto_executable() -> str | None:
    for name in ("mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        found = shutil.which(name)
        if found:
            return found
    return None


def write_passwd(path: Path, users: dict[str, str]) -> None:
    """A Mosquitto password file (salted PBKDF2-SHA512 hashes, as mosquitto_passwd writes)."""
    from edgeloop.fleet.registry import mosquitto_hash

    path.write_text("".join(f"{u}:{mosquitto_hash(p)}\n" for u, p in users.items()))
    path.chmod(0o600)


class Broker:
    """A broker process on a loopback port, with its config, password file and ACL in `workdir`."""

    kind = "none"

    def __init__(self, workdir: Path, users: dict[str, str], acl: str, port: int | None = None,
                 host: str = "127.0.0.1") -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.users = users
        self.acl = acl
        self.host = host
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path = self.workdir / f"{self.kind}.log"

    @property
    def address(self) -> BrokerAddress:
        return BrokerAddress(self.host, self.port)

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> Broker:
        self.prepare()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.workdir)
        log.close()
        wait_port(self.host, self.port, proc=self.proc)
        return self

    def prepare(self) -> None:
        pass

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self, down_s: float = 0.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()

    def reload(self) -> None:
        """Re-read users and ACL (a device added while the broker runs)."""
        self.prepare()
        if self.proc is not None and self.kind == "mosquitto":
            self.proc.send_signal(signal.SIGHUP)
        elif self.proc is not None:
            self.restart()

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class MosquittoBroker(Broker):
    """Mosquitto with a generated config: no anonymous clients, passwords, ACL, persistence on."""

    kind = "mosquitto"

    def __init__(self, *args: object, max_connections: int = -1,
                 tls: tuple[Path, Path, Path] | None = None, **kw: object) -> None:
        """tls: (CA, certificate, key) PEM files: the listener speaks TLS only (mqtts)."""
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.max_connections = max_connections
        self.tls = tls
        exe = mosquitto_executable()
        if exe is None:
            raise FleetError("mosquitto is not installed (apt-get install mosquitto)")
        self.exe = exe

    def prepare(self) -> None:
        write_passwd(self.workdir / "passwd", self.users)
        (self.workdir / "acl").write_text(self.acl)
        (self.workdir / "mosquitto.conf").write_text(
            "# generated by edgeloop fleet\n"
            "per_listener_settings false\n"
            f"listener {self.port} {self.host}\n"
            + ("".join(f"{k} {Path(v).resolve()}\n" for k, v in
                       zip(("cafile", "certfile", "keyfile"), self.tls, strict=True)) if self.tls else "")
            + "allow_anonymous false\n"
            f"password_file {self.workdir / 'passwd'}\n"
            f"acl_file {self.workdir / 'acl'}\n"
            # sessions and queued QoS 1 messages survive a broker restart (serve's session is
            # persistent, so events published while it reconnects wait for it)
            "persistence true\n"
            f"persistence_location {self.workdir}/\n"
            "autosave_interval 1\n"
            f"max_connections {self.max_connections}\n"
            "max_inflight_messages 100\n"
            "max_queued_messages 10000\n"
            "max_packet_size 65536\n"
            # as root Mosquitto would switch to user `mosquitto`, who cannot read our 600 files
            + ("user root\n" if hasattr(os, "geteuid") and os.geteuid() == 0 else "")
            + "log_dest stdout\n"
            "log_type error\nlog_type warning\nconnection_messages false\n"
        )

    @property
    def address(self) -> BrokerAddress:
        if self.tls:
            return BrokerAddress(self.host, self.port, True, str(Path(self.tls[0]).resolve()))
        return BrokerAddress(self.host, self.port)

    def command(self) -> list[str]:
        return [self.exe, "-c", str(self.workdir / "mosquitto.conf")]


class EmbeddedBroker(Broker):
    """amqtt (a maintained pure-Python MQTT 3.1.1 broker) in its own process, same rules."""

    kind = "amqtt"

    def prepare(self) -> None:
        import json

        (self.workdir / "embedded.json").write_text(json.dumps({
            "host": self.host, "port": self.port, "users": self.users, "acl": self.acl,
        }))
        (self.workdir / "embedded.json").chmod(0o600)

    def command(self) -> list[str]:
        return [sys.executable, "-m", "edgeloop.fleet.embedded", str(self.workdir / "embedded.json")]


def make_broker(workdir: Path, users: dict[str, str], acl: str, kind: str = "auto",
                port: int | None = None) -> Broker:
    """kind: mosquitto, embedded, or auto (Mosquitto when installed, else embedded)."""
    if kind == "auto":
        kind = "mosquitto" if mosquitto_executable() else "embedded"
    if os.environ.get("EDGELOOP_BROKER") in ("mosquitto", "embedded") and kind == "auto":
        kind = os.environ["EDGELOOP_BROKER"]
    if kind == "mosquitto":
        return MosquittoBroker(workdir, users, acl, port=port)
    if kind == "embedded":
        return EmbeddedBroker(workdir, users, acl, port=port)
    raise FleetError(f"unknown broker kind {kind!r} (mosquitto, embedded, auto)")
