"""Several datasets in one run: merged, split by recording per source, sensors that must agree."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from trainer.config import Config
from trainer.data import load_splits
from trainer.errors import TrainerError
from trainer.twins import RotatingMachine, synthesize, write_csv_dataset

CFG = Config(channels=("ax", "ay", "az"), sample_rate=1000.0, window=64, stride=32)
TOML = """[sensor]
channels = {channels}
sample_rate = {rate}
counts_per_unit = {cpu}
"""


def toml(folder: Path, channels=("ax", "ay", "az"), rate=1000, cpu=2048) -> Path:
    path = folder / "edgeloop.toml"
    path.write_text(TOML.format(channels=json.dumps(list(channels)), rate=rate, cpu=cpu))
    return path


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    d = write_csv_dataset(synthesize("rotating_machine", per_class=5, duration_s=0.5, seed=3),
                          tmp_path_factory.mktemp("base"))
    toml(d)
    return d


@pytest.fixture(scope="module")
def field(tmp_path_factory) -> Path:
    """Field windows in the shared layout: one CSV per window, a sidecar .json each, and an
    unlabelled/ folder that is no training data yet."""
    recs = [RotatingMachine.recording(c, 0.128, 900 + i, variant="plant_b")
            for i, c in enumerate(["normal"] * 4 + ["bearing"] * 2 + ["imbalance"])]
    d = write_csv_dataset(recs, tmp_path_factory.mktemp("field"))
    for f in d.rglob("*.csv"):
        f.with_suffix(".json").write_text('{"reason": "uncertain"}')
    (d / "unlabelled").mkdir()
    shutil.copy(next(d.rglob("normal/*.csv")), d / "unlabelled" / "b1-0-0.csv")
    toml(d)
    return d


def groups(s, split: str) -> set[str]:
    return set(getattr(s, split).groups.tolist())


def test_merged_sources_keep_every_recording_in_one_split(base, field) -> None:
    s = load_splits([base, field], CFG, seed=1)
    sets = [groups(s, n) for n in ("train", "val", "test")]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    field_files = {str(p) for p in field.rglob("*.csv") if "unlabelled" not in p.parts}
    assert field_files <= set().union(*sets)  # every labelled field window is used ...
    assert not any("unlabelled" in g for g in set().union(*sets))  # ... the unlabelled never
    src = s.report["sources"]
    assert [x["path"] for x in src] == [str(base), str(field)]
    assert sum(src[1]["recordings"].values()) == 7
    # normal has 4 windows: split like any class; bearing (2): one held out; imbalance (1) trains
    assert src[1]["recordings"]["test"] >= 2
    assert "imbalance/imbalance.0000.csv" in src[1]["split"]["train"]
    for x in src:
        assert sum(x["windows"].values()) > 0
        assert all(not g.startswith("/") for sp in x["split"].values() for g in sp)


def test_the_first_source_splits_as_if_alone(base, field) -> None:
    """So the base's test split is the shipped run's: the gate's original test set."""
    alone = load_splits(base, CFG, seed=4)
    merged = load_splits([base, field], CFG, seed=4)
    for split in ("train", "val", "test"):
        assert groups(alone, split) == {g for g in groups(merged, split)
                                        if g.startswith(str(base))}
    assert alone.report["sources"][0]["split"] == merged.report["sources"][0]["split"]


def test_the_same_source_twice_is_refused(base) -> None:
    with pytest.raises(TrainerError, match="given twice"):
        load_splits([base, base / "."], CFG)


@pytest.mark.parametrize("kw,what", [
    ({"rate": 800}, "sample_rate 800 Hz differs from 1000 Hz"),
    ({"channels": ("ax", "ay", "gz")}, "channels"),
    ({"cpu": 16384}, "counts_per_unit [16384.0, 16384.0, 16384.0] differs"),
])
def test_a_source_of_another_sensor_is_refused_naming_it(base, tmp_path, kw, what) -> None:
    other = write_csv_dataset(synthesize("rotating_machine", per_class=3, duration_s=0.2,
                                         seed=5), tmp_path / "other")
    path = toml(other, **kw)
    cfg = CFG.with_(source=str(base / "edgeloop.toml"), counts_per_unit=2048.0)
    with pytest.raises(TrainerError) as err:
        load_splits([base, other], cfg)
    msg = str(err.value)
    assert msg.startswith(f"{path}: ") and what in msg and str(base / "edgeloop.toml") in msg
    assert "rate, channels and units" in msg


def test_a_folder_of_only_unlabelled_windows_says_to_label_them(tmp_path) -> None:
    (tmp_path / "unlabelled").mkdir()
    (tmp_path / "unlabelled" / "b-1-0.csv").write_text("timestamp,ax,ay,az\n0,0,0,1\n")
    with pytest.raises(TrainerError, match="outside unlabelled/.*edgeloop label"):
        load_splits(tmp_path, CFG)


def test_cli_train_merges_and_records_every_source(base, field, tmp_path) -> None:
    """`edgeloop train --data A --data B`: one run, both sources in its report and manifest."""
    from typer.testing import CliRunner

    from edgeloop.cli import app

    run = tmp_path / "run"
    res = CliRunner().invoke(app, ["train", "--data", str(base), "--data", str(field),
                                   "--out", str(run), "--epochs", "2", "--window", "64",
                                   "--no-bundle"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    rep = json.loads((run / "report.json").read_text())
    assert [s["path"] for s in rep["sources"]] == [str(base), str(field)]
    assert rep["data"] == f"{base} + {field}"
    assert f"source {field}:" in res.output
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["sources"] == [str(base.resolve()), str(field.resolve())]
    tests = {(s["path"], g) for s in rep["sources"] for g in s["split"]["test"]}
    trains = {(s["path"], g) for s in rep["sources"] for g in s["split"]["train"]
              + s["split"]["val"]}
    assert tests and not tests & trains
    assert np.isclose(sum(rep["balance"]["test"].values()),
                      sum(s["windows"]["test"] for s in rep["sources"]))
