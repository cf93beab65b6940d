# The board as a member of the fleet: its MQTT session, outbox, commands and OTA.
#
# main.py calls boot(cfg) before the app; the app's emit() hands every status line and event to
# publish(). Per-window status goes out at QoS 0 (a lost one is replaced by the next); events
# (start, alarm changes, sensor errors, OTA results) go through the preallocated outbox at QoS 1
# and survive a broker outage. The connection is retried with backoff from the sampling loop and
# never blocks it for longer than one connect timeout.
#
# Topics, under "<prefix>/<device>/" (prefix "el"): status (QoS 0), event (QoS 1, seq-numbered
# per boot), state (retained "online"; the last will sets "offline"), ota (transfer acks) and
# cmd (the only topic the board subscribes to). The broker's ACL allows nothing else.
#
# config.json "fleet": {device, broker, port, prefix, keepalive, status_ms, pace_ms, outbox,
# slot, tls}; the MQTT password and the Wi-Fi credentials come from secrets.json, which deploy
# writes from the user's environment (never from a run folder).
import binascii
import json
import os
import struct
import time

from net import ota
from net.mqtt import MQTTClient
from net.outbox import Outbox

try:
    from time import ticks_diff, ticks_ms
except ImportError:  # pragma: no cover
    ticks_ms = ticks_diff = None

KINDS = ("status", "event", "state", "ota", "data")
T_STATUS, T_EVENT, T_STATE, T_OTA, T_DATA = 0, 1, 2, 3, 4
SECRETS = "secrets.json"
RESET_EXIT = 77  # the virtual board's "machine.reset()": its supervisor restarts the process


class Restart(Exception):
    """Raised out of the app's loop when a received update waits for the reset that checks it."""


def _load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def wifi_connect(secrets, timeout_ms=20000):
    """Join the Wi-Fi named in secrets.json; boards without `network` (virtual) skip it."""
    w = secrets.get("wifi")
    try:
        import network
    except ImportError:
        return None
    if not w:
        return None
    sta = network.WLAN(network.STA_IF)
    sta.active(True)
    if not sta.isconnected():
        sta.connect(w["ssid"], w.get("password", ""))
        t0 = ticks_ms()
        while not sta.isconnected() and ticks_diff(ticks_ms(), t0) < timeout_ms:
            time.sleep_ms(100)
    return sta.isconnected()


class Node:
    def __init__(self, cfg, secrets):
        f = cfg.get("fleet", {})
        self.dev = f["device"]
        prefix = f.get("prefix", "el")
        base = "%s/%s/" % (prefix, self.dev)
        self.topics = [(base + k).encode() for k in KINDS]
        self.cmd_topic = base + "cmd"
        m = secrets.get("mqtt", {})
        ctx = None
        if f.get("tls"):
            import ssl

            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            if f.get("ca"):
                ctx.load_verify_locations(cafile=f["ca"])
        self.client = MQTTClient(self.dev, f.get("broker", "127.0.0.1"), int(f.get("port", 1883)),
                                 m.get("user", self.dev), m.get("password"),
                                 keepalive=int(f.get("keepalive", 30)), ssl_context=ctx,
                                 rx_size=int(f.get("rx", 1600)), timeout=float(f.get("timeout", 3)))
        self.client.set_last_will(self.topics[T_STATE], b'{"state": "offline"}', retain=True, qos=1)
        self.outbox = Outbox(int(f.get("outbox", 24)), int(f.get("slot", 256)))
        self.client.on_message = self._on_message
        self.client.on_puback = self.outbox.ack
        self.boot_id = binascii.hexlify(os.urandom(4)).decode()
        self.seq = 0
        self.connects = 0
        self.failures = 0
        self.next_try = ticks_ms()
        self.backoff = 500
        self.status_ms = int(f.get("status_ms", 1000))
        self.pace_ms = int(f.get("pace_ms", 0))
        self.last_status = ticks_ms() - self.status_ms
        self.last_window = ticks_ms()
        self.alarm = False
        self.alarms = 0
        self.version = ota.installed_version()
        self.receiver = None
        self.reset_pending = False  # a received bundle waits for the reset that checks it
        self.status_buf = {}
        self.tick_every = int(f.get("event_every", 0))  # windows between "tick" events (bench)

    # -- connection -------------------------------------------------------------------------
    def connect(self):
        c = self.client
        try:
            c.connect(clean_session=True)
            c.publish(self.topics[T_STATE], json.dumps(
                {"state": "online", "version": self.version, "boot": self.boot_id,
                 "reconnects": max(0, self.connects)}), qos=1, retain=True)
            c.subscribe(self.cmd_topic, 1)
        except OSError:
            c.close()
            self.failures += 1
            self.next_try = time.ticks_add(ticks_ms(), self.backoff)
            self.backoff = min(self.backoff * 2, 15000)
            return False
        self.connects += 1
        self.backoff = 500
        self.outbox.reconnected()
        return True

    def service(self, wait_ms=0):
        """Reconnect when due, send what the outbox holds, handle incoming commands."""
        c = self.client
        if not c.connected:
            if ticks_diff(ticks_ms(), self.next_try) < 0:
                if wait_ms:
                    time.sleep_ms(wait_ms)
                return
            if not self.connect():
                return
        try:
            ob = self.outbox
            for i in ob.pending():
                ob.mark_sent(i, c.publish(self.topics[ob.topic[i]], ob.message(i), qos=1))
            budget = 50
            while budget and c.poll(wait_ms):
                budget -= 1
                wait_ms = 0
        except OSError:
            c.close()
            self.next_try = ticks_ms()

    # -- what the app reports ---------------------------------------------------------------
    def event(self, obj):
        self.seq += 1
        obj["dev"] = self.dev
        obj["boot"] = self.boot_id
        obj["seq"] = self.seq
        obj["v"] = self.version
        return self.outbox.put(T_EVENT, json.dumps(obj))

    def publish(self, obj):
        """The app's emit() hook: status lines at QoS 0, events through the outbox."""
        if "event" in obj:
            self.event(dict(obj))
        elif "w" in obj:
            alarm = bool(obj.get("alarm"))
            if alarm != self.alarm:
                self.alarm = alarm
                if alarm:
                    self.alarms += 1
                self.event({"event": "alarm", "on": alarm, "w": obj["w"], "label": obj.get("label"),
                            "score": obj.get("score")})
            if self.tick_every and obj["w"] % self.tick_every == 0:
                self.event({"event": "tick", "w": obj["w"]})
            now = ticks_ms()
            if self.client.connected and ticks_diff(now, self.last_status) >= self.status_ms:
                self.last_status = now
                st = self.status_buf
                st.clear()
                st.update(obj)
                st["dev"] = self.dev
                st["v"] = self.version
                st["rc"] = max(0, self.connects - 1)
                st["alarms"] = self.alarms
                st["ob"] = self.outbox.count
                st["od"] = self.outbox.dropped
                st["t"] = now
                try:
                    self.client.publish(self.topics[T_STATUS], json.dumps(st))
                except OSError:
                    self.client.close()
            self.pace(now)
        if self.reset_pending:
            raise Restart()

    def pace(self, now):
        """Serve the network; simulated boards (pace_ms) also wait out the rest of a window."""
        left = ticks_diff(time.ticks_add(self.last_window, self.pace_ms), now) if self.pace_ms else 0
        while True:
            self.service(min(left, 50) if left > 0 else 0)
            left = ticks_diff(time.ticks_add(self.last_window, self.pace_ms), ticks_ms())
            if left <= 0:
                break
        self.last_window = ticks_ms()

    # -- commands ---------------------------------------------------------------------------
    def _ota_ack(self, obj):
        try:
            self.client.publish(self.topics[T_OTA], json.dumps(obj))
        except OSError:
            self.client.close()

    def _on_message(self, topic, msg):
        if len(msg) >= 9 and msg[0] == 0x43:  # b"C": an OTA chunk (id, offset, data)
            xid, off = struct.unpack("<II", msg[1:9])
            r = self.receiver
            if r is None or r.id != xid:
                self._ota_ack({"id": xid, "error": "no transfer"})
                return
            self._ota_ack({"id": xid, "next": r.chunk(off, msg[9:])})
            return
        try:
            cmd = json.loads(bytes(msg))
            op = cmd["op"]
        except (ValueError, KeyError, TypeError):
            self.event({"event": "bad_command", "len": len(msg)})
            return
        if op == "ping":
            self.event({"event": "pong", "id": cmd.get("id")})
        elif op == "ota_begin":
            if self.receiver is not None:
                self.receiver.abort()
            try:
                self.receiver = ota.Receiver(int(cmd["id"]), int(cmd["size"]))
                self._ota_ack({"id": self.receiver.id, "next": 0})
            except (OSError, ValueError) as exc:
                self.receiver = None
                self.event({"event": "ota_refused", "id": cmd.get("id"), "reason": str(exc)})
        elif op == "ota_end":
            r = self.receiver
            self.receiver = None
            if r is None or r.id != cmd.get("id"):
                self.event({"event": "ota_refused", "id": cmd.get("id"), "reason": "no transfer"})
                return
            try:
                r.finish()
            except (OSError, ValueError) as exc:
                self.event({"event": "ota_refused", "id": r.id, "reason": str(exc),
                            "version": self.version})
                return
            self.reset_pending = True  # checked after a reset, on a fresh heap
        elif op == "ota_abort":
            if self.receiver is not None:
                self.receiver.abort()
                self.receiver = None
        else:
            self.event({"event": "bad_command", "op": op})

    # -- the swap, between two runs of the app ----------------------------------------------
    def apply_pending(self, xid, size):
        """At boot, before the app: verify the received bundle, swap it in, self-test, commit or
        roll back, and report each outcome as a QoS 1 event."""
        import gc

        gc.collect()
        free = gc.mem_free()
        t0 = ticks_ms()
        try:
            m = ota.verify_pending(size)
        except (OSError, ValueError, KeyError) as exc:
            self.event({"event": "ota_refused", "id": xid, "reason": str(exc),
                        "version": self.version})
            return
        t1 = ticks_ms()
        self.event({"event": "ota_verified", "id": xid, "version": m["version"],
                    "verify_ms": ticks_diff(t1, t0), "free": free})
        gc.collect()
        ok, detail = ota.apply(m, self.event if m.get("trace") else None)
        if ok:
            self.version = ota.installed_version()
            self.event({"event": "ota_done", "id": xid, "version": self.version,
                        "apply_ms": ticks_diff(ticks_ms(), t1)})
        else:
            self.event({"event": "ota_failed", "id": xid, "version": self.version,
                        "reason": detail})

    def flush(self, timeout_ms=3000):
        """Give the outbox a chance to empty (before a swap, or at the end of a run)."""
        t0 = ticks_ms()
        while self.outbox.count and ticks_diff(ticks_ms(), t0) < timeout_ms:
            self.service(20)


class Fleet:
    """What main.py holds. The Node is made at the app's first report, after the model has
    taken the heap's largest blocks, or at boot when a received update waits to be checked."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.node = None
        self.recovered = ota.recover()
        ota.pause_at = cfg.get("ota_pause_at")
        p = ota.pending()
        if p is not None:
            n = self._node()
            n.apply_pending(p[0], p[1])
            n.flush()
            import gc

            for name in ("ed25519", "sha512"):  # their code is not needed again until the next update
                _unload("net." + name)
            gc.collect()

    def _node(self):
        if self.node is None:
            secrets = _load(SECRETS)
            wifi_connect(secrets)
            n = self.node = Node(self.cfg, secrets)
            secrets = None
            n.service()
            if self.recovered:
                n.event({"event": "ota_recovered", "action": self.recovered})
        return self.node

    def publish(self, obj):
        self._node().publish(obj)

    def flush(self):
        if self.node is not None:
            self.node.flush()

    def reset(self):
        """A received update waits: report what is queued, then reset the board (the virtual
        board's process exits with RESET_EXIT and its supervisor starts it again)."""
        self.flush()
        if self.node is not None:
            self.node.client.disconnect()
        try:
            import machine

            machine.reset()
        except (ImportError, AttributeError):
            pass
        import sys

        sys.exit(RESET_EXIT)


def _unload(name):
    import sys

    sys.modules.pop(name, None)
    pkg, _, attr = name.rpartition(".")
    mod = sys.modules.get(pkg)
    if mod is not None and attr in mod.__dict__:
        delattr(mod, attr)


def boot(cfg):
    """Finish or undo an interrupted update; the fleet session starts with the app."""
    return Fleet(cfg)
