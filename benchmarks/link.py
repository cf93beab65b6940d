"""Link benchmark: the HIL link and closed loop on the virtual board.

Figures, in one run on this machine:
- `frames_per_s` / `link_mb_per_s`: SAMPLES frames (one stride each) the board's framer takes
  in, checks (CRC16) and answers with a PONG at the end (no model: the link alone);
- `windows_per_s` and `run_wall_s`: a 10-minute simulated rotating-machine run streamed through
  the whole board (link -> preprocessing -> int8 model -> decision -> result frames), with the
  fault injected at 5 min and the closed loop stopping it. Target: run_wall_s <= 60.

    python -m benchmarks.link            (what `make bench` runs after the runtime benchmark)
    python -m benchmarks.link --minutes 2
Prints the figures and writes build/bench/link.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np

from edgeloop.boards import get_board, with_sim_heap
from edgeloop.firmware import FIRMWARE_DIR
from edgeloop.link import protocol as P
from edgeloop.link.framelink import FrameLink
from edgeloop.link.hilboard import deploy_virtual, hil_config
from edgeloop.link.session import HilSession
from edgeloop.link.virtual import VirtualTransport

ROOT = Path(__file__).resolve().parents[1]
OUT_JSON = ROOT / "build" / "bench" / "link.json"
TARGET_WALL_S = 60.0

# Board side of the link-only figure: take frames until PING, answer PONG (allocation-free loop).
_SINK = """
import link
L = link.Link()
n = 0
while True:
    t = L.recv()
    if t < 0:
        break
    if t == 0x12:
        L.pong(n, 0, 0)
        break
    n += 1
"""


def link_only(frames: int = 4000, stride: int = 128, channels: int = 3) -> dict:
    root = ROOT / "build" / "bench" / "vboard-sink"
    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(FIRMWARE_DIR / "link.py", root / "link.py")
    (root / "sink.py").write_text(_SINK)
    rng = np.random.default_rng(0)
    payloads = [
        P.samples_payload(i * stride, rng.integers(-2000, 2000, (stride, channels)), P.DType.INT16)
        for i in range(64)
    ]
    stream = b"".join(P.encode_frame(P.MsgType.SAMPLES, i, payloads[i % 64]) for i in range(frames))
    stream += P.encode_frame(P.MsgType.PING, frames)
    conn = FrameLink.open(VirtualTransport(root), script="sink.py")
    t0 = time.perf_counter()
    conn.write(stream)
    pong = P.decode_message(conn.expect_frame(P.MsgType.PONG, timeout=120))
    dt = time.perf_counter() - t0
    conn.close()
    assert pong.token == frames, f"the board counted {pong.token} of {frames} frames"
    return {
        "frames": frames,
        "frame_bytes": len(stream) // (frames + 1),
        "wall_s": round(dt, 3),
        "frames_per_s": round(frames / dt, 1),
        "link_mb_per_s": round(len(stream) / dt / 1e6, 2),
    }


def closed_loop(minutes: float = 10.0, seed: int = 0, input_mode: str = "frames") -> dict:
    from hil_tests.model import ensure_run
    from trainer.twins import RotatingMachine

    run = ensure_run()
    base = json.loads((run / "config.json").read_text())
    lsb = int(base.get("counts_per_unit", 2048))
    cfg = hil_config(base, input_mode, lsb_per_g=lsb)
    root = deploy_virtual(run, ROOT / "build" / "bench" / f"vboard-link-{input_mode}", cfg)
    duration = minutes * 60.0
    profile = get_board("virtual")
    if input_mode != "frames":  # register-level input: the simulated chips' share, as the HIL
        profile = with_sim_heap(profile)  # benches give it (hil_tests/conftest.py)
    conn = FrameLink.open(VirtualTransport(root, profile))
    try:
        session = HilSession(conn, input_mode=input_mode, lsb_per_g=lsb)
        twin = RotatingMachine(seed=seed, time_to_failure_s=120.0)
        res = session.run(twin, duration, fault_at_s=duration / 2, timeline_every=16)
    finally:
        conn.close()
    s = res.summary()
    return {
        "input": input_mode,
        "simulated_s": duration,
        "run_wall_s": round(res.wall_s, 2),
        "realtime_factor": round(duration / res.wall_s, 1),
        "windows": s["windows"],
        "windows_per_s": round(s["windows"] / res.wall_s, 1),
        "lost": s["lost"],
        "detection_latency_s": s["detection_latency_s"],
        "false_stops": s["false_stops"],
        "breakdowns": s["breakdowns"],
        "board_latency_us_median": s["latency_us_median"],
        "board_latency_us_max": s["latency_us_max"],
        "heap_free_min": s["heap_free_min"],
        "target_wall_s": TARGET_WALL_S,
        "meets_target": res.wall_s <= TARGET_WALL_S,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="simulated machine run length")
    ap.add_argument("--frames", type=int, default=4000, help="frames for the link-only figure")
    ap.add_argument("--out", type=Path, default=OUT_JSON)
    args = ap.parse_args(argv)
    result = {
        "link_only": link_only(args.frames),
        "closed_loop": closed_loop(args.minutes),
        # samples through the simulated MPU6050 and the real driver, one I2C read per sample
        "closed_loop_i2c": closed_loop(args.minutes, input_mode="i2c"),
    }
    lo, cl, ci = result["link_only"], result["closed_loop"], result["closed_loop_i2c"]
    print(f"link only   : {lo['frames_per_s']:.0f} frames/s ({lo['frame_bytes']} B each, "
          f"{lo['link_mb_per_s']} MB/s)")
    print(f"closed loop : {cl['simulated_s'] / 60:.0f} simulated min in {cl['run_wall_s']} s wall "
          f"(x{cl['realtime_factor']}), {cl['windows_per_s']:.0f} windows/s, lost {cl['lost']}, "
          f"target <= {TARGET_WALL_S:.0f} s: {'met' if cl['meets_target'] else 'MISSED'}")
    print(f"              detection latency {cl['detection_latency_s']} s, false stops "
          f"{cl['false_stops']}, breakdowns {cl['breakdowns']}, board latency median "
          f"{cl['board_latency_us_median']} us, min free heap {cl['heap_free_min']} B")
    print(f"register    : same run through the simulated MPU6050 + driver: {ci['run_wall_s']} s "
          f"wall, {ci['windows_per_s']:.0f} windows/s, lost {ci['lost']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")
    return 0 if cl["meets_target"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
