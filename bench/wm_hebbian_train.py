"""Training from a Hebbian or random start where least squares is imperfect (small network).

    python -m bench.wm_hebbian_train [--setting small|tiny] [--seeds 0 1 2]

Settings: ``small`` N=128, D=21, T=281, M=4, p_A=2e-3, 50 noise steps (300 teacher-forced
steps, evaluated every 20, then 200 free-running); ``tiny`` the demo's size where least
squares is noise-sensitive, N=32, D=8, T=64, M=2, p_A=0.035, 10 noise steps (300 + 300, both
evaluated every 10). ``--polish-steps K`` adds a third phase: K free-running steps with the
membrane-margin loss at a lower rate (lr 1e-3, selection on 8 trials, no early stop).

Per seed it prints the least-squares F1 (on the seed's trial and as the mean over the 10
unseen trials), the Hebbian F1 at gain 2 and 2.5, and for a Hebbian (gain 2.5) and a random
start: F1 after each phase and the final network on 10 unseen trials of fresh noise (mean and
minimum; the same trials as the least-squares figure). Float model,
:func:`model.wm.event.train` (which keeps the weights that recall best on the selection trials).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

__all__ = ["SETTINGS", "run_seed", "main"]

SETTINGS = {
    "small": dict(n=128, d=21, t=281, p=2e-3, pre=50, m=4, teacher=300, free=200, every=20),
    "tiny": dict(n=32, d=8, t=64, p=0.035, pre=10, m=2, teacher=300, free=300, every=10),
}


UNSEEN = [1000 + k for k in range(10)]


def _unseen(w, x, **kw) -> list[float]:
    from model.wm.event import recall
    return [recall(w, x, seed=s, **kw)[0] for s in UNSEEN]


def run_seed(seed: int, setting: str = "small", free: int | None = None,
             trials: int = 1, polish: int = 0) -> dict:
    from model.wm.event import TrainConfig, recall, train
    from model.wm.network import hebbian_init, least_squares_init, make_targets

    cfg = dict(SETTINGS[setting])
    if free is not None:
        cfg["free"] = free
    n, d, t, p, pre, m = (cfg[k] for k in ("n", "d", "t", "p", "pre", "m"))
    x = make_targets(m, n, t, p, seed=seed)
    kw = dict(pre=pre, p=p)
    w_ls = least_squares_init(x, d)
    out = dict(seed=seed, ls=recall(w_ls, x, seed=seed, **kw)[0],
               ls_unseen=float(np.mean(_unseen(w_ls, x, **kw))),
               hebbian_gain={g: recall(hebbian_init(x, d, gain=g), x, seed=seed, **kw)[0]
                        for g in (2.0, 2.5)})
    starts = {"hebbian": hebbian_init(x, d),
              "random": np.random.default_rng(seed).normal(0, 1 / (n * d * p), (n, n, d))}
    t0 = time.perf_counter()
    for name, w0 in starts.items():
        a = train(w0, x, TrainConfig(steps=cfg["teacher"], teacher=True, seed=seed,
                                     progress=False, eval_every=cfg["every"],
                                     eval_trials=trials, **kw))
        b = train(a["w"], x, TrainConfig(steps=cfg["free"], lr=3e-3, seed=seed,
                                         progress=False, eval_every=10, eval_trials=trials,
                                         **kw))
        out[name] = dict(teacher=a["f1"], trained=b["f1"])
        if polish:
            b = train(b["w"], x, TrainConfig(steps=polish, lr=1e-3, loss="margin",
                                             seed=seed + 100, progress=False, eval_every=10,
                                             eval_trials=8, stop_f1=None, **kw))
            out[name]["polished"] = b["f1"]
        u = _unseen(b["w"], x, **kw)
        out[name].update(unseen=float(np.mean(u)), unseen_min=float(np.min(u)))
    out["seconds"] = time.perf_counter() - t0
    return out


def main(argv=None) -> list[dict]:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--setting", choices=tuple(SETTINGS), default="small")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--free-steps", type=int, default=None,
                    help="free-running steps (default: the setting's)")
    ap.add_argument("--eval-trials", type=int, default=1,
                    help="trials whose mean F1 chooses the best weights (default 1)")
    ap.add_argument("--polish-steps", type=int, default=0,
                    help="free-running steps with the margin loss after the F1 phases")
    ap.add_argument("--json", default=None, help="also write the rows to this JSON file")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for seed in a.seeds:
        r = run_seed(seed, a.setting, a.free_steps, a.eval_trials, a.polish_steps)
        rows.append(r)
        hg = r["hebbian_gain"]
        print(f"seed {seed}: least squares {r['ls']:.3f} (unseen mean {r['ls_unseen']:.3f}); "
              f"Hebbian gain 2 {hg[2.0]:.3f}, 2.5 {hg[2.5]:.3f}; " + "; ".join(
                  f"{k} -> teacher {r[k]['teacher']:.3f}, trained {r[k]['trained']:.3f}"
                  + (f", polished {r[k]['polished']:.3f}" if "polished" in r[k] else "")
                  + f" (10 unseen trials: mean {r[k]['unseen']:.3f}, "
                    f"min {r[k]['unseen_min']:.3f})"
                  for k in ("hebbian", "random"))
              + f" [{r['seconds']:.0f} s]", flush=True)
    if a.json:
        import json
        with open(a.json, "w") as f:
            json.dump(dict(setting=a.setting, settings=SETTINGS[a.setting],
                           free_steps=a.free_steps, eval_trials=a.eval_trials,
                           polish_steps=a.polish_steps, unseen_seeds=UNSEEN, rows=rows),
                      f, indent=1, default=float)
    return rows


if __name__ == "__main__":
    main()
