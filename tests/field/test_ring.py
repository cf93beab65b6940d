"""The board's field ring (firmware_micropython/field.py) on the virtual board: it keeps the k
least-sure windows and every alarm (the oldest overwritten, counted), allocates nothing per
window (offer and persist under micropython.heap_lock), survives a restart through its file,
and hands a file of another model on as field.prev.bin. The host parser reads what it wrote."""

from __future__ import annotations

import hashlib
import json

import numpy as np

from edgeloop.collect.field import parse_field_file

N_OUT, WINDOW, CHANNELS = 4, 8, 3

_SCRIPT = """
import json, gc, micropython, sys, fieldstart
from array import array
SEQ = %(seq)r
class Model:
    output = bytearray(%(n_out)d)
    output_scale = 1 / 256
    output_zero_point = -128
class Decision:
    anomaly = %(anomaly)r
    threshold_q = %(threshold)d
with open('model.elb', 'wb') as f:
    f.write(bytes([%(sha)d]) * 64)
def main():
    parts = fieldstart.open_ring(%(cfg)r, Model(), Decision(), 8, %(stride)d, 3, 1000.0, None,
                                 'model.elb')
    sys.modules.pop('fieldstart')
    from field import FieldRing
    r = FieldRing(*parts)
    r.persist(True)
    win = array('h', bytes(2 * 24))
    out = bytearray(%(n_out)d)
    kinds = []
    locked_fail = 0
    for i in range(len(SEQ)):
        top, second, alarm = SEQ[i]
        for j in range(24):
            win[j] = %(base)d + i * 24 + j - 300
        if len(out) == 1:
            out[0] = top & 0xFF
        else:
            out[0] = second & 0xFF
            out[1] = top & 0xFF
            out[2] = 0x80
            out[3] = 0x81
        gc.collect()
        micropython.heap_lock()
        try:
            k = r.offer(win, out, alarm, %(base)d + i + 1, (i + 1) * 8)
            r.persist()
        except MemoryError:
            k = -1
        micropython.heap_unlock()
        kinds.append(k)
    r.persist(True)
    print('RESULT' + json.dumps({'kinds': kinds, 'boot': r.s[11], 'error': r.s[22]}))
main()
"""


def _run(board, seq, cfg, sha=0x11, base=0, n_out=4, anomaly=False, threshold=0,
         stride=8) -> dict:
    code = _SCRIPT % {"seq": seq, "cfg": cfg, "sha": sha, "base": base, "n_out": n_out,
                      "anomaly": anomaly, "threshold": threshold, "stride": stride}
    out = board.run(code).check("field ring script").stdout
    return json.loads(out.split("RESULT", 1)[1])


def _sequence(seed: int, n: int) -> list[tuple[int, int, bool]]:
    rng = np.random.default_rng(seed)
    seq = []
    for i in range(n):
        top = int(rng.integers(-20, 128))
        second = int(rng.integers(-128, top + 1))
        seq.append((top, second, bool(i % 7 == 3)))
    return seq


def test_keeps_least_sure_and_every_alarm_without_allocating(fw_board) -> None:
    seq = _sequence(1, 40)
    cfg = {"uncertain": 3, "alarms": 4, "persist_ms": 0}
    res = _run(fw_board, seq, cfg)
    assert -1 not in res["kinds"], "offer/persist allocated under heap_lock"
    assert res["error"] == 0 and res["boot"] == 1
    parsed = parse_field_file((fw_board.root / "field.bin").read_bytes(), "field.bin")
    assert parsed.torn == []
    hdr = parsed.header
    assert (hdr.uncertain, hdr.alarms, hdr.n_out, hdr.window, hdr.channels) == (3, 4, 4, 8, 3)
    assert hdr.model_sha256 == hashlib.sha256(bytes([0x11]) * 64).hexdigest()
    assert hdr.output_scale == 1 / 256

    unsure = [w for w in parsed.windows if w.reason == "uncertain"]
    alarms = [w for w in parsed.windows if w.reason == "alarm"]
    # oracle: the 3 smallest margins among the non-alarm windows (ties: the earliest kept)
    margins = [(top - second, i + 1) for i, (top, second, a) in enumerate(seq) if not a]
    want = sorted(sorted(margins, key=lambda m: m[0])[:3], key=lambda m: m[1])
    got = sorted((w.doubt_q, w.window_index) for w in unsure)
    assert sorted(m for m, _ in got) == sorted(m for m, _ in want)
    alarm_idx = [i + 1 for i, (_, _, a) in enumerate(seq) if a]
    assert sorted(w.window_index for w in alarms) == alarm_idx[-4:]
    assert hdr.alarms_seen == len(alarm_idx) and hdr.overwritten == len(alarm_idx) - 4
    for w in parsed.windows:  # raw window and outputs exactly as the app gave them
        i = w.window_index - 1
        assert np.array_equal(w.raw.reshape(-1), np.arange(24) + i * 24 - 300)
        top, second, _ = seq[i]
        assert w.outputs_q.tolist() == [second, top, -128, -127]
        assert w.end == (i + 1) * 8 and w.boot == 1


def test_ring_survives_a_restart_and_a_new_model_gets_a_new_file(fw_board) -> None:
    cfg = {"uncertain": 2, "alarms": 1, "persist_ms": 0}
    first = [(100, 90, False), (100, -100, False), (50, 49, False), (90, 0, True)]
    _run(fw_board, first, cfg)
    before = parse_field_file((fw_board.root / "field.bin").read_bytes(), "field.bin")
    assert sorted(w.doubt_q for w in before.windows) == [1, 10, 90]
    # a restart of the same model: the kept windows come back, boot 2 adds to them
    res = _run(fw_board, [(60, 55, False), (10, 9, False)], cfg, base=1000)
    assert res["boot"] == 2
    after = parse_field_file((fw_board.root / "field.bin").read_bytes(), "field.bin")
    assert after.header.file_id == before.header.file_id and after.header.boot == 2
    kept = sorted((w.doubt_q, w.boot) for w in after.windows if w.reason == "uncertain")
    assert kept == [(1, 1), (1, 2)]
    assert [w.boot for w in after.windows if w.reason == "alarm"] == [1]
    # another model: the old file is kept for the host, a new ring starts
    res = _run(fw_board, [(30, 0, False)], cfg, sha=0x22)
    prev = parse_field_file((fw_board.root / "field.prev.bin").read_bytes(), "field.prev.bin")
    new = parse_field_file((fw_board.root / "field.bin").read_bytes(), "field.bin")
    assert prev.header.model_sha256 == hashlib.sha256(bytes([0x11]) * 64).hexdigest()
    assert new.header.model_sha256 == hashlib.sha256(bytes([0x22]) * 64).hexdigest()
    assert len(prev.windows) == 3 and len(new.windows) == 1
    assert new.header.file_id != prev.header.file_id and new.header.boot == 3


def test_a_torn_slot_is_detected_and_skipped(fw_board) -> None:
    cfg = {"uncertain": 2, "alarms": 1, "persist_ms": 0}
    _run(fw_board, [(100, 90, False), (90, 0, True)], cfg)
    data = bytearray((fw_board.root / "field.bin").read_bytes())
    parsed = parse_field_file(bytes(data), "field.bin")
    slot = parsed.header.slot_bytes
    alarm = next(w for w in parsed.windows if w.reason == "alarm")
    end = parsed.header.base + (alarm.slot + 1) * slot
    data[end - 4:end] = (12345).to_bytes(4, "little")  # its trailer from an older write
    torn = parse_field_file(bytes(data), "field.bin")
    assert torn.torn == [alarm.slot] and all(w.reason != "alarm" for w in torn.windows)


def test_an_anomaly_model_keeps_the_scores_nearest_its_threshold(fw_board) -> None:
    scores = [-100, 40, 12, 7, 90, -5, 10, 60]  # int8 anomaly scores; threshold 10
    seq = [(v, 0, False) for v in scores]
    res = _run(fw_board, seq, {"uncertain": 3, "alarms": 1, "persist_ms": 0}, n_out=1,
               anomaly=True, threshold=10)
    assert -1 not in res["kinds"]
    parsed = parse_field_file((fw_board.root / "field.bin").read_bytes(), "field.bin")
    assert parsed.header.anomaly and parsed.header.threshold_q == 10
    kept = sorted(int(w.outputs_q[0]) for w in parsed.windows)
    assert kept == [7, 10, 12]  # |score - 10| = 3, 0, 2: the three nearest


def test_overlapping_uncertain_windows_keep_only_the_least_sure(fw_board) -> None:
    # stride 4, window 8: neighbours share half their samples; margins 10, 5, 20, 3, 30, 40
    seq = [(m, 0, False) for m in (10, 5, 20, 3, 30, 40)]
    res = _run(fw_board, seq, {"uncertain": 4, "alarms": 1, "persist_ms": 0}, stride=4)
    assert -1 not in res["kinds"]
    parsed = parse_field_file((fw_board.root / "field.bin").read_bytes(), "field.bin")
    got = sorted((w.window_index, w.doubt_q) for w in parsed.windows)
    # 1 kept; 2 overlaps it and is less sure: replaces it; 3 overlaps 2, surer: dropped;
    # 4 is clear of 2: kept; 5 overlaps 4, surer: dropped; 6 is clear of 4: kept
    assert got == [(2, 5), (4, 3), (6, 40)]
    indices = [i for i, _ in got]
    assert all(b - a >= 2 for a, b in zip(indices, indices[1:], strict=False))
