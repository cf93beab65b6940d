"""`make demo`: the whole loop on the virtual board, from simulated sensor to stopped machine.

simulate a rotating machine -> train and quantize (trainer) -> convert (converters) -> run every
test window on the virtual board and compare with TFLM bit for bit -> deploy the app in HIL mode
and run the closed loop (a bearing fault is injected; the board must stop the machine before it
breaks, without false stops) -> build/demo/summary.json.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from edgeloop.boards import get_board
from edgeloop.vboard import identify

EXAMPLE = "rotating_machine"  # the example project (edgeloop.resources) the demo trains with


def _test_inputs(run: Path, data: Path) -> tuple[np.ndarray, np.ndarray]:
    """The int8 model inputs of the run's test windows, exactly as the board computes them."""
    from trainer.config import load_run
    from trainer.data import load_splits
    from trainer.features import compute_features, quantize_input

    cfg = load_run(run)
    splits = load_splits(data, cfg, seed=cfg.model.seed)
    feats = compute_features(splits.test.x, cfg.features, cfg.calibration.shift)
    return quantize_input(feats, cfg.calibration), splits.test.y


def run_demo(
    out: Path = Path("build/demo"),
    profile: str = "virtual",
    seed: int = 0,
    per_class: int = 12,
    closed_loop_seeds: tuple[int, ...] = (0, 1, 2),
    console: Console | None = None,
) -> dict[str, Any]:
    """Run the demo end to end and return (and write) its summary."""
    from converters import convert_tflite
    from converters.reference import run_tflm
    from edgeloop.infer import model_io, run_batch_virtual
    from edgeloop.link.hilboard import deploy_virtual, hil_config
    from edgeloop.link.session import run_closed_loop
    from edgeloop.resources import example_config
    from edgeloop.twins import rotating_machine
    from trainer.config import load_config
    from trainer.train import train
    from trainer.twins import synthesize, write_csv_dataset

    console = console or Console()
    board = get_board(profile)
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    t_start = time.perf_counter()

    console.rule("1. simulate a rotating machine")
    recordings = synthesize("rotating_machine", per_class=per_class, duration_s=8.0, seed=seed)
    data = write_csv_dataset(recordings, out / "data")
    console.print(f"{len(recordings)} recordings, 1 kHz 3-axis accelerometer -> {data}")

    console.rule("2. train and quantize to int8")
    run = out / "run"
    report = train(data, run, load_config(example_config(EXAMPLE)), seed=seed, progress=True)
    console.print(
        f"{report['model']}: float accuracy {report['float_accuracy']:.3f}, "
        f"int8 accuracy {report['int8_accuracy']:.3f} on {sum(report['balance']['test'].values())}"
        " test windows"
    )

    console.rule(f"3. convert for the {board.name} board")
    tflite = (run / "model_int8.tflite").read_bytes()
    conversion = convert_tflite(tflite, heap_limit=board.heap_bytes)
    (out / "model.elb").write_bytes(conversion.bundle)
    (out / "convert_report.json").write_text(json.dumps(conversion.report, indent=2))
    console.print(
        f"bundle {len(conversion.bundle):,} B (tflite {len(tflite):,} B), "
        f"arena {conversion.report['arena_bytes']:,} B"
    )

    console.rule("4. every test window on the virtual board vs TFLM")
    x, _labels = _test_inputs(run, data)
    x = x.reshape(len(x), *model_io(conversion.bundle)["input_shape"])
    y_board, stats = run_batch_virtual(conversion.bundle, x, board)
    y_tflm = run_tflm(tflite, x)
    per_window = np.all(y_board.reshape(len(x), -1) == y_tflm.reshape(len(x), -1), axis=1)
    matches = int(per_window.sum())
    console.print(
        f"{matches}/{len(x)} windows bit-exact with TFLM; median {stats['median_ms']:.2f} ms"
        f" per inference ({stats['kernels']} kernels), model heap {stats['model_heap_bytes']:,} B"
    )

    console.rule("5. closed loop: bearing fault injected, the board must stop the machine")
    board_dir = deploy_virtual(
        run, out / "board", hil_config(json.loads((run / "config.json").read_text())), profile
    )
    loops = []
    for twin_seed in closed_loop_seeds:
        twin = rotating_machine(seed=twin_seed, time_to_failure_s=60.0)
        result = run_closed_loop(board_dir, twin, fault_at_s=30.0, duration_s=120.0,
                                 profile=profile)
        loops.append(result)
        latency = result["detection_latency_s"]
        console.print(
            f"seed {twin_seed}: {result['windows']} windows, stop "
            + (f"{latency:.2f} s after the fault" if latency is not None else "never")
            + f", false stops {result['false_stops']}, breakdowns {result['breakdowns']}, "
            f"lost {result['lost']}"
        )
    (out / "closed_loop.json").write_text(json.dumps(loops, indent=2, default=float))

    console.rule("6. the other domains: a wearable's falls, a building's day (short runs)")
    from edgeloop.domains_demo import building_line, describe, wearable_line

    worst = max((r["detection_latency_s"] for r in loops if r["detection_latency_s"] is not None),
                default=None)
    console.print(f"rotating_machine: {len(loops)} runs, stop "
                  + (f"<= {worst:.2f} s after the fault, " if worst is not None else "never, ")
                  + f"false stops {sum(r['false_stops'] for r in loops)}, breakdowns "
                  f"{sum(r['breakdowns'] for r in loops)}")
    domains = []
    for make in (wearable_line, building_line):
        line = make(out / "domains")
        domains.append(line)
        console.print(describe(line))

    per_run = [_round(r["detection_latency_s"]) for r in loops]
    latencies = [v for v in per_run if v is not None]
    ident = identify()  # the executable that played the board: its word size, float width
    summary = {
        "board": board.name,
        "board_executable": ident.executable,
        "board_micropython": ident.version,
        "board_mpy_arch": ident.mpy_arch,
        "board_word_bits": ident.word_bits,
        "board_float_bits": ident.float_bits,
        "windows": len(x),
        "float_accuracy": report["float_accuracy"],
        "int8_accuracy": report["int8_accuracy"],
        "device_matches_reference": matches,
        "device_latency_ms_median": stats["median_ms"],
        "device_kernels": stats["kernels"],
        "model_bundle_bytes": len(conversion.bundle),
        "tflite_bytes": len(tflite),
        "arena_bytes": conversion.report["arena_bytes"],
        "device_heap_bytes": stats["model_heap_bytes"],
        "closed_loop_runs": len(loops),
        "detection_latency_s": max(latencies) if len(latencies) == len(loops) else None,
        "detection_latency_s_per_run": per_run,
        "false_stops": sum(r["false_stops"] for r in loops),
        "breakdowns": sum(r["breakdowns"] for r in loops),
        "lost_windows": sum(r["lost"] for r in loops),
        "domains": domains,
        "wall_s": round(time.perf_counter() - t_start, 1),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    _print_summary(summary, console)
    return summary


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(float(value), digits)


def _print_summary(summary: dict[str, Any], console: Console) -> None:
    table = Table(title="EdgeLoop demo summary (build/demo/summary.json)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in summary.items():
        if key == "domains":
            continue  # one line each above
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    console.print(table)
    from edgeloop.domains_demo import verified

    ok = (summary["device_matches_reference"] == summary["windows"]
          and summary["breakdowns"] == 0 and summary["false_stops"] == 0
          and all(verified(line) for line in summary.get("domains", ())))
    console.print("[green]loop verified[/]" if ok else "[red]loop NOT verified[/]")
