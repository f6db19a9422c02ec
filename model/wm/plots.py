"""Figures of the working-memory sweeps (matplotlib, Agg backend; PNGs for the docs).

- :func:`plot_raster`: one pattern's target against the recalled raster (hits, misses, false
  alarms) over a few hundred steps.
- :func:`f1_over_time` / :func:`plot_f1_time`: F1 in a sliding window after the cue.
- :func:`plot_scan`: mean F1 ± std over seeds against one scanned setting, with the
  least-squares capacity ``M (T - D) = 0.8 N D`` marked on M and N scans.
- :func:`plot_robustness`: one panel per perturbation.
- :func:`plot_capacity`: M_max against ``N D / (T - D)`` with the 0.8 line.
- :func:`plot_sweep`: picks one of the above from the records of a grid (CLI ``--plot``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model.plots import pyplot, save_png
from model.wm import grids
from model.wm.event import run_trials
from model.wm.network import make_targets
from model.wm.perturb import perturbed_trial
from model.wm.recall import score_recall
from model.wm.sweep import (capacity, format_capacity, format_summary, point_weights,
                            read_results, summarise)

__all = ["plot_raster", "f1_over_time", "plot_f1_time", "plot_scan", "plot_robustness",
           "plot_capacity", "plot_sweep"]

_LABELS = {"m": "patterns M", "n": "neurons N", "d": "delays D", "t": "pattern length T",
           "p": "rate p_A", "w_bits": "weight bits", "level": "level"}
_PERTURB = {"flip": "cue bits flipped (fraction of N·D)", "move": "cue spikes moved (fraction)",
            "truncate": "cue steps kept (of D)", "silence": "neurons silenced",
            "noise": "extra forced spikes during recall (rate q)"}


def plot_raster(targets: np.ndarray, spikes: np.ndarray, *, d: int, pre: int, pattern: int = 0,
                start: int = 0, stop: int | None = None, neurons: int | None = 128,
                out, title: str = "") -> Path:
    """Target (pattern ``pattern``, steps ``[start, stop)`` of the target) against the
    network's own spikes; hits black, misses (target, no spike) red circles, false alarms
    (spike, no target) blue crosses; the cue window ``[0, d)`` shaded, its (forced) target
    spikes grey."""
    plt = pyplot()
    x = np.asarray(targets, dtype=bool)[pattern]            # (n, T)
    n, t = x.shape
    stop = t if stop is None else min(stop, t)
    s = np.asarray(spikes, dtype=bool)[pattern, pre:pre + t].T   # (n, T)
    rows = slice(0, n if neurons is None else min(neurons, n))
    x, s = x[rows, start:stop], s[rows, start:stop]
    free = (np.arange(start, stop) >= d)[None, :]   # the cue's spikes are forced, not own
    cue = x & ~free
    hit, miss, fa = x & s & free, x & ~s & free, ~x & s
    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.axvspan(start, min(d, stop), color="0.9", label="cue (forced)")
    for mask, style, lab in ((cue, dict(c="0.5", marker="|", s=30), "cue spike"),
                             (hit, dict(c="k", marker="|", s=30), "hit"),
                             (miss, dict(facecolors="none", edgecolors="r", marker="o", s=18), "miss"),
                             (fa, dict(c="b", marker="x", s=18), "false alarm")):
        yy, tt = np.nonzero(mask)
        ax.scatter(tt + start, yy, label=f"{lab} ({mask.sum()})", **style)
    ax.set_xlim(start, stop)
    ax.set_xlabel("target step")
    ax.set_ylabel("neuron")
    ax.set_title(title or f"pattern {pattern}: target vs recall")
    ax.legend(loc="upper right", fontsize=7, ncol=4)
    return save_png(fig, out)


def f1_over_time(targets: np.ndarray, spikes: np.ndarray, *, d: int, pre: int,
                 window: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """F1 of each pattern in a sliding window of ``window`` steps over the free-recall part
    (target steps ``d .. T``), then the mean over patterns. Returns (window centres in target
    steps, mean F1). A window with no target and no recalled spike scores 1."""
    x = np.asarray(targets, dtype=bool)
    m, n, t = x.shape
    want = x[:, :, d:].transpose(0, 2, 1)                        # (m, T - d, n)
    got = np.asarray(spikes, dtype=bool)[:, pre + d:pre + t]
    tp = (want & got).sum(2)
    fp = (~want & got).sum(2)
    fn = (want & ~got).sum(2)
    if window > tp.shape[1]:
        window = tp.shape[1]
    k = np.ones(window)

    def slide(a):
        return np.stack([np.convolve(r, k, mode="valid") for r in a])
    tp_w, fp_w, fn_w = slide(tp), slide(fp), slide(fn)
    den = 2 * tp_w + fp_w + fn_w
    f1 = np.where(den == 0, 1.0, 2 * tp_w / np.maximum(den, 1))
    centres = d + np.arange(f1.shape[1]) + window / 2
    return centres, f1.mean(0)


def plot_f1_time(curves: dict, *, out, d: int, title: str = "") -> Path:
    """``curves``: label -> (centres, mean F1) from :func:`f1_over_time`."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3))
    for lab, (c, f) in curves.items():
        ax.plot(c, f, label=lab)
    ax.axvline(d, color="0.6", ls=":", label="end of cue")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("target step (window centre)")
    ax.set_ylabel("F1 in window (mean over patterns)")
    ax.set_title(title or "F1 over time after the cue")
    ax.legend(fontsize=7)
    return save_png(fig, out)


def _series(rows, axis, metric):
    xs = np.array([r[axis] for r in rows], dtype=float)
    mu = np.array([np.nan if r.get(f"{metric}_mean") is None else r[f"{metric}_mean"]
                   for r in rows])
    sd = np.array([np.nan if r.get(f"{metric}_std") is None else r[f"{metric}_std"]
                   for r in rows])
    return xs, mu, sd


def plot_scan(rows: list[dict], axis: str, *, out, base: dict | None = None,
              metrics=("f1_float", "f1_int"), title: str = "", logx: bool | None = None) -> Path:
    """Mean ± std of each metric against ``axis``; ``rows`` from
    :func:`model.wm.sweep.summarise` by ``[axis]``. On an M or N scan ``base`` (the fixed
    settings) places the least-squares capacity edge ``M (T - D) = 0.8 N D``."""
    plt = pyplot()
    rows = sorted(rows, key=lambda r: r[axis])
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for i, metric in enumerate(metrics):
        if not any(f"{metric}_mean" in r for r in rows):
            continue
        xs, mu, sd = _series(rows, axis, metric)
        ax.errorbar(xs * (1 + 0.01 * i), mu, yerr=sd, marker="o", ms=4, capsize=3,
                    label=metric.replace("f1_", "F1 ").replace("_pp", " per-pattern"))
    if base is not None and axis in ("m", "n"):
        n, d, t, m = base.get("n"), base.get("d"), base.get("t"), base.get("m")
        edge = (0.8 * n * d / (t - d)) if axis == "m" else (m * (t - d) / (0.8 * d))
        ax.axvline(edge, color="r", ls="--", lw=1,
                   label=f"M(T−D) = 0.8·N·D ({axis.upper()} = {edge:.1f})")
    if logx if logx is not None else axis == "p":
        ax.set_xscale("log")
    ax.set_ylim(-0.03, 1.05)
    ax.set_xlabel(_LABELS.get(axis, axis))
    ax.set_ylabel("recall F1 (mean ± std over seeds)")
    n_seeds = max((r["count"] for r in rows), default=0)
    ax.set_title(title or f"{_LABELS.get(axis, axis)} scan ({n_seeds} seeds)", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(alpha=0.3)
    return save_png(fig, out)


def plot_robustness(rows: list[dict], *, out, d: int = 41, metrics=("f1_float", "f1_int"),
                    title: str = "") -> Path:
    """One panel per perturbation (rows from ``summarise(records, by=["perturb",
    "level"])``); the unperturbed F1 is the first point of each panel (level 0 / full cue)."""
    plt = pyplot()
    kinds = [k for k in _PERTURB if any(r["perturb"] == k for r in rows)]
    clean = [r for r in rows if r["perturb"] == "none"]
    fig, axes = plt.subplots(1, len(kinds), figsize=(3.1 * len(kinds), 3), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        rs = sorted([r for r in rows if r["perturb"] == kind], key=lambda r: r["level"])
        for i, metric in enumerate(metrics):
            pts = list(rs)
            if clean and f"{metric}_mean" in clean[0]:
                c = dict(clean[0])
                c["level"] = d if kind == "truncate" else 0
                pts = sorted([c] + pts, key=lambda r: r["level"])
            xs, mu, sd = _series(pts, "level", metric)
            ax.errorbar(xs, mu, yerr=sd, marker="o", ms=3, capsize=2,
                        label=metric.replace("f1_", "F1 "))
            act = f"{metric}_active"
            if kind == "silence" and any(r.get(f"{act}_mean") is not None for r in rs):
                xs, mu, sd = _series(rs, "level", act)
                ax.errorbar(xs, mu, yerr=sd, marker="s", ms=3, capsize=2, ls=":",
                            label=f"{metric.replace('f1_', 'F1 ')} (active only)")
        if kind == "silence":
            ax.legend(fontsize=6, loc="lower left")
        if kind in ("flip", "noise"):
            ax.set_xscale("symlog", linthresh=1e-4)
        if kind == "silence":
            ax.set_xscale("symlog", linthresh=4)
        if kind == "truncate":
            ax.invert_xaxis()
        ax.set_ylim(-0.03, 1.05)
        ax.set_xlabel(_PERTURB[kind], fontsize=8)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("recall F1 (mean ± std)")
    axes[0][0].legend(fontsize=6, loc="lower left")
    if title:
        fig.suptitle(title, fontsize=9)
    return save_png(fig, out)


def plot_capacity(caps: list[dict], *, out, title: str = "") -> Path:
    """M_max (largest M with mean F1 >= 0.99) against ``N D / (T - D)``, and the line
    ``0.8 N D / (T - D)``; ``caps`` from :func:`model.wm.sweep.capacity`."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    xs = np.array([c["x"] for c in caps])
    for c in caps:
        if c["m_max"] is not None:
            ax.scatter(c["x"], c["m_max"], color="k", zorder=3)
            ax.annotate(f"N{c['n']} D{c['d']} T{c['t']}", (c["x"], c["m_max"]), fontsize=6,
                        xytext=(3, -9), textcoords="offset points")
        else:
            ax.scatter(c["x"], min(c["m_scanned"]), marker="v", color="k", zorder=3)
        if c.get("m_break") is not None:
            ax.scatter(c["x"], c["m_break"], marker="x", color="r", zorder=3)
    ax.scatter([], [], color="k", label="M_max: mean F1 ≥ 0.99 (▼: below the range)")
    ax.scatter([], [], marker="o", facecolors="none", edgecolors="k",
               label="M_max by the median over seeds")
    ax.scatter([], [], marker="x", color="r", label="first M with mean F1 < 0.5")
    for c in caps:
        if c.get("m_max_median") is not None and c["m_max_median"] != c["m_max"]:
            ax.scatter(c["x"], c["m_max_median"], marker="o", facecolors="none",
                       edgecolors="k", zorder=3)
    grid = np.linspace(0, xs.max() * 1.1, 50)
    ax.plot(grid, 0.8 * grid, "r--", label="0.8·N·D/(T−D)")
    ax.plot(grid, grid, color="0.6", ls=":", label="N·D/(T−D)")
    ax.set_xlabel("N·D/(T−D)")
    ax.set_ylabel("M_max (mean F1 ≥ 0.99)")
    ax.set_title(title or "capacity against the least-squares limit", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return save_png(fig, out)


def plot_sweep(records: list[dict], out, *, by: list[str] | None = None, title: str = "") -> Path:
    """A figure for the records of one grid: robustness panels when it varies ``perturb``,
    a capacity plot when it varies ``m`` together with ``n``/``d``/``t``, a scan otherwise."""
    if by is None:
        by = list(dict.fromkeys(a for r in records for a in r.get("axes", [])))
    if not records:
        raise ValueError("no records to plot")
    if "perturb" in by:
        return plot_robustness(summarise(records, by=["perturb", "level"]), out=out,
                               d=records[0]["settings"]["d"], title=title)
    if "m" in by and len(by) > 1 and set(by) <= {"m", "n", "d", "t"}:
        rows = summarise(records, by=["n", "d", "t", "m"])
        return plot_capacity(capacity(rows), out=out, title=title)
    if len(by) != 1:
        raise ValueError(f"cannot plot a grid over {by}: one axis, or perturb/level, or m "
                         f"with n/d/t")
    axis = by[0]
    rows = summarise(records, by=[axis])
    base = {k: v for k, v in records[0]["settings"].items() if k != axis}
    return plot_scan(rows, axis, out=out, base=base, title=title)


# --------------------------------------------------------------------------------------------
# The figures and tables of docs/working-memory.md

def paper_trial_figures(img_dir, *, seed: int = 0, cache_dir: str | None = None) -> list[Path]:
    """Raster and F1-over-time figures at the paper setting (one least-squares solve, or the
    weights cached by a sweep run with the same ``cache_dir``)."""
    s = dict(grids.DEFAULTS)
    x = make_targets(s["m"], s["n"], s["t"], s["p"], seed=seed)
    w, _ = point_weights(s, seed, x, cache_dir)
    lif = dict(beta=s["beta"], beta_shift=s["beta_shift"], reset=s["reset"])
    img = Path(img_dir)

    curves, outs = {}, []
    for label, kind, level in (("full cue", "none", 0), ("cue cut to 30 of 41 steps", "truncate", 30),
                               ("25 % of cue spikes moved", "move", 0.25),
                               ("recall noise q = 1e-3", "noise", 1e-3)):
        f, sil, _ = perturbed_trial(x, {**s, "perturb": kind, "level": level}, seed)
        sp = run_trials(w, f, silence=sil, **lif).s.numpy()
        curves[label] = f1_over_time(x, sp, d=s["d"], pre=s["pre"], window=50)
        if kind == "none":
            outs.append(plot_raster(x, sp, d=s["d"], pre=s["pre"], start=0, stop=300,
                                    neurons=None, out=img / "wm_raster.png",
                                    title=f"N=512, D=41, M=16, T=1000, seed {seed}: pattern 0, "
                                          f"first 300 steps"))
        if kind == "truncate":
            per = score_recall(x, sp, s["d"], pre=s["pre"])[1]
            worst = int(np.argmin(per))
            outs.append(plot_raster(x, sp, d=s["d"], pre=s["pre"], pattern=worst, start=0,
                                    stop=300, neurons=None, out=img / "wm_raster_truncated.png",
                                    title=f"cue cut to 30 of 41 steps: pattern {worst} "
                                          f"(F1 {per[worst]:.3f}; {int((per > 0.99).sum())} of "
                                          f"{len(per)} patterns recalled)"))
    outs.append(plot_f1_time(curves, out=img / "wm_f1_time.png", d=s["d"],
                             title=f"paper setting, seed {seed}: F1 in 50-step windows"))
    return outs


def main(argv=None) -> int:
    """``python -m model.wm.plots RESULTS_DIR IMG_DIR [--trial] [--cache DIR]``: a figure per
    ``wm_*.jsonl`` results file, the capacity figure, and (``--trial``) the paper-setting raster
    and F1-over-time figures; prints the Markdown tables."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m model.wm.plots")
    ap.add_argument("results")
    ap.add_argument("img")
    ap.add_argument("--trial", action="store_true")
    ap.add_argument("--cache")
    a = ap.parse_args(argv)
    for f in sorted(Path(a.results).glob("wm_*.jsonl")):
        recs = read_results(f)
        if not recs:
            continue
        by = list(dict.fromkeys(x for r in recs for x in r.get("axes", [])))
        out = Path(a.img) / f"{f.stem}.png"
        try:
            plot_sweep(recs, out, by=by, title=f"{f.stem}: {_setting(recs[0]['settings'], by)}")
        except ValueError as e:
            print(f"{f}: no figure ({e})")
        print(f"\n### {f.stem} ({len(recs)} points)\n")
        if "m" in by and len(by) > 1:
            rows = summarise(recs, by=["n", "d", "t", "m"])
            print(format_summary(rows, ["n", "d", "t", "m"], metrics=("f1_float",)))
            print()
            print(format_capacity(capacity(rows)))
        else:
            print(format_summary(summarise(recs, by=by), by,
                                    metrics=("f1_float", "f1_int", "f1_float_active",
                                             "f1_int_active")))
        secs = sum(r.get("seconds", 0.0) for r in recs)
        print(f"\n(worker time {secs / 60:.1f} min)")
    if a.trial:
        for p in paper_trial_figures(a.img, cache_dir=a.cache):
            print(f"wrote {p}")
    return 0


def _setting(s: dict, by) -> str:
    names = {"n": "N", "d": "D", "m": "M", "t": "T", "p": "p_A", "w_bits": "bits"}
    return ", ".join(f"{v}={s[k]:g}" for k, v in names.items() if k not in by)


if __name__ == "__main__":
    raise SystemExit(main())
