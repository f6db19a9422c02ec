"""`polychrony fuzz`: many random networks, bit-exact against the reference."""

from __future__ import annotations

import json
from pathlib import Path
from ..common import bounded



__all__ = ["add_parser"]


def add_parser(sub) -> None:
    """Add ``fuzz`` to the subcommands ``sub``."""
    p = sub.add_parser("fuzz", help="many random networks, bit-exact against the reference")
    p.add_argument("--count", type=bounded(int, 1), default=1000)
    p.add_argument("--start", type=bounded(int, 0), default=0, help="first seed")
    p.add_argument("--steps", type=bounded(int, 1), default=100)
    p.add_argument("--profile", choices=("full", "wm"), default="full")
    p.add_argument("--sim", choices=("amaranth", "icarus", "verilator"), default="amaranth")
    p.add_argument("--jobs", type=bounded(int, 1), default=2, help="worker processes")
    p.add_argument("--work", default="build/fuzz", help="cocotb work directory")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_fuzz)


def _fuzz_one(job: tuple) -> dict:
    """Check one random network; returns a JSON-able outcome (runs in a worker process)."""
    seed, profile, steps, simulator, work = job
    from rtl.export import generate
    from rtl.pysim import run_core
    from sim.cosim import run_cosim
    from sim.randnet import random_network, random_stimulus
    from model.ir import Trace
    from sim.reference import simulate

    net = random_network(seed, profile=profile)
    lanes = (1, 2, 3, 4, 8)[seed % 5]
    x, forced = random_stimulus(net, steps, seed)
    trace = simulate(net, x, forced, steps=steps)
    out = {"seed": seed, "lanes": lanes, "profile": profile}
    if simulator == "amaranth":
        run = run_core(net, steps, x, forced, lanes=lanes, idle=0.2, stall=0.2, seed=seed)
        m = trace.first_mismatch(Trace.from_outputs(run.spikes, run.v))
        out["mismatch"] = None if m is None else str(m)
    else:
        d = Path(work) / f"{profile}-{seed}"
        generate(net, d / "verilog", lanes=lanes)
        res = run_cosim(d / "verilog", trace, x, forced, simulator=simulator, work_dir=d,
                        seed=seed, idle=0.2, stall=0.2)
        out["mismatch"] = None if res.ok else res.describe()
    return out


def cmd_fuzz(args) -> int:
    from concurrent.futures import ProcessPoolExecutor
    from tqdm import tqdm

    from model.progress import progress

    seeds = range(args.start, args.start + args.count)
    jobs = [(s, args.profile, args.steps, args.sim, args.work) for s in seeds]
    failures = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for res in progress(pool.map(_fuzz_one, jobs), total=len(jobs), unit="net",
                        desc=f"fuzz {args.sim}", disable=args.json):
            if res["mismatch"]:
                failures.append(res)
                if not args.json:
                    tqdm.write(f"seed {res['seed']} lanes {res['lanes']}: {res['mismatch']}")
    summary = {"simulator": args.sim, "profile": args.profile, "networks": len(jobs),
               "steps": args.steps, "failures": failures}
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(f"{len(jobs)} random {args.profile} networks x {args.steps} steps on {args.sim}: "
              f"{len(failures)} with a mismatch")
    return 1 if failures else 0
