"""Run folders are written whole or not at all, carry a manifest, and are checked against it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trainer.errors import TrainerError
from trainer.runs import check_run, staged_run, write_manifest
from trainer.twins import synthesize, write_csv_dataset

ROOT = Path(__file__).resolve().parents[2]
QUANT = {"input_scale": 0.05, "input_zero_point": -3, "output_scale": 1 / 256,
         "output_zero_point": -128}
pytestmark = pytest.mark.filterwarnings("ignore")


def _fake_run(folder: Path, scale: float = 0.05) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model_int8.tflite").write_bytes(b"TFL3 model")
    (folder / "model.elb").write_bytes(b"ELMB bundle")
    (folder / "calibration.json").write_text("{}")
    (folder / "report.json").write_text("{}")
    cfg = {"preprocess": {"input_scale": scale, "input_zero_point": -3}}
    (folder / "config.json").write_text(json.dumps(cfg))
    write_manifest(folder, QUANT)
    return folder


def test_a_failed_run_leaves_the_previous_run_untouched(tmp_path):
    old = _fake_run(tmp_path / "m")
    before = {p.name: p.read_bytes() for p in old.iterdir()}
    with pytest.raises(KeyboardInterrupt), staged_run(old) as stage:
        (stage / "model_int8.tflite").write_bytes(b"new model")
        raise KeyboardInterrupt  # Ctrl-C half-way used to leave half old, half new
    assert {p.name: p.read_bytes() for p in old.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no staging folder left


def test_a_failed_first_run_leaves_no_folder(tmp_path):
    with pytest.raises(RuntimeError), staged_run(tmp_path / "new" / "m"):
        raise RuntimeError("training failed")
    assert list(tmp_path.iterdir()) == []  # not even the parent it made


def test_a_run_replaces_an_earlier_run_whole(tmp_path):
    old = _fake_run(tmp_path / "m")
    (old / "scores.png").write_bytes(b"stale")
    with staged_run(old) as stage:
        (stage / "report.json").write_text('{"new": 1}')
    assert [p.name for p in old.iterdir()] == ["report.json"]


def test_a_run_never_replaces_a_folder_of_something_else(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "rec.csv").write_text("ax\n1\n")
    with pytest.raises(TrainerError, match="non-empty folder that holds no run"):
        with staged_run(data):
            pass
    assert (data / "rec.csv").is_file()


def test_manifest_refuses_a_model_config_mismatch(tmp_path):
    run = _fake_run(tmp_path / "m")
    assert check_run(run)["quant"] == QUANT
    assert check_run(run / "model_int8.tflite") is not None  # a file inside the run
    (run / "model_int8.tflite").write_bytes(b"a retrained model")  # the Ctrl-C case
    with pytest.raises(TrainerError, match="model_int8.tflite is not the file this run was"):
        check_run(run)
    run = _fake_run(tmp_path / "n")
    (run / "config.json").write_text(json.dumps({"preprocess": {"input_scale": 0.1,
                                                                "input_zero_point": 4}}))
    write_manifest(run, QUANT)  # hashes agree now, but the config is another model's
    with pytest.raises(TrainerError, match="input scale/zero point 0.1/4, but the model was"):
        check_run(run)
    (run / "model.elb").unlink()
    with pytest.raises(TrainerError, match="model.elb: missing"):
        check_run(run)
    assert check_run(tmp_path) is None  # not a run: nothing to check


def test_cli_convert_and_deploy_refuse_a_mismatched_run(tmp_path):
    from typer.testing import CliRunner

    from edgeloop.cli import app

    run = _fake_run(tmp_path / "m")
    (run / "config.json").write_text("{}")  # config.json replaced after training
    r = CliRunner()
    for args in (["convert", str(run / "model_int8.tflite"), "-o", str(tmp_path / "b")],
                 ["deploy", str(run), "--board", "virtual", "--dir", str(tmp_path / "vb")],
                 ["hil", str(run), "--board", "virtual", "-o", str(tmp_path / "hil")]):
        res = r.invoke(app, args)
        assert isinstance(res.exception, TrainerError), (args, res.output)
        assert "config.json is not the file this run was trained with" in str(res.exception)
    assert not (tmp_path / "b").exists()


@pytest.fixture(scope="module")
def guessed_run(tmp_path_factory):
    """`edgeloop train` as a newcomer runs it: CSVs without edgeloop.toml, --window 16, in a
    fresh process so TensorFlow's start-up chatter is visible if it leaks."""
    tmp = tmp_path_factory.mktemp("guess")
    data = write_csv_dataset(synthesize("rotating_machine", per_class=4, duration_s=2.0, seed=5),
                             tmp / "d")
    assert not (data / "edgeloop.toml").exists()
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    res = subprocess.run(
        [sys.executable, "-m", "edgeloop.cli", "train", "--data", str(data), "--out",
         str(tmp / "run"), "--epochs", "2", "--window", "16"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    return tmp / "run", res


def test_guessed_config_is_explained_and_deployable(guessed_run):
    run, res = guessed_run
    assert res.returncode == 0, res.stdout + res.stderr
    # --window 16 without edgeloop.toml: fft_bins follows the window (was "fft_bins = 16 must
    # divide window/2 = 8", a setting the user never made)
    assert "fft_bins" not in res.stderr
    notes = [ln for ln in res.stderr.splitlines() if ln.startswith("note:")]
    assert notes and "no edgeloop.toml in" in notes[0] and "counts_per_unit" in notes[0]
    assert any("healthy class 'normal'" in n for n in notes)
    dev = json.loads((run / "config.json").read_text())
    assert dev["counts_per_unit"] in (16384, 8192, 4096, 2048)  # one MPU6050 range, not per axis
    assert dev["decision"]["fault_classes"]  # the board acts on the fault classes
    assert check_run(run)["files"].keys() >= {"model_int8.tflite", "model.elb", "config.json"}
    from edgeloop.boards import get_board
    from edgeloop.link.deploy import plan_deploy

    plan_deploy(run, get_board("virtual"), virtual=True)  # deploy used to refuse it


def test_tensorflow_chatter_stays_in_the_run_folder(guessed_run):
    run, res = guessed_run
    console = res.stdout + res.stderr
    for chatter in ("oneDNN", "E0000", "node_def_util", "fully_quantize", "XNNPACK",
                    "absl::InitializeLog", "WARNING: All log messages"):
        assert chatter not in console, chatter
    assert "test accuracy" in res.stdout  # our own summary still shows
    log = (run / "tensorflow.log").read_text()
    assert log.strip()  # TensorFlow did talk; it is kept here
    assert not list(run.parent.glob(".run.*"))


def test_training_curve_has_a_title_and_marks_the_kept_epoch(tmp_path):
    from trainer.report import plot_history

    hist = {"loss": [1.0, 0.5, 0.4, 0.45], "val_loss": [1.1, 0.6, 0.3, 0.5],
            "accuracy": [0.5, 0.7, 0.8, 0.8], "val_accuracy": [0.4, 0.7, 0.9, 0.8]}
    texts = plot_history(hist, tmp_path / "c.png", kept=2, title="mlp on d: training curves")
    assert "mlp on d: training curves" in texts and "kept (epoch 3)" in texts
    assert "loss per epoch" in texts and (tmp_path / "c.png").stat().st_size > 0


def test_a_killed_runs_staging_folder_is_cleaned_up(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f".m.partial-{dead}"  # what kill -9 mid-training leaves
    stale.mkdir()
    with staged_run(tmp_path / "m") as stage:
        (stage / "report.json").write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_ctrl_c_during_training_leaves_the_old_run(guessed_run, tmp_path):
    """The issue's case, for real: SIGINT to `edgeloop train` retraining into an existing run."""
    import shutil
    import signal
    import time

    run, _ = guessed_run
    mine = tmp_path / "run"
    shutil.copytree(run, mine)
    before = {p.name: p.read_bytes() for p in mine.iterdir()}
    data = run.parent / "d"
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgeloop.cli", "train", "--data", str(data), "--out", str(mine),
         "--epochs", "500", "--window", "16"], cwd=ROOT, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300
    while not list(tmp_path.glob(".run.partial-*/tensorflow.log")) and time.monotonic() < deadline:
        time.sleep(0.5)  # training has started writing into its staging folder
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) != 0
    assert {p.name: p.read_bytes() for p in mine.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
