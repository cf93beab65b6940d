"""Metrics and pictures for a run: accuracy, per-class precision/recall, confusion matrix,
training curves, anomaly AUC and detection/false-alarm rates. matplotlib with Agg only."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def classification_metrics(y: np.ndarray, pred: np.ndarray, classes: tuple[str, ...]) -> dict:
    k = len(classes)
    cm = np.zeros((k, k), np.int64)
    np.add.at(cm, (y, pred), 1)
    per = {}
    for i, c in enumerate(classes):
        tp = cm[i, i]
        prec = tp / cm[:, i].sum() if cm[:, i].sum() else 0.0
        rec = tp / cm[i].sum() if cm[i].sum() else 0.0
        per[c] = {"precision": float(prec), "recall": float(rec), "support": int(cm[i].sum())}
    acc = float(np.trace(cm) / max(cm.sum(), 1))
    return {"accuracy": acc, "per_class": per, "confusion": cm.tolist()}


def auc(scores_normal: np.ndarray, scores_anomal: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic (ties count half)."""
    a = np.asarray(scores_anomal, np.float64)
    n = np.asarray(scores_normal, np.float64)
    if not len(a) or not len(n):
        return float("nan")
    allv = np.concatenate([n, a])
    order = np.argsort(allv, kind="mergesort")
    ranks = np.empty(len(allv))
    sv = allv[order]
    i = 0
    while i < len(sv):  # average ranks over ties
        j = i
        while j + 1 < len(sv) and sv[j + 1] == sv[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    ra = ranks[len(n) :].sum()
    return float((ra - len(a) * (len(a) + 1) / 2) / (len(a) * len(n)))


def anomaly_metrics(scores: np.ndarray, is_anomaly: np.ndarray, threshold: float) -> dict:
    s, a = np.asarray(scores), np.asarray(is_anomaly, bool)
    return {
        "auc": auc(s[~a], s[a]),
        "threshold": float(threshold),
        "detection_rate": float((s[a] > threshold).mean()) if a.any() else float("nan"),
        "false_alarm_rate": float((s[~a] > threshold).mean()) if (~a).any() else float("nan"),
    }


def plot_confusion(cm: np.ndarray, classes: tuple[str, ...], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(cm)
    fig, ax = plt.subplots(figsize=(1.2 * len(classes) + 2, 1.1 * len(classes) + 1.5))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    top = cm.max() if cm.size else 0
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                    color="white" if cm[i, j] > top / 2 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_history(history: dict, path: Path, kept: int | None = None, title: str = "") -> list[str]:
    """Loss (and accuracy) per epoch, train and validation; `kept` marks the epoch whose weights
    the model keeps (EarlyStopping's best), so a reader sees which point the numbers are from."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in ("loss", "accuracy") if k in history]
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.8), squeeze=False)
    for ax, k in zip(axes[0], keys, strict=True):
        epochs = range(1, len(history[k]) + 1)
        ax.plot(epochs, history[k], label="train")
        if "val_" + k in history:
            ax.plot(epochs, history["val_" + k], label="validation")
        if kept is not None:
            ax.axvline(kept + 1, color="k", ls="--", lw=1, label=f"kept (epoch {kept + 1})")
        ax.set_title(f"{k} per epoch")
        ax.set_xlabel("epoch")
        ax.set_ylabel(k)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    texts = [title] + [t for ax in axes[0] for t in
                       (ax.get_title(), *ax.get_legend_handles_labels()[1])]
    plt.close(fig)
    return texts  # what the picture says, for tests


def plot_scores(normal: np.ndarray, anomal: np.ndarray, threshold: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    hi = max(np.max(normal, initial=0), np.max(anomal, initial=0)) or 1.0
    bins = np.linspace(0, hi, 40)
    ax.hist(normal, bins=bins, alpha=0.6, label="healthy")
    ax.hist(anomal, bins=bins, alpha=0.6, label="anomalous")
    ax.axvline(threshold, color="k", ls="--", label="threshold")
    ax.set_xlabel("anomaly score")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
