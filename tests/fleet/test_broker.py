"""The broker's rules, on a real Mosquitto (else the embedded broker): per-device logins and an
ACL that lets a device publish only under its own prefix and read only its own commands."""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt
import pytest

from edgeloop.fleet.broker import acl_text, parse_broker
from edgeloop.fleet.errors import FleetError


def _client(broker, user: str, password: str, cid: str):  # type: ignore[no-untyped-def]
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv311)
    c.username_pw_set(user, password)
    got: list[tuple[str, bytes]] = []
    codes: list[object] = []
    ready = threading.Event()
    c.on_message = lambda cl, u, m: got.append((m.topic, bytes(m.payload)))

    def on_connect(cl, u, f, rc, p=None):  # type: ignore[no-untyped-def]
        codes.append(rc)
        ready.set()

    c.on_connect = on_connect
    c.connect(broker.host, broker.port)
    c.loop_start()
    ready.wait(5)
    c.got, c.codes = got, codes  # type: ignore[attr-defined]
    return c


def _settle(cond, timeout: float = 3.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_device_acl(fleet, broker) -> None:  # type: ignore[no-untyped-def]
    host = _client(broker, *fleet.host_credentials(), "host")
    host.subscribe("el/#", 1)
    d1 = _client(broker, "d1", fleet.password("d1"), "d1")
    d2 = _client(broker, "d2", fleet.password("d2"), "d2")
    d1.subscribe("el/d1/cmd", 1)
    d1.subscribe("el/d2/cmd", 1)  # another device's commands: refused
    d1.subscribe("el/#", 1)  # everything: refused
    time.sleep(0.3)
    d1.publish("el/d1/status", b"own", 1)
    d1.publish("el/d2/status", b"spoof", 1)  # under d2's prefix: dropped by the broker
    d1.publish("el/d1/cmd", b"self", 1)  # its own command topic: devices may not write it
    host.publish("el/d1/cmd", b"for-d1", 1)
    host.publish("el/d2/cmd", b"for-d2", 1)
    _settle(lambda: len(d1.got) >= 1 and len(host.got) >= 3)
    time.sleep(0.3)
    assert ("el/d1/status", b"own") in host.got
    assert ("el/d2/status", b"spoof") not in host.got
    assert ("el/d1/cmd", b"self") not in host.got
    assert d1.got == [("el/d1/cmd", b"for-d1")]
    for c in (host, d1, d2):
        c.loop_stop()
        c.disconnect()


def test_wrong_password_and_unknown_user_refused(fleet, broker) -> None:  # type: ignore[no-untyped-def]
    bad = _client(broker, "d1", "not-the-password", "x1")
    ghost = _client(broker, "ghost", "x", "x2")
    for c in (bad, ghost):
        assert c.codes and c.codes[0].is_failure, c.codes
        c.loop_stop()


def test_acl_text_is_per_device() -> None:
    acl = acl_text(["a", "b"], "host")
    assert "user a\ntopic write el/a/status" in acl
    assert "topic read el/a/cmd" in acl and "topic read el/b/cmd" in acl
    assert "topic write el/a/cmd" not in acl


@pytest.mark.parametrize("url,want", [("mqtt://h:1884", ("h", 1884, False)),
                                      ("mqtts://h", ("h", 8883, True)), ("h", ("h", 1883, False))])
def test_parse_broker(url: str, want: tuple) -> None:
    a = parse_broker(url)
    assert (a.host, a.port, a.tls) == want


def test_parse_broker_refuses_other_schemes() -> None:
    with pytest.raises(FleetError, match="expected mqtt://"):
        parse_broker("http://x:80")
