"""`edgeloop hil`: the pytest command line it builds and its registration in the CLI."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeloop.cli import app
from edgeloop.commands.hil import HIL_TESTS, pytest_args
from edgeloop.vboard import identify


def test_pytest_args_carry_board_reports_and_filter() -> None:
    args = pytest_args("/dev/ttyUSB0", "esp32", "fault", Path("out"), [])
    assert args[0] == str(HIL_TESTS) and (HIL_TESTS / "conftest.py").is_file()
    assert args[args.index("--board") + 1] == "/dev/ttyUSB0"
    assert args[args.index("--board-profile") + 1] == "esp32"
    assert args[args.index("-k") + 1] == "fault"
    assert "--junitxml=out/junit.xml" in args and "--html=out/report.html" in args


def test_hil_command_is_registered() -> None:
    result = CliRunner().invoke(app, ["hil", "--help"])
    assert result.exit_code == 0
    assert "--board" in result.output and "--board-profile" in result.output


def test_parallel_real_board_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["hil", "--board", "socket://127.0.0.1:9", "-n", "2",
                                      "--out", str(tmp_path)])
    assert result.exit_code != 0
    assert "virtual" in str(result.exception)


def test_missing_port_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["hil", "--board", "/dev/ttyEDGELOOP9", "--out",
                                      str(tmp_path)])
    assert result.exit_code != 0
    assert "no such serial port" in str(result.exception)


EXE = Path(sys.executable).parent / "edgeloop"


def _bench_run(tmp_path: Path) -> Path:
    """A user's run folder: a copy of the bench's trained run (trained once, cached)."""
    from hil_tests.model import ensure_run_locked

    src = ensure_run_locked()
    run = tmp_path / "my-run"
    shutil.copytree(src, run)
    return run


def test_hil_on_a_run_reports_what_it_tested(tmp_path: Path) -> None:
    """End to end: `edgeloop hil RUN -k ...` on the virtual board tests RUN's model and writes
    summary.json (board, word size, the model's sha256 and run, each scenario's criteria,
    outcome and figures), JUnit and an HTML report titled with board and model."""
    run = _bench_run(tmp_path)
    out = tmp_path / "hil"
    proc = subprocess.run(
        [str(EXE), "hil", str(run), "-k", "dut_expect or latency_and_heap", "--out", str(out)],
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"model under test: {run}" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] and summary["interrupted"] is False
    board = summary["board"]
    ident = identify()
    assert board["board"] == "virtual" and board["profile"] == "virtual"
    assert (board["word_bits"], board["float_bits"]) == (ident.word_bits, ident.float_bits)
    assert board["micropython"] == ident.version
    model = summary["model"]
    assert model["source_run"] == str(run) and model["bench_cache"] is False
    tflite = run / "model_int8.tflite"
    assert model["sha256"] == hashlib.sha256(tflite.read_bytes()).hexdigest()
    by_name = {s["name"]: s for s in summary["scenarios"]}
    lat = by_name["test_latency_and_heap_per_window"]
    assert lat["outcome"] == "passed" and lat["criteria"].startswith("Pass")
    assert lat["figures"]["heap_free_min"] > 0 and lat["figures"]["lost"] == 0
    assert summary["counts"] == {"passed": len(summary["scenarios"])}
    junit = (out / "junit.xml").read_text()
    assert 'name="test_dut_expect_shows_recent_output_on_failure"' in junit
    assert 'name="run.heap_free_min"' in junit  # session figures as JUnit properties
    html = (out / "report.html").read_text()
    assert "data:image/png;base64" in html  # the timeline PNG is embedded
    assert "EdgeLoop HIL: virtual board (virtual" in html and "model my-run" in html
    assert "Pass criteria" in html and lat["criteria"][:40] in html
    latest = out / (out / "LATEST").read_text().strip()
    assert (latest / "test_latency_and_heap_per_window" / "timeline.png").is_file()


def test_interrupted_run_says_so_and_keeps_the_last_report(tmp_path: Path) -> None:
    """Ctrl-C mid-scenario: exit 130, the run's own folder says interrupted (summary.json and
    the HTML title), and OUT's last complete report is left as it was."""
    out = tmp_path / "hil"
    out.mkdir()
    good = '{"complete": true, "the": "last good report"}\n'
    (out / "summary.json").write_text(good)
    # the whole bench, so the Ctrl-C lands mid-run however fast the first scenario finishes
    proc = subprocess.Popen([str(EXE), "hil", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    started = None
    while time.monotonic() < deadline and proc.poll() is None:
        started = next(iter(out.glob("runs/*/vboard/*/main.py")), None)  # deployed: running
        if started is not None:
            break
        time.sleep(0.5)
    assert started is not None, "the scenario never started"
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stdout[-2000:] + stderr[-2000:]
    assert "INTERRUPTED" in stderr and "unchanged" in stderr
    assert (out / "summary.json").read_text() == good
    (run_dir,) = [p for p in (out / "runs").iterdir() if p.is_dir()]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["complete"] is False
    assert "Ctrl-C" in summary["interrupted_reason"]
    html = (run_dir / "report.html").read_text()
    assert "[INTERRUPTED]" in html


@pytest.mark.parametrize("bad", ["profile", "silent-port"])
def test_bad_board_is_one_line_and_exit_2(tmp_path: Path, bad: str) -> None:
    """A bad --board-profile, or a port where no MicroPython answers: one line, exit 2, within
    seconds, and the last good report untouched."""
    out = tmp_path / "hil"
    out.mkdir()
    (out / "summary.json").write_text("good\n")
    if bad == "profile":
        args = ["--board-profile", "esp33"]
        says = "unknown board profile 'esp33'"
    else:
        master, slave = os.openpty()  # a serial port with nothing behind it
        args = ["--board", os.ttyname(slave)]
        says = "MicroPython"
    t0 = time.monotonic()
    proc = subprocess.run([str(EXE), "hil", *args, "--out", str(out)], capture_output=True,
                          text=True, timeout=120)
    took = time.monotonic() - t0
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], proc.stderr
    assert took < 60, f"took {took:.0f} s"  # loose: a shared machine; it was minutes before
    assert (out / "summary.json").read_text() == "good\n"
    assert not (out / "runs").exists()
    print(f"{bad}: exit 2 after {took:.1f} s: {lines[0]}")
