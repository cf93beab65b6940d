"""Burst capture on the virtual board: samples into the board's RAM on the sampling path, then
uploaded; frames damaged on the upload are asked for again, so the recording is still exact."""

from __future__ import annotations

from factory.collecting import (
    Garbled,
    board_samples,
    no_partials,
    offset_in,
    read_counts,
    run_cli,
)

from edgeloop.collect.board import SCRIPT, CollectLink
from edgeloop.collect.dataset import Dataset
from edgeloop.collect.session import Session
from edgeloop.collect.start import Source, load_sensor_config, prepare
from edgeloop.link.framelink import FrameLink


def test_burst_recordings_are_exact(tmp_path, board_dir):
    out = tmp_path / "data"
    r = run_cli("--board", "virtual", "--label", "healthy", "--seconds", "1.5", "--count", "2",
                "--mode", "burst", "--retries", "20", "--out", str(out), "--dir", str(board_dir),
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "burst capture" in r.stderr and "wrote 2 recording(s) of 1,500 samples" in r.stderr
    played = board_samples(board_dir)
    for _, counts in read_counts(out)["healthy"]:
        assert counts.shape == (1500, 3)
        offset_in(played, counts)


def test_a_burst_larger_than_the_heap_is_refused_with_the_figures(tmp_path, board_dir):
    r = run_cli("--board", "virtual", "--label", "healthy", "--seconds", "20", "--mode", "burst",
                "--out", str(tmp_path / "data"), "--dir", str(board_dir), cwd=tmp_path)
    assert r.returncode == 2
    err = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    assert len(err) == 1 and "120,000 B of board RAM" in err[0] and "--seconds" in err[0], r.stderr
    assert not list((tmp_path / "data").rglob("*.csv"))


def test_upload_frames_damaged_on_the_wire_are_sent_again(tmp_path):
    cfg = load_sensor_config(None, "rotating_machine")
    transport, meta = prepare(Source(board="virtual", board_dir=tmp_path / "vboard"), cfg, 20,
                              replay=True)
    link = FrameLink(Garbled(transport.stream(SCRIPT), after=3000, flips=40), owner=transport)
    ds = Dataset(tmp_path / "data", cfg, "virtual", meta)
    session = Session(CollectLink(link), ds, None)
    try:
        session.bursts("healthy", 1000, 1)
    finally:
        session.link.close()
    assert session.link.corrupt >= 1
    (_, counts), = read_counts(ds.out)["healthy"]
    assert counts.shape == (1000, 3)
    offset_in(board_samples(tmp_path / "vboard"), counts)
    assert not no_partials(ds.out)
