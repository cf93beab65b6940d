"""The demo's learning loop, piece by piece on the virtual board: field sessions bring labelled
plant-B windows from the board's field ring, the gate finds the board's run, the closed loop on
plant B reports what happened."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from edgeloop import feedback_demo as fd
from edgeloop.gate import check_gate, run_model_sha
from trainer.twins import CONDITIONS

pytestmark = pytest.mark.filterwarnings("ignore")


def test_field_sessions_collect_labelled_windows_from_the_board(loop, tmp_path,
                                                               monkeypatch) -> None:
    monkeypatch.setattr(fd, "SESSION_S", 3.0)  # 22 windows a session: all fit the ring
    monkeypatch.setattr(fd, "MACHINES_PER_CONDITION", 1)
    out = tmp_path / "field"
    board, fig = fd.collect_field(loop["shipped"], tmp_path / "vb", out, "virtual", 0,
                                  Console(quiet=True))
    assert fig["field_sessions"] == len(CONDITIONS)
    ring = fd.FIELD_RING["uncertain"] + fd.FIELD_RING["alarms"]
    assert 0 < fig["windows_collected"] <= ring * len(CONDITIONS)
    assert sum(fig["windows_labelled"].values()) + fig["windows_mixed"] == fig["windows_collected"]
    assert set(fig["windows_labelled"]) == set(CONDITIONS)  # one machine per condition
    sha = run_model_sha(loop["shipped"])
    alarms = 0
    for label in CONDITIONS:
        files = sorted((out / label).glob("*.csv"))
        assert len(files) == fig["windows_labelled"][label]
        for f in files:
            side = json.loads(f.with_suffix(".json").read_text())
            assert side["model_sha256"] == sha and side["twin"]["label"] == label
            assert side["labelled_by"] == "twin" and side["reason"] in ("uncertain", "alarm")
            alarms += side["reason"] == "alarm"
            assert len(f.read_text().splitlines()) == 1 + 256  # one raw window, header first
    assert alarms == fig["alarm_windows"]
    assert not list((out / "unlabelled").glob("*.csv")) or fig["windows_mixed"]
    # the board still holds the shipped run: the gate finds it by its model's sha256
    res = check_gate(board, loop["retrained"], baseline=loop["shipped"], tolerance=1.0)
    assert res.allowed and res.deployed_run == loop["shipped"]
    assert {s.name for s in res.sets} == {"original test", "field"}


def test_closed_loop_on_plant_b_accounts_for_every_run(loop, tmp_path) -> None:
    # esp32s3's heap: this small test model's HIL app sits at the 100 KB profile's edge
    # (MemoryError in Pipeline); the demo's own run fits it
    c = fd.closed_loop(loop["retrained"], tmp_path / "hil", "esp32s3", (0,))
    assert c["runs"] == len(c["per_run"]) == 1
    r = c["per_run"][0]
    assert r["lost"] == 0 and c["false_stops"] == r["false_stops"]
    assert c["breakdowns"] == r["breakdowns"]
    ok = r["stop_after_fault_s"] is not None and not r["breakdowns"] and not r["false_stops"]
    assert c["stopped_before_breakdown"] == int(ok)
    if r["stop_after_fault_s"] is not None:
        assert 0 <= r["stop_after_fault_s"] <= fd.LOOP_S - fd.FAULT_AT_S
