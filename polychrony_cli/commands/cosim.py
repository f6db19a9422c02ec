"""`polychrony cosim`: co-simulate the generated Verilog against the reference."""

from __future__ import annotations

import json

from ..common import (Progress, add_core_arguments, bounded, check_supported, load_inputs,
                      load_net, make_safe, parse_memories, parse_rows)
from ..steps import cosim

__all__ = ["add_parser"]


def add_parser(sub) -> None:
    """Add ``cosim`` to the subcommands ``sub``."""
    p = sub.add_parser("cosim", help="co-simulate the Verilog against the reference")
    p.add_argument("net")
    p.add_argument("--sim", action="append", choices=("icarus", "verilator"),
                   help="simulator (repeatable; default icarus)")
    p.add_argument("--steps", type=bounded(int, 1), default=100,
                   help="steps of random stimulus (when there is no workload beside the IR, "
                        "or with --random)")
    p.add_argument("--inputs", metavar="X.npy",
                   help="run these input frames: integers of shape (samples, steps, n0), e.g. "
                        "from 'polychrony data frames' (default: the workload saved beside the "
                        "IR by training, else a random stimulus)")
    p.add_argument("--random", action="store_true",
                   help="a random stimulus of --steps steps even when there is a workload")
    p.add_argument("--count", type=bounded(int, 1),
                   help="with --inputs or the workload: the first N "
                                             "samples only")
    p.add_argument("--seed", type=bounded(int, 0), default=0)
    p.add_argument("--waves", action="store_true",
                   help="record every signal (Icarus: FST, Verilator: VCD); a mismatch's "
                        "report names the file and the simulation time of the divergence")
    p.add_argument("--idle", type=float, default=0.2, help="input idle-cycle probability")
    p.add_argument("--stall", type=float, default=0.2, help="output back-pressure probability")
    p.add_argument("--work", default="build/cosim", help="work directory (traces, logs)")
    add_core_arguments(p)
    p.add_argument("--lanes", type=bounded(int, 1), default=1, help="neurons updated per cycle")
    p.add_argument("--memory", action="append", metavar="NAME=KIND",
                   help="memory kind of a weight array: block, lut or loaded (the testbench "
                        "streams the load image first) (repeatable; default automatic)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_cosim)


def _cosim_samples(args, net, samples) -> int:
    """Whole samples (``(x, forced, steps)`` each): one build, every sample compared at every
    step."""
    from model.ir import validate_inputs
    from rtl.export import generate
    from model.progress import progress
    from sim.cosim import Stimulus, run_cosim_batch
    from sim.reference import simulate

    work = make_safe(args.work)  # Verilator builds with make: no spaces
    prog = Progress(2 + len(args.sim), quiet=args.json)
    stimuli = []
    with prog.stage(f"reference: {len(samples)} sample(s)"):
        for xs, fs, steps in samples:
            xs, fs, _ = validate_inputs(net, xs, fs, steps)
            stimuli.append(Stimulus(simulate(net, xs, fs, steps=steps), xs, fs or None))
    with prog.stage(f"generate: Verilog in {work / 'verilog'}"):
        generate(net, work / "verilog", lanes=args.lanes, memories=parse_memories(args.memory),
                 core=args.core, rows=parse_rows(args))
    out, ok = {}, True
    for simulator in args.sim:
        with prog.stage(f"{simulator}: build, then run {len(stimuli)} sample(s), every step "
                        f"compared (log: {work / simulator})"):
            total = sum(st.expected.steps for st in stimuli)
            with progress(total=total, desc=f"{simulator}", unit="step", leave=False,
                          disable=args.json) as bar:
                def say(stage, done, total, bar=bar, sim=simulator):
                    bar.set_description(f"{sim} " + ("building the model" if stage == "build"
                                                     else "comparing every step"),
                                        refresh=False)
                    bar.n = done
                    bar.refresh()
                res = run_cosim_batch(work / "verilog", stimuli, simulator=simulator,
                                      work_dir=work, seed=args.seed, idle=args.idle,
                                      stall=args.stall, waves=args.waves, progress=say)
        rows = []
        for k, (r, st) in enumerate(zip(res.results, stimuli)):
            rows.append(dict(sample=k, steps=r.steps, mismatches=r.mismatches, ok=r.ok,
                             cycles=r.cycles, prediction=st.expected.prediction,
                             **({"waves": r.waves, "first_mismatch": r.first_mismatch}
                                if args.waves or not r.ok else {})))
            if not args.json:
                pred = "" if st.expected.prediction is None else \
                    f", prediction {st.expected.prediction}"
                print(f"{simulator} sample {k}: " + (r.describe() if not r.ok else
                      f"{r.steps} steps bit-exact, {r.cycles} cycles{pred}"))
        ok = ok and res.ok and len(res.results) == len(stimuli)
        out[simulator] = rows
        if args.waves and res.results and not args.json:
            print(f"{simulator} waves: {res.results[0].waves}")
    if args.json:
        print(json.dumps(out, indent=1))
    elif ok:
        print(f"all {len(stimuli)} samples bit-exact on {', '.join(args.sim)} (every neuron "
              f"of every layer at every step; the prediction follows from the read-out)")
    return 0 if ok else 1


def cmd_cosim(args) -> int:
    from sim.randnet import random_stimulus
    from model.ir import find_workload
    net = load_net(args.net)
    check_supported(net, args.lanes, args.core)
    if args.inputs:
        x = load_inputs(args.inputs, net, args.count)
        return _cosim_samples(args, net, [(xs, None, len(xs)) for xs in x])
    wl = None if args.random else find_workload(args.net, net)
    if wl is not None:
        if args.count:
            wl = wl.head(args.count)
        if not args.json:
            print(f"the workload beside the IR: {wl.describe()}")
        return _cosim_samples(args, net, [(*wl.sample(i), wl.steps)
                                          for i in range(wl.samples)])
    x, forced = random_stimulus(net, args.steps, args.seed)
    work = make_safe(args.work)  # Verilator builds with make: no spaces
    memories = parse_memories(args.memory)
    results = []
    for simulator in args.sim:
        res = cosim(net, x, forced, args.steps, simulator, work, args.seed,
                    idle=args.idle, stall=args.stall, lanes=args.lanes, memories=memories,
                    core=args.core, rows=parse_rows(args), waves=args.waves)
        results.append(res)
        if not args.json:
            print(res.describe())
    if args.json:
        print(json.dumps({r.simulator: r.to_json() for r in results}, indent=1))
    return 0 if all(r.ok for r in results) else 1
