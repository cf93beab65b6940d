"""Host framer: round trips, garbage, truncation and bit flips never lose or invent a frame."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeloop.link import protocol as P

frames_st = st.lists(
    st.tuples(st.integers(0, 255), st.integers(0, 0xFFFF), st.binary(max_size=300)),
    min_size=1,
    max_size=8,
)


def decode_all(chunks: list[bytes]) -> list[P.Event]:
    dec = P.FrameDecoder()
    events: list[P.Event] = []
    for c in chunks:
        events += dec.feed(c)
    return events + dec.flush()


def frames_of(events: list[P.Event]) -> list[tuple[int, int, bytes]]:
    return [(e.type, e.seq, e.payload) for e in events if isinstance(e, P.Frame)]


def test_known_crc_vector() -> None:
    # CRC-16/CCITT-FALSE check value from the CRC catalogue: "123456789" -> 0x29B1
    assert P.crc16(b"123456789") == 0x29B1


@given(frames_st, st.integers(1, 64))
def test_round_trip_any_chunking(frames: list[tuple[int, int, bytes]], chunk: int) -> None:
    stream = b"".join(P.encode_frame(t, s, p) for t, s, p in frames)
    chunks = [stream[i : i + chunk] for i in range(0, len(stream), chunk)]
    events = decode_all(chunks)
    assert frames_of(events) == frames
    assert not [e for e in events if not isinstance(e, P.Frame)]


@given(frames_st, st.lists(st.binary(max_size=40), min_size=1, max_size=9))
def test_garbage_between_frames_is_text_and_frames_survive(frames, garbage) -> None:
    parts = []
    for i, (t, s, p) in enumerate(frames):
        parts.append(garbage[i % len(garbage)])
        parts.append(P.encode_frame(t, s, p))
    parts.append(garbage[-1])
    events = decode_all([b"".join(parts)])
    # garbage may contain a valid-looking frame only with negligible probability (CRC16 + sync)
    got = frames_of(events)
    for f in frames:
        assert f in got
    text = b"".join(e.data for e in events if isinstance(e, P.Text))
    assert len(text) <= sum(len(g) for g in parts if not g.startswith(P.SYNC)) + 10_000


@given(frames_st, st.data())
@settings(max_examples=200)
def test_truncated_frame_loses_only_itself(frames, data) -> None:
    frames = [(t, i, p) for i, (t, _, p) in enumerate(frames)]  # distinct, to tell them apart
    encoded = [P.encode_frame(t, s, p) for t, s, p in frames]
    k = data.draw(st.integers(0, len(encoded) - 1))
    cut = data.draw(st.integers(1, len(encoded[k]) - 1))
    encoded[k] = encoded[k][:cut]
    events = decode_all([b"".join(encoded)])
    got = frames_of(events)
    expected = [f for i, f in enumerate(frames) if i != k]
    if frames[k] in got:
        # the next frame's first bytes happened to complete it with a matching CRC (the cut
        # bytes equal them): then that next frame, and only it, is lost
        assert k + 1 < len(frames) and got == frames[: k + 1] + frames[k + 2 :]
    else:
        # every intact frame is delivered, in order; the truncated one is not
        assert got == expected


@given(frames_st, st.data())
@settings(max_examples=200)
def test_bit_flip_is_detected(frames, data) -> None:
    encoded = [bytearray(P.encode_frame(t, s, p)) for t, s, p in frames]
    k = data.draw(st.integers(0, len(encoded) - 1))
    bit = data.draw(st.integers(0, len(encoded[k]) * 8 - 1))
    encoded[k][bit // 8] ^= 1 << (bit % 8)
    events = decode_all([b"".join(bytes(e) for e in encoded)])
    got = frames_of(events)
    expected = [f for i, f in enumerate(frames) if i != k]
    assert frames[k] not in got or frames.count(frames[k]) > 1
    assert [f for f in got if f in expected] == expected


def test_oversized_length_is_corrupt_and_skipped() -> None:
    bad = P.SYNC + bytes([0x20, 0, 0, 0xFF, 0xFF]) + b"xx"
    good = P.encode_frame(P.MsgType.LOG, 3, b"hi")
    events = decode_all([bad + good])
    assert frames_of(events) == [(P.MsgType.LOG, 3, b"hi")]
    assert any(isinstance(e, P.Corrupt) and e.reason == "length" for e in events)


def test_encode_refuses_oversized_payload() -> None:
    with pytest.raises(P.ProtocolError, match="MAX_PAYLOAD"):
        P.encode_frame(P.MsgType.SAMPLES, 0, bytes(P.MAX_PAYLOAD + 1))


@given(
    st.integers(0, 2**32 - 1),
    st.integers(0, 255),
    st.lists(st.integers(-128, 127), max_size=16),
    st.integers(0, 2**32 - 1),
)
def test_result_payload_round_trip(win, cls, outs, lat) -> None:
    r = P.Result(win, cls, 1, 0, lat, 12345, np.array(outs, dtype=np.int8))
    back = P.Result.unpack(r.pack())
    assert (back.window, back.cls, back.latency_us, back.heap_free) == (win, cls, lat, 12345)
    np.testing.assert_array_equal(back.outputs, np.array(outs, dtype=np.int8))


@pytest.mark.parametrize("dtype", list(P.DType))
def test_samples_payload_round_trip(dtype: P.DType) -> None:
    x = (np.arange(30).reshape(10, 3) * 7 - 50).astype(np.float32)
    first, back, dt = P.unpack_samples(P.samples_payload(99, x, dtype))
    assert first == 99 and dt == dtype
    np.testing.assert_array_equal(back, x.astype(back.dtype))


def test_samples_payload_too_big_names_limit() -> None:
    n = P.max_batch(3, P.DType.FLOAT32) + 1
    with pytest.raises(P.ProtocolError, match="at most"):
        P.samples_payload(0, np.zeros((n, 3)), P.DType.FLOAT32)


def test_short_payload_error_names_message() -> None:
    with pytest.raises(P.ProtocolError, match="RESULT"):
        P.decode_message(P.Frame(P.MsgType.RESULT, 0, b"\x00"))
