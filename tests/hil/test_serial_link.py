"""The serial path (pyserial, as for a real ESP32) over socket://, bridged to a virtual board."""

from __future__ import annotations

import socket
import threading

from edgeloop.link.framelink import FrameLink
from edgeloop.link.serialport import SerialTransport
from edgeloop.link.session import HilSession, run_closed_loop
from edgeloop.vboard import VirtualBoard
from trainer.twins import RotatingMachine


def serve_board(root, script: str = "hilmain.py") -> tuple[int, threading.Thread]:
    """A TCP port whose one client talks to the board's console (like an ESP32 behind ser2net)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]

    def run() -> None:
        client, _ = srv.accept()
        proc = VirtualBoard(root).spawn(script)

        def up() -> None:
            while data := proc.stdout.read(65536):
                client.sendall(data)
            client.close()

        threading.Thread(target=up, daemon=True).start()
        try:
            while data := client.recv(65536):
                proc.stdin.write(data)
            proc.stdin.close()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the board ended first
        proc.wait(timeout=10)
        srv.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return port, t


def test_session_over_socket_url(standin_board) -> None:
    port, _ = serve_board(standin_board)
    conn = FrameLink.open(SerialTransport(f"socket://127.0.0.1:{port}", raw_repl=False))
    with conn:
        s = HilSession(conn)
        res = s.run(RotatingMachine(seed=2, time_to_failure_s=30), 20.0, fault_at_s=8.0)
    assert res.error == ""
    assert res.count("ok") == res.n_windows and res.stops
    assert res.false_stops == 0 and res.detection_latency_s is not None


def test_run_closed_loop_summary(make_standin_board) -> None:
    root = make_standin_board("loop")
    (root / "main.py").write_text((root / "hilmain.py").read_text())
    png = root / "timeline.png"
    out = run_closed_loop(root, RotatingMachine(seed=1, time_to_failure_s=30.0), fault_at_s=10.0,
                          duration_s=30.0, timeline_png=png)
    assert png.stat().st_size > 10_000
    assert out["false_stops"] == 0 and out["breakdowns"] == 0 and out["lost"] == 0
    assert out["windows"] == (30000 - 128) // 128 + 1
    assert 0 <= out["detection_latency_s"] < 10.0
