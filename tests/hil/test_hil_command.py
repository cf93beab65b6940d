"""`edgeloop hil`: the pytest command line it builds and its registration in the CLI."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from edgeloop.cli import app
from edgeloop.commands.hil import HIL_TESTS, pytest_args


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


def test_hil_command_writes_junit_and_html(tmp_path: Path) -> None:
    """End to end: `edgeloop hil -k ...` on the virtual board writes both reports."""
    import subprocess
    import sys

    exe = Path(sys.executable).parent / "edgeloop"
    out = tmp_path / "hil"
    proc = subprocess.run(
        [str(exe), "hil", "-k", "dut_expect or latency_and_heap", "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    junit = (out / "junit.xml").read_text()
    assert 'name="test_dut_expect_shows_recent_output_on_failure"' in junit
    assert 'name="run.heap_free_min"' in junit  # session figures as JUnit properties
    html = (out / "report.html").read_text()
    assert "data:image/png;base64" in html  # the timeline PNG is embedded
    assert (out / "test_latency_and_heap_per_window" / "timeline.png").is_file()
