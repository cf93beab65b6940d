"""Board framer (firmware_micropython/link.py) on the virtual board, against the host decoder."""

from __future__ import annotations

import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeloop.firmware import FIRMWARE_DIR
from edgeloop.link import protocol as P
from edgeloop.vboard import VirtualBoard

# Echo every good frame back as LOG carrying (type, seq, payload); on a PING answer PONG with
# the framer's counters; the main loop runs under heap_lock to prove recv/send allocate nothing.
ECHO = """
import micropython, link


def main():
    L = link.Link(max_tx=2100)
    t = L.tbuf
    rb = L.rbuf
    micropython.heap_lock()
    while True:
        typ = L.recv()
        if typ < 0:
            break
        if typ == 0x12:
            L.pong(L.seq, 0, 0)
            continue
        n = L.len
        t[7] = typ
        t[8] = L.seq & 0xFF
        t[9] = L.seq >> 8
        i = 0
        while i < n:
            t[10 + i] = rb[i]
            i += 1
        L.send(0x24, n + 3)
    micropython.heap_unlock()


main()
"""


@pytest.fixture(scope="module")
def echo_board(tmp_path_factory) -> VirtualBoard:
    root = tmp_path_factory.mktemp("linkboard")
    shutil.copyfile(FIRMWARE_DIR / "link.py", root / "link.py")
    (root / "echo.py").write_text(ECHO)
    return VirtualBoard(root, "virtual")


def run_echo(board: VirtualBoard, stream: bytes) -> list[P.Event]:
    proc = board.spawn("echo.py")
    out, err = proc.communicate(stream, timeout=60)
    assert proc.returncode == 0, err.decode()
    dec = P.FrameDecoder()
    return dec.feed(out) + dec.flush()


def echoed(events: list[P.Event]) -> list[tuple[int, int, bytes]]:
    out = []
    for e in events:
        assert isinstance(e, P.Frame), f"board sent something that is not a frame: {e}"
        if e.type == P.MsgType.LOG:
            out.append((e.payload[0], e.payload[1] | e.payload[2] << 8, e.payload[3:]))
    return out


frames_st = st.lists(
    st.tuples(st.integers(0x13, 0xFF), st.integers(0, 0xFFFF), st.binary(max_size=600)),
    min_size=1,
    max_size=6,
)


@given(frames_st, st.lists(st.binary(max_size=30), min_size=1, max_size=4), st.data())
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_device_resyncs_after_garbage_and_flips(echo_board, frames, garbage, data) -> None:
    """Garbage (incl. 0x03) costs nothing; a flipped bit costs only the damaged frame, even when
    it hit the length field (the board rescans the bytes a bad frame took)."""
    parts = []
    frames = [(t, i, p) for i, (t, _, p) in enumerate(frames)]  # distinct, to tell them apart
    encoded = [bytearray(P.encode_frame(t, s, p)) for t, s, p in frames]
    flip = data.draw(st.none() | st.integers(0, len(encoded) - 1))
    if flip is not None:
        bit = data.draw(st.integers(16, len(encoded[flip]) * 8 - 1))  # not in the sync word
        encoded[flip][bit // 8] ^= 1 << (bit % 8)
    for i, e in enumerate(encoded):
        parts.append(garbage[i % len(garbage)].replace(b"\xa5", b"\x03"))
        parts.append(bytes(e))
    # padding completes any frame whose length field was flipped upwards, then a ping
    tail = bytes(P.MAX_PAYLOAD + 2) + P.encode_frame(P.MsgType.PING, 7)
    events = run_echo(echo_board, b"".join(parts) + tail)
    got = echoed(events)
    # the board rescans a bad frame's bytes: only the damaged frame is lost, as on the host
    swallowed = {flip} if flip is not None else set()
    must = [f for i, f in enumerate(frames) if i not in swallowed]
    assert [f for f in got if f in must] == must
    assert all(f in frames for f in got)
    if flip is None:
        assert got == frames
    pong = [P.decode_message(e) for e in events if e.type == P.MsgType.PONG]
    assert len(pong) == 1 and pong[0].token == 7


def test_device_frames_decode_on_host_and_count_errors(echo_board) -> None:
    good = P.encode_frame(0x40, 1, b"abc")
    bad = bytearray(P.encode_frame(0x40, 2, b"xyz"))
    bad[-1] ^= 0xFF
    stream = b"\x03\x03junk" + good + bytes(bad) + good + P.encode_frame(P.MsgType.PING, 9)
    events = run_echo(echo_board, stream)
    assert echoed(events) == [(0x40, 1, b"abc"), (0x40, 1, b"abc")]
    (pong,) = [P.decode_message(e) for e in events if e.type == P.MsgType.PONG]
    assert pong.bad_crc == 1 and pong.frames_ok == 3 and pong.garbage >= 6


def test_device_refuses_oversized_length(echo_board) -> None:
    huge = P.SYNC + bytes([0x40, 0, 0, 0xFF, 0x7F])
    events = run_echo(echo_board, huge + P.encode_frame(0x41, 5, b"ok") + P.encode_frame(0x12, 1))
    assert echoed(events) == [(0x41, 5, b"ok")]
    (pong,) = [P.decode_message(e) for e in events if e.type == P.MsgType.PONG]
    assert pong.too_long == 1


def test_device_eof_mid_frame_exits_cleanly(echo_board) -> None:
    frame = P.encode_frame(0x40, 1, b"hello")
    proc = echo_board.spawn("echo.py")
    out, err = proc.communicate(frame + frame[:5], timeout=30)
    assert proc.returncode == 0, err.decode()
    assert echoed(P.FrameDecoder().feed(out)) == [(0x40, 1, b"hello")]


def test_device_writers_match_host_payloads(echo_board) -> None:
    code = """
import link, io
class Sink:
    def __init__(self): self.b = bytearray()
    def write(self, buf, off=0, n=-1):
        self.b.extend(memoryview(buf)[off:off + n]); return n
s = Sink()
L = link.Link(rx=io.BytesIO(b''), tx=s)
L.hello(256, 128, 3, 4, 54321, 'esp32')
L.result(70000, 2, 1, 0, bytearray(b'\\x80\\x7f\\x00\\x05'), 4, 1234, 99999)
L.actuator(70000, 1)
L.sensor_fault(12, 4, 2, 3)
L.lost(5, 2, 1)
L.log('hi there')
import sys
sys.stdout.buffer.write(s.b)
"""
    (echo_board.root / "writers.py").write_text(code)
    proc = echo_board.spawn("writers.py")
    out, err = proc.communicate(b"", timeout=30)
    assert proc.returncode == 0, err.decode()
    msgs = [P.decode_message(e) for e in P.FrameDecoder().feed(out)]
    assert msgs[0] == P.Hello(1, 256, 128, 3, 4, 54321, "esp32")
    r = msgs[1]
    assert (r.window, r.cls, r.decision, r.flags, r.latency_us, r.heap_free) == (
        70000, 2, 1, 0, 1234, 99999)
    assert r.outputs.tolist() == [-128, 127, 0, 5]
    assert msgs[2:] == [
        P.ActuatorCmd(70000, 1), P.SensorFault(12, 4, 2, 3), P.Lost(5, 2, 1), "hi there"]


@given(frames_st, st.lists(st.binary(max_size=40), min_size=1, max_size=4), st.data())
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_device_survives_false_syncs_in_garbage(echo_board, frames, garbage, data) -> None:
    """Garbage that holds sync pairs and plausible lengths: the board may parse a false header
    and read real frames as its payload, but the rescan finds every real frame again."""
    frames = [(t, i, p) for i, (t, _, p) in enumerate(frames)]
    parts = []
    for i, (t, s, p) in enumerate(frames):
        g = garbage[i % len(garbage)]
        if data.draw(st.booleans()):  # a false header: sync, type, seq, small length
            g += P.SYNC + bytes([0x40, 0, 0, data.draw(st.integers(0, 255)), 0])
        parts.append(g)
        parts.append(P.encode_frame(t, s, p))
    tail = bytes(P.MAX_PAYLOAD + 2) + P.encode_frame(P.MsgType.PING, 7)
    got = echoed(run_echo(echo_board, b"".join(parts) + tail))
    assert got == frames
