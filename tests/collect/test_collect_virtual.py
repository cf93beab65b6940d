"""`edgeloop collect` on the virtual board: the real sampling path (the MPU6050 driver and its
FIFO against the simulated chip on its wall clock) over the framed link, into a dataset the
trainer reads. Every recording has exactly rate x seconds samples, and they are the samples the
sensor took, contiguous: each one a slice of what the simulated chip played, back to back."""

from __future__ import annotations

import json

import numpy as np
from factory.collecting import board_samples, no_partials, offset_in, read_counts, run_cli


def test_collect_writes_exact_recordings_the_trainer_reads(tmp_path, board_dir):
    out = tmp_path / "data"
    r = run_cli("--board", "virtual", "--twin", "rotating_machine", "--state", "healthy",
                "--label", "healthy", "--seconds", "2", "--count", "2", "--retries", "20", "--out", str(out),
                "--dir", str(board_dir), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "link budget: 1000 Hz x 3 ch" in r.stderr and "virtual board throughput" in r.stderr
    assert "wrote 2 recording(s) of 2,000 samples each" in r.stderr
    recs = read_counts(out)
    assert list(recs) == ["healthy"] and len(recs["healthy"]) == 2
    played = board_samples(board_dir)
    starts = []
    for path, counts in sorted(recs["healthy"]):
        assert counts.shape == (2000, 3)
        starts.append(offset_in(played, counts))
        meta = json.loads(path.with_suffix(".json").read_text())
        assert meta["samples"] == 2000 and meta["lost"] == 0 and meta["state"] == "normal"
        assert abs(meta["rate_hz_measured"] - 1000.0) < 2.0  # the board's clock, measured
        ts = np.loadtxt(path, delimiter=",", skiprows=1, usecols=0)
        assert abs(1000.0 * (len(ts) - 1) / ts[-1] - meta["rate_hz_measured"]) < 1e-3
    # back to back, not one sample lost between them (unless a stall of this shared machine
    # overflowed the FIFO: then the second one was restarted after it, still exact)
    assert starts[1] == starts[0] + 2000 or "restarted" in r.stderr
    toml = (out / "edgeloop.toml").read_text()
    assert "sample_rate = 1000.0" in toml and 'healthy = "healthy"' in toml
    assert "ax [g]" in toml and "[[sensors]]" in toml
    assert not no_partials(out)

    # a second session adds a fault class to the same dataset; the toml stays
    r = run_cli("--board", "virtual", "--state", "bearing_fault", "--label", "bearing",
                "--seconds", "1", "--retries", "20", "--out", str(out), "--dir", str(board_dir), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    recs = read_counts(out)
    assert sorted(recs) == ["bearing", "healthy"] and recs["bearing"][0][1].shape == (1000, 3)
    assert (out / "edgeloop.toml").read_text() == toml


def test_bad_options_are_one_line_errors_before_any_board(tmp_path):
    for args, want in (
        (["--board", "virtual", "--seconds", "2", "--out", "d"], "--seconds needs --label"),
        (["--board", "virtual", "--label", "a/b", "--seconds", "1", "--out", "d"],
         "cannot be a dataset folder name"),
        (["--board", "virtual", "--state", "broken", "--label", "x", "--seconds", "1",
          "--out", "d"], "has no state 'broken'"),
        (["--label", "x", "--seconds", "1", "--out", "d"], "no board given"),
        (["--board", "virtual", "--label", "x", "--seconds", "0", "--out", "d"],
         "--seconds must be > 0"),
    ):
        r = run_cli(*args, cwd=tmp_path)
        assert r.returncode == 2, (args, r.stderr)
        lines = [x for x in r.stderr.splitlines() if x.strip()]
        assert len(lines) == 1 and want in lines[0], (args, r.stderr)
    assert not (tmp_path / "build").exists() and not (tmp_path / "d").exists()


def test_out_with_another_sensors_data_is_refused(tmp_path, board_dir):
    out = tmp_path / "data"
    out.mkdir()
    (out / "edgeloop.toml").write_text('[sensor]\nchannels = ["temperature"]\nsample_rate = 1\n')
    r = run_cli("--board", "virtual", "--label", "healthy", "--seconds", "1", "--out", str(out),
                "--dir", str(board_dir), cwd=tmp_path)
    assert r.returncode == 2 and "describes other data" in r.stderr, r.stderr
