"""Co-simulation speed, Icarus against Verilator, on the benchmark networks (on demand).

    python -m bench.cosim_speed [--steps 100] [--lanes 16] [--out bench/results/cosim_speed.txt]

For each network: Verilog generation, the simulator's build (Icarus: iverilog; Verilator:
C++ compile) and the co-simulation of one ``--steps`` sample, every step compared against the
reference (zero mismatches asserted). Prints seconds per phase and Verilator's speed-up.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


from rtl.export import generate
from sim.cosim import run_cosim
from sim.reference import simulate
from sim.shaped import shd_input, shd_network


def measure(name, net, x, forced, steps, lanes, work):
    t0 = time.monotonic()
    generate(net, work / "v", lanes=lanes)
    gen = time.monotonic() - t0
    trace = simulate(net, x, forced, steps=steps)
    rows = []
    for sim in ("icarus", "verilator"):
        r = run_cosim(work / "v", trace, x, forced, simulator=sim, work_dir=work / "run",
                      seed=0, idle=0.0, stall=0.0)
        if not r.ok:
            raise SystemExit(f"{name} on {sim}: {r.describe()}")
        rows.append((sim, r.build_seconds, r.seconds, r.cycles))
    return gen, rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--lanes", type=int, default=16)
    ap.add_argument("--out", default="bench/results/cosim_speed.txt",
                    help="also write the table to this file ('' for none)")
    args = ap.parse_args()
    lines = [f"co-simulation of one {args.steps}-step sample, lanes {args.lanes} "
             f"(seconds; every step bit-exact)",
             f"{'network':<28} {'simulator':<10} {'generate':>8} {'build':>7} {'simulate':>8} "
             f"{'total':>7} {'cycles':>8} {'kcycles/s':>9}"]
    x = shd_input(args.steps)
    for kind in ("conv", "dense"):
        with tempfile.TemporaryDirectory() as tmp:
            gen, rows = measure(f"SHD {kind}", shd_network(kind), x, None, args.steps,
                                args.lanes, Path(tmp))
        sims = {}
        for sim, build, run, cycles in rows:
            sims[sim] = run
            lines.append(f"{'SHD 140-256-256r-20 ' + kind:<28} {sim:<10} {gen:>8.1f} "
                         f"{build:>7.1f} {run:>8.1f} {gen + build + run:>7.1f} {cycles:>8} "
                         f"{cycles / run / 1e3:>9.1f}")
        lines.append(f"{'':<28} Verilator simulates {sims['icarus'] / sims['verilator']:.1f}x "
                     f"faster than Icarus")
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
