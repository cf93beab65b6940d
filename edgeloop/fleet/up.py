"""A whole fleet on this machine: a broker, N virtual boards and the ingest (`fleet up`, bench).

The broker is the embedded one unless a kind or an external address is given; the address in
use is recorded in fleet.json ("broker") so `fleet status` and `fleet push` in another terminal
find it.
"""

from __future__ import annotations

from pathlib import Path

from edgeloop.fleet.broker import Broker, BrokerAddress, make_broker
from edgeloop.fleet.errors import FleetError
from edgeloop.fleet.registry import Fleet
from edgeloop.fleet.serve import Ingestor
from edgeloop.fleet.virtual import FleetBoard, lay_out_board


def start_broker(fleet: Fleet, kind: str = "embedded", port: int | None = None) -> Broker:
    b = make_broker(fleet.broker_dir, fleet.users(), fleet.acl(), kind=kind, port=port)
    b.start()
    remember_broker(fleet, b.address)
    return b


def remember_broker(fleet: Fleet, address: BrokerAddress) -> None:
    s = fleet.init()
    s["broker"] = address.url
    fleet.save_settings(s)


def known_broker(fleet: Fleet, url: str | None) -> BrokerAddress:
    """--broker when given, else the broker `fleet up` / `serve` / `broker` last started."""
    from edgeloop.fleet.broker import parse_broker

    if url:
        return parse_broker(url)
    recorded = fleet.settings().get("broker")
    if not recorded:
        raise FleetError(
            "no broker: give --broker mqtt://host:port, or start one with `edgeloop fleet up`, "
            "`fleet serve` or `fleet broker`"
        )
    return parse_broker(recorded)


class VirtualFleet:
    """N provisioned virtual boards running `source`'s model, with their broker and ingest."""

    def __init__(self, fleet: Fleet, source: Path, n: int, broker: BrokerAddress | None = None,
                 broker_kind: str = "embedded", port: int | None = None, exe: str | None = None,
                 prefix: str = "vb", pace_ms: int = 200, fleet_extra: dict | None = None) -> None:
        self.fleet = fleet
        self.source = Path(source)
        self.devices = [f"{prefix}{i + 1}" for i in range(n)]
        self.external = broker
        self.broker_kind = broker_kind
        self.port = port
        self.exe = exe
        self.pace_ms = pace_ms
        self.fleet_extra = fleet_extra
        self.broker: Broker | None = None
        self.boards: list[FleetBoard] = []
        self.ingest: Ingestor | None = None

    @property
    def address(self) -> BrokerAddress:
        if self.external is not None:
            return self.external
        assert self.broker is not None
        return self.broker.address

    def start(self) -> VirtualFleet:
        fleet = self.fleet
        fleet.init()
        if not fleet.private_key_path.exists():
            fleet.keygen()
        for d in self.devices:
            fleet.add(d)
        if self.external is None:
            self.broker = start_broker(fleet, self.broker_kind, self.port)
        else:
            remember_broker(fleet, self.external)
        self.ingest = Ingestor(fleet, self.address).start()
        for d in self.devices:
            b = lay_out_board(fleet, d, self.source, self.address, fleet.home / "boards" / d,
                              exe=self.exe, pace_ms=self.pace_ms, fleet_extra=self.fleet_extra)
            self.boards.append(b.start())
        return self

    def stop(self) -> None:
        for b in self.boards:
            b.stop()
        if self.ingest is not None:
            self.ingest.stop()
        if self.broker is not None:
            self.broker.stop()

    def __enter__(self) -> VirtualFleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
