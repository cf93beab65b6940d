"""Pulling field windows from the standalone app on the virtual board (the trained machine
model, the twin healthy then with a bearing fault): every kept window arrives once, exactly as
the sensor gave it, with the model's outputs, hash, time and the twin's truth; a pull while the
app runs does not stop it; a second pull duplicates nothing."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone

import numpy as np
import pytest

from edgeloop.collect.field import FIELD_KEYS, FieldError, pull_field

FIELD = {"uncertain": 4, "alarms": 2, "persist_ms": 0}


def _samples(board) -> np.ndarray:
    return np.frombuffer(board.fs_read("samples.s16"), "<i2").reshape(-1, 3)


def test_pull_after_a_run_writes_each_kept_window_once(deployed, read_status, tmp_path) -> None:
    board = deployed(seconds=30, fault_at=10.0, field=FIELD, sensor={"sim_clock": "replay"})
    lines = read_status(board)
    start, windows, end = lines[0], [ln for ln in lines if "w" in ln], lines[-1]
    assert start["field"] == 6 and end["event"] == "end" and end["lost"] == 0
    print("field ring: start free", start["free"], "min free", min(w["free"] for w in windows))
    assert min(w["free"] for w in windows) > 4096  # the ring fits next to the model
    alarm_at = next(w["w"] for w in windows if w["alarm"])

    out = tmp_path / "field"
    now = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
    res = pull_field(board, out, now=now)
    assert len(res.written) == 5 and res.duplicates == 0 and res.torn == 0  # 4 unsure + 1 stop
    assert res.truth == "twin" and res.missing == ["field.prev.bin"]
    model_sha = hashlib.sha256(board.fs_read("model.elb")).hexdigest()
    samples = _samples(board)
    cfg = json.loads(board.fs_read("config.json"))
    seen = []
    for csv_path in res.written:
        assert csv_path.parent.name == "unlabelled"
        assert csv_path.name.startswith("virtual_vb-20261201T120000Z-")
        side = json.loads(csv_path.with_suffix(".json").read_text())
        assert set(side) == set(FIELD_KEYS)
        assert side["model_sha256"] == model_sha and side["board"] == "virtual_vb"
        assert side["labels"] == cfg["labels"] and len(side["outputs"]) == len(cfg["labels"])
        assert side["guess"] in cfg["labels"] and side["reason"] in ("uncertain", "alarm")
        # the raw window, exact to the count: the recording's samples [end - window, end)
        rows = np.loadtxt(csv_path, delimiter=",", skiprows=1)
        counts = np.round(rows[:, 1:] * 2048).astype(np.int16)
        end_at = side["sample_end"]
        assert np.array_equal(counts, samples[end_at - 256:end_at])
        assert np.allclose(np.diff(rows[:, 0]), 1.0)
        assert end_at == (side["window_index"] - 1) * 128 + 256
        twin = side["twin"]
        t_end = end_at / 1000.0
        assert twin["label"] == ("normal" if t_end <= 10.0 else "bearing") or twin["purity"] < 1
        seen.append(side)
    alarm = [s for s in seen if s["reason"] == "alarm"]
    assert [s["window_index"] for s in alarm] == [alarm_at]
    assert alarm[0]["twin"]["label"] == "bearing"
    unsure = sorted(s["margin"] for s in seen if s["reason"] == "uncertain")
    margins = [abs(a - b) for a, b in (sorted(s["outputs"])[-2:] for s in seen
                                       if s["reason"] == "uncertain")]
    assert sorted(round(m, 4) for m in margins) == [round(m, 4) for m in unsure]

    again = pull_field(board, out)
    assert again.written == [] and again.duplicates == 5

    # the same from the command line: nothing new; then the twin's truth labels them
    cli = [sys.executable, "-m", "edgeloop.cli"]
    res = subprocess.run(cli + ["collect", "--field", "--board", "virtual", "--dir",
                                str(board.root), "--out", str(out)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "wrote 0 new window(s)" in res.stderr and "5 already pulled" in res.stderr
    res = subprocess.run(cli + ["label", str(out), "--from-twin"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    sides = {p: json.loads(p.read_text()) for p in out.glob("*/*.json")}
    assert len(sides) == 5
    for path, side in sides.items():  # a window of one state moved to it, a mixed one stayed
        if path.parent.name == "unlabelled":
            assert side["twin"]["purity"] < 0.9 and "label" not in side
        else:
            assert path.parent.name == side["label"] == side["twin"]["label"]
            assert side["labelled_by"] == "twin" and side["twin"]["purity"] >= 0.9
    assert [s["label"] for s in sides.values() if s["reason"] == "alarm"] == ["bearing"]


def test_pull_while_the_app_runs_does_not_stop_it(deployed, read_status, tmp_path) -> None:
    # the recording looped as fast as the app drains it: the app runs until max_seconds (the
    # wall clock's host-stall instrumentation leaves the 64-bit board no heap for the ring)
    board = deployed(seconds=30, fault_at=6.0, field=FIELD, max_seconds=14,
                     sensor={"sim_clock": "replay", "loop": True})
    lines: list[dict] = []
    failed: list[BaseException] = []

    def console() -> None:
        try:
            lines.extend(read_status(board, 120))
        except BaseException as exc:  # noqa: BLE001 - shown by the main thread
            failed.append(exc)

    t = threading.Thread(target=console, daemon=True)
    t.start()
    out = tmp_path / "field"
    deadline = time.monotonic() + 60
    first = None
    while time.monotonic() < deadline and not failed:
        time.sleep(1.0)
        if (board.root / "field.bin").exists():
            first = pull_field(board, out)
            if first.written:
                break
    assert not failed, failed
    assert first is not None and first.written, "no window kept in the first seconds"
    t.join(120)
    assert lines and lines[-1]["event"] == "end", "the app did not run to its end"
    newest = max(json.loads(p.with_suffix(".json").read_text())["window_index"]
                 for p in first.written)
    assert lines[-1]["windows"] > newest + 20  # it ran on well past the first pull
    second = pull_field(board, out)
    assert second.duplicates + len(second.written) >= len(first.written)
    uids = [json.loads(p.with_suffix(".json").read_text())["uid"]
            for p in first.written + second.written]
    assert len(uids) == len(set(uids))


def test_a_board_without_a_deployed_run_is_a_clear_error(tmp_path) -> None:
    from edgeloop.link.virtual import VirtualTransport

    board = VirtualTransport(tmp_path / "empty", "virtual")
    with pytest.raises(FieldError, match="no config.json"):
        pull_field(board, tmp_path / "out")


def test_a_corrupt_field_file_names_the_file(tmp_path) -> None:
    from edgeloop.link.virtual import VirtualTransport

    board = VirtualTransport(tmp_path / "vb", "virtual")
    (board.root / "config.json").write_text("{}")
    (board.root / "field.bin").write_bytes(b"ELFX" + bytes(200))
    with pytest.raises(FieldError, match=r"field\.bin: not a field file"):
        pull_field(board, tmp_path / "out")
    (board.root / "field.bin").write_bytes(b"ELFW" + bytes(20))
    with pytest.raises(FieldError, match=r"field\.bin: 24 bytes, shorter"):
        pull_field(board, tmp_path / "out")


def test_the_ring_costs_little_heap_on_the_100_kb_board(deployed, read_status) -> None:
    """The ring's code and index next to the trained vibration model on the ESP32 profile
    (the windows are on flash): its cost and the headroom left, from the app's own figures."""
    figures = []
    for field in (False, {}):  # off, then the default 8 + 4 slots
        board = deployed(seconds=8, field=field, sensor={"sim_clock": "replay"})
        lines = read_status(board)
        start = lines[0]
        assert start["event"] == "start" and start["field"] == (0 if field is False else 12)
        figures.append((start["free"], min(ln["free"] for ln in lines if "w" in ln)))
        (board.root / "field.bin").unlink(missing_ok=True)
    off, on = figures
    print(f"heap free at start / min: ring off {off}, ring on {on}")
    assert off[0] - on[0] < 4608 and on[1] > 4096  # 64-bit objects; 32-bit boards need less
