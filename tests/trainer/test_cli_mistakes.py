"""The usual newcomer mistakes on simulate/train: one line naming the option and its range, exit
code 2, no traceback, nothing written, and nothing slow (TensorFlow is not even loaded)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    code = ("import sys\nfrom edgeloop.cli import main\nsys.argv = ['edgeloop', *sys.argv[1:]]\n"
            "try:\n    main()\nfinally:\n"
            "    print('TF-LOADED' if 'tensorflow' in sys.modules else 'TF-NOT-LOADED')\n")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    from trainer.twins import synthesize, write_csv_dataset

    d = tmp_path_factory.mktemp("cli")
    return write_csv_dataset(synthesize("rotating_machine", per_class=3, duration_s=1.0), d / "d")


@pytest.mark.parametrize("args, message", [
    (["--stride", "-5"], "--stride must be >= 1 sample"),  # was `need at least one array to stack`
    (["--stride", "0"], "--stride must be >= 1 sample"),  # was silently the default
    (["--epochs", "0"], "--epochs must be in 1..100000, got 0"),  # was KeyError: 'loss'
    (["--epochs", "-1"], "--epochs must be in 1..100000, got -1"),
    (["--window", "0"], "--window must be 8..8192 samples, got 0"),  # was silently the default
    (["--window", "9000"], "--window must be 8..8192 samples, got 9000"),  # any length between
    (["--seed", "-1"], "--seed must be in 0..4294967295"),
    (["--model", "resnet"], "--model 'resnet' is unknown; known: mlp, cnn1d, dscnn, autoencoder"),
    (["--epochs", "ten"], "Invalid value for '--epochs'"),
])
def test_bad_train_options_are_one_line_before_tensorflow(data, tmp_path, args, message):
    res = _cli("train", "--data", str(data), "--out", str(tmp_path / "run"), *args, cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert res.stderr.count("\n") == 1 and message in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    assert "TF-NOT-LOADED" in res.stdout  # refused before ~3 s of TensorFlow start-up
    assert not (tmp_path / "run").exists()


def test_simulate_refuses_to_mix_twins_and_accepts_hyphens(tmp_path):
    from typer.testing import CliRunner

    from edgeloop.cli import app
    from edgeloop.errors import EdgeLoopError

    r = CliRunner()
    out = tmp_path / "d"
    res = r.invoke(app, ["simulate", "rotating-machine", "--out", str(out), "--per-class", "3",
                         "--duration", "0.5"])  # was `unknown twin 'rotating-machine'`
    assert res.exit_code == 0, res.output
    toml = (out / "edgeloop.toml").read_text()
    res = r.invoke(app, ["simulate", "wearable", "--out", str(out), "--per-class", "3"])
    assert isinstance(res.exception, EdgeLoopError)  # used to mix both and overwrite the toml
    assert "already holds files" in str(res.exception) and "--force" in str(res.exception)
    assert (out / "edgeloop.toml").read_text() == toml and not (out / "fall").exists()
    res = r.invoke(app, ["simulate", "wearable", "--out", str(out), "--per-class", "3",
                         "--force"])
    assert res.exit_code == 0, res.output
    assert (out / "fall").is_dir() and not (out / "bearing").exists()  # replaced, not mixed
    assert not list(tmp_path.glob(".d.*"))


def test_help_shows_flags_as_flags():
    from typer.testing import CliRunner

    from edgeloop.cli import app

    for cmd in ("train", "convert", "deploy", "infer", "simulate"):
        res = CliRunner().invoke(app, [cmd, "--help"])
        assert res.exit_code == 0 and "--json" in res.output or cmd == "simulate", res.output
        assert "<bool>" not in res.output, (cmd, res.output)


def test_board_names_as_people_type_them():
    from edgeloop.boards import get_board

    assert get_board("ESP32-S3").name == "esp32s3" and get_board("esp32_c3").name == "esp32c3"
