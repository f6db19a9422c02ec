"""Reproduce the working-memory headline (Perrinet 2026): F1 over fresh seeds, float and integer.

    python -m bench.wm_repro [--settings paper code] [--seeds 0 1 2 3 4] [--bits 8 6 4]
                             [--check-reference] [--out bench/results/wm_repro.json]

Settings (reference note ``working-memory.md``): ``paper`` is the text's N=512, D=41, M=16,
T=1000, p_A=2e-3, beta=0.8; ``code`` is the notebook's N=1024, p_A=1e-3, beta=0.7. Both use
the notebook's protocol: 50 steps of Bernoulli(p_A) noise, the D-step cue OR-ed into the
emitted spikes, free recall, micro-F1 over the T - D free steps of all M patterns. beta is
``beta_int / 256`` (205 -> 0.8008, 179 -> 0.6992): the integer contract's leak.

Per seed: fresh targets, least-squares weights (gain 1.5), recall in float64 (event-driven
engine, equal to :class:`model.wm.network.WMNet`), quantisation to each ``--bits`` and recall in the
integer engine (bit-identical to :func:`sim.reference.simulate`; ``--check-reference`` also
runs the reference simulator itself on every pattern and asserts equal spikes). Results are
appended per (setting, seed) to the JSON file, so an interrupted run keeps what it finished.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["SETTINGS", "run_seed", "main"]

SETTINGS = {
    "paper": dict(n=512, d=41, m=16, t=1000, p=2e-3, beta=205, pre=50),
    "code": dict(n=1024, d=41, m=16, t=1000, p=1e-3, beta=179, pre=50),
}


def run_seed(setting: str, seed: int, bits=(8,), check_reference: bool = False,
             gain: float = 1.5) -> dict:
    import torch

    from model.quantise import quantise_wm
    from model.wm.event import recall, run_trials
    from model.wm.network import least_squares_init, make_targets
    from model.wm.recall import trial_forcing

    s = SETTINGS[setting]
    n, d, m, t, p, beta, pre = (s[k] for k in ("n", "d", "m", "t", "p", "beta", "pre"))
    t0 = time.perf_counter()
    x = make_targets(m, n, t, p, seed=seed)
    rep = {}
    w = least_squares_init(x, d, gain=gain, report=rep)
    t_init = time.perf_counter() - t0
    t1 = time.perf_counter()
    f1, per = recall(w, x, pre=pre, p=p, seed=seed, beta=beta, dtype=torch.float64)
    out = dict(setting=setting, seed=seed, **s, gain=gain, load=m * (t - d) / (n * d),
               init_s=t_init, solver=rep, f1_float=f1, per_pattern_float=per.tolist(),
               eval_float_s=time.perf_counter() - t1, int={})
    for b in bits:
        net = quantise_wm(w, w_bits=b, beta=beta, beta_shift=8, reset="zero")
        t2 = time.perf_counter()
        fi, pi = recall(net, x, mode="int", pre=pre, p=p, seed=seed)
        r = dict(f1=fi, per_pattern=pi.tolist(), eval_s=time.perf_counter() - t2,
                 threshold=int(net.layers[1].threshold), v_bits=int(net.layers[1].v_bits),
                 acc_bits=int(net.layers[1].acc_bits))
        if check_reference:
            from sim.reference import simulate

            f = trial_forcing(x, d, pre=pre, p=p, seed=seed)
            s_ev = run_trials(net, f, mode="int").s.numpy()
            t3 = time.perf_counter()
            for mu in range(m):
                ref = simulate(net, forced={1: f[mu].astype(np.uint8)}, steps=f.shape[1])
                if not np.array_equal(ref.spikes[1].astype(bool), s_ev[mu]):
                    bad = np.flatnonzero((ref.spikes[1].astype(bool) != s_ev[mu]).any(1))[0]
                    raise AssertionError(f"{setting} seed {seed} {b}-bit pattern {mu}: the "
                                         f"integer engine departs from the reference at "
                                         f"step {bad}")
            r["reference_checked"] = True
            r["reference_s"] = time.perf_counter() - t3
        out["int"][str(b)] = r
    return out


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--settings", nargs="+", default=["paper", "code"], choices=list(SETTINGS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--bits", nargs="+", type=int, default=[8, 6, 4])
    ap.add_argument("--check-reference", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="bench/results/wm_repro.json")
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    out = Path(a.out)
    done = json.loads(out.read_text()) if out.exists() else []
    have = {(r["setting"], r["seed"]) for r in done}
    for setting in a.settings:
        for seed in a.seeds:
            if (setting, seed) in have:
                continue
            print(f"[wm_repro] {setting} seed {seed} ...", file=sys.stderr, flush=True)
            r = run_seed(setting, seed, tuple(a.bits), a.check_reference)
            done.append(r)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(done, indent=1) + "\n")
            ints = " ".join(f"{b}-bit {v['f1']:.4f}" for b, v in r["int"].items())
            print(f"[wm_repro] {setting} seed {seed}: float {r['f1_float']:.4f}, {ints} "
                  f"(init {r['init_s']:.1f} s)", file=sys.stderr, flush=True)
    print(f"{'setting':<7} {'seeds':>5} {'F1 float':>16} " +
          " ".join(f"{f'F1 {b}-bit':>16}" for b in a.bits))
    for setting in a.settings:
        rs = [r for r in done if r["setting"] == setting and r["seed"] in a.seeds]
        if not rs:
            continue
        def cell(vals):
            v = np.asarray(vals)
            return f"{v.mean():.4f}+-{v.std():.4f}"
        line = f"{setting:<7} {len(rs):>5} {cell([r['f1_float'] for r in rs]):>16} "
        line += " ".join(f"{cell([r['int'][str(b)]['f1'] for r in rs if str(b) in r['int']]):>16}"
                         for b in a.bits)
        print(line)
    return done


if __name__ == "__main__":
    main()
