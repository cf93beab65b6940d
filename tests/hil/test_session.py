"""hil.py on the virtual board with a stand-in model, driven by the host session and the twin."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeloop.link import protocol as P
from edgeloop.link.framelink import FrameLink
from edgeloop.link.session import HilSession
from edgeloop.link.virtual import VirtualTransport
from trainer.twins import RotatingMachine


def link(root, script="hilmain.py"):
    return FrameLink.open(VirtualTransport(root), script=script)


def session(root, **kw):
    conn = link(root)
    return conn, HilSession(conn, **kw)


def test_healthy_run_every_window_answered(standin_board) -> None:
    conn, s = session(standin_board)
    with conn:
        res = s.run(RotatingMachine(seed=1), duration_s=5.0)
    assert res.error == ""
    assert res.n_windows == (5000 - 128) // 128 + 1
    assert res.count("ok") == res.n_windows, res.lost_reasons()
    assert all(w.heap_free > 0 and w.latency_us > 0 for w in res.windows)
    print(res.summary())


@pytest.mark.parametrize(
    ("mode", "dtype"),
    [("frames", P.DType.INT16), ("i2c", P.DType.INT16), ("frames", P.DType.FLOAT32)],
)
def test_per_frame_path_allocates_nothing(make_standin_board, mode, dtype) -> None:
    """With the heap locked after HELLO, a run with a fault, a stop, sensor faults and a gap
    completes: any allocation would raise MemoryError on the board."""
    root = make_standin_board(mode, hil={"input": mode, "heap_lock": True})
    conn, s = session(root, input_mode=mode, sample_dtype=dtype)
    twin = RotatingMachine(seed=2, time_to_failure_s=40)
    twin.sensor_fault("spike", at_s=3.0, duration_s=1.0)
    def damage(frame: bytes, i: int) -> bytes:  # the framer's recovery paths run too
        if i == 30:
            return b""  # a whole frame lost: sample gap
        if i == 40:
            return frame[:20] + frame[25:]  # bytes dropped: bad CRC, rescan
        if i == 50:
            return b"\xa5\x5a\x40\x00\x00\x10\x00\x03" + frame  # a false header first
        if i == 60:
            return b"\xa5\x5a\x40\x00\x00\xff\xff" + frame  # an impossible length
        return frame

    with conn:
        res = s.run(twin, duration_s=12.0, fault_at_s=6.0, mangle=damage)
    assert res.error == "", res.error
    assert "MemoryError" not in conn.recent_output()
    assert res.stops and res.sensor_faults
    assert res.lost and all(w.reason == "sample_gap" for w in res.lost)
    assert res.count("ok") + res.count("skipped") + res.count("lost") == res.n_windows
    heaps = {w.heap_free for w in res.windows if w.status != "lost"}
    assert len(heaps) == 1, f"free heap changed during the run: {sorted(heaps)}"


@pytest.mark.parametrize("kind", ["nan", "dropout", "stuck", "spike"])
def test_sensor_fault_reported_not_stopped(standin_board, kind) -> None:
    conn, s = session(standin_board)
    twin = RotatingMachine(seed=3)
    twin.sensor_fault(kind, at_s=2.0, duration_s=1.5)
    with conn:
        res = s.run(twin, duration_s=6.0)
    assert res.error == ""
    kinds = {f["kind"] for f in res.sensor_faults}
    assert kinds == {kind}
    assert not res.stops
    skipped = [w.k for w in res.windows if w.status == "skipped"]
    assert skipped and {f["window"] for f in res.sensor_faults} == set(skipped)
    # the windows touching the fault interval, and only those, were kept out of the decision
    for w in res.windows:
        start, end = w.k * 128 / 1000, (w.k * 128 + 128) / 1000
        if end <= 2.0 or start >= 3.5:
            assert w.status == "ok", (w, kind)


def test_garbage_and_dropped_bytes_are_accounted(standin_board) -> None:
    rng = np.random.default_rng(0)

    def mangle(frame: bytes, i: int) -> bytes:
        if i % 7 == 3:  # garbage before the frame, including sync bytes and Ctrl-C
            return bytes(rng.integers(0, 256, 40, dtype=np.uint8)) + b"\xa5\x5a\x03" + frame
        if i % 11 == 5:  # bytes dropped inside the frame
            cut = int(rng.integers(8, len(frame) - 1))
            return frame[:cut] + frame[cut + 3 :]
        return frame

    conn, s = session(standin_board)
    with conn:
        res = s.run(RotatingMachine(seed=4), duration_s=10.0, mangle=mangle)
    assert res.error == ""
    mangled = {i for i in range(78) if i % 7 == 3 or i % 11 == 5}
    lost = {w.k for w in res.lost}
    assert lost, "dropped bytes must cost windows"
    assert {w.reason for w in res.lost} <= {"sample_gap", "frame_lost"}
    # a mangled frame costs its windows and, at most, those of the two frames after it
    assert lost <= mangled | {d + 1 for d in mangled} | {d + 2 for d in mangled}
    assert len(lost) <= 2 * len(mangled)
    assert res.count("ok") + len(lost) == res.n_windows
    assert res.pongs and res.pongs[-1]["bad_crc"] + res.pongs[-1]["too_long"] >= 1


def test_board_reset_mid_run_is_detected_and_run_recovers(standin_board) -> None:
    conn, s = session(standin_board)
    with conn:
        res = s.run(RotatingMachine(seed=5), duration_s=8.0, reset_at_s=4.0)
    assert res.error == ""
    assert len(res.resets) == 1 and 4.0 <= res.resets[0] < 5.0
    assert "board reset detected" in conn.recent_output()
    late = [w for w in res.windows if w.t_end_s > 5.0]
    assert late and all(w.status == "ok" for w in late)
    for w in res.lost:
        assert w.reason in ("board_reset", "sample_gap")
    assert res.count("ok") + res.count("lost") == res.n_windows


def test_board_crash_fails_with_its_traceback(standin_board) -> None:
    (standin_board / "standin.py").write_text(
        (standin_board / "standin.py").read_text().replace("hot = e >", "hot = 1 / 0 >")
    )
    conn, s = session(standin_board)
    with conn:
        res = s.run(RotatingMachine(seed=6), duration_s=3.0)
    assert "ZeroDivisionError" in res.error
    assert res.count("lost") == res.n_windows
    assert {w.reason for w in res.lost} <= {"board_exited", "no_result"}


def test_expect_failure_shows_recent_output(standin_board) -> None:
    from edgeloop.link.session import HilError

    conn = link(standin_board)
    with conn:
        conn.expect(r"\[hello\] edgeloop-hil", timeout=10)
        with pytest.raises(HilError, match="recent output:\n.*edgeloop-hil"):
            conn.expect("never printed", timeout=0.5)


def test_ping_counts_frames(standin_board) -> None:
    conn = link(standin_board)
    with conn:
        conn.expect_frame(P.MsgType.HELLO)
        conn.write(b"noise\x03\x03")
        conn.send(P.MsgType.PING, (77).to_bytes(4, "little"))
        pong = P.decode_message(conn.expect_frame(P.MsgType.PONG))
    assert pong.token == 77 and pong.garbage >= 7 and pong.frames_ok == 1


def test_boot_banner_in_console_text_is_a_reset(standin_board) -> None:
    """A real board that reboots prints its banner before main.py says HELLO again."""
    from edgeloop.link.session import BOOT_BANNER

    assert BOOT_BANNER.search(b"ets Jun  8 2016 00:22:57\r\n\r\nrst:0x1 (POWERON_RESET)")
    assert BOOT_BANNER.search(b"MicroPython v1.24.1 on 2024-11-29; Generic ESP32 module")
    assert not BOOT_BANNER.search(b"[log] window 12 ok")
    conn, s = session(standin_board)

    def inject_banner(frame: bytes, i: int) -> bytes:
        if i == 20:  # as if the board's console printed it (we loop it back into the reader)
            conn._on_bytes(b"MicroPython v1.24.1 on 2024-11-29; Generic ESP32 module\r\n")
        return frame

    with conn:
        res = s.run(RotatingMachine(seed=1), duration_s=5.0, mangle=inject_banner)
    assert len(res.banners) == 1
    assert "boot banner" in conn.recent_output()


@given(st.sets(st.integers(0, 23), max_size=8))
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_window_accounting_is_exact_under_frame_loss(make_standin_board, dropped) -> None:
    """Whole SAMPLES frames vanish: exactly the windows needing their samples are lost (each
    with a reason), every other window is answered, none is counted twice."""
    root = make_standin_board("acct", window=256, stride=128)
    conn, s = session(root)
    with conn:
        res = s.run(RotatingMachine(seed=0), duration_s=3.072,
                    mangle=lambda f, i: b"" if i in dropped else f)
    assert res.error == ""
    span = 256 // 128
    need = {w.k: set(range(w.k, w.k + span)) for w in res.windows}
    expect_lost = {k for k, frames in need.items() if frames & dropped}
    assert {w.k for w in res.lost} == expect_lost
    assert all(w.reason in ("sample_gap", "frame_lost") for w in res.lost)
    assert res.count("ok") == res.n_windows - len(expect_lost)
    assert res.n_windows == (3072 - 256) // 128 + 1


def test_float32_frames_convert_on_board_like_host(standin_board) -> None:
    """float32 samples (g, NaN included) are turned into counts on the board, integer-only:
    the same windows are answered, NaN becomes a sensor-fault report as with int16."""
    results = {}
    for dtype in (P.DType.INT16, P.DType.FLOAT32):
        conn = link(standin_board)
        with conn:
            twin = RotatingMachine(seed=3, time_to_failure_s=20)
            twin.sensor_fault("nan", at_s=2.0, duration_s=0.5)
            res = HilSession(conn, sample_dtype=dtype).run(twin, 12.0, fault_at_s=5.0)
        assert res.error == ""
        results[dtype] = res
    a, b = results[P.DType.INT16], results[P.DType.FLOAT32]
    assert [w.status for w in a.windows] == [w.status for w in b.windows]
    assert {f["kind"] for f in b.sensor_faults} == {"nan"}
    assert a.stops and b.stops and abs(a.stops[0]["t_s"] - b.stops[0]["t_s"]) < 1.0


def test_f32_to_counts_on_the_board(tmp_path) -> None:
    """The board's float32 -> int16 conversion against numpy, edge values included."""
    import struct

    from edgeloop.firmware import build_firmware
    from edgeloop.vboard import VirtualBoard

    vals = np.array([0.0, -0.0, 1.0, -1.0, 0.5, 1e-9, 3.999, -7.25, 15.99, 16.0, 100.0, -1e30,
                     np.nan, np.inf, -np.inf, 2.0**-20, 0.000244140625], dtype=np.float32)
    root = tmp_path / "b"
    build_firmware(root, None)
    n = len(vals)
    code = (
        f"import hil\nb = bytearray({vals.tobytes()!r})\n"
        f"hil.f32_to_counts(b, 0, {n}, *hil.f32_unit(2048))\nprint(bytes(b[:{2 * n}]).hex())"
    )
    out = VirtualBoard(root).run(code, timeout=30).check().stdout.split()[-1]
    got = np.array(struct.unpack(f"<{n}h", bytes.fromhex(out)))
    with np.errstate(invalid="ignore", over="ignore"):  # round half away from zero
        v = vals.astype(np.float64) * 2048
        want = np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5), -32767, 32767)
    want = np.where(np.isfinite(vals), want, -32768).astype(np.int64)
    np.testing.assert_array_equal(got, want)


def test_slow_board_loses_nothing(make_standin_board) -> None:
    """A board that stalls for 0.7 s now and then makes the host pad and PING; answers that
    arrive late still count, and windows streamed after a PING are not written off by it."""
    root = make_standin_board("slow", standin={"threshold": 400, "slow_every": 9})
    conn, s = session(root)
    with conn:
        res = s.run(RotatingMachine(seed=1), duration_s=4.0)
    assert res.error == ""
    assert res.pongs, "the stalls must have triggered PINGs"
    assert res.count("ok") == res.n_windows, res.lost_reasons()


def test_board_logs_its_setup(standin_board) -> None:
    conn = link(standin_board)
    with conn:
        conn.expect(r"\[log\] hil: input frames, window 128, stride 128, outputs 2", timeout=10)


def test_protocol_version_mismatch_is_refused(standin_board) -> None:
    from edgeloop.link.session import HilError

    conn = link(standin_board)
    with conn:
        conn.await_hello()
        conn.hello = P.Hello(99, 256, 128, 3, 5, 1000, "future board")
        with pytest.raises(HilError, match="protocol v99"):
            HilSession(conn)


def test_missing_port_and_undeployed_board_are_clear_errors(tmp_path) -> None:
    from edgeloop.link.serialport import SerialTransport
    from edgeloop.link.session import HilError
    from edgeloop.link.transport import BoardNotFound

    with pytest.raises(BoardNotFound, match="/dev/ttyEDGELOOP0 does not exist"):
        FrameLink.open(SerialTransport("/dev/ttyEDGELOOP0", raw_repl=False))
    with pytest.raises(HilError, match="deploy the board first"):
        link(tmp_path / "empty", "main.py")
