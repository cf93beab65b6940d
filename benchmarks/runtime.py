"""Runtime benchmark (issue 3, item 9): EdgeLoop's MicroPython runtime against TFLM.

For each benchmark model (benchmarks/models.py), in one run on one machine: convert it, run it
on the virtual board with the viper kernels and with the bytecode kernels, run it in the
`tflite-micro` interpreter, and compare ms per inference, memory (our activation arena and
model heap vs TFLM's arena from `print_allocations`), bundle vs .tflite bytes, and whether
every output is identical to TFLM's; also the xtensawin viper code each model imports (the
executable IRAM an ESP32 gives it, benchmarks/codesize.py) and the GC heap in use after
`import elrt` + load. Prints a table and writes build/bench/runtime.json.

    python -m benchmarks.runtime            (what `make bench` runs)
    python -m benchmarks.runtime --models kws_dscnn --viper-n 50

The virtual board is the MicroPython unix port on this machine (viper int 64-bit, x86-64), so
its ms are not ESP32 ms; the ratio to TFLM measured on the same machine is the figure of merit.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.codesize import MpyCode, bundle_families, family_code
from benchmarks.models import RECIPES, benchmark_model
from converters import convert_tflite
from converters.reference import tflm_arena_bytes, tflm_interpreter
from edgeloop.boards import get_board
from edgeloop.infer import InferError, run_batch_virtual

ROOT = Path(__file__).resolve().parents[1]
OUT_JSON = ROOT / "build" / "bench" / "runtime.json"
SMALL_BOARD = "virtual"  # x86-64 virtual board with an ESP32's ~100 KB heap
BIG_BOARD = "esp32s3"  # 2 MB heap (PSRAM), for models that do not fit 100 KB
TARGETS = {
    "viper_vs_tflm_geomean_max": 2.0,
    "arena_vs_tflm_arena_max": 1.0,
    "bundle_vs_tflite_max": 1.0,
    "identical_fraction": 1.0,
}


def bench_inputs(shape: tuple[int, ...], n: int, seed: int) -> np.ndarray:
    """n random int8 samples; sample 0 is all -128, sample 1 all 127 and every other sample has
    -128 and 127 planted (saturation edges)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=(n, *shape), dtype=np.int16).astype(np.int8)
    flat = x.reshape(n, -1)
    flat[0] = -128
    if n > 1:
        flat[1] = 127
    flat[2:, 0] = -128
    flat[2:, -1] = 127
    return x


def run_tflm(tflite: bytes, x: np.ndarray) -> dict[str, Any]:
    """TFLM's output for every sample and the arena it really used."""
    interp = tflm_interpreter(tflite)
    dtype = interp.get_input_details(0)["dtype"]
    ys = []
    for sample in x:
        interp.set_input(np.ascontiguousarray(sample.astype(dtype)), 0)
        interp.invoke()
        ys.append(np.array(interp.get_output(0), copy=True))
    return {"y": np.stack(ys), "arena": tflm_arena_bytes(interp)}


def time_tflm(tflite: bytes, sample: np.ndarray, invokes: int) -> float:
    """Median ms of single invokes (after a warm-up), as the board's per-inference ticks."""
    interp = tflm_interpreter(tflite)
    dtype = interp.get_input_details(0)["dtype"]
    interp.set_input(np.ascontiguousarray(sample.astype(dtype)), 0)
    for _ in range(3):
        interp.invoke()
    times = []
    for _ in range(invokes):
        t0 = time.perf_counter()
        interp.invoke()
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)


def time_tflm_fresh(tflite: bytes, sample: np.ndarray, invokes: int) -> float:
    """time_tflm in a fresh process, as each board round is one.

    The same TFLM build runs some processes ~2.5x slower than others (seen on kws_dscnn:
    2.4 vs 6.4 ms, fixed for a process's lifetime, independent of the CPU), so each round
    gets its own process and the best round counts, for TFLM as for the board.
    """
    with tempfile.TemporaryDirectory(prefix="edgeloop-tflm-") as tmp:
        model, x = Path(tmp) / "model.tflite", Path(tmp) / "sample.npy"
        model.write_bytes(bytes(tflite))
        np.save(x, sample)
        code = (
            "import sys, numpy as np\n"
            "from benchmarks.runtime import time_tflm\n"
            "m = open(sys.argv[1], 'rb').read()\n"
            "print(time_tflm(m, np.load(sys.argv[2]), int(sys.argv[3])))\n"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code, str(model), str(x), str(invokes)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=600,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"TFLM timing process failed:\n{proc.stderr[-2000:]}")
        return float(proc.stdout.strip().splitlines()[-1])


def _run_board(bundle: bytes, x: np.ndarray, board: str, kernels: str):
    y, stats = run_batch_virtual(bundle, x, board, kernels=kernels, timeout=1800)
    if stats["kernels"] != kernels:
        raise RuntimeError(f"asked for {kernels} kernels, the board ran {stats['kernels']}")
    return y, stats


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    n = len(a)
    return a.shape[0] == b.shape[0] and np.array_equal(a.reshape(n, -1), b.reshape(n, -1))


def bench_model(
    name: str,
    viper_n: int,
    bytecode_n: int,
    rounds: int = 3,
    seed: int = 0,
    code: dict[str, MpyCode] | None = None,
) -> dict[str, Any]:
    tflite = benchmark_model(name)
    conv = convert_tflite(tflite)
    rep = conv.report
    code = family_code("xtensawin") if code is None else code
    families = sorted(bundle_families(conv.bundle))
    small = get_board(SMALL_BOARD).heap_bytes
    board = SMALL_BOARD if rep["estimated_heap_bytes"] <= small else BIG_BOARD
    shape = tuple(rep["inputs"][0]["shape"])
    x = bench_inputs(shape, viper_n, seed)
    small_board_error = None
    try:
        yv, sv = _run_board(conv.bundle, x, board, "viper")
    except InferError as exc:
        if board == BIG_BOARD:
            raise
        # the converter's estimate said it fits 100 KB, the board disagreed
        small_board_error = str(exc).splitlines()[-1]
        board = BIG_BOARD
        yv, sv = _run_board(conv.bundle, x, board, "viper")
    tf = run_tflm(tflite, x)
    # Timing rounds, viper and TFLM back to back so both see the same machine load (the host
    # is shared); each side's figure is its best round's median.
    viper_rounds = [sv["median_ms"]]
    tflm_rounds = [time_tflm_fresh(tflite, x[-1], max(50, len(x)))]
    for _ in range(rounds - 1):
        viper_rounds.append(_run_board(conv.bundle, x, board, "viper")[1]["median_ms"])
        tflm_rounds.append(time_tflm_fresh(tflite, x[-1], max(50, len(x))))
    xb = x[: max(1, min(bytecode_n, viper_n))]
    yb, sb = _run_board(conv.bundle, xb, board, "bytecode")
    viper_ms, bytecode_ms, tflm_ms = min(viper_rounds), sb["median_ms"], min(tflm_rounds)
    return {
        "model": name,
        "board_profile": board,
        "board_heap_bytes": get_board(board).heap_bytes,
        "fits_100kb": board == SMALL_BOARD,
        "estimated_heap_bytes": rep["estimated_heap_bytes"],
        "small_board_error": small_board_error,
        "macs": rep["total_macs"],
        "params": rep["total_params"],
        "viper_inferences": len(x),
        "bytecode_inferences": len(xb),
        "viper_ms": viper_ms,
        "bytecode_ms": bytecode_ms,
        "tflm_ms": tflm_ms,
        "viper_ms_rounds": viper_rounds,
        "tflm_ms_rounds": tflm_rounds,
        "viper_vs_tflm": viper_ms / tflm_ms,
        "bytecode_vs_tflm": bytecode_ms / tflm_ms,
        "viper_mmac_per_s": rep["total_macs"] / viper_ms / 1000.0,
        "arena_bytes": sv["arena_bytes"],
        "model_heap_bytes": sv["model_heap_bytes"],
        "heap_used_after_import_and_load": get_board(board).heap_bytes
        - sv["heap_free_after_load"],
        "viper_families": families,
        "viper_kernel_sets": sv.get("kernel_sets", {}),
        "viper_code_bytes_xtensawin": sum(code[f].native_code_bytes for f in families),
        "tflm_arena_bytes": tf["arena"]["total"],
        "tflm_arena": tf["arena"],
        "arena_vs_tflm_arena": sv["arena_bytes"] / tf["arena"]["total"],
        "bundle_bytes": len(conv.bundle),
        "tflite_bytes": len(tflite),
        "bundle_vs_tflite": len(conv.bundle) / len(tflite),
        "viper_identical": _same(yv, tf["y"]),
        "bytecode_identical": _same(yb, tf["y"][: len(xb)]),
        "outputs_compared": int(yv.size + yb.size),
    }


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ratios = [r["viper_vs_tflm"] for r in rows]
    geo = math.exp(statistics.fmean(math.log(v) for v in ratios))
    geo_b = math.exp(statistics.fmean(math.log(r["bytecode_vs_tflm"]) for r in rows))
    identical = sum(r["viper_identical"] and r["bytecode_identical"] for r in rows) / len(rows)
    return {
        "viper_vs_tflm_geomean": geo,
        "bytecode_vs_tflm_geomean": geo_b,
        "identical_fraction": identical,
        "targets": TARGETS,
        "met": {
            "viper_within_2x_tflm": geo <= TARGETS["viper_vs_tflm_geomean_max"],
            "arena_le_tflm_arena": all(r["arena_vs_tflm_arena"] <= 1.0 for r in rows),
            "bundle_le_tflite": all(r["bundle_vs_tflite"] <= 1.0 for r in rows),
            "all_identical": identical == 1.0,
        },
    }


def format_table(rows: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    head = (
        f"{'model':16s} {'board':8s} {'viper ms':>9s} {'bytec ms':>9s} {'TFLM ms':>8s} "
        f"{'v/TFLM':>7s} {'b/TFLM':>7s} {'arena B':>8s} {'TFLM ar':>8s} {'heap B':>8s} "
        f"{'bundle B':>9s} {'tflite B':>9s} {'viper code bytes (xtensawin)':>29s} {'same':>5s}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        same = "yes" if r["viper_identical"] and r["bytecode_identical"] else "NO"
        lines.append(
            f"{r['model']:16s} {r['board_profile']:8s} {r['viper_ms']:9.3f} "
            f"{r['bytecode_ms']:9.2f} {r['tflm_ms']:8.3f} {r['viper_vs_tflm']:7.2f} "
            f"{r['bytecode_vs_tflm']:7.1f} {r['arena_bytes']:8d} {r['tflm_arena_bytes']:8d} "
            f"{r['model_heap_bytes']:8d} {r['bundle_bytes']:9d} {r['tflite_bytes']:9d} "
            f"{r['viper_code_bytes_xtensawin']:29d} {same:>5s}"
        )
    met = summary["met"]
    lines += [
        "-" * len(head),
        f"geomean viper/TFLM {summary['viper_vs_tflm_geomean']:.2f} (target <= 2: "
        f"{'met' if met['viper_within_2x_tflm'] else 'MISSED'}); bytecode/TFLM "
        f"{summary['bytecode_vs_tflm_geomean']:.1f}",
        f"arena <= TFLM arena: {'met' if met['arena_le_tflm_arena'] else 'MISSED'}; "
        f"bundle <= tflite: {'met' if met['bundle_le_tflite'] else 'MISSED'}; identical "
        f"outputs: {summary['identical_fraction']:.0%} of models",
        "board 'virtual' = 100 KB heap (ESP32); 'esp32s3' = 2 MB heap, for models that do not "
        "fit 100 KB. heap B = heap the loaded model takes on the board (arena + weights + "
        "tables). ms: median per inference, best of the timing rounds. viper code bytes: "
        "machine code of the kv_* modules the model imports (an ESP32 copies it into IRAM).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=list(RECIPES), choices=list(RECIPES))
    ap.add_argument("--viper-n", type=int, default=30, help="inferences with viper kernels")
    ap.add_argument("--bytecode-n", type=int, default=3, help="inferences with bytecode kernels")
    ap.add_argument("--rounds", type=int, default=4, help="timing rounds (best round counts)")
    ap.add_argument("--out", type=Path, default=OUT_JSON)
    args = ap.parse_args(argv)
    if min(args.viper_n, args.bytecode_n, args.rounds) < 1:
        ap.error("--viper-n, --bytecode-n and --rounds must be >= 1")
    code = family_code("xtensawin")
    rows = []
    for name in args.models:
        print(f"benchmarking {name} ...", file=sys.stderr, flush=True)
        rows.append(bench_model(name, args.viper_n, args.bytecode_n, args.rounds, code=code))
    summary = summarize(rows)
    print(format_table(rows, summary))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "machine": {
            "platform": sys.platform,
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
        },
        "models": [{k: v for k, v in r.items()} for r in rows],
        "viper_modules_xtensawin": {
            f"kv_{f}": {"mpy_bytes": c.file_bytes, "native_code_bytes": c.native_code_bytes}
            for f, c in code.items()
        },
        "summary": summary,
    }
    args.out.write_text(json.dumps(doc, indent=2))
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
