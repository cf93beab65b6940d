"""The fleet's home folder: devices and their credentials, the OTA signing key, the database.

Layout (default ./fleet, or --home / $EDGELOOP_FLEET_HOME):

    fleet.json        prefix, the host's MQTT user, the last model version pushed
    devices.json      device id -> MQTT password (mode 600; secrets, never in a run folder)
    keys/ota.pem      Ed25519 private key that signs OTA bundles (mode 600)
    keys/ota.pub      its 32-byte public key, the only key a board holds
    fleet.db          telemetry (see edgeloop/fleet/store.py)
    broker/           the embedded or test broker's generated config, passwd and ACL
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
from pathlib import Path

from edgeloop.fleet.errors import FleetError

HOST_USER = "edgeloop-host"
DEVICE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")


def mosquitto_hash(password: str, iterations: int = 101) -> str:
    """A password-file entry in Mosquitto 2's PBKDF2-SHA512 format ($7$)."""
    salt = secrets.token_bytes(12)
    dk = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(dk).decode()}"


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


class Fleet:
    """One fleet's home folder."""

    def __init__(self, home: Path | str) -> None:
        self.home = Path(home)

    @classmethod
    def open(cls, home: Path | str | None = None) -> Fleet:
        return cls(home or os.environ.get("EDGELOOP_FLEET_HOME") or "fleet")

    # -- settings ---------------------------------------------------------------------------
    @property
    def settings_path(self) -> Path:
        return self.home / "fleet.json"

    def settings(self) -> dict:
        if self.settings_path.is_file():
            return json.loads(self.settings_path.read_text())
        return {}

    def save_settings(self, s: dict) -> None:
        _write_private(self.settings_path, json.dumps(s, indent=2))

    def init(self) -> dict:
        s = self.settings()
        if not s:
            s = {"prefix": "el", "host_user": HOST_USER, "host_password": secrets.token_urlsafe(18),
                 "last_version": 0}
            self.save_settings(s)
        return s

    @property
    def prefix(self) -> str:
        return self.settings().get("prefix", "el")

    def host_credentials(self) -> tuple[str, str]:
        s = self.init()
        return s["host_user"], s["host_password"]

    def next_version(self) -> int:
        s = self.init()
        s["last_version"] = int(s.get("last_version", 0)) + 1
        self.save_settings(s)
        return s["last_version"]

    # -- devices ----------------------------------------------------------------------------
    @property
    def devices_path(self) -> Path:
        return self.home / "devices.json"

    def devices(self) -> dict[str, dict]:
        if self.devices_path.is_file():
            return json.loads(self.devices_path.read_text())
        return {}

    def add(self, device: str) -> str:
        """Provision a device: its own MQTT password. Returns it (shown once, stored 600)."""
        if not DEVICE_ID.match(device) or device == HOST_USER:
            raise FleetError(
                f"device id {device!r}: use 1-32 letters, digits, '-' or '_' (no '/', '+', '#')"
            )
        self.init()
        devs = self.devices()
        if device in devs:
            return devs[device]["password"]
        devs[device] = {"password": secrets.token_urlsafe(18)}
        _write_private(self.devices_path, json.dumps(devs, indent=2))
        return devs[device]["password"]

    def remove(self, device: str) -> None:
        devs = self.devices()
        if device not in devs:
            raise FleetError(f"no device {device!r} in {self.devices_path}")
        del devs[device]
        _write_private(self.devices_path, json.dumps(devs, indent=2))

    def password(self, device: str) -> str:
        devs = self.devices()
        if device not in devs:
            raise FleetError(f"device {device!r} is not provisioned: edgeloop fleet add {device}")
        return devs[device]["password"]

    def users(self) -> dict[str, str]:
        """Every MQTT user the broker must know: the host and each device."""
        user, pw = self.host_credentials()
        out = {user: pw}
        out.update({d: v["password"] for d, v in self.devices().items()})
        return out

    def acl(self) -> str:
        from edgeloop.fleet.broker import acl_text

        return acl_text(sorted(self.devices()), self.host_credentials()[0], self.prefix)

    # -- keys -------------------------------------------------------------------------------
    @property
    def private_key_path(self) -> Path:
        return self.home / "keys" / "ota.pem"

    @property
    def public_key_path(self) -> Path:
        return self.home / "keys" / "ota.pub"

    def keygen(self, force: bool = False) -> bytes:
        from edgeloop.fleet.signing import generate_key

        if self.private_key_path.exists() and not force:
            raise FleetError(
                f"{self.private_key_path} exists: boards trust its public key; "
                "--force makes a new one (every board then needs a deploy)"
            )
        pem, pub = generate_key()
        _write_private(self.private_key_path, pem.decode())
        self.public_key_path.write_bytes(pub)
        return pub

    def private_key_pem(self) -> bytes:
        if not self.private_key_path.is_file():
            raise FleetError(f"no signing key in {self.private_key_path}: edgeloop fleet keygen")
        return self.private_key_path.read_bytes()

    def public_key(self) -> bytes:
        if not self.public_key_path.is_file():
            raise FleetError(f"no public key in {self.public_key_path}: edgeloop fleet keygen")
        return self.public_key_path.read_bytes()

    @property
    def db_path(self) -> Path:
        return self.home / "fleet.db"

    @property
    def broker_dir(self) -> Path:
        return self.home / "broker"
