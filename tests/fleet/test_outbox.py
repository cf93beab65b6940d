"""The board's outbox: QoS 1 events survive a broker outage (nothing lost up to its size) and an
overflow is counted, never silent. On the virtual boards, through the real broker."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time

from edgeloop.firmware import FIRMWARE_DIR
from edgeloop.fleet.serve import Ingestor
from edgeloop.fleet.store import device_rows
from edgeloop.vboard import micropython_executable


def _seqs(db_path, dev: str) -> list[int]:  # type: ignore[no-untyped-def]
    """The seq numbers of the device's stored events (one boot: they count from 1 up)."""
    db = sqlite3.connect(db_path)
    try:
        rows = db.execute("SELECT boot, seq FROM events WHERE dev=? ORDER BY seq",
                          (dev,)).fetchall()
    finally:
        db.close()
    assert len({b for b, _ in rows}) <= 1
    return [s for _, s in rows]


def test_events_survive_a_broker_restart(fleet, broker, make_board) -> None:  # type: ignore[no-untyped-def]
    ing = Ingestor(fleet, broker.address).start()
    board = make_board("d1", pace_ms=100, fleet_cfg={"event_every": 3, "outbox": 32}).start()
    deadline = time.monotonic() + 30
    while len(_seqs(fleet.db_path, "d1")) < 4 and time.monotonic() < deadline:
        ing.flush()
        time.sleep(0.2)
    broker.stop()
    time.sleep(3.0)  # ~10 events made while the broker is down, more until it reconnects
    broker.start()
    time.sleep(1.0)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ing.flush()
        seqs = _seqs(fleet.db_path, "d1")
        rc = {r["dev"]: r["reconnects"] for r in device_rows(fleet.db_path)}.get("d1")
        if seqs and len(seqs) == seqs[-1] and seqs[-1] > 20 and rc:
            break
        time.sleep(0.3)
    ing.stop()
    seqs = _seqs(fleet.db_path, "d1")
    assert seqs == list(range(1, len(seqs) + 1)), "an event was lost"
    assert len(seqs) > 20, board.console()
    rows = {r["dev"]: r for r in device_rows(fleet.db_path)}
    assert rows["d1"]["reconnects"] >= 1 and rows["d1"]["outbox_dropped"] == 0


_OVERFLOW = """
from net.outbox import Outbox
ob = Outbox(4, 32)
print([ob.put(0, b"m%d" % i) for i in range(6)], ob.count, ob.dropped)
print(ob.put(0, b"x" * 33), ob.too_big)
sent = list(ob.pending())
for k, i in enumerate(sent):
    ob.mark_sent(i, 100 + k)
ob.ack(101)
print(ob.count)
ob.ack(100)
print(ob.count, [bytes(ob.message(i)) for i in ob.pending()])
ob.reconnected()
print([bytes(ob.message(i)) for i in ob.pending()])
print(ob.put(0, b"m6"), ob.count, [bytes(ob.message(i)) for i in ob.pending()])
"""


def test_outbox_overflow_is_counted_and_acks_free_slots_in_order(tmp_path) -> None:  # type: ignore[no-untyped-def]
    exe = micropython_executable()  # the selected board (EDGELOOP_MICROPYTHON)
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "outbox.py").write_bytes((FIRMWARE_DIR / "net" / "outbox.py").read_bytes())
    (tmp_path / "net" / "__init__.py").write_text("")
    (tmp_path / "t.py").write_text(_OVERFLOW)
    out = subprocess.run([exe, "t.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, MICROPYPATH=str(tmp_path)))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "[True, True, True, True, False, False] 4 2",
        "False 1",
        "4",  # 101 acknowledged but 100 before it is not: the slot waits
        "2 []",
        "[b'm2', b'm3']",  # after a reconnect the unacknowledged ones go again
        "True 3 [b'm2', b'm3', b'm6']",
    ]
