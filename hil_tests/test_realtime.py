"""Real time: the standalone app samples through the sensor's FIFO while it infers; nothing is
lost, nothing is duplicated, every window's work fits its stride.

Pass: the real app (main.py, standalone) with the run's model and config runs on the virtual
board for --realtime-s of wall-clock time (60 s in `edgeloop hil`, 15 s in `make test`): its
simulated MPU6050 converts at the run's rate (1 kHz, 3 axes) into its 1024-byte FIFO in real
time and hides each sample's sequence number in the signal; every sample the app's pipeline
receives is counted by it: 0 lost, 0 duplicated, the app's own lost/skipped counts 0, and
every window's work (features, inference, decision, gc, status line) ends inside its stride.
A loss the app reported (a FIFO overflow: the host did not run the board's process for longer
than the FIFO holds) earns one more attempt; a loss it did not report fails at once. In the
short `make test` version a second reported loss is an xfail naming the host stall; the full
60 s version fails.
Overload (a stride of one sample: far too little time for the model; 10 s each, after them):
overruns are reported; with late windows skipped the loop keeps the stream and infers what it
can; with every window inferred the FIFO overflows; either way every gap the hidden sequence
numbers show is an overflow the app reported, and its lost count says samples were lost
(never a silent drop). Boards that keep up run concurrently (the bench takes about
--realtime-s + 10 s).
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from pathlib import Path

import pytest

from edgeloop.boards import with_sim_heap
from edgeloop.link.deploy import deploy, plan_deploy
from edgeloop.link.virtual import VirtualTransport
from edgeloop.twins import machine_recording

OVERLOAD_S = 10.0  # wall-clock seconds of each overloaded run
FULL_S = 60.0  # the full-length run (edgeloop hil); shorter runs (make test) may xfail on a
# host stall the app reported (see the module docstring)


@dataclasses.dataclass
class AppRun:
    """One standalone app's console over a real-time run, and what it says."""

    name: str
    stride: int
    rate: float
    lines: list[dict] = dataclasses.field(default_factory=list)
    wall_s: float = 0.0
    error: str = ""
    priority: int = 0  # the board process's nice value (see _prioritize)
    retried: dict | None = None  # a first attempt lost to a host stall (reported by the app)

    @property
    def start(self) -> dict:
        return next((x for x in self.lines if x.get("event") == "start"), {})

    @property
    def end(self) -> dict:
        return next((x for x in self.lines if x.get("event") == "end"), {})

    @property
    def windows(self) -> list[dict]:
        return [x for x in self.lines if "w" in x]

    def summary(self) -> dict:
        w = self.windows
        end = self.end
        busy = sorted(x["busy"] for x in w) or [0]
        stride_us = self.start.get("stride_us", 0)
        return {
            "duration_s": round(end.get("samples", 0) / self.rate, 1) if self.rate else None,
            "wall_s": round(self.wall_s, 1),
            "windows": end.get("windows"),
            "answered": end.get("inferred"),
            "samples": end.get("seq_n"),
            "lost_samples": end.get("seq_lost"),  # by the hidden sequence numbers
            "lost_reported": end.get("lost"),  # the app's own count
            "duplicated_samples": end.get("seq_dup"),
            "skipped": end.get("skipped"),
            "overruns": end.get("overruns"),
            "stride_us": stride_us,
            "busy_us_median": busy[len(busy) // 2],
            "busy_us_max": busy[-1],
            "latency_us_median": sorted(x["us"] for x in w)[len(w) // 2] if w else None,
            "latency_us_max": max((x["us"] for x in w), default=None),
            "lag_max": max((x["lag"] for x in w), default=None),
            "heap_free_min": min((x["free"] for x in w), default=None),
            "nice": self.priority,
            "first_attempt_lost_samples": (self.retried or {}).get("lost_samples"),
            "error": self.error,
        }


def _prioritize(pid: int, nice: int) -> int:
    """An MCU owns its CPU: the board under test runs at a raised priority where the host
    allows it (root), so other processes on a shared host do not stall its sampling loop for
    longer than its FIFO holds (the deliberately overloaded boards, run after it, keep the
    default). Returns the nice value the board got."""
    try:
        os.setpriority(os.PRIO_PROCESS, pid, nice)
    except (PermissionError, OSError):
        return os.getpriority(os.PRIO_PROCESS, pid)
    return nice


def _deploy_app(bench, run: Path, name: str, seconds: float, **overrides) -> tuple[Path, dict]:
    cfg = json.loads((run / "config.json").read_text())
    cfg.update({k: v for k, v in overrides.items() if k != "sensor"})
    sensor = cfg.setdefault("sensor", {})
    sensor.update({"sim_clock": "wall", "sim_seq": True, "loop": True},
                  **overrides.get("sensor", {}))
    rate, window = float(cfg["sample_rate"]), int(cfg["window"])
    stride = int(cfg.get("stride", window))
    if "max_seconds" not in cfg:  # the windows that much signal holds
        cfg["max_windows"] = int((seconds * rate - window) // stride) + 1
    priority = overrides.pop("nice", -10)
    cfg.pop("nice", None)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    root = bench.out / "vboard" / f"realtime-{name}-{worker}"
    profile = with_sim_heap(bench.profile)  # the simulated chips' share (a real board has none)

    def healthy(units: float, sample_rate: float) -> bytes:  # looped by the chip's source
        return machine_recording(units, sample_rate, seconds=20.0, fault_at_s=1e9)

    plan = plan_deploy(run, profile, virtual=True, config=cfg, sim_recording=healthy)
    deploy(VirtualTransport(root, profile), plan, verify=False)
    return root, cfg | {"profile": profile, "priority": priority}


def run_concurrently(bench, run: Path, specs: dict[str, tuple[float, dict]]) -> dict[str, AppRun]:
    """Deploy one board per spec (name: (seconds, config overrides)), start them together,
    read each console to its end event."""
    boards = {name: _deploy_app(bench, run, name, sec, **over) for name, (sec, over) in specs.items()}
    results: dict[str, AppRun] = {}
    transports: dict[str, VirtualTransport] = {}

    def play(name: str, root: Path, cfg: dict, seconds: float) -> None:
        res = results[name]
        t0 = time.monotonic()
        board = transports[name] = VirtualTransport(root, cfg["profile"])
        try:
            for line in board.console(seconds + 60.0):
                if not res.lines and board._proc is not None:
                    res.priority = _prioritize(board._proc.pid, cfg["priority"])
                try:
                    res.lines.append(json.loads(line))
                except ValueError:
                    res.error = f"not a status line: {line[:200]}"
                if res.lines and res.lines[-1].get("event") == "end":
                    break
        except Exception as exc:  # noqa: BLE001 - reported as the run's error
            res.error = f"{type(exc).__name__}: {exc}"
        res.wall_s = time.monotonic() - t0
        if not res.end and not res.error:
            res.error = "no end event within the run's time"

    threads = []
    for name, (root, cfg) in boards.items():
        results[name] = AppRun(name, int(cfg.get("stride", cfg["window"])), float(cfg["sample_rate"]))
        threads.append(threading.Thread(target=play, args=(name, root, cfg, specs[name][0]),
                                        daemon=True))
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(sec for sec, _ in specs.values()) + 120.0)
    for name, t in zip(boards, threads, strict=True):
        if t.is_alive():  # a board that never finished: stop it, say so
            results[name].error = "no end event within the run's time (board stopped)"
            if name in transports:
                transports[name].reset()
    return results


@pytest.fixture(scope="module")
def realtime_runs(request, bench, hil_run) -> dict[str, AppRun]:
    if not bench.virtual:
        pytest.skip("the sequence-numbered signal needs the virtual board's simulated chips")
    seconds = float(request.config.getoption("--realtime-s"))
    # The boards that keep up sleep between windows and run side by side; the overloaded ones
    # use every cycle they get, so they run afterwards (beside each other), never beside a
    # board that must keep up.
    runs = run_concurrently(bench, hil_run, {
        "machine": (seconds, {}),  # the run as trained: 1 kHz, 3 axes, its window and stride
    })
    first = runs["machine"].end
    if first.get("seq_lost") and first.get("lost", 0) >= first["seq_lost"] - first["overflows"]:
        # The samples were lost and the app reported them: a FIFO overflows only when the
        # board's process is not run for longer than the FIFO holds (170 ms), which on a
        # shared, loaded host happens: one more attempt, the first one's figures kept.
        again = run_concurrently(bench, hil_run, {"machine": (seconds, {})})["machine"]
        again.retried = runs["machine"].summary()
        runs["machine"] = again
    over = {"stride": 1, "max_seconds": OVERLOAD_S, "nice": 0}
    return runs | run_concurrently(bench, hil_run, {
        "overload-skip": (OVERLOAD_S, over),  # late windows skipped
        "overload-all": (OVERLOAD_S, over | {"skip_late": False}),  # every window inferred
    })


def _record(hil, res: AppRun) -> None:
    hil.results.append((f"{hil.request.node.name}-{res.name}", res))
    for key, value in res.summary().items():
        if isinstance(value, int | float | str) or value is None:
            hil.request.node.user_properties.append((f"{res.name}.{key}", value))


def test_realtime_sampling_loses_nothing(realtime_runs, hil, request) -> None:
    res = realtime_runs["machine"]
    _record(hil, res)
    s = res.summary()
    print(f"realtime {res.name}: {s}")
    assert res.error == "", (res.error, res.lines[-3:])
    seconds = float(request.config.getoption("--realtime-s"))
    start, end = res.start, res.end
    assert start["clock"] == "wall" and start["fifo"] == 170 and res.wall_s >= 0.95 * seconds
    assert end["seq_n"] == end["samples"] >= seconds * res.rate * 0.95  # every sample counted
    if end["seq_lost"] and seconds < FULL_S and end["lost"] >= end["seq_lost"] - end["overflows"]:
        pytest.xfail(f"host stall: the board's process was not run for longer than its FIFO "
                     f"holds, twice; the app reported all {end['seq_lost']} lost samples "
                     f"(edgeloop hil runs the full {FULL_S:.0f} s version strictly): {s}")
    assert end["seq_lost"] == 0 and end["seq_dup"] == 0 and end["seq_gaps"] == 0, s
    assert end["lost"] == 0 and end["overflows"] == 0 and end["skipped"] == 0, s
    assert end["windows"] == end["inferred"] == len(res.windows), s
    assert [w["w"] for w in res.windows] == list(range(1, end["windows"] + 1))
    stride_us = start["stride_us"]
    late = [w for w in res.windows if w["busy"] >= stride_us]
    assert not late and end["overruns"] == 0, f"windows over their {stride_us} us stride: {late[:5]}"
    # the loop keeps up: what waits behind a window never reaches a stride
    assert max(w["lag"] for w in res.windows) < res.stride, s


def test_overload_is_reported_never_hidden(realtime_runs, hil) -> None:
    skip, every = realtime_runs["overload-skip"], realtime_runs["overload-all"]
    for res in (skip, every):
        _record(hil, res)
        print(f"realtime {res.name}: {res.summary()}")
        assert res.error == "", (res.error, res.lines[-3:])
        assert res.end["overruns"] > 0, res.summary()  # the stride is too short: said so
        assert res.end["seq_dup"] == 0, res.summary()
        # never hidden: every gap the hidden sequence numbers show is an overflow the app
        # counted, and samples lost means the app says so (its count is an estimate from its
        # clock: figures lost vs seq_lost)
        e = res.end
        assert e["seq_gaps"] <= e["overflows"], res.summary()
        assert (e["lost"] > 0) == (e["seq_lost"] > 0), res.summary()
    # late windows skipped: the loop keeps the stream and infers what it can
    s = skip.end
    assert s["skipped"] > 0 and s["inferred"] + s["skipped"] == s["windows"], skip.summary()
    # every window inferred: the loop falls behind until the FIFO overflows
    e = every.end
    assert e["skipped"] == 0 and e["overflows"] > 0 and e["lost"] > 0, every.summary()
