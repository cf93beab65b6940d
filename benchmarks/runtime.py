"""Runtime benchmark: EdgeLoop's MicroPython runtime against TFLM.

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
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.codesize import MpyCode, bundle_families, family_code
from benchmarks.esp32fit import esp32_fit, format_rows
from benchmarks.models import RECIPES, benchmark_model
from benchmarks.timing import board_round, interleaved, spread, tflm_round
from converters import convert_tflite
from converters.reference import tflm_arena_bytes, tflm_interpreter
from converters.registry import OP_FAMILY
from edgeloop.boards import get_board
from edgeloop.infer import InferError, run_batch_virtual
from edgeloop.vboard import VirtualBoardError

ROOT = Path(__file__).resolve().parents[1]
OUT_JSON = ROOT / "build" / "bench" / "runtime.json"
SMALL_BOARD = "virtual"  # x86-64 virtual board with an ESP32's ~100 KB heap
BIG_BOARD = "esp32s3"  # 2 MB heap (PSRAM), for models that do not fit 100 KB
TARGETS = {
    "viper_vs_tflm_geomean_max": 1.5,
    "viper_vs_tflm_model_max": 2.0,
    "arena_vs_tflm_arena_geomean_max": 0.75,
    "bundle_vs_tflite_max": 1.02,
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
    """Median wall ms of single TFLM invokes in this process (after a warm-up)."""
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


def _run_board(bundle: bytes, x: np.ndarray, board: str, kernels: str):
    y, stats = run_batch_virtual(bundle, x, board, kernels=kernels, timeout=1800)
    if stats["kernels"] != kernels:
        raise RuntimeError(f"asked for {kernels} kernels, the board ran {stats['kernels']}")
    return y, stats


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    n = len(a)
    return a.shape[0] == b.shape[0] and np.array_equal(a.reshape(n, -1), b.reshape(n, -1))


def op_profile(conv, steps_ms: list[float], plan_ops: list[int], total_ms: float
               ) -> tuple[list[dict[str, Any]], dict[str, dict[str, float]]]:
    """Per bundle op and per kernel family: ms (the step profile scaled to the CPU-time
    total), MACs and M MAC/s."""
    from converters.bundle import parse_bundle

    bun = parse_bundle(conv.bundle)
    reports = [r for r in conv.report["ops"] if not r.get("alias")]
    per_op = [0.0] * len(bun.ops)
    for ms, k in zip(steps_ms, plan_ops, strict=True):
        per_op[k] += ms
    scale = total_ms / sum(per_op) if sum(per_op) > 0 else 0.0
    ops, fams = [], {}
    for k, op in enumerate(bun.ops):
        fam = OP_FAMILY.get(op.opcode, "?")
        macs = reports[k]["macs"] if k < len(reports) else 0
        ms = per_op[k] * scale
        ops.append({"index": k, "op": op.name, "family": fam, "ms": ms, "macs": macs,
                    "mmac_per_s": macs / ms / 1000.0 if ms > 0 and macs else None})
        f = fams.setdefault(fam, {"ms": 0.0, "macs": 0, "ops": 0})
        f["ms"] += ms
        f["macs"] += macs
        f["ops"] += 1
    for f in fams.values():
        f["mmac_per_s"] = f["macs"] / f["ms"] / 1000.0 if f["ms"] > 0 and f["macs"] else None
    return ops, fams


def _stream_cost(bundle: bytes, sample: np.ndarray, board: str, invokes: int,
                 rounds: int) -> dict[str, Any]:
    """Weights streamed from the bundle file (elrt/stream.py) against the same model in RAM:
    interleaved rounds on one board, paired ratio. The streamed model runs on the 100 KB board
    when it fits there, else on the big one (as does the RAM side)."""
    where = SMALL_BOARD
    try:
        board_round(bundle, sample, where, "viper", invokes=2, profile_invokes=0, stream=True,
                    warmup=0)
    except VirtualBoardError as exc:
        small_error = str(exc).strip().splitlines()[-1]
        where = BIG_BOARD
    else:
        small_error = None
    pairs = interleaved(
        rounds,
        lambda: board_round(bundle, sample, board, "viper", invokes=invokes, profile_invokes=0),
        lambda: board_round(bundle, sample, where, "viper", invokes=invokes, profile_invokes=0,
                            stream=True),
    )
    ram = [p[0]["cpu_ms"]["median"] for p in pairs]
    st = [p[1]["cpu_ms"]["median"] for p in pairs]
    ratios = [s / r for s, r in zip(st, ram, strict=True)]
    return {"board_profile": where, "fits_100kb": where == SMALL_BOARD,
            "small_board_error": small_error, "buffer_bytes": pairs[0][1]["stream_bytes"],
            "ms": statistics.median(st), "ram_ms": statistics.median(ram),
            "stream_vs_ram": statistics.median(ratios), "spread": spread(ratios)}


def bench_model(
    name: str,
    viper_n: int,
    bytecode_n: int,
    rounds: int = 9,
    seed: int = 0,
    code: dict[str, MpyCode] | None = None,
    invokes: int = 30,
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
    fit32 = esp32_fit(tflite, x[:2], tf["y"][:2])  # the esp32 profile, for a 32-bit chip
    xb = x[: max(1, min(bytecode_n, viper_n))]
    yb, _ = _run_board(conv.bundle, xb, board, "bytecode")
    # Timing: interleaved rounds, each side in a fresh process per round, CPU time per invoke
    # (benchmarks/timing.py); a round's figure is its median invoke, the model's figure the
    # median round, and the ratio the median of the rounds' paired ratios.
    pairs = interleaved(
        rounds,
        lambda: board_round(conv.bundle, x[-1], board, "viper", invokes=invokes),
        lambda: tflm_round(tflite, x[-1], invokes=max(invokes, 30)),
    )
    br = board_round(conv.bundle, x[-1], board, "bytecode", invokes=max(1, bytecode_n),
                     profile_invokes=0, warmup=1)
    v_cpu = [p[0]["cpu_ms"]["median"] for p in pairs]
    t_cpu = [p[1]["cpu_ms"]["median"] for p in pairs]
    v_wall = [p[0]["wall_ms"]["median"] for p in pairs]
    t_wall = [p[1]["wall_ms"]["median"] for p in pairs]
    ratios = [v / t for v, t in zip(v_cpu, t_cpu, strict=True)]
    wall_ratios = [v / t for v, t in zip(v_wall, t_wall, strict=True)]
    viper_ms, tflm_ms = statistics.median(v_cpu), statistics.median(t_cpu)
    bytecode_ms = br["cpu_ms"]["median"]
    stream = _stream_cost(conv.bundle, x[-1], board, invokes, max(2, rounds // 2))
    steps = [statistics.median(col) for col in zip(*(p[0]["steps_ms"] for p in pairs), strict=True)]
    ops, fams = op_profile(conv, steps, pairs[0][0]["plan_ops"], viper_ms)
    return {
        "model": name,
        "board_profile": board,
        "board_heap_bytes": get_board(board).heap_bytes,
        "fits_100kb": board == SMALL_BOARD,
        "estimated_heap_bytes": rep["estimated_heap_bytes"],
        "esp32": fit32,
        "small_board_error": small_board_error,
        "macs": rep["total_macs"],
        "params": rep["total_params"],
        "viper_inferences": len(x),
        "bytecode_inferences": len(xb),
        "timing": "CPU time per invoke, median of each round; rounds interleaved",
        "rounds": rounds,
        "invokes_per_round": invokes,
        "viper_ms": viper_ms,
        "bytecode_ms": bytecode_ms,
        "tflm_ms": tflm_ms,
        "viper_ms_rounds": v_cpu,
        "tflm_ms_rounds": t_cpu,
        "viper_vs_tflm": statistics.median(ratios),
        "viper_vs_tflm_rounds": ratios,
        "viper_vs_tflm_spread": spread(ratios),
        "viper_vs_tflm_min_invoke": min(p[0]["cpu_ms"]["min"] for p in pairs)
        / min(p[1]["cpu_ms"]["min"] for p in pairs),
        # each side's fastest round: the two runtimes on an undisturbed core (on this shared
        # 2-vCPU machine a busy sibling slows a whole round ~1.5x, on either side)
        "viper_vs_tflm_best_rounds": min(v_cpu) / min(t_cpu),
        "wall": {"viper_ms_rounds": v_wall, "tflm_ms_rounds": t_wall,
                 "viper_vs_tflm": statistics.median(wall_ratios),
                 "viper_vs_tflm_best_rounds": min(v_wall) / min(t_wall),
                 "viper_vs_tflm_spread": spread(wall_ratios)},
        "bytecode_vs_tflm": bytecode_ms / tflm_ms,
        "viper_mmac_per_s": rep["total_macs"] / viper_ms / 1000.0,
        "stream": stream,
        "profile_ops": ops,
        "profile_families": fams,
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
        "heap_vs_tflm_arena": sv["model_heap_bytes"] / tf["arena"]["total"],
        "bundle_bytes": len(conv.bundle),
        "tflite_bytes": len(tflite),
        "bundle_vs_tflite": len(conv.bundle) / len(tflite),
        "viper_identical": _same(yv, tf["y"]),
        "bytecode_identical": _same(yb, tf["y"][: len(xb)]),
        "outputs_compared": int(yv.size + yb.size),
    }


def _geomean(values: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    geo = _geomean([r["viper_vs_tflm"] for r in rows])
    worst = max(rows, key=lambda r: r["viper_vs_tflm"])
    identical = sum(r["viper_identical"] and r["bytecode_identical"] for r in rows) / len(rows)
    arena_geo = _geomean([r["arena_vs_tflm_arena"] for r in rows])
    fams: dict[str, dict[str, float]] = {}
    for r in rows:
        for fam, f in r["profile_families"].items():
            g = fams.setdefault(fam, {"ms": 0.0, "macs": 0})
            g["ms"] += f["ms"]
            g["macs"] += f["macs"]
    for g in fams.values():
        g["mmac_per_s"] = g["macs"] / g["ms"] / 1000.0 if g["ms"] > 0 and g["macs"] else None
    return {
        "viper_vs_tflm_geomean": geo,
        "viper_vs_tflm_max": worst["viper_vs_tflm"],
        "viper_vs_tflm_max_model": worst["model"],
        "viper_vs_tflm_geomean_wall": _geomean([r["wall"]["viper_vs_tflm"] for r in rows]),
        "viper_vs_tflm_geomean_best_rounds":
            _geomean([r["viper_vs_tflm_best_rounds"] for r in rows]),
        "viper_vs_tflm_geomean_wall_best_rounds":
            _geomean([r["wall"]["viper_vs_tflm_best_rounds"] for r in rows]),
        "bytecode_vs_tflm_geomean": _geomean([r["bytecode_vs_tflm"] for r in rows]),
        "arena_vs_tflm_arena_geomean": arena_geo,
        "heap_vs_tflm_arena_geomean": _geomean([r["heap_vs_tflm_arena"] for r in rows]),
        "families": fams,
        "identical_fraction": identical,
        "targets": TARGETS,
        "met": {
            "viper_geomean": geo <= TARGETS["viper_vs_tflm_geomean_max"],
            "viper_every_model": worst["viper_vs_tflm"] <= TARGETS["viper_vs_tflm_model_max"],
            "arena_geomean": arena_geo <= TARGETS["arena_vs_tflm_arena_geomean_max"],
            "bundle_vs_tflite": all(r["bundle_vs_tflite"] <= TARGETS["bundle_vs_tflite_max"]
                                    for r in rows),
            "all_identical": identical == 1.0,
        },
    }


def _ok(flag: bool) -> str:
    return "met" if flag else "MISSED"


def format_table(rows: list[dict[str, Any]], summary: dict[str, Any],
                 machine: dict[str, Any] | None = None) -> str:
    head = (
        f"{'model':16s} {'board':8s} {'viper ms':>9s} {'TFLM ms':>8s} {'v/TFLM':>7s} "
        f"{'spread':>7s} {'wall v/T':>8s} {'bytec ms':>9s} {'MMAC/s':>7s} {'arena B':>8s} "
        f"{'TFLM ar':>8s} {'heap B':>8s} {'bundle B':>9s} {'tflite B':>9s} {'same':>5s}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        same = "yes" if r["viper_identical"] and r["bytecode_identical"] else "NO"
        sp = r["viper_vs_tflm_spread"]["rel_spread"]
        lines.append(
            f"{r['model']:16s} {r['board_profile']:8s} {r['viper_ms']:9.3f} "
            f"{r['tflm_ms']:8.3f} {r['viper_vs_tflm']:7.2f} {'±' + format(sp, '.0%'):>7s} "
            f"{r['wall']['viper_vs_tflm']:8.2f} {r['bytecode_ms']:9.1f} "
            f"{r['viper_mmac_per_s']:7.1f} {r['arena_bytes']:8d} {r['tflm_arena_bytes']:8d} "
            f"{r['model_heap_bytes']:8d} {r['bundle_bytes']:9d} {r['tflite_bytes']:9d} "
            f"{same:>5s}"
        )
    lines.append("-" * len(head))
    lines.append("weights streamed from the bundle file (elrt/stream.py), CPU ms vs in RAM:")
    for r in rows:
        st = r["stream"]
        lines.append(
            f"  {r['model']:16s} on {st['board_profile']:8s} buffer {st['buffer_bytes']:6d} B "
            f"{st['ms']:8.3f} ms vs {st['ram_ms']:8.3f} ms in RAM: x{st['stream_vs_ram']:.2f} "
            f"(±{st['spread']['rel_spread']:.0%})"
            + ("" if st["fits_100kb"] else f"; not on the x64 port's 100 KB: "
                                           f"{st['small_board_error'][:60]}"))
    lines += ["-" * len(head)] + format_rows(rows)
    met, t = summary["met"], TARGETS
    fam = ", ".join(f"{k} {v['mmac_per_s']:.0f}" for k, v in sorted(summary["families"].items())
                    if v["mmac_per_s"])
    lines += [
        "-" * len(head),
        f"geomean viper/TFLM {summary['viper_vs_tflm_geomean']:.2f} (target <= "
        f"{t['viper_vs_tflm_geomean_max']}: {_ok(met['viper_geomean'])}); worst "
        f"{summary['viper_vs_tflm_max']:.2f} {summary['viper_vs_tflm_max_model']} (target <= "
        f"{t['viper_vs_tflm_model_max']}: {_ok(met['viper_every_model'])}); best rounds "
        f"{summary['viper_vs_tflm_geomean_best_rounds']:.2f}; wall-clock geomean "
        f"{summary['viper_vs_tflm_geomean_wall']:.2f}; bytecode/TFLM "
        f"{summary['bytecode_vs_tflm_geomean']:.0f}",
        f"arena/TFLM arena geomean {summary['arena_vs_tflm_arena_geomean']:.2f} (target <= "
        f"{t['arena_vs_tflm_arena_geomean_max']}: {_ok(met['arena_geomean'])}); model heap/"
        f"TFLM arena geomean {summary['heap_vs_tflm_arena_geomean']:.2f}; bundle <= "
        f"{t['bundle_vs_tflite_max']} x tflite: {_ok(met['bundle_vs_tflite'])}; identical "
        f"outputs: {summary['identical_fraction']:.0%} of models",
        f"viper M MAC/s per family (all models): {fam}",
        "ms: CPU time per invoke (the board's from /proc/self/schedstat, TFLM's thread time), "
        "median over interleaved rounds of each round's median; v/TFLM: median of the rounds' "
        "paired ratios, spread: half its range; best rounds: each side's fastest round (a busy "
        "sibling vCPU slows whole rounds ~1.5x); wall v/T: the same from wall-clock times. "
        "board 'virtual' = 100 KB heap on the 64-bit x64 port; 'esp32s3' = 2 MB heap, for models that do not "
        "fit 100 KB. heap B = heap the loaded model takes on the board (arena + weights + "
        "tables).",
    ]
    if machine:
        lines.append(
            f"machine: {machine['cpu_model']} x{machine['cpus']}, load average "
            f"{machine['load_average_start'][0]:.1f} -> {machine['load_average_end'][0]:.1f}; "
            f"{machine['micropython']}; tflite-micro {machine['tflite_micro']}"
        )
    return "\n".join(lines)


def machine_info() -> dict[str, Any]:
    """Where the figures come from: CPU model, cores, the virtual board's MicroPython build."""
    from importlib import metadata

    from edgeloop.vboard import micropython_executable

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or "unknown"
    mp = subprocess.run([micropython_executable(), "-c",
                         "import sys; print(sys.implementation._machine, sys.implementation"
                         ".version, sys.implementation._build, sys.version.split(';')[1])"],
                        capture_output=True, text=True, timeout=60)
    try:
        tflm = metadata.version("tflite-micro")
    except metadata.PackageNotFoundError:
        tflm = "unknown"
    return {"platform": sys.platform, "python": sys.version.split()[0], "cpus": os.cpu_count(),
            "cpu_model": cpu,
            "micropython": mp.stdout.strip() if mp.returncode == 0 else "unknown",
            "tflite_micro": tflm,
            "load_average_start": os.getloadavg()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=list(RECIPES), choices=list(RECIPES))
    ap.add_argument("--viper-n", type=int, default=30, help="inferences checked on viper")
    ap.add_argument("--bytecode-n", type=int, default=3, help="inferences with bytecode kernels")
    ap.add_argument("--rounds", type=int, default=9,
                    help="interleaved timing rounds per side (9: the median of paired ratios "
                         "settles; at 5 it moved +-10%% between runs on the shared machine)")
    ap.add_argument("--invokes", type=int, default=30, help="timed invokes per round")
    ap.add_argument("--out", type=Path, default=OUT_JSON)
    args = ap.parse_args(argv)
    if min(args.viper_n, args.bytecode_n, args.rounds, args.invokes) < 1:
        ap.error("--viper-n, --bytecode-n, --rounds and --invokes must be >= 1")
    machine = machine_info()
    code = family_code("xtensawin")
    rows = []
    for name in args.models:
        print(f"benchmarking {name} ...", file=sys.stderr, flush=True)
        rows.append(bench_model(name, args.viper_n, args.bytecode_n, args.rounds, code=code,
                                invokes=args.invokes))
    machine["load_average_end"] = os.getloadavg()
    summary = summarize(rows)
    print(format_table(rows, summary, machine))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "machine": machine,
        "models": rows,
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
