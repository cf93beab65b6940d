"""`fleet push`: a signed model over the air, canaries first, stopped at the first failure.

Per device: ota_begin, the bundle in chunks (each acknowledged with the offset the board wants
next, so a lost or repeated chunk is resent or ignored), ota_end; then the board's events:
ota_refused (bad signature, replay, CRC, size: old model still running), or ota_verified and
ota_done / ota_failed (self-test failed: the board put its old model back). Health: after
ota_done the app must run on the new model (the board confirms it after a few windows) and
report status from it; a board whose app fails on it rolls back by itself, and a board that
stays silent is told to roll back.
"""

from __future__ import annotations

import json
import queue
import random
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from edgeloop.fleet.broker import BrokerAddress
from edgeloop.fleet.errors import FleetError
from edgeloop.fleet.registry import Fleet
from edgeloop.fleet.serve import connect_or_fail, host_client

CHUNK = 512  # the board's receive buffer is 700 bytes: topic + 9 header bytes + chunk


@dataclass
class DeviceResult:
    device: str
    ok: bool
    stage: str  # transfer, verify, apply, health, done
    reason: str = ""
    version: int | None = None
    seconds: float = 0.0
    verify_ms: int | None = None
    apply_ms: int | None = None
    chunks_resent: int = 0
    rolled_back: bool = False


@dataclass
class RolloutResult:
    version: int
    results: list[DeviceResult] = field(default_factory=list)
    stopped: bool = False
    skipped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.stopped and all(r.ok for r in self.results)

    def to_json(self) -> dict:
        return {"version": self.version, "ok": self.ok, "stopped": self.stopped,
                "skipped": self.skipped, "results": [asdict(r) for r in self.results]}


class Pusher:
    """One host MQTT session that talks to many devices' command and OTA topics at once."""

    def __init__(self, fleet: Fleet, broker: BrokerAddress, chunk: int = CHUNK,
                 ack_timeout: float = 5.0, result_timeout: float = 90.0,
                 health_timeout: float = 30.0) -> None:
        self.fleet = fleet
        self.broker = broker
        self.prefix = fleet.prefix
        self.chunk = chunk
        self.ack_timeout = ack_timeout
        self.result_timeout = result_timeout
        self.health_timeout = health_timeout
        self.queues: dict[str, dict[str, queue.Queue]] = {}
        self.lock = threading.Lock()
        self.client = host_client(fleet, broker, f"edgeloop-push-{random.randrange(1 << 30)}")
        self.client.on_message = self._message
        connect_or_fail(self.client, broker)
        kinds = ("ota", "event", "status")
        topics = [(f"{self.prefix}/+/{k}", 1) for k in kinds]
        done = threading.Event()
        self.client.on_subscribe = lambda *a, **k: done.set()
        self.client.subscribe(topics)
        if not done.wait(10):
            raise FleetError("the broker did not confirm the push session's subscriptions")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()

    def __enter__(self) -> Pusher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _q(self, dev: str, kind: str) -> queue.Queue:
        with self.lock:
            return self.queues.setdefault(dev, {}).setdefault(kind, queue.Queue())

    def _message(self, client, userdata, m) -> None:  # type: ignore[no-untyped-def]
        parts = m.topic.split("/")
        if len(parts) != 3:
            return
        try:
            msg = json.loads(m.payload)
        except ValueError:
            return
        if isinstance(msg, dict):
            self._q(parts[1], parts[2]).put(msg)

    def _cmd(self, dev: str, payload: bytes) -> None:
        self.client.publish(f"{self.prefix}/{dev}/cmd", payload, qos=1)

    def _wait(self, dev: str, kind: str, match, timeout: float) -> dict | None:  # type: ignore[no-untyped-def]
        q = self._q(dev, kind)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                msg = q.get(timeout=left)
            except queue.Empty:
                return None
            if match(msg):
                return msg

    def _drain(self, dev: str) -> None:
        for kind in ("ota", "event", "status"):
            q = self._q(dev, kind)
            while not q.empty():
                q.get_nowait()

    # -- one device -------------------------------------------------------------------------
    def transfer(self, dev: str, data: bytes, xid: int, stop_after: int | None = None) -> int:
        """Send the bundle; returns how many chunks had to be resent. stop_after (tests) ends
        the transfer after that many bytes, as a host that died mid-push would."""
        self._cmd(dev, json.dumps({"op": "ota_begin", "id": xid, "size": len(data)}).encode())
        ack = self._wait(dev, "ota", lambda m: m.get("id") == xid, self.ack_timeout * 2)
        if ack is None or "next" not in ack:
            raise FleetError(f"{dev}: no answer to ota_begin ({ack or 'timeout'})")
        off = 0
        resent = 0
        tries = 0
        while off < len(data):
            if stop_after is not None and off >= stop_after:
                return resent
            piece = data[off:off + self.chunk]
            self.client.publish(f"{self.prefix}/{dev}/cmd",
                                b"C" + struct.pack("<II", xid, off) + piece, qos=1)
            ack = self._wait(dev, "ota", lambda m, off=off: m.get("id") == xid and m.get("next", -1) >= off,
                             self.ack_timeout)
            if ack is None or "error" in ack:
                tries += 1
                resent += 1
                if tries > 5:
                    raise FleetError(f"{dev}: chunk at {off} not acknowledged after 5 tries")
                continue
            tries = 0
            off = int(ack["next"])
        self._cmd(dev, json.dumps({"op": "ota_end", "id": xid}).encode())
        return resent

    def update(self, dev: str, data: bytes, version: int) -> DeviceResult:
        t0 = time.monotonic()
        xid = random.randrange(1, 1 << 31)
        self._drain(dev)
        res = DeviceResult(dev, False, "transfer")
        try:
            res.chunks_resent = self.transfer(dev, data, xid)
        except FleetError as exc:
            res.reason = str(exc)
            res.seconds = time.monotonic() - t0
            return res
        res.stage = "verify"
        ends = ("ota_refused", "ota_done", "ota_failed")
        ev = self._wait(dev, "event", lambda m: m.get("id") == xid and m.get("event") in ends
                        or m.get("event") == "ota_verified" and m.get("id") == xid,
                        self.result_timeout)
        if ev is not None and ev.get("event") == "ota_verified":
            res.verify_ms = ev.get("verify_ms")
            res.stage = "apply"
            ev = self._wait(dev, "event", lambda m: m.get("id") == xid and m.get("event") in ends,
                            self.result_timeout)
        res.seconds = time.monotonic() - t0
        if ev is None:
            res.reason = f"no result from the board within {self.result_timeout:.0f} s"
            return res
        res.version = ev.get("version")
        if ev["event"] != "ota_done":
            res.reason = f"{ev['event']}: {ev.get('reason', '')}"
            return res
        res.apply_ms = ev.get("apply_ms")
        res.stage = "health"
        bad = ("app_failed", "ota_rolled_back")
        ev = self._wait(dev, "event", lambda m: m.get("event") in bad
                        or m.get("event") == "ota_confirmed" and m.get("version") == version,
                        self.health_timeout)
        res.seconds = time.monotonic() - t0
        if ev is not None and ev["event"] == "ota_confirmed":
            st = self._wait(dev, "status", lambda m: m.get("v") == version, self.health_timeout)
            if st is not None:
                res.ok, res.stage = True, "done"
                return res
        res.reason = (f"{ev['event']}: {ev.get('error') or ev.get('why', '')}" if ev is not None
                      else f"version {version} not confirmed within {self.health_timeout:.0f} s")
        res.rolled_back = self.rollback(dev, already=ev is not None and ev["event"] == bad[1],
                                        by_itself=ev is not None and ev["event"] == bad[0])
        res.seconds = time.monotonic() - t0
        return res

    def rollback(self, dev: str, already: bool = False, by_itself: bool = False) -> bool:
        """Put the board's previous model back. A board whose app failed on a model still on
        probation rolls back by itself (after a reset): then this waits for its report."""
        if already:
            return True
        xid = random.randrange(1, 1 << 31)
        ev = None
        if by_itself:
            ev = self._wait(dev, "event", lambda m: m.get("event") == "ota_rolled_back",
                            self.result_timeout)
        if ev is None:
            self._cmd(dev, json.dumps({"op": "rollback", "id": xid}).encode())
            ev = self._wait(dev, "event", lambda m: m.get("event") in ("ota_rolled_back",
                                                                      "rollback_refused"),
                            self.result_timeout)
        return ev is not None and ev["event"] == "ota_rolled_back"

    # -- a rollout --------------------------------------------------------------------------
    def rollout(self, devices: list[str], data: bytes, version: int, canary: int = 0,
                parallel: int = 4, progress=None) -> RolloutResult:  # type: ignore[no-untyped-def]
        out = RolloutResult(version)
        waves = [devices[:canary], devices[canary:]] if canary else [devices]
        for n, wave in enumerate(waves):
            if not wave:
                continue
            with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(wave)))) as pool:
                for r in pool.map(lambda d: self.update(d, data, version), wave):
                    out.results.append(r)
                    if progress is not None:
                        progress(r)
            if not all(r.ok for r in out.results):
                out.stopped = True
                out.skipped = [d for w in waves[n + 1:] for d in w]
                break
        return out
