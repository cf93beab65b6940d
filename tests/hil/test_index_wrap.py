"""The board's sample index and window ids across their wrap: the board keeps them modulo 2**30
(31-bit small ints on an ESP32: a larger int would be a heap object per frame), the host's u32
index wraps at 2**32. A stream restarted just before both wraps must be answered window for
window as the same stream from index 0, with the heap locked (no big int anywhere)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from edgeloop.link import protocol as P
from edgeloop.vboard import VirtualBoard
from trainer.twins import RotatingMachine

STRIDE = 128  # = window in the stand-in board's config


def _stream(start: int, samples: np.ndarray, skip: set[int]) -> bytes:
    """RESTART at `start`, one SAMPLES frame per stride (frames in `skip` never sent, frame 3
    sent twice: a host retry), a PING, QUIT."""
    out = [P.encode_frame(P.MsgType.CONTROL, 0, bytes([P.Control.RESTART])
                          + struct.pack("<I", start & 0xFFFFFFFF))]
    seq = 1
    for i in range(len(samples) // STRIDE):
        if i in skip:
            continue
        block = samples[i * STRIDE:(i + 1) * STRIDE]
        frame = P.encode_frame(P.MsgType.SAMPLES, seq,
                               P.samples_payload(start + i * STRIDE, block, P.DType.INT16))
        out.append(frame * (2 if i == 3 else 1))
        seq += 1
    out.append(P.encode_frame(P.MsgType.PING, seq, struct.pack("<I", 77)))
    out.append(P.encode_frame(P.MsgType.CONTROL, seq + 1, bytes([P.Control.QUIT])))
    return b"".join(out)


def _answers(root, stream: bytes) -> tuple[list, list, P.Pong]:
    proc = VirtualBoard(root, "virtual").spawn("hilmain.py")
    out, err = proc.communicate(stream, timeout=120)
    assert proc.returncode == 0, (out[-2000:] + err[-2000:]).decode(errors="replace")
    assert b"MemoryError" not in out + err
    msgs = [P.decode_message(e) for e in P.FrameDecoder().feed(out) if isinstance(e, P.Frame)]
    results = [(m.window, m.cls, m.outputs.tolist()) for m in msgs if isinstance(m, P.Result)]
    lost = [(m.first_window, m.count, m.reason) for m in msgs if isinstance(m, P.Lost)]
    (pong,) = [m for m in msgs if isinstance(m, P.Pong)]
    return results, lost, pong


@pytest.mark.parametrize("start", [2**30 - 5 * STRIDE - 17, 2**32 - 7 * STRIDE + 3])
def test_stream_across_the_index_wrap_answers_every_window(make_standin_board, start) -> None:
    root = make_standin_board("wrap", hil={"heap_lock": True})
    twin = RotatingMachine(seed=4, time_to_failure_s=30)
    healthy = twin.step(10 * STRIDE)
    twin.inject_fault("bearing", 0.0)
    twin.severity_override = 2.0  # the stand-in's output changes within the stream
    samples = np.concatenate([healthy, twin.step(10 * STRIDE)])
    samples = np.clip(np.round(samples * 2048), -32767, 32767).astype(np.int16)
    skip = {6, 11}  # frames lost in flight, one of them right at the wrap for the first start
    ref, ref_lost, ref_pong = _answers(root, _stream(0, samples, skip))
    got, lost, pong = _answers(root, _stream(start, samples, skip))
    assert len(ref) == 20 - len(skip) and ref_lost == [(6, 1, 1), (11, 1, 1)]
    assert got == ref, "the stream across the wrap was answered differently"
    assert lost == ref_lost
    assert pong.windows_done == ref_pong.windows_done == 20 - len(skip)
    assert pong.samples_seen == (start + 20 * STRIDE) % 2**30  # the board's index, modulo 2**30


def test_host_unwraps_the_boards_30_bit_ids() -> None:
    m = P.BOARD_INDEX_MOD
    assert P.unwrap_index(5, 5) == 5
    assert P.unwrap_index(3, m + 1) == m + 3  # the board wrapped, the host did not
    assert P.unwrap_index(m - 2, m + 1) == m - 2  # a late answer from before the wrap
    r = P.unwrap_message(P.Lost(7, 1, 1), 3 * m + 5, 0)
    assert r == P.Lost(3 * m + 7, 1, 1)
    pong = P.unwrap_message(P.Pong(1, 0, 0, 0, 0, 9, 100), 2 * m, 2 * m + 90)
    assert (pong.windows_done, pong.samples_seen) == (2 * m + 9, 2 * m + 100)
