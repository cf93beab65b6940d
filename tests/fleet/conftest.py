"""Fixtures for the fleet tests: a real broker per test (Mosquitto, as Mosquitto's own suite
does: a free loopback port, a generated config, password file and ACL), else the embedded amqtt
broker; a provisioned fleet home; small models; virtual fleet boards.

Which broker ran is printed in the report header and in each broker test's properties.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fleet.kit import fc_model

from edgeloop.fleet.broker import Broker, make_broker, mosquitto_executable
from edgeloop.fleet.registry import Fleet
from edgeloop.fleet.virtual import FleetBoard, lay_out_board
from edgeloop.link.deploy import DEFAULT_DEVICE_CONFIG

BROKER_KIND = os.environ.get("EDGELOOP_TEST_BROKER") or (
    "mosquitto" if mosquitto_executable() else "embedded")


def pytest_report_header(config):  # type: ignore[no-untyped-def]
    why = "" if BROKER_KIND == "mosquitto" else " (mosquitto not installed)"
    return f"fleet tests broker: {BROKER_KIND}{why}"


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    f = Fleet(tmp_path / "fleet")
    f.init()
    f.keygen()
    for dev in ("d1", "d2"):
        f.add(dev)
    return f


@pytest.fixture
def broker(fleet: Fleet, record_property) -> Broker:  # type: ignore[no-untyped-def]
    record_property("broker", BROKER_KIND)
    b = make_broker(fleet.broker_dir, fleet.users(), fleet.acl(), kind=BROKER_KIND)
    b.start()
    yield b
    b.stop()


@pytest.fixture
def model_file(tmp_path: Path) -> Path:

    p = tmp_path / "m1.elb"
    p.write_bytes(fc_model(1))
    # a model deploys with its run's config.json beside it (a bare bundle is refused)
    (tmp_path / "config.json").write_text(json.dumps(DEFAULT_DEVICE_CONFIG))
    return p


@pytest.fixture
def make_board(fleet: Fleet, broker: Broker, model_file: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    boards: list[FleetBoard] = []

    def make(dev: str = "d1", exe: str | None = None, pace_ms: int = 100,
             fleet_cfg: dict | None = None, **cfg: object) -> FleetBoard:
        b = lay_out_board(fleet, dev, model_file, broker.address, tmp_path / "boards" / dev,
                          exe=exe, pace_ms=pace_ms, extra_config=cfg, fleet_extra=fleet_cfg)
        boards.append(b)
        return b

    yield make
    for b in boards:
        b.stop()
