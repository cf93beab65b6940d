"""`edgeloop label`: the labeller driven by keys (no terminal), --from-twin, the windows'
new places in the dataset layout, and clear errors for damaged or missing sidecars."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from edgeloop.cli import app
from edgeloop.collect.field import write_window
from edgeloop.label.session import Labeller, key_map
from edgeloop.label.store import LabelError
from edgeloop.label.twin import label_from_twin
from edgeloop.label.view import render, sparkline
from edgeloop.resources import example_config
from trainer.config import load_config
from trainer.data import load_csv_folder

LABELS = ["normal", "imbalance", "misalignment", "bearing", "looseness"]


def _pulled(root: Path, n: int, twin: list | None = None) -> list[Path]:
    """n windows as `edgeloop collect --field` leaves them in root/unlabelled/."""
    rng = np.random.default_rng(3)
    paths = []
    for i in range(n):
        raw = rng.integers(-4000, 4000, size=(256, 3)).astype(np.int16)
        side = {"model_sha256": "ab" * 32, "outputs": [0.5, 0.1, 0.0, 0.4, 0.0],
                "guess": "normal", "margin": 0.1, "reason": "uncertain" if i else "alarm",
                "t_ms": 1000 * i, "window_index": i + 1, "board": "virtual_vb",
                "uid": f"00000001-1-{i + 1}", "labels": LABELS, "channels": ["ax", "ay", "az"],
                "sample_rate": 1000.0, "counts_per_unit": [2048.0] * 3,
                "twin": twin[i] if twin else None}
        base = root / "unlabelled" / f"virtual_vb-20261201T120000Z-{i}"
        write_window(base, raw, side)
        paths.append(base.with_suffix(".csv"))
    return paths


def _names(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.csv")) if folder.is_dir() else []


def test_keys_label_skip_and_undo(tmp_path) -> None:
    paths = _pulled(tmp_path, 4)
    lab = Labeller(tmp_path)
    assert lab.classes == LABELS and key_map(lab.classes)["4"] == "bearing"
    shown = []
    lab.run(["1", "4", "s", "u", "x", "4", "u", "1", "q"],
            lambda lb, msg: shown.append((lb.pos, msg)))
    assert [m for _, m in shown][5] == "key 'x' is no class (see the keys below)"
    # 1: w0 normal; 4: w1 bearing; s/u: w2 skipped then back; 4: w2 bearing; u: w2 back; 1: w2
    assert _names(tmp_path / "normal") == [paths[0].stem, paths[2].stem]
    assert _names(tmp_path / "bearing") == [paths[1].stem]
    assert _names(tmp_path / "unlabelled") == [paths[3].stem]
    side = json.loads((tmp_path / "bearing" / f"{paths[1].stem}.json").read_text())
    assert side["label"] == "bearing" and side["labelled_by"] == "key"
    assert side["model_sha256"] == "ab" * 32 and side["uid"] == "00000001-1-2"  # provenance kept
    back = json.loads((tmp_path / "unlabelled" / f"{paths[3].stem}.json").read_text())
    assert "label" not in back
    assert not list((tmp_path / "unlabelled").glob(f"{paths[2].stem}.*"))  # moved whole
    assert lab.summary() == "labelled 3 window(s) (1 bearing, 2 normal); 1 left unlabelled"


def test_labelled_windows_are_training_data(tmp_path) -> None:
    _pulled(tmp_path, 6)
    lab = Labeller(tmp_path, ["resonance"])
    assert key_map(lab.classes)["6"] == "resonance"  # a class the model never knew
    lab.run(["1", "1", "4", "4", "6", "s"])
    cfg = load_config(example_config("rotating_machine"))
    recs = load_csv_folder(tmp_path, cfg)
    assert sorted(r.label for r in recs) == ["bearing", "bearing", "normal", "normal", "resonance"]
    assert all(len(r.data) == 256 for r in recs)


def test_undo_after_the_last_window_and_quit_keep_what_is_labelled(tmp_path) -> None:
    _pulled(tmp_path, 2)
    lab = Labeller(tmp_path)
    lab.run(["2", "3"])
    assert lab.done and lab.press("1") == "nothing left to label (u undoes, q quits)"
    lab.press("u")
    assert lab.current is not None and _names(tmp_path / "misalignment") == []
    lab.press("q")
    assert _names(tmp_path / "imbalance") and len(_names(tmp_path / "unlabelled")) == 1


def test_the_view_shows_channels_guess_and_keys(tmp_path) -> None:
    _pulled(tmp_path, 1, twin=[{"label": "bearing", "purity": 1.0, "labels": {"bearing": 256}}])
    lab = Labeller(tmp_path)
    con = Console(record=True, width=120)
    con.print(render(lab.current, lab.keys, "1/1", "hello"))
    text = con.export_text()
    for want in ("ax", "az", "guess normal", "raised an alarm", "[4] bearing", "[s] skip",
                 "twin's truth: bearing (100%", "hello"):
        assert want in text, want
    line = sparkline(np.sin(np.linspace(0, 6, 500)), 40)
    assert len(line) == 40 and set(line) <= set("▁▂▃▄▅▆▇█") and "▁" in line and "█" in line


def test_from_twin_labels_by_the_truth_and_leaves_mixed_windows(tmp_path) -> None:
    truth = [{"label": "normal", "purity": 1.0}, {"label": "bearing", "purity": 0.95},
             {"label": "bearing", "purity": 0.6}]
    paths = _pulled(tmp_path, 3, twin=truth)
    res = label_from_twin(tmp_path, min_purity=0.9)
    assert res.labelled == {"normal": 1, "bearing": 1} and res.mixed == [paths[2]]
    assert _names(tmp_path / "unlabelled") == [paths[2].stem]
    side = json.loads((tmp_path / "bearing" / f"{paths[1].stem}.json").read_text())
    assert side["labelled_by"] == "twin" and side["label"] == "bearing"


def test_from_twin_without_truth_names_the_sidecar_and_moves_nothing(tmp_path) -> None:
    paths = _pulled(tmp_path, 2, twin=[{"label": "normal", "purity": 1.0}, None])
    with pytest.raises(LabelError, match=rf"{paths[1].stem}\.json: no twin truth"):
        label_from_twin(tmp_path)
    assert len(_names(tmp_path / "unlabelled")) == 2


@pytest.mark.parametrize("damage, says", [
    ("missing", r"\.json: missing \(every field window is a \.csv with its \.json"),
    ("garbled", r"\.json: not valid JSON"),
    ("list", r"\.json: not a field-window sidecar \(a JSON object"),
    ("keys", r"\.json: not a field-window sidecar: missing outputs, guess"),
    ("orphan", r"orphan\.json: a sidecar without its window orphan\.csv"),
])
def test_a_damaged_sidecar_is_an_error_naming_the_file(tmp_path, damage, says) -> None:
    paths = _pulled(tmp_path, 2)
    side = paths[1].with_suffix(".json")
    if damage == "missing":
        side.unlink()
    elif damage == "garbled":
        side.write_text('{"outputs": [0.1,')
    elif damage == "list":
        side.write_text("[1, 2]")
    elif damage == "keys":
        side.write_text('{"uid": "x"}')
    else:
        (tmp_path / "unlabelled" / "orphan.json").write_text("{}")
    with pytest.raises(LabelError, match=says):
        Labeller(tmp_path)
    # the command line says the same in one line, exit code 2, nothing moved
    res = CliRunner().invoke(app, ["label", str(tmp_path), "--from-twin"])
    assert res.exit_code != 0
    assert len(_names(tmp_path / "unlabelled")) == 2


def test_cli_from_twin(tmp_path) -> None:
    _pulled(tmp_path, 2, twin=[{"label": "normal", "purity": 1.0}] * 2)
    res = CliRunner().invoke(app, ["label", str(tmp_path), "--from-twin"])
    assert res.exit_code == 0, res.output
    assert "labelled 2 window(s) from the twin's truth (2 normal)" in res.output
    assert len(_names(tmp_path / "normal")) == 2


def test_the_command_line_says_which_sidecar_is_damaged(tmp_path) -> None:
    import subprocess
    import sys

    paths = _pulled(tmp_path, 1)
    paths[0].with_suffix(".json").write_text("{oops")
    res = subprocess.run([sys.executable, "-m", "edgeloop.cli", "label", str(tmp_path)],
                         capture_output=True, text=True)
    assert res.returncode == 2
    assert f"error: {paths[0].with_suffix('.json')}: not valid JSON" in res.stderr
    assert "Traceback" not in res.stderr


def test_the_labeller_in_a_terminal(tmp_path) -> None:
    """The command on a pseudo-terminal: the window is drawn, and keys typed faster than it is
    redrawn are each taken (per-key raw mode with TCSAFLUSH dropped them)."""
    import sys

    from factory.terminal import Terminal

    paths = _pulled(tmp_path, 3)
    with Terminal([sys.executable, "-m", "edgeloop.cli", "label", str(tmp_path)]) as term:
        term.wait_for(b"[s] skip", timeout=60)
        term.type(b"4sq")  # typed ahead of the redraws: none may be dropped
        code = term.finish(timeout=30)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", term.text)
    assert code == 0, text[-2000:]
    assert "guess normal" in text and "labelled 1 window(s) (1 bearing); 2 left unlabelled" in text
    assert _names(tmp_path / "bearing") == [paths[0].stem]
