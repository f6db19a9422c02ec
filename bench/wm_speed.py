"""Working memory at the paper setting: our implementation against the dense baseline, same run.

    python -m bench.wm_speed [--n 512 --d 41 --m 16 --t 1000 --p 2e-3 --pre 50 --seed 0]
                             [--threads 2] [--skip-pinv] [--out bench/results/wm_speed.json]

Three phases, each in its own spawned child process (:func:`bench.peak.run_measured`: wall
time of the call, peak resident memory of the child), ours then the baseline's
(:mod:`model.wm.dense`, the paper's formulation: dense context -> ``Linear``, autograd BPTT,
``torch.linalg.pinv``):

- ``init``: least-squares weights. Ours: :func:`model.wm.network.least_squares_init` (sparse
  contexts, Cholesky of the Gram matrix, float64 refinement). Baseline: ``pinv`` of the dense ``C``.
- ``step``: one full-batch training step over all M patterns (forward, loss 1 - soft F1,
  gradient by BPTT through the spikes with the fast-sigmoid surrogate, SGD update). Ours:
  :func:`model.wm.event.loss_and_grad`; both start from our least-squares W.
- ``step_triangle``: our step with the compact triangle surrogate (half-width 1/4 of the
  threshold), whose spike path is computed only near threshold (the baseline keeps the fast
  sigmoid: its cost does not depend on the surrogate).
- ``eval``: one evaluation trial (noise, cue, free recall) of all M patterns, float32. Ours:
  :func:`model.wm.event.recall`.

It prints each phase side by side with the speed-up and memory ratio, checks the F1 values
agree (same weights: equal F1; and the recall of the baseline's pinv weights in our engine),
reports the relative difference of the two gradients, and the time to F1 = 1.0 (ours: init
plus one evaluation, when the least-squares weights already recall perfectly).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["main"]


def ours_init(n, d, m, t, p, seed, gain):
    from model.wm.network import least_squares_init, make_targets

    return least_squares_init(make_targets(m, n, t, p, seed=seed), d, gain=gain)


def ours_eval(w, n, d, m, t, p, seed, pre):
    import torch

    from model.wm.event import recall
    from model.wm.network import make_targets

    f1, per = recall(w, make_targets(m, n, t, p, seed=seed), pre=pre, p=p, seed=seed,
                     dtype=torch.float32)
    return dict(f1=f1, per_pattern=per.tolist())


def ours_step(w, n, d, m, t, p, seed, pre, lr, surrogate="fast_sigmoid", slope=15.0):
    import torch

    from model.wm.event import loss_and_grad
    from model.wm.network import make_targets
    from model.wm.recall import trial_forcing

    x = make_targets(m, n, t, p, seed=seed)
    f = trial_forcing(x, d, pre=pre, p=p, seed=seed)
    out = loss_and_grad(w, x, f, pre=pre, surrogate=surrogate, slope=slope,
                        dtype=torch.float32)
    w_new = np.asarray(w, dtype=np.float32) - lr * out["grad"].numpy()
    return dict(loss=out["loss"], f1=out["f1"], forward_s=out["forward_s"],
                backward_s=out["backward_s"], grad=out["grad"].numpy().astype(np.float64),
                max_update=float(np.abs(w_new - np.asarray(w, np.float32)).max()))


def dense_step(w, n, d, m, t, p, seed, pre, lr):
    from model.wm.dense import dense_train_step
    from model.wm.network import make_targets

    r = dense_train_step(w, make_targets(m, n, t, p, seed=seed), pre=pre, p=p, seed=seed,
                         lr=lr)
    return dict(loss=r["loss"], f1=r["f1"], forward_s=r["forward_s"],
                backward_s=r["backward_s"], grad=r["grad"])


def main(argv=None) -> dict:
    from bench import peak
    from bench import wm_dense
    from bench import wm_speed as me   # phases pickled by importable name

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, typ, default in (("n", int, 512), ("d", int, 41), ("m", int, 16),
                               ("t", int, 1000), ("p", float, 2e-3), ("pre", int, 50),
                               ("seed", int, 0), ("gain", float, 1.5), ("lr", float, 1e-3),
                               ("threads", int, 2)):
        ap.add_argument(f"--{name}", type=typ, default=default)
    ap.add_argument("--skip-pinv", action="store_true",
                    help="skip the baseline's pinv (~15 min, ~7.4 GiB at the paper setting)")
    ap.add_argument("--out", default="bench/results/wm_speed.json", help="'' for none")
    a = ap.parse_args(argv)
    prob = (a.n, a.d, a.m, a.t, a.p, a.seed)
    rows: dict[str, dict] = {}

    def run(label, fn, *args):
        print(f"[wm_speed] {label} ...", file=sys.stderr, flush=True)
        meas = peak.run_measured(fn, *args, threads=a.threads)
        print(f"[wm_speed] {label}: {meas.seconds:.2f} s, peak {meas.peak_bytes / 2**30:.2f} "
              f"GiB (cpu/wall {meas.cpu_seconds / max(meas.seconds, 1e-9):.2f})",
              file=sys.stderr, flush=True)
        return meas

    def rec(meas, **extra):
        return dict(seconds=meas.seconds, peak_gib=meas.peak_bytes / 2**30,
                    added_gib=meas.added_bytes / 2**30,
                    cpu_per_wall=meas.cpu_seconds / max(meas.seconds, 1e-9), **extra)

    t_start = time.time()
    init = run("ours init", me.ours_init, *prob, a.gain)
    w = init.result
    ev = run("ours eval", me.ours_eval, w, *prob, a.pre)
    st = run("ours step", me.ours_step, w, *prob, a.pre, a.lr)
    st_tri = run("ours step, triangle surrogate", me.ours_step, w, *prob, a.pre, a.lr,
                 "triangle", 4.0)
    st_tri.result.pop("grad")
    dev = run("dense eval", wm_dense.phase_eval, w, *prob, a.pre, "zero", "float32")
    dst = run("dense step", me.dense_step, w, *prob, a.pre, a.lr)
    g_ours, g_dense = st.result.pop("grad"), dst.result.pop("grad")
    grad_rel = float(np.linalg.norm(g_ours - g_dense) / max(np.linalg.norm(g_dense), 1e-300))
    rows["eval"] = dict(ours=rec(ev, f1=ev.result["f1"]), dense=rec(dev, f1=dev.result["f1"]))
    rows["step"] = dict(ours=rec(st, **st.result), dense=rec(dst, **dst.result),
                        grad_rel_diff=grad_rel)
    rows["step_triangle"] = dict(ours=rec(st_tri, **st_tri.result), dense=rows["step"]["dense"])
    rows["init"] = dict(ours=rec(init))
    if not a.skip_pinv:
        pinv = run("dense pinv", wm_dense.phase_pinv, *prob, a.gain, "float32")
        again = run("ours eval of the pinv weights", me.ours_eval, pinv.result, *prob, a.pre)
        rows["init"]["dense"] = rec(pinv, f1=again.result["f1"])
        rows["init"]["max_abs_w_diff"] = float(np.abs(pinv.result - w).max())
        rows["init"]["max_abs_w"] = float(np.abs(w).max())
    rows["init"]["ours"]["f1"] = ev.result["f1"]
    to_f1 = init.seconds + ev.seconds if ev.result["f1"] == 1.0 else None

    print(f"\nworking memory n={a.n} d={a.d} m={a.m} T={a.t} p={a.p} pre={a.pre} "
          f"seed={a.seed}, {a.threads} threads, {os.cpu_count()} cpus")
    print(f"{'phase':<13} {'ours s':>9} {'dense s':>9} {'speed-up':>9} {'ours GiB':>9} "
          f"{'dense GiB':>9} {'F1 ours':>8} {'F1 dense':>8}")
    for name in ("init", "step", "step_triangle", "eval"):
        r = rows[name]
        o, dn = r["ours"], r.get("dense")
        if dn is None:
            print(f"{name:<13} {o['seconds']:>9.2f} {'-':>9} {'-':>9} {o['peak_gib']:>9.2f}")
            continue
        r["speedup"] = dn["seconds"] / o["seconds"]
        print(f"{name:<13} {o['seconds']:>9.2f} {dn['seconds']:>9.2f} {r['speedup']:>8.1f}x "
              f"{o['peak_gib']:>9.2f} {dn['peak_gib']:>9.2f} {o['f1']:>8.4f} {dn['f1']:>8.4f}")
    s = rows["step"]
    print(f"step: ours forward {s['ours']['forward_s']:.2f} s + backward "
          f"{s['ours']['backward_s']:.2f} s; dense forward {s['dense']['forward_s']:.2f} s + "
          f"backward {s['dense']['backward_s']:.2f} s; loss {s['ours']['loss']:.6f} / "
          f"{s['dense']['loss']:.6f}; |g_ours - g_dense| / |g_dense| = {grad_rel:.2e}")
    if "max_abs_w_diff" in rows["init"]:
        print(f"init: max|W_ours - W_pinv| = {rows['init']['max_abs_w_diff']:.2e} "
              f"(max|W| = {rows['init']['max_abs_w']:.3f})")
    print("time to F1 = 1.0 (ours: least squares + one evaluation): "
          + (f"{to_f1:.1f} s" if to_f1 is not None else f"not reached (F1 {ev.result['f1']})"))
    doc = dict(settings=vars(a), phases=rows, time_to_f1_s=to_f1,
               finished=time.strftime("%Y-%m-%d %H:%M:%S"),
               wall_s=time.time() - t_start, cpus=os.cpu_count())
    if a.out:
        out = Path(a.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {out}")
    return doc


if __name__ == "__main__":
    main()
