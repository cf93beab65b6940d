"""The interactive mode's state machine, driven by keys fed in code (no terminal), on the
virtual board's real stream: Enter starts and stops, `l` relabels, 1..9 pick a label, q quits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from factory.collecting import board_samples, no_partials, offset_in, read_counts, run_cli

from edgeloop.collect.board import CollectLink
from edgeloop.collect.errors import CollectError
from edgeloop.collect.interactive import Controller, View
from edgeloop.collect.start import Source, load_sensor_config, prepare


def _session(tmp_path: Path):
    from edgeloop.collect.dataset import Dataset
    from edgeloop.collect.session import Session

    cfg = load_sensor_config(None, "rotating_machine")
    # replay: the keys come at sample counts, so the run does not depend on the machine's load
    transport, meta = prepare(Source(board="virtual", board_dir=tmp_path / "vboard"), cfg, 60,
                              replay=True)
    return Session(CollectLink.open(transport), Dataset(tmp_path / "data", cfg, "virtual", meta),
                   None)


def test_keys_record_label_and_quit(tmp_path):
    session = _session(tmp_path)
    # (samples received before the keys are pressed, keys)
    script = [(300, "\r"), (1500, "\r"), (1600, "lbear\x7fring\r"), (1700, "\r"), (2900, "2"),
              (3000, "\r"), (3100, "1"), (3200, "x"), (3300, "\r"), (4200, "l../x\r"),
              (4300, "\r"), (4400, "q")]
    pending = [k for _, ks in script for k in ks]
    at = [n for n, ks in script for _ in ks]

    ctl = Controller(session, "healthy", ["healthy", "bearing"])
    view = View(ctl)
    states = []

    def next_key():
        if pending and session.stats.samples >= at[0]:
            at.pop(0)
            states.append(ctl.state)
            return pending.pop(0)
        return None

    try:
        ctl.run(next_key, view.add)
    finally:
        session.link.close()
    assert ctl.quit and not pending
    # healthy (Enter..Enter); `l` types "bearing" (with a backspace); bearing (Enter, '2' is
    # ignored while recording, Enter); '1' picks healthy; healthy (Enter, a bad label typed
    # meanwhile is refused and recording goes on, Enter); q
    recs = read_counts(tmp_path / "data")
    assert sorted(recs) == ["bearing", "healthy"]
    assert len(recs["healthy"]) == 2 and len(recs["bearing"]) == 1
    assert ctl.counts == {"healthy": 2, "bearing": 1} and ctl.label == "healthy"
    played = board_samples(tmp_path / "vboard")
    for items in recs.values():
        for _, counts in items:
            assert len(counts) >= 900  # ~1 s between the key presses
            offset_in(played, counts)
    assert "recording" in states and "editing" in states
    text = view.render()
    assert text is not None and len(view.recent) > 0
    assert not no_partials(tmp_path / "data")


def test_q_while_recording_drops_the_open_take(tmp_path):
    session = _session(tmp_path)
    keys = iter(["\r", None, None, "q"])
    ctl = Controller(session, "healthy")
    seen = {"n": 0}

    def next_key():
        seen["n"] += 1
        return next(keys, None) if seen["n"] % 5 == 0 else None

    try:
        ctl.run(next_key)
    finally:
        session.link.close()
    assert not (tmp_path / "data").exists() or not list((tmp_path / "data").rglob("*.csv"))


def test_controller_refuses_a_bad_label_and_keeps_the_old():
    class FakeSession:  # the key logic only: no stream needed for labels
        class info:
            rate_hz = 1000.0

        def start_stream(self, on_gap):
            from edgeloop.collect.recorder import Recorder, SampleStream

            return Recorder(SampleStream(), 3, 1000.0, on_gap)

    ctl = Controller(FakeSession(), "healthy")  # type: ignore[arg-type]
    for k in "l../x\r":
        ctl.key(k)
    assert ctl.label == "healthy" and "cannot be a dataset folder name" in ctl.message
    for k in "lnew\x1b":
        ctl.key(k)
    assert ctl.label == "healthy" and ctl.state == "idle"
    with pytest.raises(CollectError):
        Controller(FakeSession(), "bad/label")  # type: ignore[arg-type]


def test_interactive_without_a_terminal_says_how(tmp_path):
    r = run_cli("--board", "virtual", "--out", str(tmp_path / "d"), cwd=tmp_path)
    assert r.returncode == 2 and "needs a terminal" in r.stderr and "--seconds" in r.stderr
    assert np.size(list(tmp_path.rglob("*.csv"))) == 0


def test_interactive_in_a_terminal(tmp_path, board_dir):
    """The CLI on a pseudo-terminal: the live view comes up, keys arrive in cbreak mode."""
    from factory.collecting import cli_args
    from factory.terminal import Terminal

    out = tmp_path / "data"
    with Terminal(cli_args("--board", "virtual", "--out", str(out), "--labels",
                           "healthy,bearing", "--dir", str(board_dir)), cwd=tmp_path) as term:
        term.wait_for(b"Enter start/stop", timeout=120)
        for key, wait in (("\n", 2.5), ("\n", 0.5), ("2", 0.3), ("\n", 2.5), ("\n", 0.5),
                          ("q", 0.5)):
            term.type(key, then=wait)
        code = term.finish(timeout=60)
    text = term.text
    assert code == 0, text[-2000:]
    assert "ax [g]" in text and "REC" in text and "wrote" in text
    recs = read_counts(out)
    assert {"healthy", "bearing"} <= set(recs)  # a stall of the machine may split one in two
    played = board_samples(board_dir)
    for items in recs.values():
        for _, counts in items:
            offset_in(played, counts)
