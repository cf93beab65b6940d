"""Training benchmark: train + quantize the default rotating-machine model, against its 60 s target.

A timing, so it lives here and not in the tests (the machines are shared and noisy). The model and
data are those of tests/trainer/test_train.py: 12 twin recordings per class, 8 s each, the example
project config. Several rounds; the median and spread are reported.

    python -m benchmarks.train            (what `make bench` runs)
    python -m benchmarks.train --rounds 1
Prints the figures and writes build/bench/train.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT_JSON = ROOT / "build" / "bench" / "train.json"
TARGET_S = 60.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)

    from trainer.config import load_config
    from trainer.train import train
    from trainer.twins import synthesize, write_csv_dataset

    cfg = load_config(ROOT / "examples" / "rotating_machine" / "edgeloop.toml")
    totals, accuracy = [], []
    with tempfile.TemporaryDirectory() as tmp:
        data = write_csv_dataset(
            synthesize("rotating_machine", per_class=12, duration_s=8.0, seed=11), Path(tmp) / "d"
        )
        for r in range(args.rounds):
            rep = train(data, Path(tmp) / f"run{r}", cfg, progress=False)
            t = rep["timing_s"]
            totals.append(t["train"] + t["quantize"])
            accuracy.append(rep["int8_accuracy"])
            print(f"round {r}: train {t['train']:.1f} s + quantize {t['quantize']:.1f} s, "
                  f"int8 accuracy {rep['int8_accuracy']:.4f}")
    med = statistics.median(totals)
    out = {
        "cpu": platform.processor() or platform.machine(),
        "rounds": args.rounds,
        "train_plus_quantize_s": {"median": round(med, 2), "min": round(min(totals), 2),
                                  "max": round(max(totals), 2)},
        "target_s": TARGET_S,
        "within_target": med <= TARGET_S,
        "int8_accuracy": accuracy,
    }
    OUT_JSON.parent.mkdir(parents=True, exist_ok=True)
    OUT_JSON.write_text(json.dumps(out, indent=2))
    print(f"train + quantize: median {med:.1f} s (min {min(totals):.1f}, max {max(totals):.1f}) "
          f"vs target {TARGET_S:.0f} s -> {'met' if med <= TARGET_S else 'NOT met'}; {OUT_JSON}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
