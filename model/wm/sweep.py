"""Parameter sweeps of the working-memory network: grids x seeds, resumable, in parallel.

The grids (what to run) are in :mod:`model.wm.grids`, the perturbed trials in
:mod:`model.wm.perturb`; this module runs the points and summarises the results.

Points that differ only in evaluation settings (:data:`~model.wm.grids.EVAL_KEYS`: weight
bits, perturbation, level, modes) share their weights: they are run as one *group* (one
least-squares solve, then every evaluation), so a robustness or bit-width scan at the paper
size costs one solve per seed. ``cache_dir`` additionally keeps the float weights (float32
``.npy``) across grids.

Runaway guard: a failing network often fires at ~50 % (false alarms everywhere), and the
event-driven engine then costs as much as the dense product. Each recall first runs
:data:`PROBE_STEPS` free steps (20, then 100); a pattern firing above
``max(RUNAWAY_RATE, 20 p)`` there is stopped and its F1 replaced by a rigorous upper bound
(``runaway_<mode>`` counts such patterns in the record). Bounds are only ever reported for
recalls that already failed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from model.quantise import quantise_wm
from model.wm.event import TrainConfig, run_trials, train
from model.wm.grids import EVAL_KEYS, GridError, expand_grid, load_grid, load_ratio, point_key
from model.wm.network import hebbian_init, least_squares_init, make_targets
from model.wm.perturb import perturbed_trial
from model.wm.recall import f1_from_counts

__all__ = ["point_weights", "PROBE_STEPS", "RUNAWAY_RATE", "run_point_group", "read_results",
           "run_grid", "METRICS", "summarise", "format_summary", "capacity", "format_capacity"]

# --------------------------------------------------------------------------------------------
# One group of points (same weights)

def _weight_key(settings: dict, seed: int) -> str:
    return point_key({k: v for k, v in settings.items() if k not in EVAL_KEYS}, seed)


def point_weights(s: dict, seed: int, targets: np.ndarray,
                  cache_dir: str | None) -> tuple[np.ndarray, dict]:
    """Float weights of a point (from the cache when there), and an info dict."""
    info: dict = {}
    path = None
    if cache_dir:
        h = hashlib.sha256(_weight_key(s, seed).encode()).hexdigest()[:20]
        path = Path(cache_dir) / f"w-{h}.npy"
        if path.exists():
            info["cached"] = True
            return np.load(path).astype(np.float64), info
    t0 = time.perf_counter()
    if s["init"] == "hebbian":
        w = hebbian_init(targets, s["d"])      # its own default rule and gain
    else:
        w = least_squares_init(targets, s["d"], gain=s["gain"])
    if s["init"] == "train":
        cfg = TrainConfig(steps=s["train_steps"], lr=s["train_lr"], loss="f1", teacher=True,
                          pre=s["pre"], p=s["p"], seed=seed, beta=s["beta"],
                          beta_shift=s["beta_shift"], reset=s["reset"], progress=False)
        w = train(w, targets, cfg)["w"]
    info["init_seconds"] = time.perf_counter() - t0
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + f".{os.getpid()}.tmp.npy")
        np.save(tmp, w.astype(np.float32))
        tmp.replace(path)
        # What the evaluations see must not depend on whether the cache was hit.
        w = w.astype(np.float32).astype(np.float64)
    return w, info


#: Runaway guard: free-recall steps run first; a pattern whose own-spike rate there exceeds
#: ``max(RUNAWAY_RATE, 20 p)`` is not run to the end (event-driven cost grows with activity:
#: a network firing at 50 % costs as much as the dense product). Its counts are bounded
#: instead, which bounds its F1 from above (see :func:`_recall_counts`).
PROBE_STEPS = (20, 100)
RUNAWAY_RATE = 0.05


def _counts(targets, spikes, d, pre, lo, hi, keep=None):
    """Per-pattern (tp, fp, fn) of target steps ``[lo, hi)`` (``d <= lo``) against own
    spikes, on the neurons ``keep`` (all when None)."""
    want = np.asarray(targets, dtype=bool)[:, :, lo:hi].transpose(0, 2, 1)
    got = np.asarray(spikes, dtype=bool)[:, pre + lo:pre + hi]
    if keep is not None:
        want, got = want[:, :, keep], got[:, :, keep]
    return np.stack([(want & got).sum((1, 2)), (~want & got).sum((1, 2)),
                     (want & ~got).sum((1, 2))], 1).astype(np.int64)


def _recall_counts(w_or_net, forced, targets, s, mode, silence, lif):
    """Run the trial; return per-pattern counts (all neurons, and active neurons when some
    are silenced) and the bool mask of patterns stopped as runaway.

    A runaway pattern is stopped after a probe of ``PROBE_STEPS`` free steps (stages). As the dynamics are
    causal, those steps are the full run's first steps, so its counts are bounded: tp <=
    tp_probe + (target spikes after the probe), fp >= fp_probe, fn >= fn_probe; F1 computed
    from these is an upper bound of the true F1 (typically < 0.1 for a runaway)."""
    d, pre, t = s["d"], s["pre"], s["t"]
    keep = None if silence is None else ~silence
    kw = dict(mode=mode, silence=silence, **(lif if mode == "float" else {}))
    m = forced.shape[0]
    runaway = np.zeros(m, dtype=bool)
    counts = np.zeros((m, 3), dtype=np.int64)
    counts_a = np.zeros((m, 3), dtype=np.int64)
    todo = np.arange(m)
    x = np.asarray(targets, dtype=bool)
    stages = (PROBE_STEPS,) if isinstance(PROBE_STEPS, int) else tuple(PROBE_STEPS)
    for probe in stages:
        probe_end = d + probe
        if probe_end >= t or not todo.size:
            break
        sp = run_trials(w_or_net, forced[todo, :pre + probe_end], **kw).s.numpy()
        rate = sp[:, pre + d:pre + probe_end].mean((1, 2))
        stop = rate > max(RUNAWAY_RATE, 20 * s["p"])
        if stop.any():
            idx = todo[stop]
            rest = x[idx][:, :, probe_end:]
            c = _counts(x[idx], sp[stop], d, pre, d, probe_end)
            c[:, 0] += rest.sum((1, 2))
            counts[idx] = c
            if keep is not None:
                ca = _counts(x[idx], sp[stop], d, pre, d, probe_end, keep)
                ca[:, 0] += rest[:, keep].sum((1, 2))
                counts_a[idx] = ca
            runaway[idx] = True
        todo = todo[~stop]
    if todo.size:
        sp = run_trials(w_or_net, forced[todo], **kw).s.numpy()
        counts[todo] = _counts(targets[todo], sp, d, pre, d, t)
        if keep is not None:
            counts_a[todo] = _counts(targets[todo], sp, d, pre, d, t, keep)
    return counts, (counts_a if keep is not None else None), runaway


def _f1s(counts):
    per = np.array([f1_from_counts(*map(int, c)) for c in counts])
    return f1_from_counts(*map(int, counts.sum(0))), per


def run_point_group(group: dict) -> list[dict]:
    """Run points that share weights: ``group = {"seed", "points": [point, ...],
    "cache_dir"}``. Returns one JSON-able record per point."""
    import torch

    torch.set_num_threads(1)
    seed = group["seed"]
    s0 = group["points"][0]["settings"]
    t0 = time.perf_counter()
    targets = make_targets(s0["m"], s0["n"], s0["t"], s0["p"], seed=seed)
    w, winfo = point_weights(s0, seed, targets, group.get("cache_dir"))
    t_init = time.perf_counter() - t0
    lif = dict(beta=s0["beta"], beta_shift=s0["beta_shift"], reset=s0["reset"])
    nets: dict[int, object] = {}
    records = []
    for pt in group["points"]:
        s = pt["settings"]
        t1 = time.perf_counter()
        forced, silence, pinfo = perturbed_trial(targets, s, seed)
        rec = {"key": pt["key"], "grid": group.get("grid", ""), "settings": s, "seed": seed,
               "axes": pt["axes"], "load": load_ratio(s), **pinfo,
               "init_seconds": round(t_init, 3), "w_max": float(np.abs(w).max())}
        rec.update({k: v for k, v in winfo.items() if k == "cached"})
        for mode in s["modes"]:
            if mode == "float":
                model = w
            else:
                bits = s["w_bits"]
                if bits not in nets:
                    try:
                        nets[bits] = quantise_wm(w, w_bits=bits, **lif)
                    except ValueError as e:
                        nets[bits] = e
                net = nets[bits]
                if isinstance(net, Exception):
                    rec["f1_int"] = rec["f1_int_pp"] = None
                    rec["error_int"] = str(net)
                    continue
                model = net
            counts, counts_a, runaway = _recall_counts(model, forced, targets, s, mode,
                                                       silence, lif)
            f1, per = _f1s(counts)
            rec[f"f1_{mode}"] = f1
            rec[f"f1_{mode}_pp"] = float(per.mean())
            rec[f"f1_{mode}_pp_min"] = float(per.min())
            rec[f"runaway_{mode}"] = int(runaway.sum())
            if counts_a is not None:
                rec[f"f1_{mode}_active"] = _f1s(counts_a)[0]
        rec["eval_seconds"] = round(time.perf_counter() - t1, 3)
        rec["seconds"] = round(rec["eval_seconds"] + (t_init if not records else 0.0), 3)
        records.append(rec)
    return records


# --------------------------------------------------------------------------------------------
# Results file and the runner

def read_results(path) -> list[dict]:
    """Records of a JSONL results file ([] if it does not exist). A torn last line (a killed
    writer) is dropped from the file; a bad line elsewhere is an error naming file and line."""
    p = Path(path)
    if not p.exists():
        return []
    raw = p.read_bytes()
    lines = raw.split(b"\n")
    records, good_bytes = [], 0
    for i, line in enumerate(lines):
        if not line.strip():
            good_bytes += len(line) + (1 if i < len(lines) - 1 else 0)
            continue
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict) or "key" not in rec:
                raise ValueError("not a results record (no 'key')")
        except ValueError as e:
            if i == len(lines) - 1:     # torn final line: no newline after it
                with open(p, "r+b") as fh:
                    fh.truncate(good_bytes)
                print(f"{p}: dropped an incomplete last line", file=sys.stderr)
                break
            raise GridError(f"{p}: line {i + 1} is not a results record: {e}") from None
        records.append(rec)
        good_bytes += len(line) + 1
    return records


def _groups(points: list[dict], grid_name: str, cache_dir: str | None) -> list[dict]:
    by: dict[str, dict] = {}
    for pt in points:
        wk = _weight_key(pt["settings"], pt["seed"])
        g = by.setdefault(wk, {"seed": pt["seed"], "points": [], "grid": grid_name,
                               "cache_dir": cache_dir})
        g["points"].append(pt)
    # Most expensive first (a long solve should not start last).
    return sorted(by.values(), key=lambda g: -_cost(g["points"][0]["settings"]))


def _cost(s: dict) -> float:
    side = min(s["m"] * (s["t"] - s["d"]), s["n"] * s["d"])
    return side ** 3 / 1e9 + s["n"] * s["n"] * s["d"] / 1e6


def _init_worker() -> None:
    import torch
    torch.set_num_threads(1)


def run_grid(grid, out, *, jobs: int = 2, seeds: str | None = None,
             cache_dir: str | None = None, progress: bool = True) -> dict:
    """Run every point of ``grid`` (name, file or dict) not already in the JSONL file ``out``.

    Points run in ``jobs`` spawned worker processes (one thread each; ``jobs=1`` runs in this
    process); each finished group of points is appended to ``out`` at once, so an interrupted
    run resumes where it stopped. Returns ``{"grid", "points", "done_before", "computed",
    "seconds", "records"}`` (records: every record of this grid in ``out``).
    """
    from ..progress import progress as progress_bar

    g = load_grid(grid, seeds=seeds)
    points = expand_grid(g)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {r["key"] for r in read_results(out)}
    todo = [pt for pt in points if pt["key"] not in done]
    groups = _groups(todo, g["name"], cache_dir)
    t0 = time.perf_counter()
    computed = 0
    # Worker processes inherit the environment: one BLAS / OpenMP thread each.
    if jobs > 1:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, "1")
    bar = progress_bar(total=len(todo), unit="pt", desc=f"sweep {g['name']}", disable=not progress,
               file=sys.stderr)
    with open(out, "a") as fh:
        def write(recs):
            nonlocal computed
            for r in recs:
                fh.write(json.dumps(r) + "\n")
            fh.flush()
            computed += len(recs)
            bar.update(len(recs))

        if jobs <= 1 or len(groups) <= 1:
            for grp in groups:
                write(run_point_group(grp))
        else:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor, as_completed

            with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"),
                                     initializer=_init_worker) as pool:
                futs = [pool.submit(run_point_group, grp) for grp in groups]
                for fut in as_completed(futs):
                    write(fut.result())
    bar.close()
    keys = {pt["key"] for pt in points}
    records = [r for r in read_results(out) if r["key"] in keys]
    return {"grid": g, "points": len(points), "done_before": len(points) - len(todo),
            "computed": computed, "seconds": time.perf_counter() - t0, "records": records}


# --------------------------------------------------------------------------------------------
# Summary

METRICS = ("f1_float", "f1_int", "f1_float_pp", "f1_int_pp", "f1_float_active", "f1_int_active")


def summarise(records: list[dict], by: list[str] | None = None,
              metrics=METRICS) -> list[dict]:
    """Mean, sample standard deviation (ddof 1; 0 for one value) and ``count`` per value of the
    settings ``by`` (default: each record's ``axes``), over seeds. A metric that is missing
    or None in a record is left out of that metric's statistics (``n_<metric>`` counts the
    values used). Rows are sorted by the ``by`` values."""
    if not records:
        return []
    if by is None:
        by = list(dict.fromkeys(a for r in records for a in r.get("axes", [])))
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        k = tuple(json.dumps(r["settings"].get(b)) for b in by)
        groups.setdefault(k, []).append(r)
    rows = []
    for k, recs in groups.items():
        row = {b: recs[0]["settings"].get(b) for b in by}
        row["count"] = len(recs)
        row["load"] = float(np.mean([load_ratio(r["settings"]) for r in recs]))
        for mname in metrics:
            vals = [r[mname] for r in recs if r.get(mname) is not None]
            if not vals and not any(mname in r for r in recs):
                continue
            row[f"n_{mname}"] = len(vals)
            row[f"{mname}_mean"] = float(np.mean(vals)) if vals else None
            row[f"{mname}_std"] = (float(np.std(vals, ddof=1)) if len(vals) > 1 else
                                   (0.0 if vals else None))
            row[f"{mname}_min"] = float(np.min(vals)) if vals else None
            row[f"{mname}_median"] = float(np.median(vals)) if vals else None
        row["seconds_mean"] = float(np.mean([r.get("seconds", 0.0) for r in recs]))
        rows.append(row)

    def sort_key(row):
        return tuple((0, row[b]) if isinstance(row[b], (int, float)) else (1, str(row[b]))
                     for b in by)
    return sorted(rows, key=sort_key)


def _fmt(mean, std, n) -> str:
    if mean is None:
        return "-"
    return f"{mean:.4f} ± {std:.4f} ({n})"


def format_summary(rows: list[dict], by: list[str], metrics=METRICS) -> str:
    """A Markdown table of :func:`summarise` rows: the ``by`` values, load, and each metric
    (of ``metrics``, when present) as ``mean ± std (n)``."""
    metrics = [m for m in metrics if any(f"{m}_mean" in r for r in rows)]
    head = [*by, "load", *metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [f"{r[b]:g}" if isinstance(r[b], float) else str(r[b]) for b in by]
        cells.append(f"{r['load']:.3f}")
        for m in metrics:
            cells.append(_fmt(r.get(f"{m}_mean"), r.get(f"{m}_std"), r.get(f"n_{m}", 0)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def capacity(rows: list[dict], *, metric: str = "f1_float", threshold: float = 0.99,
             group_by=("n", "d", "t")) -> list[dict]:
    """M_max per (n, d, t): the largest scanned ``m`` whose mean ``metric`` is >= threshold
    (None if none is; ``m_max_median`` the same with the median over seeds; ``m_break`` the
    smallest scanned ``m`` whose mean is below 0.5: where recall has collapsed), with
    ``x = n d / (T - d)`` and the least-squares estimate ``0.8 x``. ``rows`` come from
    :func:`summarise` by ``[*group_by, "m"]``."""
    out: dict[tuple, dict] = {}
    for r in rows:
        k = tuple(r[g] for g in group_by)
        e = out.setdefault(k, {**dict(zip(group_by, k)), "m_max": None, "m_max_median": None,
                               "m_break": None, "m_scanned": []})
        e["m_scanned"].append(r["m"])
        mean = r.get(f"{metric}_mean")
        if mean is not None and mean < 0.5 and (e.get("m_break") is None or r["m"] < e["m_break"]):
            e["m_break"] = r["m"]
        for stat, field in (("mean", "m_max"), ("median", "m_max_median")):
            v = r.get(f"{metric}_{stat}")
            if v is not None and v >= threshold and (e[field] is None or r["m"] > e[field]):
                e[field] = r["m"]
    res = []
    for e in out.values():
        n, d, t = e["n"], e["d"], e["t"]
        e["x"] = n * d / (t - d)
        e["ls_estimate"] = 0.8 * e["x"]
        res.append(e)
    return sorted(res, key=lambda e: e["x"])


def format_capacity(caps: list[dict]) -> str:
    lines = ["| N | D | T | N·D/(T−D) | 0.8·N·D/(T−D) | M_max (mean F1 ≥ 0.99) "
             "| M_max (median F1 ≥ 0.99) | first M with mean F1 < 0.5 | M scanned |",
             "|---|---|---|---|---|---|---|---|---|"]

    def show(v, e):
        return str(v) if v is not None else "< " + str(min(e["m_scanned"]))
    for e in caps:
        lines.append(f"| {e['n']} | {e['d']} | {e['t']} | {e['x']:.1f} | {e['ls_estimate']:.1f} "
                     f"| {show(e['m_max'], e)} | {show(e.get('m_max_median'), e)} "
                     f"| {e.get('m_break') if e.get('m_break') is not None else '–'} "
                     f"| {', '.join(str(m) for m in sorted(e['m_scanned']))} |")
    return "\n".join(lines)
