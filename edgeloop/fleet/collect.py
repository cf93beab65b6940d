"""`fleet collect`: record a board's raw sensor samples over MQTT into the trainer's CSV layout.

The board sends the samples new since each window (raw counts) on <prefix>/<dev>/data for N
windows, then a collect_done event with the sample rate and the sensor's g per count. The host
writes DATA/<label>/<device>-<UTC time>.csv: a header row (timestamp, then one column per
channel), timestamps in ms, values in g: what `edgeloop train --data DATA` reads. A gap (a lost
QoS 0 piece) is an error that names it: no recording with a hidden jump in time is written.
"""

from __future__ import annotations

import csv
import json
import queue
import random
import struct
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeloop.fleet.broker import BrokerAddress
from edgeloop.fleet.errors import FleetError
from edgeloop.fleet.registry import Fleet
from edgeloop.fleet.serve import connect_or_fail, host_client

_HEAD = struct.Struct("<BIIHH")  # b"D", id, seq, channels, samples
DEFAULT_CHANNELS = {1: ("a0",), 3: ("ax", "ay", "az"), 6: ("ax", "ay", "az", "gx", "gy", "gz")}


@dataclass
class Recording:
    device: str
    path: Path
    samples: int
    rate: float
    pieces: int


def collect(fleet: Fleet, broker: BrokerAddress, device: str, label: str, out: Path,
            windows: int = 20, channels: list[str] | None = None,
            timeout: float = 60.0) -> Recording:
    if device not in fleet.devices():
        raise FleetError(f"device {device!r} is not provisioned")
    if not label or "/" in label or label.startswith("."):
        raise FleetError(f"label {label!r}: a folder name, no '/'")
    prefix = fleet.prefix
    q: queue.Queue = queue.Queue()
    c = host_client(fleet, broker, f"edgeloop-collect-{random.randrange(1 << 30)}")
    c.on_message = lambda cl, u, m: q.put((m.topic.rsplit("/", 1)[-1], bytes(m.payload)))
    connect_or_fail(c, broker)
    try:
        c.subscribe([(f"{prefix}/{device}/data", 0), (f"{prefix}/{device}/event", 1)])
        time.sleep(0.3)
        xid = random.randrange(1, 1 << 31)
        c.publish(f"{prefix}/{device}/cmd",
                  json.dumps({"op": "collect", "id": xid, "windows": windows}), qos=1)
        pieces: dict[int, np.ndarray] = {}
        done = None
        deadline = time.monotonic() + timeout
        while done is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise FleetError(f"{device}: no end of the recording within {timeout:.0f} s "
                                 f"({len(pieces)} of {windows} pieces came)")
            try:
                kind, payload = q.get(timeout=left)
            except queue.Empty:
                continue
            if kind == "data" and len(payload) >= _HEAD.size and payload[0] == 0x44:
                _, pid, seq, nch, n = _HEAD.unpack_from(payload)
                body = payload[_HEAD.size:]
                if pid == xid and len(body) == 2 * nch * n:
                    pieces[seq] = np.frombuffer(body, "<i2").reshape(n, nch)
            elif kind == "event":
                e = json.loads(payload)
                if e.get("event") == "collect_done" and e.get("id") == xid:
                    done = e
        time.sleep(0.2)
        while not q.empty():  # pieces that raced the final event
            kind, payload = q.get_nowait()
            if kind == "data" and payload[:1] == b"D":
                _, pid, seq, nch, n = _HEAD.unpack_from(payload)
                if pid == xid:
                    pieces[seq] = np.frombuffer(payload[_HEAD.size:], "<i2").reshape(n, nch)
    finally:
        c.loop_stop()
        c.disconnect()
    missing = [s for s in range(done["pieces"]) if s not in pieces]
    if missing:
        raise FleetError(f"{device}: {len(missing)} of {done['pieces']} pieces lost in transit "
                         f"(first: {missing[0]}); nothing written: collect again")
    counts = np.concatenate([pieces[s] for s in range(done["pieces"])])
    nch = counts.shape[1]
    names = list(channels) if channels else list(DEFAULT_CHANNELS.get(nch, [f"c{i}" for i in range(nch)]))
    if len(names) != nch:
        raise FleetError(f"--channels names {len(names)} channels, the board sends {nch}")
    rate = float(done["rate"])
    g = counts * float(done["g_per_count"])
    folder = Path(out) / label
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{device}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.csv"
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", *names])
        for i, row in enumerate(g):
            w.writerow([f"{i * 1000.0 / rate:.3f}", *(f"{v:.6g}" for v in row)])
    tmp.replace(path)
    return Recording(device, path, len(g), rate, done["pieces"])
