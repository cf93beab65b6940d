"""`fleet serve`: every device's telemetry into SQLite, bad messages dropped and counted.

A message is kept only when its topic is <prefix>/<known device>/<kind>, it is at most
MAX_MESSAGE bytes, it is a JSON object, and any device id inside it is the topic's (the ACL
already stops a device publishing under another's prefix; a payload that claims another device
is spoofed all the same). Everything else is counted by reason in `rejected` and the loop goes on.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from edgeloop.fleet.broker import BrokerAddress
from edgeloop.fleet.errors import FleetError
from edgeloop.fleet.registry import Fleet
from edgeloop.fleet.store import Store

MAX_MESSAGE = 4096
KINDS = ("status", "event", "state")


def host_client(fleet: Fleet, broker: BrokerAddress, client_id: str, clean: bool = True):  # type: ignore[no-untyped-def]
    """A paho client logged in as the fleet's host user (TLS when the address is mqtts)."""
    import paho.mqtt.client as mqtt

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean,
                    protocol=mqtt.MQTTv311)
    user, pw = fleet.host_credentials()
    c.username_pw_set(user, pw)
    c.reconnect_delay_set(0.2, 2)  # a restarted broker is back within seconds
    if broker.tls:
        c.tls_set(ca_certs=broker.ca)  # None: the system's CAs
    return c


def connect_or_fail(client, broker: BrokerAddress, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    """Connect and wait for the CONNACK; a refusal or no broker is a FleetError."""
    done = threading.Event()
    result: list[object] = []

    def on_connect(c, u, flags, rc, props=None):  # type: ignore[no-untyped-def]
        result.append(rc)
        done.set()

    client.on_connect = on_connect
    try:
        client.connect(broker.host, broker.port, keepalive=30)
    except OSError as exc:
        raise FleetError(f"cannot reach the broker at {broker.url}: {exc}") from None
    client.loop_start()
    if not done.wait(timeout):
        client.loop_stop()
        raise FleetError(f"no answer from the broker at {broker.url} within {timeout:.0f} s")
    rc = result[0]
    if getattr(rc, "is_failure", False):
        client.loop_stop()
        raise FleetError(f"the broker at {broker.url} refused the host login: {rc}")


@dataclass
class Counts:
    kept: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)
    duplicates: int = 0


class Ingestor:
    """Subscribes to every device's topics and writes them to the store."""

    def __init__(self, fleet: Fleet, broker: BrokerAddress, db_path=None, on_message=None,  # type: ignore[no-untyped-def]
                 client_id: str | None = None, only_known: bool = False) -> None:
        self.fleet = fleet
        self.broker = broker
        self.prefix = fleet.prefix
        self.known = set(fleet.devices())
        self.store = Store(db_path or fleet.db_path)
        self.counts = Counts()
        self.lock = threading.Lock()
        self.on_message = on_message
        self.only_known = only_known
        # A persistent session under a fixed id: the broker keeps serve's subscriptions and
        # queues QoS 1 events for it while it is away (or the broker restarts, with persistence).
        self.client = host_client(fleet, broker, client_id or "edgeloop-serve", clean=False)
        self._last_commit = time.monotonic()

    def start(self) -> Ingestor:
        c = self.client
        c.on_message = self._message

        def on_connect(cl, u, flags, rc, props=None):  # type: ignore[no-untyped-def]
            # re-subscribe after every (re)connect: the broker may have restarted
            if self.only_known:  # (benchmarks: other clients' traffic is not ours to count)
                cl.subscribe([(f"{self.prefix}/{d}/{k}", 1) for d in sorted(self.known)
                              for k in KINDS])
            else:
                cl.subscribe([(f"{self.prefix}/+/{k}", 1) for k in KINDS])

        connect_or_fail(c, self.broker)
        c.on_connect = on_connect
        on_connect(c, None, None, None)
        return self

    def reload_devices(self) -> None:
        self.known = set(self.fleet.devices())

    def classify(self, topic: str, payload: bytes) -> tuple[str | None, str, dict | None]:
        """(device, kind, message) of a valid message, or (None, reason, None)."""
        parts = topic.split("/")
        if len(parts) != 3 or parts[0] != self.prefix or parts[2] not in KINDS:
            return None, "malformed", None
        dev, kind = parts[1], parts[2]
        if dev not in self.known:
            return None, "unknown", None
        if len(payload) > MAX_MESSAGE:
            return None, "oversized", None
        try:
            msg = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            return None, "malformed", None
        if not isinstance(msg, dict):
            return None, "malformed", None
        if "dev" in msg and msg["dev"] != dev:
            return None, "spoofed", None
        if kind == "event" and not (isinstance(msg.get("seq"), int) and msg.get("boot")):
            return None, "malformed", None
        return dev, kind, msg

    def _message(self, client, userdata, m) -> None:  # type: ignore[no-untyped-def]
        try:
            self.handle(m.topic, bytes(m.payload))
        except Exception as exc:  # never let one message stop the ingest
            with self.lock:
                self.counts.rejected[f"error: {type(exc).__name__}"] += 1

    def handle(self, topic: str, payload: bytes) -> bool:
        dev, kind, msg = self.classify(topic, payload)
        t = time.time()
        with self.lock:
            if dev is None:
                self.counts.rejected[kind] += 1
                self.store.rejected(topic, kind, len(payload), t)
                self._maybe_commit()
                return False
            assert msg is not None
            if kind == "status":
                self.store.status(dev, msg, t)
            elif kind == "event":
                if not self.store.event(dev, msg, t):
                    self.counts.duplicates += 1
            else:
                self.store.state(dev, msg, t)
            self.counts.kept[kind] += 1
            self._maybe_commit()
        if self.on_message is not None:
            self.on_message(dev, kind, msg)
        return True

    def _maybe_commit(self) -> None:
        now = time.monotonic()
        if now - self._last_commit > 0.5:
            self.store.commit()
            self._last_commit = now

    def flush(self) -> None:
        with self.lock:
            self.store.commit()

    def stop(self) -> None:
        self.client.loop_stop()
        try:
            self.client.disconnect()
        except OSError:
            pass
        with self.lock:
            self.store.close()
