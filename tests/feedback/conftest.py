"""Fixtures of the feedback loop: a base dataset, a drifted site's field windows, trained runs."""

from __future__ import annotations

import json
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
    from edgeloop.commands.train import _bundle
    from trainer.config import load_config
    from trainer.train import train

    def finish(stage: Path, report: dict) -> None:
        report["bundle"] = _bundle(stage, report)
        (stage / "report.json").write_text(json.dumps(report, indent=2))

    train(data, out, load_config(example_config("rotating_machine")), epochs=epochs, seed=0,
          progress=False, finish=finish)
    return out


@pytest.fixture(scope="session")
def loop(tmp_path_factory) -> dict[str, Path]:
    """base (plant A), field (plant B windows to train on), holdout (plant B, never trained on),
    and runs/shipped (base), runs/retrained (base + field), runs/bad (base, 1 epoch)."""
    from trainer.twins import synthesize, write_csv_dataset

    root = tmp_path_factory.mktemp("loop")
    base = write_csv_dataset(synthesize("rotating_machine", per_class=4, duration_s=2.0, seed=1),
                             root / "base")
    (base / "edgeloop.toml").write_text(example_config("rotating_machine").read_text())
    field = field_windows(root / "field", per_class=5, seed=2)
    holdout = field_windows(root / "holdout", per_class=2, seed=3)
    runs = root / "runs"
    return {
        "root": root, "base": base, "field": field, "holdout": holdout,
        "shipped": train_run(base, runs / "shipped", epochs=30),
        "retrained": train_run([base, field], runs / "retrained", epochs=30),
        "bad": train_run(base, runs / "bad", epochs=1),
    }
