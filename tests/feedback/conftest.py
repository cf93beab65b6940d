"""Fixtures of the feedback loop: a base dataset, a drifted site's field windows, trained runs."""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

import pytest

from edgeloop.resources import example_config


def field_windows(out: Path, per_class: int, seed: int, seconds: float = 1.024) -> Path:
    """Labelled recordings of the plant-B machine (another site: other rpm, mounting, noise)."""
    from trainer.twins import CONDITIONS, RotatingMachine, write_csv_dataset

    recs = [RotatingMachine.recording(c, seconds, seed * 1000 + 10 * k + i, variant="plant_b")
            for k, c in enumerate(CONDITIONS) for i in range(per_class)]
    write_csv_dataset(recs, out)
    (out / "edgeloop.toml").write_text(example_config("rotating_machine").read_text())
    return out


def train_run(data, out: Path, epochs: int) -> Path:
    """A deployable run (bundle + manifest), as `edgeloop train` writes it."""
    from edgeloop.commands.train import add_bundle
    from trainer.config import load_config
    from trainer.train import train

    train(data, out, load_config(example_config("rotating_machine")), epochs=epochs, seed=0,
          progress=False, finish=add_bundle)
    return out


@pytest.fixture(scope="session")
def loop(tmp_path_factory) -> dict[str, Path]:
    """base (plant A), field (plant B windows to train on), holdout (plant B, never trained on),
    and runs/shipped (base), runs/retrained (base + field), runs/bad (base, 1 epoch). Built once
    per test session, also under xdist (the workers share the folder, the first one builds)."""
    shared = tmp_path_factory.getbasetemp().parent  # the same for every xdist worker
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        shared = tmp_path_factory.getbasetemp()
    root = shared / "feedback-loop"
    with open(shared / "feedback-loop.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "done").is_file():
            shutil.rmtree(root, ignore_errors=True)
            _build(root)
            (root / "done").write_text("ok\n")
    names = ("base", "field", "holdout")
    return {"root": root, **{n: root / n for n in names},
            **{n: root / "runs" / n for n in ("shipped", "retrained", "bad")}}


def _build(root: Path) -> None:
    from trainer.twins import synthesize, write_csv_dataset

    base = write_csv_dataset(synthesize("rotating_machine", per_class=4, duration_s=2.0, seed=1),
                             root / "base")
    (base / "edgeloop.toml").write_text(example_config("rotating_machine").read_text())
    field = field_windows(root / "field", per_class=5, seed=2)
    field_windows(root / "holdout", per_class=2, seed=3)
    runs = root / "runs"
    train_run(base, runs / "shipped", epochs=30)
    train_run([base, field], runs / "retrained", epochs=30)
    train_run(base, runs / "bad", epochs=1)
