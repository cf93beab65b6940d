"""`fleet status`: the devices table from the telemetry database, as a rich table."""

from __future__ import annotations

import time
from pathlib import Path

from rich.table import Table

from edgeloop.fleet.store import device_rows, rejected_counts

STALE_S = 10.0  # no message for this long: shown as stale even if the broker has not said offline


def _ago(t: float | None, now: float) -> str:
    if not t:
        return "-"
    d = max(0.0, now - t)
    return f"{d:.1f} s ago" if d < 120 else f"{d / 60:.0f} min ago"


def table(db_path: Path, now: float | None = None) -> Table:
    now = time.time() if now is None else now
    rows = device_rows(db_path) if Path(db_path).is_file() else []
    t = Table(title=f"fleet: {len(rows)} devices", title_justify="left")
    for col, just in (("device", "left"), ("state", "left"), ("model", "right"),
                      ("last seen", "right"), ("label", "left"), ("alarm", "left"),
                      ("alarms", "right"), ("free heap", "right"), ("reconnects", "right"),
                      ("outbox", "right")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in rows:
        state = r.get("state") or "?"
        if state == "online" and r.get("last_seen") and now - r["last_seen"] > STALE_S:
            state = "stale"
        color = {"online": "green", "offline": "red", "stale": "yellow"}.get(state, "white")
        outbox = f"{r.get('outbox') or 0}" + (f" ({r['outbox_dropped']} dropped)"
                                              if r.get("outbox_dropped") else "")
        t.add_row(r["dev"], f"[{color}]{state}[/]", str(r.get("version") if r.get("version") is not None else "-"),
                  _ago(r.get("last_seen"), now), str(r.get("label") or "-"),
                  "[red]ON[/]" if r.get("alarm") else "off", str(r.get("alarms") or 0),
                  f"{r['free']:,}" if r.get("free") is not None else "-",
                  str(r.get("reconnects") or 0), outbox)
    rej = rejected_counts(db_path) if Path(db_path).is_file() else {}
    if rej:
        t.caption = "dropped messages: " + ", ".join(f"{k} {v}" for k, v in sorted(rej.items()))
    return t


def rows_summary(db_path: Path) -> dict:
    rows = device_rows(db_path) if Path(db_path).is_file() else []
    now = time.time()
    return {
        "devices": len(rows),
        "online": sum(1 for r in rows if r.get("state") == "online"
                      and r.get("last_seen") and now - r["last_seen"] <= STALE_S),
        "versions": sorted({r.get("version") for r in rows if r.get("version") is not None}),
    }
