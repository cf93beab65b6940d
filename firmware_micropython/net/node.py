# The board as a member of the fleet: its MQTT session, outbox and commands.
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
# OTA: chunks are appended to ota.part here (small: this module stays loaded with the app); at
# ota_end the board resets and net/ota.py checks and swaps the bundle at boot, before the app
# takes the heap, then leaves the heap again.
#
# config.json "fleet": {device, broker, port, prefix, keepalive, status_ms, pace_ms, outbox,
# slot, rx, tls, ca, event_every}; the MQTT password and the Wi-Fi credentials come from
# secrets.json, which deploy writes from the user's environment (never from a run folder).
import binascii
import json
import os
import struct
import time
from time import ticks_diff, ticks_ms

from net.mqtt import MQTTClient
from net.outbox import Outbox

KINDS = ("status", "event", "state", "ota", "data")
T_STATUS, T_EVENT, T_STATE, T_OTA, T_DATA = 0, 1, 2, 3, 4
SECRETS = "secrets.json"
PART = "ota.part"
PENDING = "ota.pending"
ROLLBACK = "ota.rollback"
CONFIRM_AFTER = 3  # windows the app must run on a new model before it is kept
RESET_EXIT = 77  # the virtual board's "machine.reset()": its supervisor restarts the process


class Restart(Exception):
    """Raised out of the app's loop when a received update waits for the reset that checks it."""


def _load(path, default):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


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
        base = "%s/%s/" % (f.get("prefix", "el"), self.dev)
        self.topics = [(base + k).encode() for k in KINDS]
        self.cmd_topic = base + "cmd"
        m = secrets.get("mqtt", {})
        ctx = None
        if f.get("tls"):
            import ssl

            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            if f.get("ca"):
                ctx.load_verify_locations(cafile=f["ca"])  # DER (PEM is refused)
                # MicroPython's client default is CERT_NONE: without this, any certificate
                # (a man in the middle's) would be taken
                ctx.verify_mode = ssl.CERT_REQUIRED
        c = self.client = MQTTClient(self.dev, f.get("broker", "127.0.0.1"),
                                     int(f.get("port", 1883)), m.get("user", self.dev),
                                     m.get("password"), int(f.get("keepalive", 30)), ctx,
                                     int(f.get("rx", 700)), float(f.get("timeout", 3)))
        c.set_last_will(self.topics[T_STATE], b'{"state": "offline"}', retain=True, qos=1)
        self.outbox = Outbox(int(f.get("outbox", 16)), int(f.get("slot", 200)))
        c.on_message = self._on_message
        c.on_puback = self.outbox.ack
        self.boot_id = binascii.hexlify(os.urandom(4)).decode()
        self.seq = 0
        self.connects = 0
        self.next_try = ticks_ms()
        self.backoff = 500
        self.status_ms = int(f.get("status_ms", 1000))
        self.pace_ms = int(f.get("pace_ms", 0))
        self.tick_every = int(f.get("event_every", 0))  # windows between "tick" events (bench)
        self.last_status = ticks_ms() - self.status_ms
        self.last_window = ticks_ms()
        self.alarm = False
        self.alarms = 0
        info = _load("version.json", {})
        self.version = int(info.get("version", 0))
        self.probation = bool(info.get("probation"))
        info = None
        self.rx = None  # [transfer id, size, received, file] of an update coming in
        self.collect = None  # [id, windows left, seq] of a remote recording
        self.rate = int(cfg.get("sample_rate_hz", cfg.get("sample_rate", 1000)))
        self.reset_pending = False

    # -- connection -------------------------------------------------------------------------
    def connect(self):
        c = self.client
        try:
            c.connect()
            c.publish(self.topics[T_STATE], json.dumps(
                {"state": "online", "version": self.version, "boot": self.boot_id,
                 "reconnects": self.connects}), qos=1, retain=True)
            c.subscribe(self.cmd_topic, 1)
        except OSError:
            c.close()
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
        msg = json.dumps(obj)
        if len(msg) > self.outbox.slot_size:  # keep what it was, drop the details
            msg = json.dumps({"event": obj.get("event"), "id": obj.get("id"), "dev": self.dev,
                              "boot": self.boot_id, "seq": self.seq, "v": self.version,
                              "version": obj.get("version"), "truncated": len(msg)})
        return self.outbox.put(T_EVENT, msg)

    def publish(self, obj):
        """The app's emit() hook: status lines at QoS 0, events through the outbox."""
        if "event" in obj:
            self.event(dict(obj))
        elif "w" in obj:
            w = obj["w"]
            alarm = bool(obj.get("alarm"))
            if alarm != self.alarm:
                self.alarm = alarm
                self.alarms += alarm
                self.event({"event": "alarm", "on": alarm, "w": w, "label": obj.get("label"),
                            "score": obj.get("score")})
            if self.probation and w >= CONFIRM_AFTER:  # (as ota.confirm, without its heap)
                info = _load("version.json", {})
                info["probation"] = False
                with open("version.json.tmp", "w") as f:
                    f.write(json.dumps(info))
                os.rename("version.json.tmp", "version.json")
                self.probation = False
                self.event({"event": "ota_confirmed", "version": self.version})
            if self.collect is not None:
                self._collect_window()
            if self.tick_every and w % self.tick_every == 0:
                self.event({"event": "tick", "w": w})
            now = ticks_ms()
            if self.client.connected and ticks_diff(now, self.last_status) >= self.status_ms:
                self.last_status = now
                obj["dev"] = self.dev
                obj["v"] = self.version
                obj["rc"] = max(0, self.connects - 1)
                obj["alarms"] = self.alarms
                obj["ob"] = self.outbox.count
                obj["od"] = self.outbox.dropped
                try:
                    self.client.publish(self.topics[T_STATUS], json.dumps(obj))
                except OSError:
                    self.client.close()
            self.pace(now)
        if self.reset_pending:
            raise Restart()

    def pace(self, now):
        """Serve the network; simulated boards (pace_ms) also wait out the rest of a window."""
        end = time.ticks_add(self.last_window, self.pace_ms)
        while True:
            left = ticks_diff(end, ticks_ms())
            self.service(min(left, 50) if left > 0 else 0)
            if ticks_diff(end, ticks_ms()) <= 0:
                break
        self.last_window = ticks_ms()

    def flush(self, timeout_ms=3000):
        """Give the outbox a chance to empty (before a reset, or at the end of a run)."""
        t0 = ticks_ms()
        while self.outbox.count and ticks_diff(ticks_ms(), t0) < timeout_ms:
            self.service(20)

    # -- commands ---------------------------------------------------------------------------
    def _ota_ack(self, xid, nxt):
        try:
            self.client.publish(self.topics[T_OTA], b'{"id": %d, "next": %d}' % (xid, nxt))
        except OSError:
            self.client.close()

    def _refused(self, xid, reason):
        self.event({"event": "ota_refused", "id": xid, "reason": reason, "version": self.version})

    def _on_message(self, topic, msg):
        rx = self.rx
        if len(msg) >= 9 and msg[0] == 0x43:  # b"C": an OTA chunk (id, offset, data)
            xid, off = struct.unpack("<II", msg[1:9])
            if rx is None or rx[0] != xid:
                self._ota_ack(xid, -1)
                return
            if off == rx[2] and off + len(msg) - 9 <= rx[1]:
                rx[3].write(msg[9:])
                rx[2] += len(msg) - 9
            self._ota_ack(xid, rx[2])
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
            self._rx_close()
            xid, size = int(cmd["id"]), int(cmd["size"])
            if not 8 < size <= 4 * 1024 * 1024:
                self._refused(xid, "bad bundle size %d" % size)
                return
            self.rx = [xid, size, 0, open(PART, "wb")]
            self._ota_ack(xid, 0)
        elif op == "ota_end":
            if rx is None or rx[0] != cmd.get("id"):
                self._refused(cmd.get("id"), "no transfer")
                return
            self._rx_close()
            if rx[2] != rx[1]:
                self._refused(rx[0], "truncated: %d of %d bytes" % (rx[2], rx[1]))
                return
            tmp = PENDING + ".tmp"
            with open(tmp, "w") as f:
                f.write(json.dumps({"id": rx[0], "size": rx[1]}))
            os.rename(tmp, PENDING)
            self.reset_pending = True  # checked after a reset, on a fresh heap
        elif op == "collect":
            self.collect = [int(cmd["id"]), int(cmd.get("windows", 10)), 0]
        elif op == "rollback":
            with open(ROLLBACK, "w") as f:
                f.write(json.dumps({"id": cmd.get("id")}))
            self.reset_pending = True  # done at boot, before the app loads a model
        elif op == "ota_abort":
            self._rx_close()
        else:
            self.event({"event": "bad_command", "op": op})

    def _collect_window(self):
        """Send the samples new since the last window (raw counts, int16 LE) on the data
        topic: b"D" | u32 id | u32 seq | u16 channels | u16 samples | counts. QoS 0: a lost
        piece is a gap in seq, which the host reports."""
        import app

        p = app.pipeline
        c = self.collect
        if p is None:
            return
        k = min(p.stride, p.window) * p.channels
        body = memoryview(p.win)[p.size - k:]
        try:
            self.client.publish(self.topics[T_DATA], struct.pack(
                "<BIIHH", 0x44, c[0], c[2], p.channels, k // p.channels) + bytes(body))
        except OSError:
            self.client.close()
        c[1] -= 1
        c[2] += 1
        if c[1] <= 0:
            self.collect = None
            self.event({"event": "collect_done", "id": c[0], "pieces": c[2], "rate": self.rate,
                        "channels": p.channels, "g_per_count": app.sensor_scale})

    def _rx_close(self):
        if self.rx is not None:
            self.rx[3].close()
            self.rx = None


class Fleet:
    """What main.py holds. The Node is made at the app's first report, after the model has
    taken the heap's largest blocks, or at boot when a received update waits to be checked."""

    def __init__(self, cfg):
        import gc

        from net import ota

        self.cfg = cfg
        self.node = None
        ota.pause_at = cfg.get("ota_pause_at")
        self.recovered = ota.recover()
        p = ota.pending()
        if p is not None:
            ota.check_and_apply(self._node(), p[0], p[1])
        r = _load(ROLLBACK, None)
        if r is not None:
            os.remove(ROLLBACK)
            self._rollback(ota, r.get("id"), r.get("why", "asked by the host"))
        ota = None
        for name in ("ota", "ed25519", "sha512"):  # not needed again until the next update
            _unload("net." + name)
        gc.collect()

    def _rollback(self, ota, xid, why):
        n = self._node()
        try:
            v = ota.rollback()
        except (OSError, ValueError) as exc:
            n.event({"event": "rollback_refused", "id": xid, "reason": str(exc)})
        else:
            n.version = v
            n.probation = False
            n.event({"event": "ota_rolled_back", "id": xid, "version": v, "why": why})
        n.flush()

    def app_failed(self, exc):
        """The app stopped with an error. On a model still on probation: roll back (after a
        reset); otherwise report it and keep serving commands so the host can push a fix."""
        import sys

        n = self._node()
        n.event({"event": "app_failed", "error": repr(exc)[:120], "version": n.version})
        sys.print_exception(exc)
        if n.probation:
            with open(ROLLBACK, "w") as f:
                f.write(json.dumps({"id": None, "why": "app failed on the new model"}))
            self.reset()
        while not n.reset_pending:
            n.service(100)
        self.reset()

    def _node(self):
        if self.node is None:
            secrets = _load(SECRETS, {})
            wifi_connect(secrets)
            n = self.node = Node(self.cfg, secrets)
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
    """Finish or undo an interrupted update, check a received one; the session starts with
    the app."""
    return Fleet(cfg)
