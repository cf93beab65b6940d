"""The model the HIL scenarios run: the trainer's rotating-machine classifier, cached.

Trained once on twin recordings with the example project config (examples/rotating_machine),
then reused from build/cache/hil/<key>/ while the trainer, twin and config sources are unchanged.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "examples" / "rotating_machine" / "edgeloop.toml"
CACHE = ROOT / "build" / "cache" / "hil"
PER_CLASS = 20  # enough mild bearing recordings that the fault is seen near its onset
DURATION_S = 8.0
EPOCHS = 40


def _key() -> str:
    h = hashlib.sha256()
    files = sorted((ROOT / "trainer").rglob("*.py")) + [CONFIG]
    for p in files:
        h.update(p.read_bytes())
    h.update(f"{PER_CLASS}/{DURATION_S}/{EPOCHS}".encode())
    return h.hexdigest()[:16]


def cached_run_path(cache: Path = CACHE) -> Path:
    """Where the bench's own model is (or will be) cached for the current trainer sources."""
    return cache / _key() / "run"


def ensure_run(cache: Path = CACHE) -> Path:
    """A trained run folder (model_int8.tflite, config.json, report.json), training if needed."""
    run = cached_run_path(cache)
    if (run / "report.json").is_file() and (run / "config.json").is_file():
        return run
    from trainer.config import load_config
    from trainer.train import train
    from trainer.twins import synthesize, write_csv_dataset

    work = run.parent
    if work.exists():
        shutil.rmtree(work)
    for stale in cache.glob("*/run"):  # runs of older trainer sources, unused for an hour
        if time.time() - stale.stat().st_mtime > 3600:
            shutil.rmtree(stale.parent, ignore_errors=True)
    data = write_csv_dataset(
        synthesize("rotating_machine", per_class=PER_CLASS, duration_s=DURATION_S, seed=11),
        work / "data",
    )
    tmp = work / "run.tmp"
    train(data, tmp, load_config(CONFIG), epochs=EPOCHS, progress=False)
    tmp.rename(run)
    shutil.rmtree(data, ignore_errors=True)
    return run


def run_report(run: Path) -> dict:
    return json.loads((run / "report.json").read_text())


if __name__ == "__main__":
    t = time.perf_counter()
    r = ensure_run()
    print(r, f"{time.perf_counter() - t:.1f} s", run_report(r))
