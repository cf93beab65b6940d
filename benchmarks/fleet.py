"""Fleet benchmark: real virtual boards plus 1,000+ simulated MQTT clients
through one Mosquitto on loopback, with faults.

Phases, bounded in time and message count:
1. load: every simulated client publishes QoS 1 events at `--rate` per second for `--seconds`;
   a collector (persistent session) timestamps each on arrival: messages/s, latency p50/p99,
   lost (acknowledged by the broker, never delivered: must be 0); then a burst (`--burst`
   messages from every client at once) for the most messages/s this machine moves;
2. faults, at once: one real board's link is cut for `--cut` s (a TCP proxy between it and the
   broker drops and refuses connections; its outbox must deliver every event after), and the
   broker is restarted mid-phase (SIGTERM, persistence on: 0 lost events from clients or boards);
3. OTA: a signed new model to every real board (time; all on the new version), with the
   on-board verification time per board kind;
4. Ed25519 verification alone on both virtual boards (median and spread of interleaved runs) and
   an estimate for an ESP32.

    python -m benchmarks.fleet                 (what `make bench` runs)
    python -m benchmarks.fleet --boards 6 --clients 1000 --seconds 20
Writes build/bench/fleet.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import selectors
import shutil
import statistics
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from benchmarks.board32 import esp32sem
from edgeloop.fleet.broker import acl_text, free_port, mosquitto_executable
from edgeloop.fleet.broker import make_broker as _make_broker
from edgeloop.fleet.push import Pusher
from edgeloop.fleet.registry import Fleet
from edgeloop.fleet.serve import Ingestor
from edgeloop.fleet.signing import make_bundle
from edgeloop.fleet.virtual import FleetBoard, lay_out_board
from edgeloop.link.deploy import DEFAULT_DEVICE_CONFIG
from edgeloop.vboard import micropython_executable

ROOT = Path(__file__).resolve().parents[1]
OUT_JSON = ROOT / "build" / "bench" / "fleet.json"
WORK = ROOT / "build" / "bench" / "fleet-run"


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


# -- simulated clients: many paho clients on one selector loop -----------------------------------
class Swarm:
    """n paho clients driven by one thread (paho's external-loop API), each publishing QoS 1
    events under its own prefix with a per-client sequence number and a send timestamp."""

    def __init__(self, n: int, host: str, port: int, password: str, prefix: str = "el") -> None:
        self.host, self.port, self.prefix = host, port, prefix
        self.names = [f"sim{i:04d}" for i in range(n)]
        self.clients: list[mqtt.Client] = []
        self.acked: list[set[int]] = [set() for _ in range(n)]
        self.mid_seq: list[dict[int, int]] = [{} for _ in range(n)]
        self.sent = [0] * n
        self.connected = [False] * n
        self.sel = selectors.DefaultSelector()
        self.socks: dict[int, object] = {}
        self.started: set[int] = set()
        for i, name in enumerate(self.names):
            c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name, clean_session=False,
                            protocol=mqtt.MQTTv311, userdata=i)
            c.username_pw_set(name, password)
            c.max_inflight_messages_set(50)
            c.max_queued_messages_set(0)
            c.on_connect = self._on_connect
            c.on_disconnect = self._on_disconnect
            c.on_publish = self._on_publish
            self.clients.append(c)

    def _on_connect(self, c, i, flags, rc, props=None) -> None:  # type: ignore[no-untyped-def]
        self.connected[i] = not rc.is_failure

    def _on_disconnect(self, c, i, flags, rc, props=None) -> None:  # type: ignore[no-untyped-def]
        self.connected[i] = False

    def _on_publish(self, c, i, mid, rc, props=None) -> None:  # type: ignore[no-untyped-def]
        seq = self.mid_seq[i].pop(mid, None)
        if seq is not None:
            self.acked[i].add(seq)

    def _register(self, i: int) -> None:
        s = self.clients[i].socket()
        old = self.socks.pop(i, None)
        if old is not None:
            try:
                self.sel.unregister(old)
            except (KeyError, ValueError):
                pass
        if s is not None:
            self.sel.register(s, selectors.EVENT_READ, i)
            self.socks[i] = s

    def connect(self, i: int) -> bool:
        c = self.clients[i]
        try:
            if i in self.started:
                c.reconnect()
            else:
                c.connect(self.host, self.port, keepalive=60)
                self.started.add(i)
        except OSError:
            return False
        self._register(i)
        return True

    def connect_all(self, timeout: float = 60.0) -> float:
        t0 = time.monotonic()
        for i in range(len(self.clients)):
            self.connect(i)
            if i % 50 == 0:
                self.pump(0)
        while not all(self.connected) and time.monotonic() - t0 < timeout:
            self.pump(0.05)
        return time.monotonic() - t0

    def publish(self, i: int) -> None:
        seq = self.sent[i] + 1
        self.sent[i] = seq
        payload = json.dumps({"dev": self.names[i], "boot": "sim", "seq": seq, "event": "sim",
                              "t": time.time()}).encode()
        info = self.clients[i].publish(f"{self.prefix}/{self.names[i]}/event", payload, qos=1)
        self.mid_seq[i][info.mid] = seq

    def pump(self, timeout: float) -> None:
        for key, _ in self.sel.select(timeout):
            i = key.data
            c = self.clients[i]
            if c.loop_read() != mqtt.MQTT_ERR_SUCCESS or c.socket() is None:
                self._register(i)
        for i, c in enumerate(self.clients):
            if c.socket() is not None and c.want_write():
                if c.loop_write() != mqtt.MQTT_ERR_SUCCESS:
                    self._register(i)

    def misc(self) -> None:
        for i, c in enumerate(self.clients):
            if c.socket() is not None:
                c.loop_misc()
            if not self.connected[i] and c.socket() is None:
                self.connect(i)

    def run(self, seconds: float, rate: float, stop: threading.Event | None = None) -> None:
        """Each client publishes `rate` messages/s (staggered) for `seconds`."""
        n = len(self.clients)
        period = 1.0 / rate
        t0 = time.monotonic()
        next_misc = t0
        k = 0
        while time.monotonic() - t0 < seconds and not (stop and stop.is_set()):
            now = time.monotonic()
            due = int((now - t0) / period * n)  # messages due so far, round-robin
            while k < due:
                self.publish(k % n)
                k += 1
            self.pump(0.002)
            if now >= next_misc:
                self.misc()
                next_misc = now + 0.5

    def drain(self, seconds: float) -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds and any(self.mid_seq):
            self.pump(0.05)
            self.misc()

    def close(self) -> None:
        for c in self.clients:
            try:
                c.disconnect()
                c.loop_write()
            except (OSError, ValueError):
                pass


class Collector:
    """The host side of the load: a persistent-session subscriber timestamping every event."""

    def __init__(self, fleet: Fleet, host: str, port: int) -> None:
        user, pw = fleet.host_credentials()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-collector",
                             clean_session=False, protocol=mqtt.MQTTv311)
        self.c.username_pw_set(user, pw)
        self.c.reconnect_delay_set(0.2, 1)
        self.seen: dict[str, set[int]] = {}
        self.latency_ms: list[float] = []
        self.recording = True
        self.lock = threading.Lock()
        self.c.on_message = self._msg
        self.c.on_connect = lambda c, u, f, rc, p=None: c.subscribe("el/+/event", 1)
        self.c.connect(host, port, keepalive=30)
        self.c.loop_start()

    def _msg(self, c, u, m) -> None:  # type: ignore[no-untyped-def]
        now = time.time()
        try:
            e = json.loads(m.payload)
        except ValueError:
            return
        with self.lock:
            self.seen.setdefault(e.get("dev", "?"), set()).add(e.get("seq"))
            if self.recording and "t" in e:
                self.latency_ms.append((now - e["t"]) * 1000)

    def count(self) -> int:
        """Distinct simulated-client events received."""
        with self.lock:
            return sum(len(s) for d, s in self.seen.items() if d.startswith("sim"))

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


# -- a cuttable link for one board ---------------------------------------------------------------
class Proxy:
    """TCP proxy board -> broker on loopback; cut() drops every connection and refuses new ones."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.server = None
        self.writers: set = set()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._call(self._open())

    def _call(self, coro):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    async def _open(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _pipe(self, r, w) -> None:  # type: ignore[no-untyped-def]
        try:
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            w.close()

    async def _handle(self, r, w) -> None:  # type: ignore[no-untyped-def]
        try:
            br, bw = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            w.close()
            return
        self.writers |= {w, bw}
        await asyncio.gather(self._pipe(r, bw), self._pipe(br, w))
        self.writers -= {w, bw}

    async def _cut(self) -> None:
        self.server.close()
        for w in list(self.writers):
            w.transport.abort()
        self.writers.clear()

    def cut(self) -> None:
        self._call(self._cut())

    def restore(self) -> None:
        self._call(self._open())

    def close(self) -> None:
        self._call(self._cut())
        self.loop.call_soon_threadsafe(self.loop.stop)


# -- Ed25519 on the boards -----------------------------------------------------------------------
_VERIFY = """
import binascii, time
from net import ed25519
pk, m, s = [binascii.unhexlify(x) for x in %r]
for _ in range(%d):
    t0 = time.ticks_us()
    ed25519.verify(pk, m, s)
    print("US", time.ticks_diff(time.ticks_us(), t0))
"""


def ed25519_times(exes: dict[str, str], rounds: int = 5, per_round: int = 3) -> dict:
    """Interleaved runs of the board's verify on each board kind: median and spread (ms)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from edgeloop.firmware import FIRMWARE_DIR

    key = Ed25519PrivateKey.generate()
    pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    manifest = json.dumps({"version": 1, "sha256": "ab" * 32, "test": {"input": "00" * 384,
                                                                       "output": "00" * 3}}).encode()
    work = WORK / "ed25519"
    shutil.rmtree(work, ignore_errors=True)
    (work / "net").mkdir(parents=True)
    for name in ("ed25519.py", "sha512.py"):
        shutil.copy(FIRMWARE_DIR / "net" / name, work / "net" / name)
    (work / "net" / "__init__.py").write_text("")
    (work / "v.py").write_text(_VERIFY % ([pub.hex(), manifest.hex(), key.sign(manifest).hex()],
                                          per_round))
    times: dict[str, list[float]] = {k: [] for k in exes}
    for _ in range(rounds):
        for kind, exe in exes.items():
            out = subprocess.run([exe, "-X", "heapsize=100K", "v.py"], cwd=work, text=True,
                                 capture_output=True, timeout=120,
                                 env=dict(os.environ, MICROPYPATH=str(work)))
            times[kind] += [int(x.split()[1]) / 1000 for x in out.stdout.splitlines()
                            if x.startswith("US")]
    res: dict = {"manifest_bytes": len(manifest)}
    for kind, t in times.items():
        res[kind] = {"median_ms": round(statistics.median(t), 2), "min_ms": round(min(t), 2),
                     "max_ms": round(max(t), 2), "n": len(t)} if t else None
    # ESP32 estimate: MicroPython bytecode and mpz arithmetic on a 240 MHz Xtensa LX6 run
    # roughly 30-100x slower than one core of this x86-64 host (clock ~12x, lower IPC, no
    # caches worth the name for code in flash). Based on the 32-bit board's fastest run (the
    # least disturbed by this shared machine's load): an estimate, not a measurement.
    fastest = (res.get("esp32sem") or res.get("unix") or {}).get("min_ms")
    if fastest:
        res["esp32_estimate_ms"] = [round(fastest * 30), round(fastest * 100)]
        res["esp32_estimate_basis"] = ("fastest 32-bit virtual board run x 30..100 (240 MHz "
                                       "ESP32 vs this host); not measured")
    return res


# -- the run -------------------------------------------------------------------------------------
def run(n_boards: int, n_clients: int, seconds: float, rate: float, cut_s: float,
        burst: int = 5) -> dict:
    from benchmarks.models import benchmark_model
    from converters import convert_tflite

    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    fleet = Fleet(WORK / "fleet")
    fleet.init()
    fleet.keygen()
    boards_devs = [f"vb{i + 1}" for i in range(n_boards)]
    for d in boards_devs:
        fleet.add(d)
    sim_pw = "sim-password"
    users = dict(fleet.users())
    users.update({f"sim{i:04d}": sim_pw for i in range(n_clients)})
    kind = "mosquitto" if mosquitto_executable() else "embedded"
    port = free_port()
    broker = _make_broker(fleet.broker_dir, users, acl_text(boards_devs, fleet.host_credentials()[0],
                                                            pattern=True), kind=kind, port=port)
    broker.start()
    res: dict = {"broker": kind, "boards": n_boards, "clients": n_clients}
    m1 = convert_tflite(benchmark_model("vibration_cnn1d", 0)).bundle
    m2 = convert_tflite(benchmark_model("vibration_cnn1d", 1)).bundle
    (WORK / "m1.elb").write_bytes(m1)
    exe_unix = micropython_executable()
    exe_sem = esp32sem()
    proxy = Proxy(port)
    boards: list[FleetBoard] = []
    ing = Ingestor(fleet, broker.address, db_path=WORK / "fleet.db", only_known=True).start()
    col = Collector(fleet, "127.0.0.1", port)
    swarm = Swarm(n_clients, "127.0.0.1", port, sim_pw)
    try:
        for i, d in enumerate(boards_devs):
            exe = exe_sem if (exe_sem and i % 2 == 1) else exe_unix
            addr = broker.address
            extra = {"event_every": 10}
            if i == 0:  # the board whose link is cut goes through the proxy
                from edgeloop.fleet.broker import BrokerAddress

                addr = BrokerAddress("127.0.0.1", proxy.port)
            b = lay_out_board(fleet, d, WORK / "m1.elb", addr, WORK / "boards" / d, exe=exe,
                              pace_ms=200, fleet_extra=extra, config=DEFAULT_DEVICE_CONFIG)
            b.kind = "esp32sem" if exe == exe_sem else "unix"  # type: ignore[attr-defined]
            boards.append(b.start())
        res["connect_s"] = round(swarm.connect_all(), 2)
        res["clients_connected"] = sum(swarm.connected)
        time.sleep(2)

        # 1. load
        t0 = time.monotonic()
        cpu0 = [board_cpu_s(b) for b in boards]
        c0 = col.count()
        swarm.run(seconds, rate)
        swarm.drain(5)
        wait_delivered(swarm, col)
        dt = time.monotonic() - t0
        cpu_pct = [round(100 * (board_cpu_s(b) - c) / dt, 1) for b, c in zip(boards, cpu0, strict=True)]
        sent = sum(swarm.sent)
        delivered = col.count() - c0
        res["load"] = {
            "seconds": round(dt, 1), "published": sent, "delivered": delivered,
            "msgs_per_s": round(delivered / dt, 1),
            "latency_ms_p50": round(pct(col.latency_ms, 50) or -1, 2),
            "latency_ms_p99": round(pct(col.latency_ms, 99) or -1, 2),
            "lost_qos1": lost(swarm, col),
            "offered_msgs_per_s": round(n_clients * rate, 1),
        }
        mean_cpu = statistics.mean(cpu_pct) if cpu_pct else 0.0
        res["boards_cpu_pct"] = {"per_board": cpu_pct, "mean": round(mean_cpu, 1),
                                 "boards_per_2_cores_at_this_pace": (
                                     int(200 / mean_cpu) if mean_cpu > 0 else None)}
        col.recording = False

        # 1b. burst: every client sends `burst` messages as fast as the generator can
        c0 = col.count()
        t0 = time.monotonic()
        for _ in range(burst):
            for i in range(n_clients):
                swarm.publish(i)
                if i % 100 == 0:
                    swarm.pump(0)
            swarm.pump(0)
        swarm.drain(30)
        wait_delivered(swarm, col)
        dt = time.monotonic() - t0
        res["burst"] = {"messages": n_clients * burst, "delivered": col.count() - c0,
                        "seconds": round(dt, 2),
                        "msgs_per_s": round((col.count() - c0) / dt, 1),
                        "lost_qos1": lost(swarm, col)}

        # 2. faults: the cut link and a broker restart in the same phase
        cut_board = boards[0]
        before = cut_seqs(ing, cut_board.device)
        stop = threading.Event()
        load = threading.Thread(target=swarm.run, args=(cut_s + 10, rate / 4, stop))
        proxy.cut()
        t_cut = time.monotonic()
        load.start()
        time.sleep(min(10.0, cut_s / 2))
        t_r = time.monotonic()
        broker.restart(down_s=1.0)
        restart_s = time.monotonic() - t_r
        time.sleep(max(0.0, cut_s - (time.monotonic() - t_cut)))
        proxy.restore()
        t_restore = time.monotonic()
        load.join()
        swarm.drain(10)
        made_during_cut = None
        delivered_after_s = None
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            ing.flush()
            seqs = cut_seqs(ing, cut_board.device)
            gaps = [s for s in range(1, max(seqs, default=0) + 1) if s not in seqs]
            if seqs and max(seqs) > max(before, default=0) + int(cut_s / 2 / 2) and not gaps:
                delivered_after_s = round(time.monotonic() - t_restore, 1)
                made_during_cut = len([s for s in seqs if s > max(before, default=0)])
                break
            time.sleep(0.5)
        time.sleep(2)
        board_events_lost = {}
        for b in boards:
            seqs = cut_seqs(ing, b.device)
            board_events_lost[b.device] = len([s for s in range(1, max(seqs, default=0) + 1)
                                               if s not in seqs])
        res["faults"] = {
            "broker_restart_s": round(restart_s, 2),
            "lost_qos1_clients": lost(swarm, col),
            "board_events_lost": sum(board_events_lost.values()),
            "link_cut": {"board": cut_board.device, "seconds": cut_s,
                         "events_delivered_after_cut": made_during_cut,
                         "all_delivered_s_after_restore": delivered_after_s},
            "board_reconnects": {r["dev"]: r["reconnects"] for r in board_rows(ing)},
        }

        # 3. OTA to every real board
        for b in boards:
            b_alive = b.alive
            assert b_alive, b.console()
        version = fleet.next_version()
        bundle = make_bundle(m2, version, fleet.private_key_pem(), run="vibration_cnn1d-seed1")
        t0 = time.monotonic()
        with Pusher(fleet, broker.address, result_timeout=120, health_timeout=60) as p:
            ro = p.rollout([b.device for b in boards], bundle.data, version, parallel=4)
        ota_s = time.monotonic() - t0
        kinds = {b.device: b.kind for b in boards}  # type: ignore[attr-defined]
        res["ota"] = {
            "seconds": round(ota_s, 1), "bundle_bytes": len(bundle.data), "ok": ro.ok,
            "on_new_version": sum(1 for b in boards if b.installed_version() == version),
            "per_board": [{"device": r.device, "board": kinds[r.device], "ok": r.ok,
                           "s": round(r.seconds, 2), "verify_ms": r.verify_ms,
                           "reason": r.reason} for r in ro.results],
        }
    finally:
        swarm.close()
        col.close()
        ing.stop()
        for b in boards:
            b.stop()
        proxy.close()
        broker.stop()
    exes = {"unix": exe_unix}
    if exe_sem:
        exes["esp32sem"] = exe_sem
    res["ed25519_verify"] = ed25519_times(exes)
    return res


def board_cpu_s(b: FleetBoard) -> float:
    """CPU seconds (user + system) the board's process has used."""
    try:
        fields = Path(f"/proc/{b.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, AttributeError, IndexError, ValueError):
        return 0.0


def wait_delivered(swarm: Swarm, col: Collector, timeout: float = 60.0) -> None:
    """Until every message the broker acknowledged has reached the collector (or timeout): a
    loaded machine delivers late, which is latency, not loss."""
    deadline = time.monotonic() + timeout
    while lost(swarm, col) and time.monotonic() < deadline:
        time.sleep(0.1)


def lost(swarm: Swarm, col: Collector) -> int:
    with col.lock:
        return sum(len(acked - col.seen.get(name, set()))
                   for name, acked in zip(swarm.names, swarm.acked, strict=True))


def cut_seqs(ing: Ingestor, dev: str) -> set[int]:
    with ing.lock:
        ing.store.commit()
        rows = ing.store.db.execute("SELECT seq FROM events WHERE dev=?", (dev,)).fetchall()
    return {s for (s,) in rows}


def board_rows(ing: Ingestor) -> list[dict]:
    with ing.lock:
        ing.store.commit()
        cur = ing.store.db.execute("SELECT dev, reconnects FROM devices ORDER BY dev")
        return [{"dev": d, "reconnects": r} for d, r in cur.fetchall()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", type=int, default=16, help="real virtual boards")
    ap.add_argument("--clients", type=int, default=1000, help="simulated MQTT clients")
    ap.add_argument("--seconds", type=float, default=20, help="length of the load phase")
    ap.add_argument("--rate", type=float, default=0.5, help="messages/s per simulated client")
    ap.add_argument("--burst", type=int, default=5, help="messages per client, sent at once")
    ap.add_argument("--cut", type=float, default=30, help="seconds one board's link is cut")
    a = ap.parse_args(argv)
    t0 = time.monotonic()
    res = run(a.boards, a.clients, a.seconds, a.rate, a.cut, a.burst)
    res["machine"] = {"cpus": os.cpu_count(), "loadavg": [round(x, 2) for x in os.getloadavg()]}
    res["wall_s"] = round(time.monotonic() - t0, 1)
    OUT_JSON.parent.mkdir(parents=True, exist_ok=True)
    OUT_JSON.write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))
    ok = (res["load"]["lost_qos1"] == 0 and res["faults"]["lost_qos1_clients"] == 0
          and res["burst"]["lost_qos1"] == 0
          and res["faults"]["board_events_lost"] == 0 and res["ota"]["ok"])
    print(f"fleet bench: {'OK' if ok else 'FAILED'}; wrote {OUT_JSON}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
