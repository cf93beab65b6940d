"""What the labeller shows of a window: each channel as a sparkline (rich text), the model's
outputs and guess, why it was kept, and the keys; or the channels as a PNG (matplotlib)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from edgeloop.label.store import FieldItem, LabelError

BLOCKS = "▁▂▃▄▅▆▇█"


def read_window(item: FieldItem) -> np.ndarray:
    """The window's samples [t, channels] in units, from its CSV (errors name the file)."""
    try:
        data = np.loadtxt(item.csv, delimiter=",", skiprows=1, ndmin=2)
    except ValueError as exc:
        raise LabelError(f"{item.csv}: not a window CSV ({exc})") from None
    channels = item.meta["channels"]
    if data.shape[1] != len(channels) + 1:
        raise LabelError(f"{item.csv}: {data.shape[1]} columns, the sidecar names "
                         f"{len(channels)} channels + timestamp")
    return data[:, 1:]


def sparkline(values: np.ndarray, width: int) -> str:
    """Values as block characters, one per bucket: the bucket's extreme away from the mean
    (vibration shows as its envelope, slow signals as their course)."""
    v = np.asarray(values, np.float64)
    if len(v) == 0:
        return ""
    edges = np.linspace(0, len(v), min(width, len(v)) + 1).astype(int)
    mean = float(v.mean())
    cols = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        seg = v[a:max(b, a + 1)]
        hi, lo = float(seg.max()), float(seg.min())
        cols.append(hi if hi - mean >= mean - lo else lo)
    c = np.asarray(cols)
    span = float(c.max() - c.min())
    if span <= 0:
        return BLOCKS[3] * len(c)
    idx = np.clip(((c - c.min()) / span * (len(BLOCKS) - 1)).round().astype(int), 0,
                  len(BLOCKS) - 1)
    return "".join(BLOCKS[i] for i in idx)


def render(item: FieldItem, keys: dict[str, str], position: str, message: str = "",
           width: int = 64) -> Panel:
    """One window as a rich panel."""
    meta = item.meta
    x = read_window(item)
    chans = Table.grid(padding=(0, 1))
    for j, name in enumerate(meta["channels"]):
        col = x[:, j]
        chans.add_row(Text(f"{name:>12}", style="bold"), Text(sparkline(col, width), style="cyan"),
                      Text(f"{col.min():+.3g} .. {col.max():+.3g}  rms {np.sqrt((col ** 2).mean()):.3g}"))
    outs = Table.grid(padding=(0, 1))
    labels, outputs = meta["labels"], meta["outputs"]
    for lab, p in zip(labels, outputs, strict=False):
        bar = "█" * int(round(max(0.0, min(1.0, float(p))) * 20))
        style = "bold green" if lab == meta["guess"] else ""
        outs.add_row(Text(f"{lab:>12}", style=style), Text(f"{bar:<20}", style=style),
                     Text(f"{float(p):.3f}", style=style))
    why = ("raised an alarm" if meta["reason"] == "alarm"
           else f"model unsure: margin {float(meta.get('margin', 0.0)):.3f}")
    head = Text.assemble((f"{item.name}  ", "bold"), f"{position}  {why}; guess ",
                         (str(meta["guess"]), "bold green"))
    parts = [head, chans, outs]
    twin = item.twin
    if twin is not None:
        parts.append(Text(f"twin's truth: {twin.get('label')} ({float(twin.get('purity', 0)):.0%}"
                          " of the window)", style="magenta"))
    legend = "   ".join(f"[{k}] {lab}" for k, lab in keys.items())
    parts.append(Text(f"{legend}   [s] skip  [u] undo  [q] quit", style="dim"))
    if message:
        parts.append(Text(message, style="yellow"))
    return Panel(Group(*parts), title="edgeloop label", expand=False)


def plot_png(item: FieldItem, path: Path) -> Path:
    """The window's channels as a PNG (for a closer look than the sparklines give)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = read_window(item)
    meta = item.meta
    t = np.arange(len(x)) * 1000.0 / float(meta["sample_rate"])
    fig, axes = plt.subplots(x.shape[1], 1, figsize=(8, 1.6 * x.shape[1] + 0.6), sharex=True,
                             squeeze=False)
    for j, name in enumerate(meta["channels"]):
        axes[j][0].plot(t, x[:, j], lw=0.8)
        axes[j][0].set_ylabel(name)
    axes[-1][0].set_xlabel("ms")
    fig.suptitle(f"{item.name}: guess {meta['guess']} ({meta['reason']})", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
