"""The model the HIL scenarios run: the trainer's rotating-machine classifier, cached.

Trained once on twin recordings with the example project config (examples/rotating_machine,
shipped with the package), then reused from build/cache/hil/<key>/ under the current folder
while the trainer, twin and config sources are unchanged.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import shutil
import time
from pathlib import Path

from edgeloop.resources import example_config

CONFIG = example_config("rotating_machine")
CACHE = Path("build", "cache", "hil").resolve()
PER_CLASS = 20  # enough mild bearing recordings that the fault is seen near its onset
DURATION_S = 8.0
EPOCHS = 40


def _key() -> str:
    h = hashlib.sha256()
    spec = importlib.util.find_spec("trainer")
    assert spec is not None and spec.submodule_search_locations
    trainer_dir = Path(list(spec.submodule_search_locations)[0])
    files = sorted(trainer_dir.rglob("*.py")) + [CONFIG]
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


def ensure_run_locked(cache: Path = CACHE) -> Path:
    """ensure_run under a file lock: one process (an xdist worker) trains, the others wait."""
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return ensure_run(cache)


def run_report(run: Path) -> dict:
    return json.loads((run / "report.json").read_text())


if __name__ == "__main__":
    t = time.perf_counter()
    r = ensure_run()
    print(r, f"{time.perf_counter() - t:.1f} s", run_report(r))
