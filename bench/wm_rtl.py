"""Working-memory recall on the generated RTL: co-simulated with Verilator, bit-exact, scored.

    python -m bench.wm_rtl --seeds 0 1 2 3 4 --lanes 16            # the paper's setting
    python -m bench.wm_rtl --seeds 0 --n 64 --d 12 --m 4 --t 200 --p 0.01 --pre 20

Per seed, with the current model code: M random target rasters (N neurons, T steps,
Bernoulli p), least-squares weights over D delay taps (gain 1.5), quantised to 8-bit integers
(beta 205/2^8 unless --beta, reset to zero), and the recall trial of every pattern (``pre``
steps of noise, the D-step cue, free recall). The reference simulator runs each pattern's forced raster; the
core is generated with its N x N x D weight array as a ``loaded`` RAM (86 Mbit at N=512,
D=41: no FPGA holds it, and no Verilog can carry it as initial contents), the Verilator model
is compiled once, the weights go in once through the ``wl`` load stream, and the M patterns
run back to back with a reset between them (``sim.cosim.run_cosim_batch``), every output
record of every step compared with the reference. The RTL's own spikes are scored with
``model.wm.recall.score_recall`` (micro-F1 over the free-recall window, and per pattern).

Writes ``bench/results/wm_rtl.json`` after each seed (entries of earlier runs with the same
settings are kept, so seeds can be run one invocation at a time) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

RESULTS = Path("bench/results/wm_rtl.json")


def run_seed(seed: int, *, n: int, d: int, m: int, t: int, p: float, pre: int, gain: float,
             w_bits: int, lanes: int, simulator: str, work: Path, idle: float = 0.0,
             stall: float = 0.0, beta: int = 205, log=print) -> dict:
    """One seed: build, reference, co-simulate, score. Returns the JSON entry."""
    from model.quantise import quantise_wm
    from model.wm.network import least_squares_init, make_targets
    from model.wm.recall import score_recall, trial_forcing
    from rtl.export import generate
    from sim.cosim import Stimulus, run_cosim_batch
    from sim.reference import simulate

    out: dict = {"seed": seed}
    t0 = time.monotonic()
    targets = make_targets(m, n, t, p, seed=seed)
    w = least_squares_init(targets, d, gain=gain)
    out["least_squares_s"] = round(time.monotonic() - t0, 1)
    net = quantise_wm(w, w_bits=w_bits, beta=beta, beta_shift=8, reset="zero")
    del w
    forced = trial_forcing(targets, d, pre=pre, p=p, seed=seed)      # (m, pre + t, n)
    steps = forced.shape[1]
    log(f"seed {seed}: weights in {out['least_squares_s']} s, threshold "
        f"{net.layers[1].threshold}, v_bits {net.layers[1].v_bits}, {steps} steps x {m}")

    t0 = time.monotonic()
    stimuli = []
    for f in forced:
        fd = {1: f.astype(np.uint8)}
        stimuli.append(Stimulus(simulate(net, forced=fd, steps=steps), None, fd))
    ref = np.stack([s.expected.spikes[1] for s in stimuli])
    f1_ref, _ = score_recall(targets, ref, d, pre=pre)
    out["reference_s"] = round(time.monotonic() - t0, 1)

    vdir = work / f"seed{seed}" / "verilog"
    t0 = time.monotonic()
    man = generate(net, vdir, lanes=lanes, memories={"proj0.weights": "loaded"})
    out["generate_s"] = round(time.monotonic() - t0, 1)
    log(f"seed {seed}: reference F1 {f1_ref:.4f} in {out['reference_s']} s; Verilog and "
        f"load image ({man['load']['words']:,} words of {man['load']['width']} bits) in "
        f"{out['generate_s']} s; co-simulating on {simulator} ...")

    batch = run_cosim_batch(vdir, stimuli, simulator=simulator,
                            work_dir=work / f"seed{seed}" / "cosim", seed=seed, idle=idle,
                            stall=stall, stop_at_first=True)
    got = []
    for r in batch.results:
        with np.load(r.got_trace) as z:
            got.append(z["spikes.1"])
    bit_exact = batch.ok and len(got) == m and all(
        np.array_equal(g, s.expected.spikes[1]) for g, s in zip(got, stimuli))
    cycles = [r.cycles for r in batch.results]
    out.update(
        settings=dict(n=n, d=d, m=m, t=t, p=p, pre=pre, gain=gain, w_bits=w_bits,
                      lanes=lanes, simulator=simulator),
        bit_exact=bool(bit_exact), describe=batch.describe(),
        first_mismatch=None if batch.first_failure is None
        else batch.results[batch.first_failure].first_mismatch,
        threshold=int(net.layers[1].threshold), v_bits=int(net.layers[1].v_bits),
        acc_bits=int(net.layers[1].acc_bits), weight_bits=int(man["memory_bits"]
                                                               ["proj0.weights"]),
        load_words=man["load"]["words"], load_width=man["load"]["width"],
        steps_per_pattern=steps, patterns_run=len(batch.results),
        compile_s=round(batch.build_seconds, 1), run_s=round(batch.seconds, 1),
        run_s_per_pattern=[round(r.seconds, 1) for r in batch.results],
        load_cycles=batch.load_cycles, cycles=cycles, cycles_total=int(sum(cycles)),
        cycles_per_step=round(sum(cycles) / max(1, steps * len(cycles)), 1),
        spikes_reference=int(ref.sum()), f1_reference=float(f1_ref))
    if bit_exact:
        f1, per = score_recall(targets, np.stack(got), d, pre=pre)
        out.update(f1_micro=float(f1), f1_per_pattern=[round(float(x), 4) for x in per])
    else:
        out.update(f1_micro=None, f1_per_pattern=None)
    return out


def _table(entries: list[dict]) -> str:
    head = (f"{'seed':>4} {'F1 RTL':>7} {'min/pat':>7} {'exact':>5} {'cyc/step':>8} "
            f"{'load cyc':>9} {'LS s':>5} {'gen s':>5} {'build s':>7} {'run s':>6}")
    rows = [head, "-" * len(head)]
    for e in entries:
        f1 = "-" if e["f1_micro"] is None else f"{e['f1_micro']:.4f}"
        low = "-" if not e["f1_per_pattern"] else f"{min(e['f1_per_pattern']):.4f}"
        rows.append(f"{e['seed']:>4} {f1:>7} {low:>7} {'yes' if e['bit_exact'] else 'NO':>5} "
                    f"{e['cycles_per_step']:>8} {e['load_cycles']:>9} "
                    f"{e['least_squares_s']:>5} {e['generate_s']:>5} {e['compile_s']:>7} "
                    f"{e['run_s']:>6}")
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.wm_rtl", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--n", type=int, default=512, help="neurons (default 512)")
    ap.add_argument("--d", type=int, default=41, help="delay taps (default 41)")
    ap.add_argument("--m", type=int, default=16, help="stored patterns (default 16)")
    ap.add_argument("--t", type=int, default=1000, help="steps per pattern (default 1000)")
    ap.add_argument("--p", type=float, default=2e-3, help="firing probability (default 2e-3)")
    ap.add_argument("--pre", type=int, default=50, help="noise steps before the cue")
    ap.add_argument("--gain", type=float, default=1.5)
    ap.add_argument("--beta", type=int, default=205,
                    help="leak beta/256 (default 205 = 0.80; the notebook's setting: 179)")
    ap.add_argument("--w-bits", type=int, default=8)
    ap.add_argument("--lanes", type=int, default=16, help="neurons updated per cycle")
    ap.add_argument("--sim", choices=("verilator", "icarus"), default="verilator")
    ap.add_argument("--work", default="build/wm_rtl", help="Verilog and simulator builds")
    ap.add_argument("-o", "--output", default=str(RESULTS))
    args = ap.parse_args(argv)

    settings = dict(n=args.n, d=args.d, m=args.m, t=args.t, p=args.p, pre=args.pre,
                    gain=args.gain, w_bits=args.w_bits, lanes=args.lanes, simulator=args.sim)
    if args.beta != 205:
        settings["beta"] = args.beta
    path = Path(args.output)
    # Keep the entries of earlier runs with the same settings (one seed per invocation is
    # fine); other settings start a new file.
    kept = {}
    if path.exists():
        old = json.loads(path.read_text())
        if old.get("settings") == settings:
            kept = {int(k): v for k, v in old.get("seeds", {}).items()}
    ok = True
    for seed in args.seeds:
        t0 = time.monotonic()
        entry = run_seed(seed, n=args.n, d=args.d, m=args.m, t=args.t, p=args.p,
                         pre=args.pre, gain=args.gain, w_bits=args.w_bits, lanes=args.lanes,
                         simulator=args.sim, work=Path(args.work), beta=args.beta)
        entry["total_s"] = round(time.monotonic() - t0, 1)
        entry.pop("settings")
        kept[seed] = entry
        ok &= entry["bit_exact"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"settings": settings, "seeds": {
            str(k): kept[k] for k in sorted(kept)}}, indent=1) + "\n")
        print(f"seed {seed}: {entry['describe']}; F1 {entry['f1_micro']} "
              f"({entry['total_s']} s in all)", flush=True)
    print()
    print(f"working memory N={args.n} D={args.d} M={args.m} T={args.t} p={args.p} "
          f"pre={args.pre}, {args.w_bits}-bit weights, lanes {args.lanes}, {args.sim}")
    print(_table([kept[k] for k in sorted(kept)]))
    print(f"wrote {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
