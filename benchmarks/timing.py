"""Timing rounds for the runtime benchmark: one fresh process per round, for TFLM as for the board.

The machine is shared (2 cores, several developers), so wall time per invoke mostly measures
how often the scheduler ran someone else in the middle of it. Each round therefore records both
the wall time and the CPU time of every invoke: TFLM's with `time.thread_time`, the virtual
board's (the MicroPython unix port, single-threaded) from `/proc/self/schedstat`, whose first
field is the nanoseconds the process has been on a CPU (read right after a 1 µs sleep: the
kernel updates that sum only when the task is switched out or at a tick, and the unix port's
time.clock() counts in 10 ms ticks). CPU time is what a board that runs
nothing else would take; it is the figure the ratios use. The fixed cost of reading the clock
is measured in the same round and subtracted.

A board round also profiles every invoke() step with `Model.invoke_timed` (wall µs, in a
separate pass so the clock reads do not enter the timed invokes): each step's fastest of the
profiled invokes, as a preemption lands in some step of some invoke and a sum would charge it.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgeloop.boards import get_board
from edgeloop.infer import prepare_board

ROOT = Path(__file__).resolve().parents[1]
_MARK = "BENCH_ROUND "

# Runs on the virtual board. Placeholders: kernels, n, profile_n, stream.
_BOARD_ROUND = """\
import gc, time, json, array
import elrt
buf = bytearray(64)

def cpu_ns():
    time.sleep_us(1)  # block: the kernel brings sum_exec_runtime up to date on the switch
    f = open("/proc/self/schedstat", "rb")
    k = f.readinto(buf)
    f.close()
    return int(bytes(buf[:k]).split()[0])

# A function, not module-level code: the script runs as a module (-m), whose globals
# dict grows as names are stored; with the bytecode kernels the 100 KB board has no room.
def _round():
    elrt.use_kernels(%(kernels)r)
    gc.collect()
    m = elrt.Model()
    m.load("model.elb"%(load_args)s)
    gc.collect()
    f = open("input.bin", "rb")
    f.readinto(m.input)
    f.close()
    for _ in range(%(warmup)d):
        m.invoke()
    over = array.array("q", [0] * 9)
    for i in range(9):
        c0 = cpu_ns()
        over[i] = cpu_ns() - c0
    wall = array.array("i", [0] * %(n)d)
    cpu = array.array("q", [0] * %(n)d)
    steps = array.array("i", [0] * len(m.plan_ops))
    best = array.array("i", [-1] * len(m.plan_ops))
    gc.collect()
    for i in range(%(n)d):
        c0 = cpu_ns()
        t0 = time.ticks_us()
        m.invoke()
        t1 = time.ticks_us()
        c1 = cpu_ns()
        wall[i] = time.ticks_diff(t1, t0)
        cpu[i] = c1 - c0
    for _ in range(%(profile_n)d):
        for i in range(len(steps)):
            steps[i] = 0
        m.invoke_timed(steps)
        for i in range(len(steps)):
            if best[i] < 0 or steps[i] < best[i]:
                best[i] = steps[i]
    for name, arr in (("wall.bin", wall), ("cpu.bin", cpu), ("over.bin", over),
                      ("steps.bin", best), ("plan.bin", array.array("i", m.plan_ops))):
        f = open(name, "wb")
        f.write(arr)
        f.close()
    print("%(mark)s" + json.dumps({
        "profile_n": %(profile_n)d, "kernels": m.kernels, "arena_bytes": m.arena_bytes,
        "stream": getattr(m, "stream_bytes", 0),
    }))


_round()
"""


def _summary(values_ms: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values_ms), "min": min(values_ms)}


def board_round(bundle: bytes, sample: np.ndarray, board: str, kernels: str = "viper",
                invokes: int = 30, profile_invokes: int = 9, stream: int | None = None,
                warmup: int = 3) -> dict[str, Any]:
    """One board process: per-invoke wall and CPU ms (clock cost subtracted) and a per-step
    profile. stream: passed to Model.load as stream= (None: the runtime decides)."""
    load_args = "" if stream is None else f", stream={stream!r}"
    script = _BOARD_ROUND % {"kernels": kernels, "n": invokes, "profile_n": profile_invokes,
                             "mark": _MARK, "load_args": load_args, "warmup": warmup}
    with tempfile.TemporaryDirectory(prefix="edgeloop-bench-") as tmp:
        vb = prepare_board(Path(tmp))
        vb.profile = get_board(board)
        (vb.root / "model.elb").write_bytes(bytes(bundle))
        (vb.root / "input.bin").write_bytes(np.ascontiguousarray(sample).tobytes())
        res = vb.run(script, timeout=1800).check("benchmark round")
        line = next(ln for ln in reversed(res.stdout.splitlines()) if ln.startswith(_MARK))
        d = json.loads(line[len(_MARK):])

        def arr(name: str, dtype: str) -> list[int]:
            return np.frombuffer((vb.root / name).read_bytes(), dtype=dtype).tolist()

        clock = statistics.median(arr("over.bin", "<i8"))
        cpu_ms = [max(c - clock, 0) / 1e6 for c in arr("cpu.bin", "<i8")]
        wall_ms = [w / 1000.0 for w in arr("wall.bin", "<i4")]
        steps = arr("steps.bin", "<i4")
        plan_ops = arr("plan.bin", "<i4")
    return {"cpu_ms": _summary(cpu_ms), "wall_ms": _summary(wall_ms),
            "steps_ms": [max(u, 0) / 1000.0 for u in steps],
            "plan_ops": plan_ops, "kernels": d["kernels"], "stream_bytes": d["stream"],
            "arena_bytes": d["arena_bytes"]}


_TFLM_ROUND = """\
import sys, time, json, numpy as np
from converters.reference import tflm_interpreter
m = open(sys.argv[1], "rb").read()
x = np.load(sys.argv[2])
interp = tflm_interpreter(m)
dtype = interp.get_input_details(0)["dtype"]
interp.set_input(np.ascontiguousarray(x.astype(dtype)), 0)
for _ in range(3):
    interp.invoke()
over = []
for _ in range(9):
    c0 = time.thread_time_ns()
    over.append(time.thread_time_ns() - c0)
over.sort()
wall, cpu = [], []
for _ in range(int(sys.argv[3])):
    c0 = time.thread_time_ns()
    t0 = time.perf_counter_ns()
    interp.invoke()
    t1 = time.perf_counter_ns()
    c1 = time.thread_time_ns()
    wall.append(t1 - t0)
    cpu.append(c1 - c0)
print(json.dumps({"wall_ns": wall, "cpu_ns": cpu, "clock_ns": over[4]}))
"""


def tflm_round(tflite: bytes, sample: np.ndarray, invokes: int = 30) -> dict[str, Any]:
    """One fresh TFLM process (its speed differs from process to process, see runtime.py):
    per-invoke wall and CPU ms of `interp.invoke()` after three warm-up invokes."""
    with tempfile.TemporaryDirectory(prefix="edgeloop-tflm-") as tmp:
        model, x = Path(tmp) / "model.tflite", Path(tmp) / "sample.npy"
        model.write_bytes(bytes(tflite))
        np.save(x, sample)
        proc = subprocess.run([sys.executable, "-c", _TFLM_ROUND, str(model), str(x),
                               str(invokes)], capture_output=True, text=True, cwd=ROOT,
                              timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"TFLM timing process failed:\n{proc.stderr[-2000:]}")
    d = json.loads(proc.stdout.strip().splitlines()[-1])
    clock = d["clock_ns"]
    return {"cpu_ms": _summary([max(c - clock, 0) / 1e6 for c in d["cpu_ns"]]),
            "wall_ms": _summary([w / 1e6 for w in d["wall_ns"]])}


def interleaved(rounds: int, first, second) -> list[tuple[Any, Any]]:
    """Run `first` and `second` (zero-argument callables) `rounds` times each, alternating which
    goes first (ABBA...), so slow drifts of the machine's load hit both sides alike."""
    out = []
    for r in range(rounds):
        if r % 2 == 0:
            a = first()
            b = second()
        else:
            b = second()
            a = first()
        out.append((a, b))
        time.sleep(0)
    return out


def spread(values: list[float]) -> dict[str, float]:
    """Median, min, max and the half-range relative to the median (the ± of the table)."""
    med = statistics.median(values)
    lo, hi = min(values), max(values)
    return {"median": med, "min": lo, "max": hi,
            "rel_spread": (hi - lo) / 2.0 / med if med else 0.0, "n": len(values)}
