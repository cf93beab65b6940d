"""Drawing a HIL session: the timeline of signal, model output, decision and twin state."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeloop.link.results import SessionResult


def fault_score(res: SessionResult, healthy: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per answered window: (t_end_s, highest non-healthy int8 output)."""
    t, s = [], []
    for w in res.windows:
        if w.status == "ok" and w.outputs:
            others = [v for i, v in enumerate(w.outputs) if i != healthy] or w.outputs
            t.append(w.t_end_s)
            s.append(max(others))
    return np.array(t), np.array(s)


def timeline_caption(res: SessionResult) -> str:
    """What happened in the session, naming only what did: a machine fault (orange), sensor
    faults as reported by the board, the stop (red), losses and resets."""
    summ = res.summary()
    parts = []
    if res.fault_at_s is not None:
        parts.append(f"machine fault at {res.fault_at_s:g} s (orange)")
    kinds = sorted({f["kind"] for f in res.sensor_faults})
    if kinds:
        ts = [f["t_s"] for f in res.sensor_faults]
        parts.append(f"sensor fault {'/'.join(kinds)} reported {min(ts):.1f}-{max(ts):.1f} s")
    if summ["first_stop_s"] is not None:
        parts.append(f"stop at {summ['first_stop_s']:.2f} s (red)")
    else:
        parts.append("no stop")
    parts.append(f"lost {summ['lost']}/{summ['windows']}")
    if summ["board_resets"]:
        parts.append(f"resets {summ['board_resets']}")
    return ", ".join(parts)


def plot_timeline(res: SessionResult, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tl = res.timeline
    t = np.asarray(tl.get("t", []))
    fig, axes = plt.subplots(4, 1, figsize=(10, 8), sharex=True)
    ax = axes[0]
    ax.plot(t, tl.get("rms", []), lw=0.8, label="ax RMS per frame (g)")
    ax.set_ylabel("signal")
    ax.legend(loc="upper left", fontsize=8)
    ax = axes[1]
    tw, sc = fault_score(res)
    ax.plot(tw, sc, ".", ms=2, label="max fault-class output (int8)")
    for kind in sorted({f["kind"] for f in res.sensor_faults}):
        ts = [f["t_s"] for f in res.sensor_faults if f["kind"] == kind]
        ax.plot(ts, np.full(len(ts), -128), "|", ms=10, label=f"sensor fault: {kind}")
    ax.set_ylim(-135, 135)
    ax.set_ylabel("model")
    ax.legend(loc="upper left", fontsize=8)
    ax = axes[2]
    td = [w.t_end_s for w in res.windows if w.status == "ok"]
    dd = [w.decision for w in res.windows if w.status == "ok"]
    ax.step(td, dd, where="post", label="decision (alarm)")
    lost = [w.t_end_s for w in res.windows if w.status == "lost"]
    if lost:
        ax.plot(lost, np.full(len(lost), 0.5), "rx", ms=4, label=f"lost windows ({len(lost)})")
    ax.set_ylim(-0.1, 1.2)
    ax.set_ylabel("decision")
    ax.legend(loc="upper left", fontsize=8)
    ax = axes[3]
    ax.plot(t, tl.get("health", []), label="twin health")
    ax.plot(t, tl.get("running", []), "--", label="running")
    ax.set_ylim(-0.05, 1.1)
    ax.set_ylabel("machine")
    ax.set_xlabel("simulated time (s)")
    ax.legend(loc="lower left", fontsize=8)
    for a in axes:
        if res.fault_at_s is not None:
            a.axvline(res.fault_at_s, color="orange", lw=1)
        for s in res.stops:
            a.axvline(s["t_s"], color="red", lw=1)
        for r in res.resets:
            a.axvline(r, color="purple", lw=1, ls=":")
    fig.suptitle(f"{title}\n{timeline_caption(res)}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path

