"""The fleet's telemetry database (SQLite, one file: <home>/fleet.db).

Schema (also in docs/fleet.md):

    devices   one row per device: dev, state (online/offline), version (model version), boot (id
              of the board's current boot), last_seen (host time, s), reconnects, free (heap
              bytes), alarms (count this boot), alarm (now on), outbox (queued), outbox_dropped,
              label, score (of the last window)
    status    per-window status at QoS 0: dev, t (host time), w (window number), cls, label,
              score, alarm, free, us (inference time), version
    events    QoS 1 events: dev, boot, seq, t, kind, body (JSON); UNIQUE(dev, boot, seq) drops
              the duplicates QoS 1 may deliver, so a gap in seq is a lost event
    rejected  messages serve dropped: t, topic, reason (malformed/oversized/spoofed/unknown), size
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    dev TEXT PRIMARY KEY, state TEXT, version INTEGER, boot TEXT, last_seen REAL,
    reconnects INTEGER DEFAULT 0, free INTEGER, alarms INTEGER DEFAULT 0, alarm INTEGER DEFAULT 0,
    outbox INTEGER DEFAULT 0, outbox_dropped INTEGER DEFAULT 0, label TEXT, score REAL
);
CREATE TABLE IF NOT EXISTS status (
    id INTEGER PRIMARY KEY, dev TEXT, t REAL, w INTEGER, cls INTEGER, label TEXT, score REAL,
    alarm INTEGER, free INTEGER, us INTEGER, version INTEGER
);
CREATE INDEX IF NOT EXISTS status_dev_t ON status (dev, t);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, dev TEXT, boot TEXT, seq INTEGER, t REAL, kind TEXT, body TEXT,
    UNIQUE (dev, boot, seq)
);
CREATE TABLE IF NOT EXISTS rejected (
    id INTEGER PRIMARY KEY, t REAL, topic TEXT, reason TEXT, size INTEGER
);
"""


def connect(path: Path | str) -> sqlite3.Connection:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), timeout=10, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")  # `fleet status` reads while `serve` writes
    db.executescript(SCHEMA)
    return db


class Store:
    def __init__(self, path: Path | str) -> None:
        self.db = connect(path)

    def _touch(self, dev: str, t: float) -> None:
        self.db.execute("INSERT OR IGNORE INTO devices (dev) VALUES (?)", (dev,))
        self.db.execute("UPDATE devices SET last_seen = ? WHERE dev = ?", (t, dev))

    def status(self, dev: str, s: dict, t: float | None = None) -> None:
        t = time.time() if t is None else t
        self._touch(dev, t)
        self.db.execute(
            "INSERT INTO status (dev, t, w, cls, label, score, alarm, free, us, version) "
            "VALUES (?,?,?,?,?,?,?,?,?,?)",
            (dev, t, s.get("w"), s.get("cls"), str(s.get("label")), s.get("score"),
             int(bool(s.get("alarm"))), s.get("free"), s.get("us"), s.get("v")))
        self.db.execute(
            "UPDATE devices SET state='online', version=?, free=?, reconnects=?, alarms=?, "
            "alarm=?, outbox=?, outbox_dropped=?, label=?, score=? WHERE dev=?",
            (s.get("v"), s.get("free"), s.get("rc", 0), s.get("alarms", 0),
             int(bool(s.get("alarm"))), s.get("ob", 0), s.get("od", 0), str(s.get("label")),
             s.get("score"), dev))

    def event(self, dev: str, e: dict, t: float | None = None) -> bool:
        """Store a QoS 1 event; False when it is a duplicate (same dev, boot, seq)."""
        t = time.time() if t is None else t
        self._touch(dev, t)
        cur = self.db.execute(
            "INSERT OR IGNORE INTO events (dev, boot, seq, t, kind, body) VALUES (?,?,?,?,?,?)",
            (dev, e.get("boot"), e.get("seq"), t, e.get("event"), json.dumps(e)))
        if e.get("event") == "ota_done" and "version" in e:
            self.db.execute("UPDATE devices SET version=? WHERE dev=?", (e["version"], dev))
        return cur.rowcount == 1

    def state(self, dev: str, s: dict, t: float | None = None) -> None:
        t = time.time() if t is None else t
        self._touch(dev, t)
        self.db.execute("UPDATE devices SET state=? WHERE dev=?", (s.get("state"), dev))
        if s.get("state") == "online":
            self.db.execute("UPDATE devices SET version=?, boot=? WHERE dev=?",
                            (s.get("version"), s.get("boot"), dev))

    def rejected(self, topic: str, reason: str, size: int, t: float | None = None) -> None:
        self.db.execute("INSERT INTO rejected (t, topic, reason, size) VALUES (?,?,?,?)",
                        (time.time() if t is None else t, topic[:200], reason, size))

    def commit(self) -> None:
        self.db.commit()

    def close(self) -> None:
        self.db.commit()
        self.db.close()


def device_rows(path: Path | str) -> list[dict]:
    """The devices table as dicts (for `fleet status`), plus rejected-message counts."""
    db = connect(path)
    try:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM devices ORDER BY dev")]
    finally:
        db.close()


def rejected_counts(path: Path | str) -> dict[str, int]:
    db = connect(path)
    try:
        return dict(db.execute("SELECT reason, COUNT(*) FROM rejected GROUP BY reason").fetchall())
    finally:
        db.close()
