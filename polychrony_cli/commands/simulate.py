"""`polychrony simulate`: run the integer reference simulator alone (no hardware)."""

from __future__ import annotations

import json
import sys

import numpy as np

from ..common import UserError, bounded, load_forced, load_inputs, load_net

__all__ = ["add_parser"]


def add_parser(sub) -> None:
    """Add ``simulate`` to the subcommands ``sub``."""
    p = sub.add_parser("simulate", help="run the integer reference simulator on the workload "
                                        "(or given inputs) and print spikes, predictions and "
                                        "the score",
                       description="Run the reference simulator, the definition of correct, "
                                   "on the workload saved beside the IR (or --inputs/--forced, "
                                   "or --random). Prints per sample the steps, the spikes of "
                                   "each spiking layer and the prediction, then the workload's "
                                   "score (recall F1 or accuracy).")
    p.add_argument("net", help="the IR file (.npz)")
    p.add_argument("--inputs", metavar="X.npy",
                   help="input frames: integers (samples, steps, n0) or (steps, n0)")
    p.add_argument("--forced", metavar="F.npy",
                   help="a forced raster for the network's forced layer: 0/1 (samples, "
                        "steps, n) or (steps, n)")
    p.add_argument("--random", action="store_true",
                   help="a random stimulus of --steps steps even when there is a workload")
    p.add_argument("--steps", type=bounded(int, 1), default=100,
                   help="steps of random stimulus (default 100)")
    p.add_argument("--seed", type=bounded(int, 0), default=0,
                   help="seed of the random stimulus (default 0)")
    p.add_argument("--count", type=bounded(int, 1), help="the first N samples only")
    p.add_argument("-o", "--out", metavar="TRACE.npz",
                   help="also save every sample's spikes and membranes (.npz, no pickles)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_simulate)


def _stimulus(args, net):
    """``(samples as (x, forced, steps), workload or None, words)``."""
    from model.ir import find_workload, workload_path
    if args.inputs or args.forced:
        if args.random:
            raise UserError("--random makes its own stimulus: drop --inputs/--forced")
        x = load_inputs(args.inputs, net, args.count) if args.inputs else None
        f = load_forced(args.forced, net, args.count) if args.forced else None
        if x is not None and f is not None and x.shape[:2] != f.shape[:2]:
            raise UserError(f"--inputs {x.shape[:2]} and --forced {f.shape[:2]} differ in "
                            "samples or steps")
        first = x if x is not None else f
        lf = net.forced_layers[0] if f is not None else None
        return [(None if x is None else x[k], {} if f is None else {lf: f[k]},
                 first.shape[1]) for k in range(len(first))], None, "the stimulus given"
    wl = None if args.random else find_workload(args.net, net)
    if wl is not None:
        if args.count:
            wl = wl.head(args.count)
        return ([(*wl.sample(i), wl.steps) for i in range(wl.samples)], wl,
                f"the workload beside the IR: {wl.describe()}")
    from sim.randnet import random_stimulus
    x, forced = random_stimulus(net, args.steps, args.seed)
    why = "--random" if args.random else f"no workload beside the IR: {workload_path(args.net)}"
    return [(x, forced, args.steps)], None, (f"{args.steps} steps of random stimulus "
                                             f"(seed {args.seed}; {why})")


def cmd_simulate(args) -> int:
    from sim.reference import simulate
    net = load_net(args.net)
    samples, wl, words = _stimulus(args, net)
    traces, rows = [], []
    from model.progress import progress
    for k, (x, forced, steps) in enumerate(progress(samples, desc="simulate", unit="sample",
                                                disable=args.json or len(samples) < 2,
                                                leave=False, file=sys.stderr)):
        tr = simulate(net, x, forced or None, steps=steps)
        traces.append(tr)
        rows.append({"sample": k, "steps": steps, "prediction": tr.prediction,
                     "spikes": {str(l): int(s.sum()) for l, s in tr.spikes.items()}})
    score = wl.score(traces) if wl is not None else None
    if args.out:
        arrays = {}
        for k, tr in enumerate(traces):
            for l, s in tr.spikes.items():
                arrays[f"s{k}.spikes.{l}"] = np.asarray(s, np.uint8)
            for l, v in tr.v.items():
                arrays[f"s{k}.v.{l}"] = np.asarray(v, np.int64)
        if net.layers[-1].threshold is None:
            arrays["prediction"] = np.array([tr.prediction for tr in traces], np.int64)
        np.savez_compressed(args.out, **arrays)
    if args.json:
        print(json.dumps({"stimulus": words, "samples": rows, "score": score,
                          "trace": args.out}, indent=1))
        return 0
    print(f"{net.name}: {words}")
    for r in rows:
        spikes = ", ".join(f"layer {l}: {n}" for l, n in r["spikes"].items()) or "none"
        pred = "" if r["prediction"] is None else f", prediction {r['prediction']}"
        print(f"  sample {r['sample']}: {r['steps']} steps, spikes {spikes}{pred}")
    if score is not None and score["value"] is not None:
        print(f"  {score['metric']} {score['value']:.4f} over {len(rows)} samples of the "
              "workload")
    if args.out:
        print(f"  trace: {args.out} (s<k>.spikes.<layer>, s<k>.v.<layer>)")
    return 0
