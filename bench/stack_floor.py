"""The stack core's per-step floor on a bench network's workload, and the clock a throughput
target then needs.

    python -m bench.stack_floor [--network convdelrec] [--configs 32:2:4 32:4:4 64:4:8]
        [--target 40000]

A step of :class:`rtl.stack.StackCore` costs at least the slowest of its stages, step by step:
the input's set bits (one cycle each), each layer's update (``max(ceil(n / P), gap) + 1``,
``gap`` from :func:`rtl.stack_plan.stage_timing`, as the core has it) and each layer's incoming
spikes over its rows per cycle (``ceil(spikes / R) + 1``). The reference simulator's spikes on
the network's ``bench.boards`` workload give the floor's mean over steps; a configuration is
``LANES:R2:R3`` (the rows per cycle into the second hidden layer and into the read-out). The
built core's cycles (co-simulated) sit a little above its floor.
"""

from __future__ import annotations

import argparse
from math import ceil

import numpy as np

__all__ = ["floor", "main"]


def floor(net, work, lanes: int, rows: dict[int, int]) -> float:
    """Mean over the workload's steps of the stack core's per-step floor."""
    from rtl.stack_plan import stack_plan, stage_timing
    from sim.reference import simulate
    plans = {pl.layer: pl for pl in stack_plan(net)}
    per_step = []
    for x, forced, steps in work:
        trace = simulate(net, x, forced, steps=steps)
        xb = np.asarray(x, dtype=np.int64)
        bits = sum(((xb >> b) & 1).sum(axis=1) for b in range(int(xb.max()).bit_length() or 1))
        terms = [np.asarray(bits, dtype=float)]
        for l, layer in enumerate(net.layers[1:], 1):
            rec = plans[l].rec
            pad = (len(rec.weight) - 1) // 2 if rec is not None else 0
            gap = stage_timing(pad, lanes)[1]
            terms.append(np.full(steps, max(ceil(layer.n / lanes), gap) + 1.0))
            if l >= 2:
                s = np.asarray(trace.spikes[l - 1]).reshape(steps, -1).sum(axis=1)
                terms.append(np.ceil(s / rows.get(l, 1)) + 1)
        per_step.append(np.maximum.reduce(terms))
    return float(np.concatenate(per_step).mean())


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--network", default="convdelrec")
    ap.add_argument("--configs", nargs="+", default=["32:2:4", "32:4:4", "64:2:4", "64:4:8"],
                    metavar="LANES:R2:R3")
    ap.add_argument("--target", type=float, default=40000, help="samples per second")
    a = ap.parse_args(argv)
    from bench.boards import _network
    net, work = _network(a.network)
    steps = work[0][2]
    out = []
    print(f"{a.network}: the stack core's floor per step, and the clock for "
          f"{a.target:,.0f} samples/s of {steps} steps")
    print("| lanes | rows into layer 2 / 3 | floor cycles per step | clock needed (MHz) |")
    print("|---|---|---|---|")
    for c in a.configs:
        try:
            lanes, r2, r3 = (int(v) for v in c.split(":"))
        except ValueError:
            ap.error(f"--configs {c!r}: give LANES:R2:R3, e.g. 32:2:4")
        f = floor(net, work, lanes, {2: r2, 3: r3})
        mhz = f * a.target * steps / 1e6
        out.append({"lanes": lanes, "rows": {2: r2, 3: r3}, "floor": f, "clock_mhz": mhz})
        print(f"| {lanes} | {r2} / {r3} | {f:.1f} | {mhz:.1f} |")
    return out


if __name__ == "__main__":
    main()
