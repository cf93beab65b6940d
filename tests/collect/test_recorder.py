"""The recorder on the host: recordings are contiguous by sequence number or not written.

Frames are made with the real framing (edgeloop.link.protocol) and the collect payloads, then
corrupted the ways a serial line corrupts them (bit flips, dropped and inserted bytes, cut
frames); whatever survives, every recording handed out equals the original samples exactly,
and a recording spanning a damaged frame is refused, restarted or split, never gap-filled.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeloop.collect import wire
from edgeloop.collect.errors import SampleGap
from edgeloop.collect.recorder import Recorder, SampleStream
from edgeloop.link import protocol as P

CH = 3
BATCH = 37


def stream_of(n: int, start: int = 0, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-32768, 32768, (n, CH)).astype(np.int16)


def frames(x: np.ndarray, start: int = 0, us: float = 1000.0) -> list[bytes]:
    """The board's DATA frames for samples x from sequence number `start` (mod 2**30)."""
    out = []
    for i, k in enumerate(range(0, len(x), BATCH)):
        part = x[k:k + BATCH]
        seq = (start + k) % wire.MOD
        done = (start + k + len(part)) % wire.MOD
        t = int((start + k + len(part)) * us) % wire.MOD
        d = wire.Data(seq, part, 0, done, t)
        out.append(P.encode_frame(wire.CollectMsg.DATA, i, d.pack()))
    return out


def decode_all(data: bytes) -> list[wire.Data]:
    dec = P.FrameDecoder()
    evs = dec.feed(data) + dec.flush()
    out = []
    for ev in evs:
        if isinstance(ev, P.Frame):
            try:
                msg = wire.decode(ev)
            except P.ProtocolError:
                continue
            if isinstance(msg, wire.Data):
                out.append(msg)
    return out


def test_takes_are_exact_slices_of_the_stream():
    x = stream_of(1000)
    rec = Recorder(SampleStream(), CH, 1000.0)
    rec.start("a", 300, count=3)
    takes = [t for d in decode_all(b"".join(frames(x))) for t in rec.feed(d)]
    assert len(takes) == 3 and not rec.recording
    for i, t in enumerate(takes):
        assert t.first_seq == 300 * i
        np.testing.assert_array_equal(t.samples, x[300 * i:300 * (i + 1)])
        assert t.rate_hz == pytest.approx(1000.0, rel=1e-6)


def test_sequence_wraps_at_2_30_without_a_gap():
    x = stream_of(500)
    start = wire.MOD - 100
    rec = Recorder(SampleStream(), CH, 1000.0)
    rec.start("a", 400)
    got = [t for d in decode_all(b"".join(frames(x, start))) for t in rec.feed(d)]
    assert len(got) == 1 and rec.stream.lost == 0
    np.testing.assert_array_equal(got[0].samples, x[:400])


def test_rate_is_measured_on_the_board_clock():
    x = stream_of(5000)
    rec = Recorder(SampleStream(), CH, 1000.0)
    rec.start("a", 4000)
    got = [t for d in decode_all(b"".join(frames(x, us=1e6 / 997.0))) for t in rec.feed(d)]
    assert got[0].rate_hz == pytest.approx(997.0, rel=1e-5)
    assert got[0].nominal_hz == 1000.0


def test_a_dropped_frame_refuses_the_recording():
    x = stream_of(600)
    fr = frames(x)
    del fr[5]
    rec = Recorder(SampleStream(), CH, 1000.0)
    rec.start("a", 500)
    with pytest.raises(SampleGap) as err:
        for d in decode_all(b"".join(fr)):
            rec.feed(d)
    assert err.value.at_seq == 5 * BATCH and err.value.missing == BATCH
    assert "discarded" in str(err.value) and not rec.recording


def test_restart_and_split_after_a_gap():
    x = stream_of(900)
    fr = frames(x)
    del fr[3]  # samples 111..147 never arrive
    data = b"".join(fr)
    rec = Recorder(SampleStream(), CH, 1000.0, on_gap="restart")
    rec.start("a", 200)
    got = [t for d in decode_all(data) for t in rec.feed(d)]
    assert rec.restarts == 1 and got[0].first_seq == 148
    np.testing.assert_array_equal(got[0].samples, x[148:348])
    rec = Recorder(SampleStream(), CH, 1000.0, on_gap="split", min_samples=50)
    rec.start("a", None)
    got = [t for d in decode_all(data) for t in rec.feed(d)]
    last = rec.stop()
    assert [t.first_seq for t in got] == [0] and last is not None and last.first_seq == 148
    np.testing.assert_array_equal(got[0].samples, x[:111])
    np.testing.assert_array_equal(last.samples, x[148:])


def test_a_gap_between_recordings_cuts_nothing():
    x = stream_of(400)
    fr = frames(x)
    del fr[4]
    rec = Recorder(SampleStream(), CH, 1000.0)
    ds = decode_all(b"".join(fr))
    rec.start("a", 100)
    got = [t for d in ds[:3] for t in rec.feed(d)]  # samples 0..110: one take, then idle
    got += [t for d in ds[3:4] for t in rec.feed(d)]  # the gap arrives while idle
    rec.start("b", 100)
    got += [t for d in ds[4:] for t in rec.feed(d)]
    assert [t.label for t in got] == ["a", "b"]
    np.testing.assert_array_equal(got[1].samples, x[5 * BATCH:5 * BATCH + 100])


corruption = st.lists(st.tuples(st.sampled_from(["flip", "drop", "insert", "cut"]),
                                st.integers(0, 10**9), st.integers(0, 255)), max_size=6)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corruption)
def test_corrupted_frames_never_make_a_recording_with_a_gap(damage):
    x = stream_of(800, seed=1)
    data = bytearray(b"".join(frames(x)))
    for kind, pos, val in damage:
        i = pos % len(data)
        if kind == "flip":
            data[i] ^= 1 << (val % 8)
        elif kind == "drop":
            del data[i]
        elif kind == "insert":
            data[i:i] = bytes([val])
        else:
            del data[i:i + val]
    for policy in ("refuse", "restart"):
        rec = Recorder(SampleStream(), CH, 1000.0, on_gap=policy)
        rec.start("a", 150, count=5)
        takes = []
        try:
            for d in decode_all(bytes(data)):
                takes += rec.feed(d)
        except SampleGap:  # refuse: at the first gap; restart: after three in a row
            assert policy == "refuse" or rec.restarts >= 3
        for t in takes:  # whatever was handed out is the board's samples, exactly, no gap
            assert len(t.samples) == 150
            np.testing.assert_array_equal(t.samples, x[t.first_seq:t.first_seq + 150])
        if not damage:
            assert len(takes) == 5
