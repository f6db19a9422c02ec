"""Benchmark of the dense working-memory baseline (:mod:`model.wm.dense`) against our model.

    python -m bench.wm_dense --n 512 --d 41 --m 16 --t 1000 --p 2e-3 --pre 50 --seed 0 \\
        --threads 2 [--phases pinv,step,eval] [--init pinv|ours] [--dtype float32|float64]

Each phase of :func:`main` runs in its own spawned child process through
:func:`bench.peak.run_measured`, so every phase reports its own wall time and peak resident
memory; results go to ``bench/results/wm_dense.json`` (phases of later runs with the same
settings are merged into the file).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from model.wm.dense import dense_eval, dense_pinv_init, dense_train_step
from model.wm.network import least_squares_init, make_targets

__all__ = ["phase_pinv", "phase_init_ours", "phase_eval", "phase_step", "main"]

DTYPES = {"float32": torch.float32, "float64": torch.float64}


# --------------------------------------------------------------------------------------------
# Benchmark phases (top level: each runs in its own spawned child)

def phase_pinv(n, d, m, t, p, seed, gain, dtype_name):
    targets = make_targets(m, n, t, p, seed=seed)
    return dense_pinv_init(targets, d, gain=gain, dtype=DTYPES[dtype_name])


def phase_init_ours(n, d, m, t, p, seed, gain):
    return least_squares_init(make_targets(m, n, t, p, seed=seed), d, gain=gain)


def phase_eval(w, n, d, m, t, p, seed, pre, reset, dtype_name):
    targets = make_targets(m, n, t, p, seed=seed)
    f1, per = dense_eval(w, targets, pre=pre, p=p, seed=seed, reset=reset,
                         dtype=DTYPES[dtype_name])
    return dict(f1=f1, per_pattern=per.tolist())


def phase_step(w, n, d, m, t, p, seed, pre, reset, dtype_name, lr):
    targets = make_targets(m, n, t, p, seed=seed)
    r = dense_train_step(w, targets, pre=pre, p=p, seed=seed, lr=lr, reset=reset,
                         dtype=DTYPES[dtype_name])
    g = r["grad"]
    return dict(loss=r["loss"], f1=r["f1"], forward_s=r["forward_s"],
                backward_s=r["backward_s"], grad_abs_max=float(np.abs(g).max()),
                grad_norm=float(np.linalg.norm(g)),
                max_update=float(np.abs(r["w"] - np.asarray(w, dtype=r["w"].dtype)).max()))


def _record(meas, **extra) -> dict:
    return dict(seconds=meas.seconds, peak_bytes=meas.peak_bytes, base_bytes=meas.base_bytes,
                cpu_seconds=meas.cpu_seconds, **extra)


def main(argv=None) -> dict:
    from bench import peak, wm_dense as me  # pickle the phases by their importable name

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--d", type=int, default=41)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--t", type=int, default=1000)
    ap.add_argument("--p", type=float, default=2e-3)
    ap.add_argument("--pre", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gain", type=float, default=1.5)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--reset", choices=("zero", "subtract"), default="zero")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--phases", default="pinv,step,eval",
                    help="comma-separated subset of pinv, step, eval")
    ap.add_argument("--init", choices=("pinv", "ours"), default="pinv",
                    help="where step/eval take W from: the dense pinv phase, or "
                         "model.wm.network.least_squares_init (fast; measured as phase "
                         "'init_ours'); "
                         "with 'ours' the pinv phase (if asked) runs last")
    ap.add_argument("--dtype", choices=tuple(DTYPES), default="float32")
    ap.add_argument("--out", default="bench/results/wm_dense.json", help="'' for none")
    a = ap.parse_args(argv)
    phases = [x for x in a.phases.split(",") if x]
    bad = set(phases) - {"pinv", "step", "eval"}
    if bad:
        ap.error(f"unknown phases {sorted(bad)}")

    settings = dict(n=a.n, d=a.d, m=a.m, t=a.t, p=a.p, pre=a.pre, seed=a.seed, gain=a.gain,
                    lr=a.lr, reset=a.reset, dtype=a.dtype, threads=a.threads,
                    load=a.m * (a.t - a.d) / (a.n * a.d))
    prob = (a.n, a.d, a.m, a.t, a.p, a.seed)
    results: dict[str, dict] = {}
    w = None
    command = "python -m bench.wm_dense " + " ".join(sys.argv[1:] if argv is None else argv)

    def run(name, fn, *args):
        load0 = os.getloadavg()
        print(f"[wm_dense] phase {name} ...", file=sys.stderr, flush=True)
        meas = peak.run_measured(fn, *args, threads=a.threads)
        print(f"[wm_dense] phase {name}: {meas.seconds:.1f} s, peak "
              f"{meas.peak_bytes / 2**30:.2f} GiB", file=sys.stderr, flush=True)
        return meas, dict(loadavg_before=load0, loadavg_after=os.getloadavg(),
                          finished=time.strftime("%Y-%m-%d %H:%M:%S"), command=command)

    need_w = any(x in phases for x in ("step", "eval"))
    order = [x for x in ("pinv", "eval", "step") if x in phases]
    if a.init == "ours":
        order = [x for x in order if x != "pinv"] + (["pinv"] if "pinv" in phases else [])
        if need_w:
            meas, info = run("init_ours", me.phase_init_ours, *prob, a.gain)
            w = meas.result
            results["init_ours"] = _record(meas, f1=None, **info)
    elif need_w and "pinv" not in order:
        order = ["pinv"] + order  # W comes from the dense pinv phase
    for name in order:
        if name == "pinv":
            meas, info = run("pinv", me.phase_pinv, *prob, a.gain, a.dtype)
            extra = {}
            if w is not None:
                extra["max_abs_diff_vs_ours"] = float(np.abs(meas.result - w).max())
            else:
                w = meas.result
            results["pinv"] = _record(meas, f1=None, **extra, **info)
        elif name == "eval":
            meas, info = run("eval", me.phase_eval, w, *prob, a.pre, a.reset, a.dtype)
            results["eval"] = _record(meas, **meas.result, **info)
        else:
            meas, info = run("step", me.phase_step, w, *prob, a.pre, a.reset, a.dtype, a.lr)
            results["step"] = _record(meas, **meas.result, **info)
        results[name]["w_from"] = None if name == "pinv" else a.init

    print(f"dense baseline  n={a.n} d={a.d} m={a.m} T={a.t} p={a.p} pre={a.pre} "
          f"seed={a.seed} {a.dtype} threads={a.threads} (load {settings['load']:.3f})")
    print(f"{'phase':<10} {'seconds':>9} {'cpu/wall':>8} {'peak GiB':>9} {'added GiB':>9} "
          f"{'F1':>7}  notes")
    for name, r in results.items():
        f1 = "" if r.get("f1") is None else f"{r['f1']:.4f}"
        notes = ""
        if name == "step":
            notes = (f"forward {r['forward_s']:.1f} s, backward {r['backward_s']:.1f} s, "
                     f"loss {r['loss']:.4f}")
        elif "max_abs_diff_vs_ours" in r:
            notes = f"max|W - W_ours| = {r['max_abs_diff_vs_ours']:.2e}"
        print(f"{name:<10} {r['seconds']:>9.2f} {r['cpu_seconds'] / r['seconds']:>8.2f} "
              f"{r['peak_bytes'] / 2**30:>9.2f} "
              f"{(r['peak_bytes'] - r['base_bytes']) / 2**30:>9.2f} {f1:>7}  {notes}")

    doc = dict(settings=settings, phases={})
    if a.out:
        out = Path(a.out)
        if out.exists():
            try:
                old = json.loads(out.read_text())
                if old.get("settings") == settings:
                    doc = old
            except (OSError, ValueError):
                pass
        doc["machine"] = dict(cpus=os.cpu_count(), torch=torch.__version__,
                              numpy=np.__version__, platform=sys.platform)
        doc["phases"].update(results)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {out}")
    return dict(settings=settings, phases=results)


if __name__ == "__main__":
    main()
