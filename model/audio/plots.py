"""Plots of the audio networks: training curves and the confusion matrix of the integer network.

    plot_training({"DelRec": history, "ConvDelRec": history}, out="curves.png")
    plot_confusion(y_true, y_pred, keys, out="confusion.png", title="...")
    plot_ablation([("title", {"none (all on)": [86.0, 86.4], "warp": [89.0, 85.2]})],
                  out="ablation.png")

``history`` is :attr:`model.audio.train.AudioResult.history` (one record per epoch with
``phase``, ``epoch``, ``train_loss``, ``val_acc``). matplotlib (Agg) is imported on first use.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model.plots import pyplot, save_png

__all__ = ["confusion", "plot_training", "plot_confusion", "plot_ablation"]


def _save(fig, out) -> Path:
    return save_png(fig, out, dpi=110)


def confusion(y_true, y_pred, n_classes: int) -> np.ndarray:
    """``(n_classes, n_classes)`` counts: row = true class, column = predicted class."""
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in shape")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.size and (y.min() < 0 or y.max() >= n_classes):
            raise ValueError(f"{name} must lie in 0..{n_classes - 1}, got "
                             f"[{int(y.min())}, {int(y.max())}]")
    m = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m


def plot_training(histories: dict[str, list[dict]], *, out, title: str = "") -> Path:
    """Training loss and validation accuracy per epoch, one line per run (QAT epochs dashed)."""
    plt = pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.4))
    for i, (name, hist) in enumerate(histories.items()):
        color = f"C{i}"
        for phase, style in (("float", "-"), ("quant", "--")):
            recs = [h for h in hist if h.get("phase") == phase and h.get("epoch", -1) >= 0]
            if not recs:
                continue
            offset = 0 if phase == "float" else 1 + max(
                (h["epoch"] for h in hist if h.get("phase") == "float"), default=-1)
            ep = [offset + h["epoch"] + 1 for h in recs]
            label = name + (" (QAT)" if phase == "quant" else "")
            a1.plot(ep, [h["train_loss"] for h in recs], style, color=color, label=label)
            a2.plot(ep, [100 * h["val_acc"] for h in recs if "val_acc" in h], style,
                    color=color, label=label)
    a1.set_xlabel("epoch"), a1.set_ylabel("training loss"), a1.set_yscale("log")
    a2.set_xlabel("epoch"), a2.set_ylabel("validation accuracy (%)")
    for a in (a1, a2):
        a.grid(alpha=0.3)
    a2.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, out)


def plot_confusion(y_true, y_pred, keys: list[str], *, out, title: str = "") -> Path:
    """Row-normalised confusion matrix (per cent of each true class), class names on the axes."""
    plt = pyplot()
    m = confusion(y_true, y_pred, len(keys))
    rows = m.sum(1, keepdims=True)
    pct = 100 * m / np.maximum(rows, 1)
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    im = ax.imshow(pct, cmap="Blues", vmin=0, vmax=100)
    ax.set_xticks(range(len(keys)), keys, rotation=90, fontsize=7)
    ax.set_yticks(range(len(keys)), keys, fontsize=7)
    ax.set_xlabel("predicted"), ax.set_ylabel("true")
    acc = np.trace(m) / max(m.sum(), 1)
    ax.set_title((title + "\n" if title else "") + f"accuracy {100 * acc:.1f} % "
                 f"({int(m.sum())} samples)", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, label="% of the true class")
    return _save(fig, out)


def plot_ablation(panels, *, out, reference: str = "none (all on)") -> Path:
    """An ablation table as a picture, one panel per table: a row per variant (what is off),
    each seed's integer accuracy a dot and their mean a bar, against the row ``reference``
    (every augmentation on), whose mean is a vertical line and its seeds' range a band.
    ``panels`` is ``[(title, {label: [accuracy % of each seed, ...]}), ...]``, rows in the
    order given (top to bottom)."""
    if not panels:
        raise ValueError("plot_ablation: no panels")
    for title, rows in panels:
        if reference not in rows:
            raise ValueError(f"plot_ablation: panel {title!r} has no row {reference!r} "
                             f"(the reference); its rows: {', '.join(rows)}")
        empty = [k for k, v in rows.items() if not len(v)]
        if empty:
            raise ValueError(f"plot_ablation: panel {title!r}, rows without seeds: "
                             f"{', '.join(empty)}")
    plt = pyplot()
    heights = [len(rows) for _, rows in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(7.5, 0.9 + 0.36 * sum(heights)),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    lo = min(min(v) for _, rows in panels for v in rows.values())
    hi = max(max(v) for _, rows in panels for v in rows.values())
    for ax, (title, rows) in zip(axes[:, 0], panels):
        ref = rows[reference]
        ax.axvspan(min(ref), max(ref), color="0.9", zorder=0)
        ax.axvline(float(np.mean(ref)), color="0.4", lw=1, zorder=1)
        labels = list(rows)
        for y, k in enumerate(labels):
            v = np.asarray(rows[k], float)
            m = float(v.mean())
            color = "0.3" if k == reference else "C2" if m > np.mean(ref) else "C3"
            ax.barh(y, m - lo + 1, left=lo - 1, height=0.5, color=color, alpha=0.35,
                    zorder=2)
            ax.plot(v, np.full(v.size, y), "o", ms=4, color=color, zorder=3)
            ax.text(hi + 0.6, y, f"{m:.1f}", va="center", fontsize=8)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(lo - 1, hi + 2.5)
        ax.set_title(title, fontsize=9, loc="left")
        ax.grid(axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel("integer test accuracy (%): dots the seeds, bars and numbers their "
                           "mean; grey band: all on\ngreen: higher with it off (it costs), "
                           "red: lower with it off (it helps)", fontsize=8)
    fig.tight_layout()
    return _save(fig, out)
