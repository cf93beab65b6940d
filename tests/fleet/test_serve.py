"""`fleet serve`: telemetry into SQLite through a real broker; malformed, oversized, spoofed and
unknown-device messages dropped and counted while the ingest goes on; QoS 1 duplicates dropped."""

from __future__ import annotations

import json
import sqlite3
import time

import paho.mqtt.client as mqtt

from edgeloop.fleet.serve import MAX_MESSAGE, Ingestor
from edgeloop.fleet.store import device_rows, rejected_counts


def _device(broker, fleet, dev: str):  # type: ignore[no-untyped-def]
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=dev, protocol=mqtt.MQTTv311)
    c.username_pw_set(dev, fleet.password(dev))
    c.connect(broker.host, broker.port)
    c.loop_start()
    return c


def test_ingest_keeps_good_and_counts_bad(fleet, broker) -> None:  # type: ignore[no-untyped-def]
    ing = Ingestor(fleet, broker.address).start()
    time.sleep(0.3)
    d1 = _device(broker, fleet, "d1")
    status = {"w": 7, "cls": 1, "label": "fault", "score": 90, "alarm": True, "free": 12000,
              "us": 800, "v": 3, "rc": 1, "alarms": 2, "ob": 0, "od": 0, "dev": "d1"}
    event = {"event": "alarm", "on": True, "dev": "d1", "boot": "b1", "seq": 1}
    sends = [
        ("el/d1/status", b"not json {"),  # malformed
        ("el/d1/status", b"[1, 2]"),  # not an object: malformed
        ("el/d1/status", json.dumps({"pad": "x" * MAX_MESSAGE}).encode()),  # oversized
        ("el/d1/status", json.dumps(dict(status, dev="d2")).encode()),  # claims to be d2
        ("el/d1/event", json.dumps({"event": "x"}).encode()),  # no boot/seq: malformed
        ("el/d1/status", json.dumps(status).encode()),
        ("el/d1/event", json.dumps(event).encode()),
        ("el/d1/event", json.dumps(event).encode()),  # QoS 1 duplicate
        ("el/d1/state", json.dumps({"state": "online", "version": 3, "boot": "b1"}).encode()),
    ]
    for topic, payload in sends:
        d1.publish(topic, payload, qos=1).wait_for_publish(3)
    deadline = time.monotonic() + 5
    while sum(ing.counts.kept.values()) + ing.counts.duplicates < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    ing.stop()
    d1.loop_stop()
    assert dict(ing.counts.rejected) == {"malformed": 3, "oversized": 1, "spoofed": 1}
    assert ing.counts.duplicates == 1
    rows = {r["dev"]: r for r in device_rows(fleet.db_path)}
    assert rows["d1"]["version"] == 3 and rows["d1"]["alarms"] == 2 and rows["d1"]["state"] == "online"
    assert rejected_counts(fleet.db_path) == {"malformed": 3, "oversized": 1, "spoofed": 1}
    db = sqlite3.connect(fleet.db_path)
    assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 1
    assert db.execute("SELECT w, label, version FROM status").fetchall() == [(7, "fault", 3)]


def test_unknown_device_is_rejected(fleet, broker) -> None:  # type: ignore[no-untyped-def]
    ing = Ingestor(fleet, broker.address)
    dev, reason, _ = ing.classify("el/ghost/status", b"{}")
    assert (dev, reason) == (None, "unknown")
    assert ing.classify("el/d1/nope", b"{}")[1] == "malformed"
    assert ing.classify("other/d1/status", b"{}")[1] == "malformed"
    ing.stop()
