"""The board side (firmware_micropython/collect.py) on the virtual board: its sampling loops
allocate nothing (they run under micropython.heap_lock), and samples the sensor loses on the
board (its FIFO overflows while the loop is stalled) are a gap in the sequence numbers that
refuses the recording, never a silent splice."""

from __future__ import annotations

import numpy as np
import pytest
from factory.collecting import board_samples, offset_in, read_counts

from edgeloop.collect.board import CollectLink
from edgeloop.collect.dataset import Dataset
from edgeloop.collect.errors import SampleGap
from edgeloop.collect.session import Session
from edgeloop.collect.start import Source, load_sensor_config, prepare


def _session(tmp_path, extra, twin="rotating_machine", seconds=20.0):
    cfg = load_sensor_config(None, twin)
    src = Source(board="virtual", board_dir=tmp_path / "vboard", twin=twin)
    transport, meta = prepare(src, cfg, seconds, board_extra=extra)
    ds = Dataset(tmp_path / "data", cfg, "virtual", meta)
    session = Session(CollectLink.open(transport), ds, None)
    session.retries = 20  # a stall of this shared machine may overflow the FIFO now and then
    return session, ds


def test_stream_and_burst_loops_allocate_nothing(tmp_path):
    session, ds = _session(tmp_path, {"heap_lock": True})
    try:
        session.streamed("healthy", 1500, 1, on_gap="restart")  # a loaded machine may stall it
        session.bursts("healthy", 800, 1, on_gap="restart")
    finally:
        session.link.close()
    assert "heap is locked" not in session.link.link.recent_output()
    played = board_samples(tmp_path / "vboard")
    recs = read_counts(ds.out)["healthy"]
    assert sorted(len(c) for _, c in recs) == [800, 1500]
    for _, counts in recs:
        offset_in(played, counts)


def test_samples_lost_on_the_board_refuse_the_recording(tmp_path):
    # 400 ms stalled at 1 kHz: the MPU6050's 170-sample FIFO overflows; the driver resets it and
    # counts the samples it cost, the sequence jumps over them
    session, ds = _session(tmp_path, {"stall": [10, 400]})
    with pytest.raises(SampleGap) as err:
        try:
            session.streamed("healthy", 3000, 1, on_gap="refuse")
        finally:
            session.link.close()
    assert err.value.missing > 0 and err.value.at_seq > 0
    assert not (ds.out).exists() or not list(ds.out.rglob("*.csv"))


def test_after_a_loss_the_next_recording_is_exact(tmp_path):
    session, ds = _session(tmp_path, {"stall": [10, 400]})
    try:
        session.streamed("healthy", 1000, 2, on_gap="restart")
    finally:
        session.link.close()
    assert session.stats.restarts >= 1 and session.stats.lost > 0
    played = board_samples(tmp_path / "vboard")
    starts = sorted(offset_in(played, c) for _, c in read_counts(ds.out)["healthy"])
    assert len(starts) == 2 and np.diff(starts)[0] >= 1000


def test_wearable_six_axes_through_the_sensor_list(tmp_path):
    """The wearable's MPU6050 as a 6-axis IMU read on the sample clock (polled.Polled)."""
    session, ds = _session(tmp_path, {}, twin="wearable")
    try:
        assert session.info.channels == 6 and session.info.rate_hz == 50.0
        session.streamed("walk", 100, 1, on_gap="restart")
    finally:
        session.link.close()
    (_, counts), = read_counts(ds.out)["walk"]
    assert counts.shape == (100, 6)
    offset_in(board_samples(tmp_path / "vboard", 6), counts)
