"""Real public sensor data shipped inside pip packages (nothing downloaded at run time).

BasicMotions (sktime wheel: sktime/datasets/data/BasicMotions/*.ts): a smart watch's 3-axis
accelerometer and 3-axis gyroscope, 10 s at 10 Hz, four students doing Standing, Walking,
Running and Badminton; 40 training and 40 test recordings. Read straight from the .ts files
(sktime itself is not imported), so only the installed package's data files are needed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from trainer.config import Config
from trainer.data import Rec, Splits, balance_report, split_by_recording, window_recordings
from trainer.errors import TrainerError
from trainer.features import FeatureSpec

BASIC_MOTIONS_CHANNELS = ("ax", "ay", "az", "gx", "gy", "gz")


def package_data(package: str, *parts: str) -> Path:
    """A data file inside an installed package, located without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise TrainerError(f"package {package!r} is not installed (pip install {package})")
    path = Path(spec.origin).parent.joinpath(*parts)
    if not path.is_file():
        raise TrainerError(f"{path}: not found in the installed {package!r} package")
    return path


def read_ts(path: Path) -> tuple[np.ndarray, list[str]]:
    """A sktime/UEA .ts file with equal-length series: X [n, t, dims], labels."""
    xs, ys = [], []
    in_data = False
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            in_data = line.lower() == "@data"
            continue
        *dims, label = line.split(":")
        try:
            series = [[float(v) for v in d.split(",")] for d in dims]
        except ValueError:
            raise TrainerError(f"{path}:{lineno}: not a number in a series") from None
        if len({len(s) for s in series}) != 1:
            raise TrainerError(f"{path}:{lineno}: dimensions of unequal length")
        xs.append(np.asarray(series).T)
        ys.append(label.strip())
    if not xs:
        raise TrainerError(f"{path}: no @data rows")
    return np.stack(xs), ys


def basic_motions_config() -> Config:
    """10 Hz watch IMU: 64-sample windows (6.4 s), orientation + energy + rhythm features."""
    return Config(
        name="basic-motions", channels=BASIC_MOTIONS_CHANNELS, sample_rate=10.0,
        counts_per_unit=512.0, timestamp_column=None, window=64, stride=9,
        features=FeatureSpec(("mean", "dc", "rms", "peak", "fft"), fft_bins=8),
        classes=("Standing", "Walking", "Running", "Badminton"),
    )


def basic_motions_splits(cfg: Config | None = None, seed: int = 0) -> Splits:
    """Official TRAIN (split by recording into train/val) and TEST sets, windowed."""
    cfg = cfg or basic_motions_config()
    recs = {}
    for part in ("TRAIN", "TEST"):
        path = package_data("sktime", "datasets", "data", "BasicMotions", f"BasicMotions_{part}.ts")
        x, y = read_ts(path)
        recs[part] = [Rec(f"{path}[{i}]", y[i], x[i], f"{part}#{i}") for i in range(len(x))]
    classes = cfg.classes or tuple(sorted({r.label for r in recs["TRAIN"]}))
    tr, va, _ = split_by_recording(recs["TRAIN"], 0.2, 0.0, seed)
    w = {"train": window_recordings(tr, cfg, classes), "val": window_recordings(va, cfg, classes),
         "test": window_recordings(recs["TEST"], cfg, classes)}
    return Splits(w["train"], w["val"], w["test"], classes, balance_report(w, classes))
