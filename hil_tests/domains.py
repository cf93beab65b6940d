"""The wearable and building benches: each domain's model (trained once from its example config
and twin, cached like the machine's), deployed in HIL mode with samples entering at register
level through the run's sensor list (simulated MPU6050 / SHT3x / SCD4x and the real drivers),
and a session whose twin answers the board's named outputs."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from edgeloop.boards import get_board
from edgeloop.link.framelink import FrameLink
from edgeloop.link.hilboard import deploy_virtual, hil_config
from edgeloop.link.session import HilSession
from edgeloop.resources import example_config
from hil_tests.model import CACHE

ROOT = Path(__file__).resolve().parent.parent  # the source tree (trainer/, examples/)

# name -> (recordings a class, seconds a recording (None: the twin's), epochs, HIL options)
DOMAINS = {
    "wearable": (40, None, 60, {"spike_counts": 40000}),  # impacts saturate: no spike check
    "environment": (30, None, 60, {"spike_counts": 32767, "stuck_samples": 8}),
}


def domain_of(config: dict) -> str:
    """Which twin a run's channels belong to."""
    ch = set(config.get("channels") or ())
    if ch and ch <= {"temperature", "humidity", "co2"}:
        return "environment"
    if {"gx", "gy", "gz"} & ch:
        return "wearable"
    return "rotating_machine"


def _key(name: str) -> str:
    h = hashlib.sha256()
    for p in sorted((ROOT / "trainer").rglob("*.py")) + [example_config(name)]:
        h.update(p.read_bytes())
    h.update(repr(DOMAINS[name][:3]).encode())
    return h.hexdigest()[:16]


def ensure_domain_run(name: str) -> Path:
    """The domain's trained run folder (build/cache/hil/<name>-<key>/run), training if needed."""
    import fcntl

    per_class, duration, epochs, _ = DOMAINS[name]
    run = CACHE / f"{name}-{_key(name)}" / "run"
    lock_path = CACHE / f".{name}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (run / "report.json").is_file():
            return run
        from trainer.config import load_config
        from trainer.train import train
        from trainer.twins import synthesize, write_csv_dataset

        work = run.parent
        shutil.rmtree(work, ignore_errors=True)
        data = write_csv_dataset(synthesize(name, per_class=per_class, duration_s=duration,
                                            seed=21), work / "data")
        tmp = work / "run.tmp"
        train(data, tmp, load_config(example_config(name)), epochs=epochs,
              progress=False)
        from converters import convert_tflite

        cfg = json.loads((tmp / "config.json").read_text())
        (tmp / "model.elb").write_bytes(convert_tflite(
            (tmp / "model_int8.tflite").read_bytes(),
            heap_limit=get_board(cfg.get("board", "esp32")).heap_bytes).bundle)
        tmp.rename(run)
        shutil.rmtree(data, ignore_errors=True)
    return run


class DomainBench:
    """One domain's deployed virtual board and its sessions."""

    def __init__(self, name: str, run: Path, out: Path, profile: str | None = None) -> None:
        self.name = name
        self.run_dir = run
        self.config = json.loads((run / "config.json").read_text())
        self.profile = get_board(profile or self.config.get("board", "virtual"))
        opts = DOMAINS[name][3]
        cfg = hil_config(self.config, "sensors", **opts)
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        self.root = deploy_virtual(run, out / "vboard" / f"{name}-{self.profile.name}-{worker}",
                                   cfg, self.profile.name)
        cpu = self.config.get("counts_per_unit", 1)
        n = len(self.config["channels"])
        self.counts = cpu if isinstance(cpu, list) else [cpu] * n
        self.action_names = [a["name"] for a in self.config.get("actions", ())]

    def link(self) -> FrameLink:
        from edgeloop.link.virtual import VirtualTransport

        return FrameLink.open(VirtualTransport(self.root, self.profile))

    def session(self, conn: FrameLink) -> HilSession:
        return HilSession(conn, input_mode="sensors", lsb_per_g=self.counts,
                          action_names=self.action_names)

    def window_end_s(self, res, k: int) -> float:
        return (k * res.stride + res.window) / res.sample_rate
