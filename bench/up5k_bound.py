"""The iCE40UP5K's SPRAM-port bound on ConvDelRec throughput.

    python -m bench.up5k_bound [--net bench/networks/convdelrec_k31_w4.npz] [--samples 8]
                               [--lean-lanes 2 4]

The UP5K's four SPRAM blocks (16K x 16 bits each) are the only memory large enough for the
feed-forward weights of the 140-256-256-20 network; each reads one 16-bit word per cycle. Every
input event reads a row of 256 layer-1 weights, every layer-1 spike a row of 256 layer-2
weights, every layer-2 spike a row of 20 read-out weights (the K-tap recurrent kernel is tiny
and lives in logic). With all four ports busy every cycle, a sample needs at least
(weights read x w_bits) / 64 cycles: that bounds the samples per second at any clock, whatever
the rest of the core does. Counts come from the integer reference on test samples of the
embedded set in the network's window. ``--lean-lanes P ...`` also simulates
:class:`rtl.lean.LeanCore` at each lane count with the host link's serial read-out on the same
samples (bit-exact against the reference, a minute or two per sample) and prints its cycles
beside the bound.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

#: Bits the four UP5K SPRAM blocks deliver per cycle.
SPRAM_BITS_PER_CYCLE = 4 * 16


def spram_bound(net, xs) -> dict:
    """Mean weight reads per sample of ``net`` on inputs ``xs`` and the cycles they need."""
    from sim.reference import simulate

    reads = []
    for x in xs:
        tr = simulate(net, x)
        per = 0
        for p in net.projections:
            if p.kind != "dense":
                continue
            n_post = net.layers[p.dst].n
            events = (x > 0).sum() if p.src == 0 else tr.spikes[p.src].sum()
            per += int(events) * n_post
        reads.append(per)
    w_bits = max(p.w_bits for p in net.projections if p.kind == "dense")
    mean = float(np.mean(reads))
    return {"weight_reads": mean, "w_bits": w_bits,
            "cycles": mean * w_bits / SPRAM_BITS_PER_CYCLE, "steps": xs.shape[1]}


def main(argv=None) -> int:
    from model.ir import load
    from model.audio.pack import default_data
    from model.audio.shd import bin_counts, load as load_shd

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--net", default=str(ROOT / "bench/networks/convdelrec_k31_w4.npz"))
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--clocks", type=float, nargs="*", default=[24.0, 30.0, 36.0],
                    help="clocks in MHz")
    ap.add_argument("--lean-lanes", type=int, nargs="*", default=[],
                    help="also simulate the lean core at these lane counts")
    args = ap.parse_args(argv)
    net = load(args.net)
    steps = int(net.meta.get("steps", 136))
    xs = bin_counts(load_shd(default_data()[1]), steps=steps).x[:args.samples].astype(np.int64)
    b = spram_bound(net, xs)
    print(f"{Path(args.net).name}: {b['weight_reads']:,.0f} weight reads of {b['w_bits']} bits "
          f"per {b['steps']}-step sample (mean of {len(xs)} test samples) -> at least "
          f"{b['cycles']:,.0f} cycles per sample with all 4 SPRAM ports busy")
    for f in args.clocks:
        print(f"  at {f:g} MHz: at most {f * 1e6 / b['cycles']:,.0f} samples/s")
    for lanes in args.lean_lanes:
        from polychrony_cli.steps import measure_cycles
        from rtl.cores import CORES
        cps, _, steps = measure_cycles(CORES["lean"], net, [(x, None, steps) for x in xs],
                                       lanes=lanes)
        per = cps * steps
        print(f"lean core, {lanes} lanes: {per:,.0f} cycles per sample "
              f"({cps:.1f} per step, bit-exact), {b['cycles'] / per:.2f} of the bound's rate")
        for f in args.clocks:
            print(f"  at {f:g} MHz: {f * 1e6 / per:,.0f} samples/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
