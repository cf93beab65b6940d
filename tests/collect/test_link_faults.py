"""Link faults mid-recording on the virtual board: a garbled line, the board killed or reset.

No complete recording is lost, no partial one is left, and the failure is one typed error
(one line at the CLI). The garbling sits between the board's real byte stream and the host's
frame decoder, so the board, the framing and the recorder are the real ones. The in-process
tests run the simulated chip in replay (samples as fast as drained): only the fault under
test can cut a recording, never a stall of the shared machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from factory.collecting import (
    Garbled,
    board_samples,
    cli_args,
    no_partials,
    offset_in,
    read_counts,
)

from edgeloop.collect.board import SCRIPT, CollectLink
from edgeloop.collect.dataset import Dataset
from edgeloop.collect.errors import LinkFault, SampleGap
from edgeloop.collect.session import Session
from edgeloop.collect.start import Source, load_sensor_config, prepare
from edgeloop.link.framelink import FrameLink


def _session(tmp_path: Path, wrap=None, seconds: float = 70.0):
    cfg = load_sensor_config(None, "rotating_machine")
    src = Source(board="virtual", board_dir=tmp_path / "vboard")
    transport, meta = prepare(src, cfg, seconds, replay=True)
    stream = transport.stream(SCRIPT)
    link = FrameLink(wrap(stream) if wrap else stream, owner=transport)
    ds = Dataset(tmp_path / "data", cfg, "virtual", meta)
    return Session(CollectLink(link), ds, None), ds, stream


def test_a_garbled_line_refuses_the_recording_and_keeps_the_complete_ones(tmp_path):
    # ~6.7 bytes a sample: the noise hits during the second of three 1000-sample recordings
    session, ds, _ = _session(tmp_path, lambda s: Garbled(s, after=9000))
    with pytest.raises(SampleGap) as err:
        try:
            session.streamed("healthy", 1000, 3, on_gap="refuse")
        finally:
            session.link.close()
    assert "missing" in str(err.value) and "discarded" in str(err.value)
    assert session.link.corrupt >= 1
    recs = read_counts(ds.out)["healthy"]
    assert len(recs) == len(session.paths) >= 1 and not no_partials(ds.out)
    played = board_samples(tmp_path / "vboard")
    for _, counts in recs:
        assert counts.shape == (1000, 3)
        offset_in(played, counts)


def test_a_garbled_line_restarts_the_recording_it_hit(tmp_path):
    session, ds, _ = _session(tmp_path, lambda s: Garbled(s, after=9000))
    try:
        session.streamed("healthy", 1000, 3, on_gap="restart")
    finally:
        session.link.close()
    assert session.stats.restarts >= 1 and len(session.paths) == 3
    played = board_samples(tmp_path / "vboard")
    for _, counts in read_counts(ds.out)["healthy"]:
        assert counts.shape == (1000, 3)
        offset_in(played, counts)  # exact: the damaged stretch is in no recording


@pytest.mark.parametrize("fault", ["killed", "reset"])
def test_a_board_that_dies_or_restarts_mid_recording(tmp_path, fault):
    session, ds, stream = _session(tmp_path)

    def strike() -> None:  # once the first recording is on disk, during the second or third
        deadline = time.monotonic() + 60
        while not session.paths and time.monotonic() < deadline:
            time.sleep(0.01)
        if fault == "killed":
            stream.proc.kill()
        else:
            session.link.link.reset()  # the board's script starts over: a new INFO

    t = threading.Thread(target=strike, daemon=True)
    t.start()
    with pytest.raises(LinkFault) as err:
        try:
            session.streamed("healthy", 20000, 3)
        finally:
            session.link.close()
    t.join()
    assert ("stopped" if fault == "killed" else "restarted") in str(err.value)
    # every complete recording kept, the one the fault cut dropped: replayed samples come as
    # fast as the host drains them, so on an idle machine a second one may finish first
    kept = read_counts(ds.out)["healthy"]
    assert 1 <= len(kept) == len(session.paths) < 3
    assert all(counts.shape == (20000, 3) for _, counts in kept)
    assert not no_partials(ds.out)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def _wait_for_csv(out: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not list(out.rglob("*.csv")):
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "no recording written"
        time.sleep(0.1)


def test_cli_board_killed_mid_recording_is_one_error_line(tmp_path):
    out = tmp_path / "data"
    proc = subprocess.Popen(cli_args("--board", "virtual", "--label", "healthy", "--seconds", "1",
                                     "--count", "4", "--retries", "20", "--out", str(out), "--dir",
                                     str(tmp_path / "vboard")),
                            cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_csv(out, proc)
        boards = [c for c in _children(proc.pid)
                  if SCRIPT.removesuffix(".py") in Path(f"/proc/{c}/cmdline").read_text()]
        assert len(boards) == 1
        os.kill(boards[0], signal.SIGKILL)  # the board process this test's child started
        err = proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 2, err
    errors = [x for x in err.splitlines() if x.startswith("error:")]
    assert len(errors) == 1 and "stopped" in errors[0] and "kept in" in errors[0], err
    n = len(read_counts(out)["healthy"])
    assert 1 <= n < 4 and f"{n} complete recording(s) kept" in errors[0]
    assert not no_partials(out)


def test_cli_ctrl_c_keeps_complete_recordings_and_drops_the_partial(tmp_path):
    out = tmp_path / "data"
    proc = subprocess.Popen(cli_args("--board", "virtual", "--label", "healthy", "--seconds", "1",
                                     "--count", "5", "--retries", "20", "--out", str(out), "--dir",
                                     str(tmp_path / "vboard")),
                            cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_csv(out, proc)
        time.sleep(0.4)  # into the next recording
        boards = _children(proc.pid)
        os.kill(proc.pid, signal.SIGINT)  # only the child this test started
        err = proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    n = len(read_counts(out)["healthy"])
    assert 1 <= n < 5 and f"interrupted: {n} complete recording(s) kept" in err, err
    assert "Traceback" not in err and not no_partials(out)
    for p in out.rglob("*.csv"):
        assert p.with_suffix(".json").is_file()
    time.sleep(0.5)  # the board's process ended with the CLI (its link closed)
    assert boards and not any(Path(f"/proc/{b}/cmdline").exists() and
                              SCRIPT.removesuffix(".py") in Path(f"/proc/{b}/cmdline").read_text() for b in boards)
