"""Link faults: garbage bytes, dropped bytes and a board reset mid-run.

Pass: every window is accounted for (answered, skipped or lost with a named reason); garbage
between frames (random bytes, Ctrl-C/Ctrl-D, false sync pairs) costs no window at all; a frame
with dropped bytes costs exactly the windows that need its samples (the board rescans what a bad
frame took, so the frames after it survive); the board's counters show the damage it skipped; a
reset is detected and reported; and the closed loop keeps working: the bearing fault injected
later is still stopped before breakdown.
"""

from __future__ import annotations

import numpy as np

ALLOWED = {"sample_gap", "frame_lost", "board_reset", "no_result"}


def test_garbage_and_dropped_bytes(board, hil) -> None:
    from trainer.twins import RotatingMachine

    rng = np.random.default_rng(1)
    garbage: set[int] = set()
    damaged: set[int] = set()

    def mangle(frame: bytes, i: int) -> bytes:
        if i % 9 == 4:
            garbage.add(i)
            junk = bytes(rng.integers(0, 256, 64, dtype=np.uint8))
            return junk + b"\x03\x04\xa5\x5a" + frame  # Ctrl-C/D and a false sync too
        if i % 13 == 6:
            damaged.add(i)
            cut = int(rng.integers(10, len(frame) - 4))
            return frame[:cut] + frame[cut + 4 :]
        return frame

    twin = RotatingMachine(seed=8, time_to_failure_s=60.0)
    res = hil.run(board, twin, 40.0, fault_at_s=15.0, mangle=mangle)
    assert res.error == "", res.error
    s = res.summary()
    assert s["answered"] + s["skipped_sensor_fault"] + s["lost"] == s["windows"], s
    assert set(s["lost_reasons"]) <= ALLOWED, s
    # frame i carries samples [i*S, (i+1)*S): window k needs frames k .. k + W/S - 1
    span = res.window // res.stride
    expect = {w.k for w in res.windows if damaged & set(range(w.k, w.k + span))}
    assert {w.k for w in res.lost} == expect
    assert garbage and damaged
    last = res.pongs[-1]
    assert last["garbage"] > 0 and last["bad_crc"] + last["too_long"] > 0, last
    assert s["false_stops"] == 0 and s["detection_latency_s"] is not None, s
    assert not twin.broken


def test_board_reset_mid_run(board, hil) -> None:
    from trainer.twins import RotatingMachine

    twin = RotatingMachine(seed=9, time_to_failure_s=60.0)
    res = hil.run(board, twin, 40.0, fault_at_s=15.0, reset_at_s=8.0)
    assert res.error == "", res.error
    s = res.summary()
    assert s["board_resets"] == 1 and 8.0 <= res.resets[0] < 9.0, s
    assert "board reset detected" in board.recent_output()
    assert s["answered"] + s["lost"] == s["windows"], s
    assert set(s["lost_reasons"]) <= ALLOWED, s
    lost_t = [w.t_end_s for w in res.lost]
    assert lost_t and min(lost_t) >= 7.5 and max(lost_t) <= 9.5, lost_t
    assert s["false_stops"] == 0 and s["detection_latency_s"] is not None, s
    assert not twin.broken


def test_dut_expect_shows_recent_output_on_failure(board) -> None:
    import pytest

    from edgeloop.link.framelink import HilError

    board.expect(r"\[hello\]", timeout=30)
    with pytest.raises(HilError, match="recent output"):
        board.expect("this line never comes", timeout=0.3)


def test_board_dying_mid_run_fails_with_a_clear_report(board, hil, bench) -> None:
    """The board's process dies (power loss, a crash with no reboot): the run ends with an
    error that says so and shows the board's last output; nothing is counted as answered
    that was not, and every window is accounted."""
    import pytest

    from trainer.twins import RotatingMachine

    if not bench.virtual:
        pytest.skip("killing the board needs the virtual board")

    def kill(frame: bytes, i: int) -> bytes:
        if i == 60:
            board.stream.proc.kill()  # the virtual board's process
            board.stream.proc.wait()
        return frame

    twin = RotatingMachine(seed=10, time_to_failure_s=60.0)
    res = hil.run(board, twin, 30.0, mangle=kill)
    assert ("output ended" in res.error or "stopped reading" in res.error), res.error
    assert "recent output" in res.error and "[hello]" in res.error, res.error
    s = res.summary()
    assert s["answered"] + s["lost"] == s["windows"], s
    assert set(s["lost_reasons"]) <= {"board_exited", "no_result"}, s
    assert all(w.status == "ok" for w in res.windows if w.k < 55)
