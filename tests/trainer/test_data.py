"""CSV/NPZ loading, windowing and the split by recording: clear errors, no leakage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trainer.config import Config
from trainer.data import load_splits, window_recordings
from trainer.errors import TrainerError
from trainer.twins import synthesize, write_csv_dataset

CFG = Config(channels=("ax", "ay", "az"), sample_rate=1000.0, window=64, stride=32)


def write(path: Path, header: str, rows: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def good_rows(n: int, dt: float = 1.0) -> list[str]:
    return [f"{i * dt:.3f},0.1,0.2,1.0" for i in range(n)]


@pytest.fixture(scope="module")
def machine_dir(tmp_path_factory) -> Path:
    recs = synthesize("rotating_machine", per_class=5, duration_s=0.5, seed=3)
    return write_csv_dataset(recs, tmp_path_factory.mktemp("machine"))


def test_split_by_recording_has_no_leakage(machine_dir):
    s = load_splits(machine_dir, CFG, seed=1)
    sets = [set(w.groups.tolist()) for w in (s.train, s.val, s.test)]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    assert len(s.classes) == 5 and s.report["test_recordings"] == 5
    assert sum(s.report["train"].values()) == len(s.train)
    assert s.train.x.dtype == np.int16 and s.train.x.shape[1:] == (64, 3)
    # the windows of a 500-sample recording at 64/32: (500 - 64) // 32 + 1
    assert len(s.train) + len(s.val) + len(s.test) == 25 * ((500 - 64) // 32 + 1)


def test_explicit_test_folder_and_label_column(tmp_path):
    cfg = CFG.with_(label_column="label")
    header = "timestamp,ax,ay,az,label"
    for i in range(3):
        for lab in ("a", "b"):
            write(tmp_path / "train" / f"r{lab}{i}.csv", header,
                  [r + f",{lab}" for r in good_rows(128)])
    rows = [f"{i:.3f},0,0,1,{'a' if i < 64 else 'b'}" for i in range(128)]
    write(tmp_path / "test" / "t.csv", header, rows)
    s = load_splits(tmp_path / "train", cfg, test=tmp_path / "test", seed=0)
    assert s.report["test"] == {"a": 1, "b": 1}
    assert set(s.test.groups.tolist()) == {str(tmp_path / "test" / "t.csv")}


@pytest.mark.parametrize(
    "header,rows,message",
    [
        ("timestamp,ax,ay", good_rows(100), "missing column(s) az"),
        ("timestamp,ax,ay,az,temp", [r + ",1" for r in good_rows(100)], "extra column(s) temp"),
        ("timestamp,ax,ay,az", good_rows(50) + ["50,nan,0,1"] + good_rows(50), ":52: column 'ax'"),
        ("timestamp,ax,ay,az", good_rows(100, dt=2.0), "sample rate 500 Hz"),
        ("timestamp,ax,ay,az", good_rows(50) + [f"{60 + i},0,0,1" for i in range(50)],
         ":52: sample interval"),
        ("timestamp,ax,ay,az", good_rows(10) + ["11,x,0,1"], ":12: column 'ax': not a number"),
        ("timestamp,ax,ay,az", good_rows(30), "fewer than one window"),
    ],
)
def test_bad_csv_names_file_and_line(tmp_path, header, rows, message):
    for lab in ("a", "b"):
        for i in range(3):
            write(tmp_path / lab / f"{i}.csv", "timestamp,ax,ay,az", good_rows(128))
    bad = write(tmp_path / "a" / "bad.csv", header, rows)
    with pytest.raises(TrainerError) as exc:
        load_splits(tmp_path, CFG)
    assert message in str(exc.value) and str(bad) in str(exc.value)


@pytest.mark.parametrize(
    ("source", "says"),
    [("proj/edgeloop.toml", "([sensor] sample_rate in proj/edgeloop.toml); resample it or fix"),
     ("data/a/0.csv", "(the rate of data/a/0.csv, as there is no edgeloop.toml)")],
)
def test_rate_mismatch_names_where_the_expected_rate_came_from(tmp_path, source, says):
    for lab in ("a", "b"):
        for i in range(3):
            write(tmp_path / lab / f"{i}.csv", "timestamp,ax,ay,az", good_rows(128))
    write(tmp_path / "b" / "fast.csv", "timestamp,ax,ay,az", good_rows(128, dt=0.5))
    with pytest.raises(TrainerError, match="sample rate 2000 Hz") as exc:
        load_splits(tmp_path, CFG.with_(source=source))
    assert says in str(exc.value)


def test_excel_bom_loads_and_non_utf8_is_named(tmp_path):
    """Excel's "CSV UTF-8" starts with a BOM, which used to become part of the first column."""
    for lab in ("a", "b"):
        for i in range(3):
            write(tmp_path / lab / f"{i}.csv", "timestamp,ax,ay,az", good_rows(512))
    bom = tmp_path / "a" / "0.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + bom.read_bytes())
    assert len(load_splits(tmp_path, CFG).classes) == 2
    bad = tmp_path / "b" / "1.csv"
    bad.write_bytes(b"\xff\xfe" + bad.read_bytes())
    with pytest.raises(TrainerError, match=r"1.csv: not UTF-8 text \(byte 0xff at offset 0\)"):
        load_splits(tmp_path, CFG)


def test_inferred_config_refuses_an_empty_first_csv(tmp_path):
    from trainer.train import infer_config

    write(tmp_path / "a" / "1.csv", "timestamp,ax,ay,az", good_rows(128))
    (tmp_path / "a" / "0.csv").write_text("")
    with pytest.raises(TrainerError, match="0.csv: empty file"):
        infer_config(tmp_path)  # used to be an IndexError traceback


def test_one_class_folder_is_refused_for_classification(tmp_path):
    for i in range(3):
        write(tmp_path / "normal" / f"normal.{i}.csv", "timestamp,ax,ay,az", good_rows(512))
    with pytest.raises(TrainerError, match=r"normal: only one class \(normal\) to classify"):
        load_splits(tmp_path / "normal", CFG)  # used to train a 1-class model at 100 % accuracy


def test_too_few_recordings_or_windows_for_a_class(tmp_path):
    for i in range(3):
        write(tmp_path / "a" / f"{i}.csv", "timestamp,ax,ay,az", good_rows(1000))
    write(tmp_path / "b" / "0.csv", "timestamp,ax,ay,az", good_rows(128))
    with pytest.raises(TrainerError, match="class 'b' has 1 recording"):
        load_splits(tmp_path, CFG)
    for i in range(1, 3):
        write(tmp_path / "b" / f"{i}.csv", "timestamp,ax,ay,az", good_rows(64))
    with pytest.raises(TrainerError, match="class 'b' has .* window"):
        load_splits(tmp_path, CFG, min_windows=8)


def test_npz(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 64, 3))
    y = np.repeat([0, 1, 2], 10)
    np.savez(tmp_path / "d.npz", X=x, y=y, classes=np.array(["p", "q", "r"]))
    s = load_splits(tmp_path / "d.npz", CFG)
    assert s.classes == ("p", "q", "r") and len(s.train) + len(s.val) + len(s.test) == 30
    x[3, 5, 1] = np.nan
    np.savez(tmp_path / "bad.npz", X=x, y=y)
    with pytest.raises(TrainerError, match=r"X\[3\] contains NaN"):
        load_splits(tmp_path / "bad.npz", CFG)


def test_window_recordings_strides(machine_dir):
    from trainer.data import load_csv_folder

    recs = load_csv_folder(machine_dir, CFG)[:1]
    w = window_recordings(recs, CFG.with_(stride=64), tuple(sorted({r.label for r in recs})))
    counts = np.rint(recs[0].data[64:128] * CFG.counts_per_unit).astype(np.int16)
    np.testing.assert_array_equal(w.x[1], counts)
    assert len(w) == (500 - 64) // 64 + 1


def test_wrong_counts_scale_is_an_error_not_silent_clipping(tmp_path):
    for lab in ("a", "b"):
        for i in range(3):
            write(tmp_path / lab / f"{i}.csv", "timestamp,ax,ay,az",
                  [f"{k}.0,0.1,0.2,{30.0 if lab == 'b' else 1.0}" for k in range(128)])
    with pytest.raises(TrainerError, match=r"exceed the int16 sensor range .*worst: 'az'"):
        load_splits(tmp_path, CFG)


def test_config_inferred_from_csv_data(tmp_path):
    from trainer.train import infer_config

    for lab in ("a", "b"):
        for i in range(3):
            write(tmp_path / lab / f"{i}.csv", "timestamp,x,y",
                  [f"{k * 20.0},{0.5 * (i + 1)},{300.0 if lab == 'b' else 1.0}" for k in range(600)])
    cfg = infer_config(tmp_path)
    assert cfg.channels == ("x", "y") and cfg.sample_rate == pytest.approx(50.0)
    assert cfg.counts_per_unit == (2.0**13, 32.0)  # largest |x| 1.5, |y| 300 -> <= 16384 counts
    s = load_splits(tmp_path, cfg)
    assert s.train.x.dtype == np.int16 and np.abs(s.train.x).max() <= 16384


def test_config_inferred_from_npz(tmp_path):
    from trainer.train import infer_config

    x = np.random.default_rng(1).normal(scale=3.0, size=(12, 100, 2))
    np.savez(tmp_path / "d.npz", X=x, y=np.repeat(["u", "v"], 6))
    cfg = infer_config(tmp_path / "d.npz")
    assert cfg.channels == ("c0", "c1") and cfg.window == 100  # the recorded windows, whole
    s = load_splits(tmp_path / "d.npz", cfg)
    assert s.classes == ("u", "v") and np.abs(s.train.x).max() <= 16384


def test_edge_impulse_export_layout(tmp_path):
    """DATA/training + DATA/testing with <label>.<id>.csv files (labels from the file names)."""
    for part, n in (("training", 3), ("testing", 1)):
        for lab in ("idle", "wave"):
            for i in range(n):
                write(tmp_path / part / f"{lab}.{part[:2]}{i}.csv", "timestamp,ax,ay,az",
                      good_rows(256))
    s = load_splits(tmp_path, CFG, seed=0)
    assert s.classes == ("idle", "wave")
    assert s.report["test_recordings"] == 2 and s.report["test"] == {"idle": 7, "wave": 7}
    assert all("testing" in g for g in s.test.groups.tolist())
    assert not any("testing" in g for g in s.train.groups.tolist() + s.val.groups.tolist())
