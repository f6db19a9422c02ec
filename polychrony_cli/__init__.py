"""The `polychrony` command: demo, train, check, simulate, generate, cosim, run and build."""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from boards.catalog import BOARDS as BOARD_CATALOG

__all__ = ["main"]

BOARDS = tuple(BOARD_CATALOG)


class UserError(Exception):
    """A problem the user can fix; printed without a traceback."""


def _err(msg: str) -> None:
    print(f"polychrony: error: {msg}", file=sys.stderr)


class Progress:
    """Stage-by-stage progress on stderr (stdout stays clean for --json)."""

    def __init__(self, total: int, quiet: bool = False):
        self.total, self.k, self.quiet = total, 0, quiet

    @contextmanager
    def stage(self, title: str):
        self.k += 1
        t0 = time.monotonic()
        if not self.quiet:
            print(f"[{self.k}/{self.total}] {title} ...", file=sys.stderr, flush=True)
        yield
        if not self.quiet:
            print(f"      done in {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)


def _load(path: str):
    from model.ir import load
    return load(path)


def _cosim(net, x, forced, steps: int, simulator: str, work: Path, seed: int, *,
           idle: float, stall: float, lanes: int = 1, verilog_dir: Path | None = None,
           memories: dict | None = None, core: str = "network", rows=None):
    from rtl.export import generate
    from sim.cosim import run_cosim
    from sim.reference import simulate

    trace = simulate(net, x, forced, steps=steps)
    if verilog_dir is None:
        verilog_dir = work / "verilog"
        generate(net, verilog_dir, lanes=lanes, memories=memories, core=core, rows=rows)
    return run_cosim(verilog_dir, trace, x, forced, simulator=simulator, work_dir=work,
                     seed=seed, idle=idle, stall=stall)


# --------------------------------------------------------------------------------------------
# Commands

def cmd_check(args) -> int:
    net = _load(args.net)
    rows = [("name", net.name), ("digest", net.digest), ("max_delay", net.max_delay)]
    for i, l in enumerate(net.layers):
        rows.append((f"layer {i}", f"{l.name}: n={l.n}" + (
            f" in_bits={l.in_bits}" if i == 0 else
            f" v_bits={l.v_bits} acc_bits={l.acc_bits} beta={l.beta}/2^{l.beta_shift} "
            f"threshold={l.threshold} reset={l.reset} forced={l.forced}")))
    for p in net.projections:
        rows.append((f"proj {p.src}->{p.dst}", f"{p.kind} w_bits={p.w_bits} "
                     f"weight{list(p.weight.shape)} delays {p.min_delay}..{p.max_delay}"))
    if args.json:
        print(json.dumps({k: str(v) for k, v in rows}, indent=1))
    else:
        print(f"{args.net}: valid polychrony IR")
        for k, v in rows:
            print(f"  {k:<12} {v}")
    return 0


def _memories(specs) -> dict[str, str]:
    """``--memory NAME=KIND`` options as a dict (checked against the network later)."""
    out = {}
    for spec in specs or []:
        name, sep, kind = spec.partition("=")
        if not sep or not name or not kind:
            raise UserError(f"--memory expects NAME=KIND (e.g. proj0.weights=spram or "
                            f"proj0.weights=loaded), got {spec!r}")
        out[name] = kind
    return out


def cmd_generate(args) -> int:
    from rtl.export import generate
    net = _load(args.net)
    _supported(net, args.lanes, args.core)
    man = generate(net, args.output, name=args.name, lanes=args.lanes,
                   memories=_memories(args.memory), spram_cells=args.spram_cells,
                   core=args.core, rows=_rows(args))
    print(f"wrote {Path(args.output) / man['verilog']} and {man['top']}.json "
          f"(IR {man['ir_digest'][:19]}…)")
    if "load" in man:
        streamed = ", ".join(f"{k} ({v})" for k, v in man["memory_kinds"].items()
                             if v in ("spram", "loaded"))
        print(f"  weights loaded at run time ({streamed}): stream the "
              f"{man['load']['words']} words of {man['load']['image']} "
              f"({man['load']['width']} bits) on wl after reset")
    return 0


def _load_samples(path: str, kinds: str, what: str, n: int, shape: str) -> np.ndarray:
    """A ``.npy`` (never a pickle) of ``kinds`` dtype, ``(S, T, n)`` or ``(T, n)``, as 3-D."""
    try:
        a = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: not a readable .npy array of integers ({e})") from None
    if not isinstance(a, np.ndarray) or a.dtype.kind not in kinds:
        raise UserError(f"{path}: {what} must be an integer array, got "
                        f"{getattr(a, 'dtype', type(a).__name__)}")
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[2] != n:
        raise UserError(f"{path}: {what} must have shape {shape}, got {a.shape}")
    return a


def _load_inputs(path: str, net, count: int | None) -> np.ndarray:
    """Input frames for cosim: a ``.npy`` of integers, ``(S, T, n0)`` or ``(T, n0)`` (no pickle)."""
    x = _load_samples(path, "iu", "inputs", net.input.n,
                      f"(samples, steps, n0={net.input.n})")
    hi = (1 << net.input.in_bits) - 1
    if x.size and (int(x.min()) < 0 or int(x.max()) > hi):
        raise UserError(f"{path}: input values must lie in [0, {hi}] (in_bits="
                        f"{net.input.in_bits}), got [{int(x.min())}, {int(x.max())}]")
    if count is not None:
        if count < 1:
            raise UserError(f"--count must be >= 1, got {count}")
        x = x[:count]
    return x.astype(np.int64)


def _cosim_inputs(args, net) -> int:
    """Whole samples from ``--inputs``: one build, every sample compared at every step."""
    from rtl.export import generate
    from sim.cosim import Stimulus, run_cosim_batch
    from sim.reference import simulate

    x = _load_inputs(args.inputs, net, args.count)
    work = Path(args.work)
    stimuli = [Stimulus(simulate(net, xs), xs, None) for xs in x]
    generate(net, work / "verilog", lanes=args.lanes, memories=_memories(args.memory),
             core=args.core, rows=_rows(args))
    out, ok = {}, True
    for simulator in args.sim:
        res = run_cosim_batch(work / "verilog", stimuli, simulator=simulator,
                              work_dir=work, seed=args.seed, idle=args.idle, stall=args.stall)
        rows = []
        for k, (r, st) in enumerate(zip(res.results, stimuli)):
            rows.append(dict(sample=k, steps=r.steps, mismatches=r.mismatches, ok=r.ok,
                             cycles=r.cycles, prediction=st.expected.prediction))
            if not args.json:
                pred = "" if st.expected.prediction is None else \
                    f", prediction {st.expected.prediction}"
                print(f"{simulator} sample {k}: " + (r.describe() if not r.ok else
                      f"{r.steps} steps bit-exact, {r.cycles} cycles{pred}"))
        ok = ok and res.ok and len(res.results) == len(stimuli)
        out[simulator] = rows
    if args.json:
        print(json.dumps(out, indent=1))
    elif ok:
        print(f"all {len(stimuli)} samples bit-exact on {', '.join(args.sim)} (every neuron "
              f"of every layer at every step; the prediction follows from the read-out)")
    return 0 if ok else 1


def cmd_cosim(args) -> int:
    from sim.randnet import random_stimulus
    net = _load(args.net)
    _supported(net, args.lanes, args.core)
    if args.inputs:
        return _cosim_inputs(args, net)
    x, forced = random_stimulus(net, args.steps, args.seed)
    work = Path(args.work)
    memories = _memories(args.memory)
    results = []
    for simulator in args.sim:
        res = _cosim(net, x, forced, args.steps, simulator, work, args.seed,
                     idle=args.idle, stall=args.stall, lanes=args.lanes, memories=memories,
                     core=args.core, rows=_rows(args))
        results.append(res)
        if not args.json:
            print(res.describe())
    if args.json:
        print(json.dumps({r.simulator: r.to_json() for r in results}, indent=1))
    return 0 if all(r.ok for r in results) else 1


def _load_forced(path: str, net, count: int | None) -> np.ndarray:
    """Forced rasters for ``run``: a ``.npy`` of 0/1 integers, ``(S, T, n)`` or ``(T, n)``."""
    layers = net.forced_layers
    if len(layers) != 1:
        raise UserError(f"--forced needs a network with one forced layer; {net.name!r} has "
                        f"{len(layers)}")
    n = net.layers[layers[0]].n
    f = _load_samples(path, "iub", "a forced raster", n,
                      f"(samples, steps, n={n}) for layer {layers[0]}")
    if f.size and (int(f.min()) < 0 or int(f.max()) > 1):
        raise UserError(f"{path}: forced rasters hold 0 or 1, got values in "
                        f"[{int(f.min())}, {int(f.max())}]")
    if count is not None:
        f = f[:count]
    return f.astype(np.uint8)


def cmd_run(args) -> int:
    """Run samples on a board (``--port``) or on the simulated board (``--simulate``)."""
    from boards.host import Board, LinkError
    from sim.reference import simulate

    net = _load(args.net)
    if bool(args.port) == bool(args.simulate):
        raise UserError("give exactly one of --port DEV (a board) or --simulate (the "
                        "Verilator model of the board top)")
    if args.port and (args.core != "network" or args.rows):
        raise UserError("--core and --rows choose the simulated board's core (--simulate); "
                        "a real board runs the core its bitstream was built with")
    if args.simulate:
        _supported(net, args.lanes, args.core)
    if net.input.n and not args.inputs:
        raise UserError(f"network {net.name!r} has {net.input.n} input channels: give "
                        f"--inputs X.npy (samples, steps, {net.input.n})")
    if net.forced_layers and not net.input.n and not args.forced:
        raise UserError(f"network {net.name!r} is driven through its forced layer: give "
                        f"--forced F.npy (samples, steps, n)")
    x = _load_inputs(args.inputs, net, args.count) if args.inputs else None
    f = _load_forced(args.forced, net, args.count) if args.forced else None
    if x is not None and f is not None and (x.shape[0], x.shape[1]) != f.shape[:2]:
        raise UserError(f"--inputs {x.shape[:2]} and --forced {f.shape[:2]} differ in "
                        f"samples or steps")
    samples = len(x) if x is not None else len(f)
    if args.prediction_only and (args.membranes or net.layers[-1].spiking):
        raise UserError("--prediction-only needs a network whose last layer is a read-out, "
                        "and no --membranes")
    sb = None
    try:
        if args.simulate:
            from boards.simboard import SimBoard, simulated_board
            with Progress(1, quiet=args.json).stage("build the simulated board (Verilator)"):
                exe, div = simulated_board(net, Path(args.work), lanes=args.lanes,
                                           core=args.core, rows=_rows(args))
            sb = SimBoard(exe, div).start()
            port = sb.port
        else:
            port = args.port
        from tqdm import tqdm
        rows, ok = [], True
        T = (x if x is not None else f).shape[1]
        bar = tqdm(total=samples * T, unit="step", disable=args.json, leave=False,
                   desc="run", file=sys.stderr)
        with Board(port, net=net, baud=args.baud, timeout=args.timeout) as board:
            for k in range(samples):
                xs = None if x is None else x[k]
                fs = None if f is None else {net.forced_layers[0]: f[k]}
                steps = T
                seen = [0]

                def advance(done, total):
                    bar.update(done - seen[0])
                    seen[0] = done

                got = board.run(xs, fs, steps=steps, membranes=args.membranes,
                                spikes=not args.prediction_only, progress=advance)
                t = board.last_timing
                row = dict(sample=k, steps=steps, prediction=got.prediction,
                           spikes={l: int(s.sum()) for l, s in got.spikes.items()},
                           seconds=round(t.seconds, 4), bytes_out=t.bytes_out,
                           bytes_in=t.bytes_in)
                if args.check:
                    ref = simulate(net, xs, fs, steps=steps)
                    if args.membranes:
                        mm = ref.first_mismatch(got)
                    elif args.prediction_only:
                        mm = None if ref.prediction == got.prediction else \
                            f"prediction {got.prediction}, reference {ref.prediction}"
                    else:
                        bad = [l for l in ref.spikes if not np.array_equal(ref.spikes[l],
                                                                           got.spikes[l])]
                        mm = (f"spikes of layer {bad[0]} differ" if bad else
                              None if ref.prediction == got.prediction else
                              f"prediction {got.prediction}, reference {ref.prediction}")
                    row["reference_prediction"] = ref.prediction
                    row["match"] = mm is None
                    if mm is not None:
                        row["mismatch"] = str(mm)
                        ok = False
                rows.append(row)
                if not args.json:
                    pred = "" if got.prediction is None else f", prediction {got.prediction}"
                    what = " bit for bit" if args.membranes else \
                        " (prediction)" if args.prediction_only else \
                        " (spikes)" if net.layers[-1].spiking else " (spikes, prediction)"
                    chk = "" if not args.check else (
                        ", matches the reference" + what
                        if row["match"] else f", MISMATCH: {row['mismatch']}")
                    bar.write(f"sample {k}: {steps} steps, {sum(row['spikes'].values())} spikes"
                              f"{pred}, {t.seconds * 1e3:.0f} ms, {t.bytes_out} B out / "
                              f"{t.bytes_in} B in{chk}", file=sys.stdout)
        bar.close()
    except LinkError as e:
        raise UserError(str(e)) from None
    finally:
        if sb is not None:
            sb.stop()
    if args.json:
        print(json.dumps(rows, indent=1))
    return 0 if ok else 1


def cmd_build(args) -> int:
    from boards.report import MARKDOWN_HEADER, board_report
    from boards.top import sync_clock
    net = _load(args.net)
    _supported(net, args.lanes, args.core)
    memories = _memories(args.memory)
    from rtl.cores import CORES
    if memories and "memories" not in CORES[args.core].knobs:
        raise UserError(f"--memory does not apply to the {args.core} core (it places its "
                        f"weight memories itself)")
    clock_hz = None if args.clock_mhz is None else args.clock_mhz * 1e6
    try:
        clk, _ = sync_clock(args.board, clock_hz)
    except ValueError as e:
        raise UserError(f"--clock-mhz {args.clock_mhz}: {e}") from None
    rows = _rows(args)
    if args.inputs and args.vectors:
        raise UserError("give --inputs or --vectors, not both")
    inputs = _load_inputs(args.inputs, net, args.count) if args.inputs else None
    b, est = _estimate(net, args.board, lanes=args.lanes, steps=args.steps, seed=0,
                       vectors=args.vectors, memories=memories, core=args.core,
                       work_dir=Path(args.output) / "cycles", rows=rows, inputs=inputs)
    res = _build(net, args.board, Path(args.output), lanes=args.lanes, memories=memories,
                 clock_hz=clock_hz, baud=args.baud, core=args.core, rows=rows)
    rep = board_report(net.name, b, est, res, clock_mhz=clk / 1e6)
    if args.markdown:
        Path(args.markdown).write_text(MARKDOWN_HEADER + "\n" + rep.markdown_row() + "\n")
    if args.json:
        print(json.dumps(_build_json(res) | rep.to_json(), indent=1))
        return 0
    print(rep.text())
    if res.flash_image is not None:
        print(f"  weights: write {res.flash_image} at flash offset {res.flash_offset:#x} "
              f"(iceprog -o {res.flash_offset // (1 << 20)}M {res.flash_image})")
    return 0


def _estimate(net, board_name: str, *, lanes: int, steps: int, seed: int,
              vectors: str | None = None, memories: dict | None = None,
              core: str = "network", work_dir: Path | None = None, rows=None,
              inputs: np.ndarray | None = None):
    """(board, estimate) of ``net`` on ``board_name``; the cycles come from the first sample of
    ``inputs`` (``(S, T, n0)``; the stack and lean cores: every sample), else ``vectors``, else
    ``steps`` of random stimulus."""
    from boards.catalog import board
    from rtl.cores import core as core_named
    from sim.randnet import random_stimulus

    from .steps import StepError, estimate_core

    b = board(board_name)
    work = None
    if inputs is not None:
        x, forced = inputs[0], None
        work = [(xs, None, xs.shape[0]) for xs in inputs]
    elif vectors:
        from sim.vectors import load_bundle
        bundle = load_bundle(vectors)
        if bundle.digest != net.digest:
            raise UserError(f"{vectors}: vectors were made for IR {bundle.digest[:19]}…, "
                            f"not for this network ({net.digest[:19]}…)")
        x, forced = bundle.x, bundle.forced
    else:
        x, forced = random_stimulus(net, steps, seed)
    T = len(x) if x is not None and len(x) else steps
    work = work or [(x, forced, T)]
    try:
        return b, estimate_core(core_named(core), net, work, family=b.family,
                                clock_mhz=b.sync_mhz, lanes=lanes, work_dir=work_dir,
                                memories=memories or None, rows=rows)
    except StepError as e:
        raise UserError(str(e)) from None


def _estimate_rows(b, est) -> list[tuple[str, str]]:
    from boards.report import LINK_LUT
    r = b.resources
    blocks = sum(est.blocks.values())
    off = sum(est.offchip.values())
    return [
        ("board", f"{b.name} ({b.device}, core clock {b.sync_mhz:g} MHz), lanes {est.lanes}"),
        ("memory", f"{sum(est.memory_bits.values()) - off:,} bits in {blocks} blocks "
                   f"(device: {r['bram']})" + (
                       f", {sum(est.spram.values())} SPRAM (device: {r.get('spram', 0)})"
                       if est.spram else "") + (
                       f"; {off:,} bits off chip (loaded)" if off else "")),
        ("logic", f"~{est.lut:,} LUT4 in the core, ~{est.lut + LINK_LUT[b.family]:,} with the "
                  f"host link (device: {r['lut']:,}), {est.dsp} multipliers "
                  f"(device: {r['dsp']})"),
        ("cycles/step", f"{est.cycles_per_step:.0f} mean, {est.cycles_max} max "
                        f"over {est.steps_per_sample} steps"),
        ("speed", f"{est.steps_per_s:,.0f} steps/s, {est.samples_per_s:,.1f} samples/s "
                  f"at {b.sync_mhz:g} MHz"),
    ]


def cmd_estimate(args) -> int:
    import tempfile
    net = _load(args.net)
    _supported(net, args.lanes, args.core)
    with tempfile.TemporaryDirectory(prefix="polychrony-estimate-") as tmp:
        b, est = _estimate(net, args.board, lanes=args.lanes, steps=args.steps, seed=args.seed,
                           vectors=args.vectors, memories=_memories(args.memory),
                           core=args.core, rows=_rows(args), work_dir=Path(tmp))
    if args.json:
        print(json.dumps(est.to_json() | {"board": b.name, "device_resources": b.resources},
                         indent=1))
        return 0
    for k, v in _estimate_rows(b, est):
        print(f"  {k:<12} {v}")
    print("  per array:")
    for name, bits in est.memory_bits.items():
        where = f"{est.spram[name]:>4} SPRAM" if name in est.spram else \
            "   off chip (loaded)" if name in est.offchip else \
            f"{est.blocks[name]:>4} blocks" + (" (LUT RAM)" if est.kinds.get(name) == "lut"
                                               else "")
        print(f"    {name:<22} {bits:>10,} bits  {where}")
    return 0


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

    seeds = range(args.start, args.start + args.count)
    jobs = [(s, args.profile, args.steps, args.sim, args.work) for s in seeds]
    failures = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for res in tqdm(pool.map(_fuzz_one, jobs), total=len(jobs), unit="net",
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


def cmd_train_wm(args) -> int:
    from model.ir import save
    from model.wm.run import DEFAULTS, PRESETS, run_wm
    settings = dict(DEFAULTS, beta=205)
    settings.pop("gain")
    if args.preset:
        settings.update(PRESETS[args.preset])
    for key in ("n", "d", "m", "t", "p", "w_bits", "beta", "pre"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    out = run_wm(**settings, gain=args.gain, seed=args.seed, init=args.init,
                 train_steps=args.train_steps, refractory=args.refractory,
                 progress=not args.json)
    save(out["net"], args.output)
    summary = {"f1_float": out["f1_float"], "f1_int": out["f1_int"],
               "settings": out["settings"], "seconds": out["seconds"],
               "ir": str(args.output)}
    print(json.dumps(summary, indent=1) if args.json else
          f"F1 float {out['f1_float']:.4f}, integer {out['f1_int']:.4f} "
          f"({out['seconds']:.1f} s); wrote {args.output}")
    return 0


def cmd_sweep(args) -> int:
    from model.wm.grids import GRIDS, GridError
    from model.wm.sweep import format_summary, run_grid, summarise

    if args.list:
        for name, g in GRIDS.items():
            print(f"{name:20s} {g.get('description', '')}")
        return 0
    if not args.grid or not args.out:
        raise UserError("sweep needs --grid NAME|FILE.json and --out RESULTS.jsonl "
                        "(--list shows the built-in grids)")
    try:
        res = run_grid(args.grid, args.out, jobs=args.jobs, seeds=args.seeds,
                       cache_dir=args.cache, progress=not args.quiet)
    except GridError as e:
        raise UserError(str(e)) from None
    by = list(dict.fromkeys(k for prod in res["grid"]["axes"] for k in prod))
    rows = summarise(res["records"], by=by)
    if args.json:
        print(json.dumps({"grid": res["grid"]["name"], "out": str(args.out),
                          "points": res["points"], "done_before": res["done_before"],
                          "computed": res["computed"], "seconds": round(res["seconds"], 1),
                          "summary": rows}, indent=1))
    else:
        print(f"grid {res['grid']['name']}: {res['points']} points, {res['done_before']} "
              f"already in {args.out}, {res['computed']} computed in {res['seconds']:.1f} s")
        print(format_summary(rows, by))
    if args.plot:
        from model.wm.plots import plot_sweep
        plot_sweep(res["records"], args.plot, by=by)
        if not args.json:
            print(f"wrote {args.plot}")
    return 0


def cmd_demo(args) -> int:
    from model.ir import load, save
    from model.wm.recall import trial_forcing
    from model.wm.run import run_wm
    from rtl.export import generate
    from sim.reference import simulate

    out = Path(args.output)
    steps_total = 7 - (1 if args.no_build else 0)
    prog = Progress(steps_total, quiet=args.json and args.quiet)
    summary: dict = {}
    with prog.stage("train: least-squares working memory, quantise to the integer IR"):
        wm = run_wm(seed=args.seed)
        summary.update(f1_float=wm["f1_float"], f1_int=wm["f1_int"], settings=wm["settings"])
    with prog.stage("IR: save, reload, design-rule check"):
        path = save(wm["net"], out / "net.npz")
        net = load(path)
        summary["ir"] = {"path": str(path), "digest": net.digest}
    with prog.stage("reference: integer simulation of a recall trial"):
        s = wm["settings"]
        forced = {1: trial_forcing(wm["targets"], s["d"], pre=s["pre"], p=s["p"],
                                   seed=args.seed)[0].astype(np.uint8)}
        steps = forced[1].shape[0]
        trace = simulate(net, None, forced, steps=steps)
        summary["reference"] = {"steps": steps, "spikes": int(trace.spikes[1].sum())}
    with prog.stage("generate: Amaranth core -> Verilog"):
        vdir = out / "verilog"
        man = generate(net, vdir)
        summary["verilog"] = str(vdir / man["verilog"])
        summary["memory_bits"] = man["memory_bits"]
    with prog.stage("cosim: cocotb, Icarus and Verilator, every step"):
        summary["cosim"] = {}
        for simulator in ("icarus", "verilator"):
            res = _cosim(net, None, forced, steps, simulator, out / "cosim", args.seed,
                         idle=0.1, stall=0.1, verilog_dir=vdir)
            summary["cosim"][simulator] = {"steps": res.steps, "mismatches": res.mismatches,
                                           "first_mismatch": res.first_mismatch,
                                           "cycles": res.cycles,
                                           "seconds": round(res.seconds, 2)}
    with prog.stage("host link: the driver runs the recall on the simulated board top"):
        from boards.host import Board
        from boards.simboard import SimBoard, simulated_board
        exe, div = simulated_board(net, out / "simboard")
        with SimBoard(exe, div) as sb, Board(sb.port, net=net, timeout=10) as board:
            got = board.run(None, forced, steps=steps)
            t = board.last_timing
        mm = trace.first_mismatch(got)
        summary["host_link"] = {"steps": got.steps, "bit_exact": mm is None,
                                "first_mismatch": None if mm is None else str(mm),
                                "bytes_out": t.bytes_out, "bytes_in": t.bytes_in,
                                "frames": t.frames, "seconds": round(t.seconds, 2)}
    if not args.no_build:
        with prog.stage("build: iCEBreaker host-link bitstream with YoWASP yosys + nextpnr"):
            res = _build(net, "icebreaker", out / "build")
            summary.update(_build_json(res), timing_met=res.timing_met)
    else:
        summary.update(bitstream=None, fmax_mhz=None, utilisation=None)
    ok = (summary["f1_float"] == 1.0 and summary["f1_int"] == 1.0 and
          all(c["mismatches"] == 0 and c["steps"] == steps for c in summary["cosim"].values())
          and summary["host_link"]["bit_exact"]
          and (args.no_build or (summary["bitstream"] and summary["timing_met"])))
    summary["ok"] = bool(ok)
    if args.json:
        print(json.dumps(summary, indent=1, default=str))
    else:
        _print_demo(summary)
    return 0 if ok else 1


def _print_demo(s: dict) -> None:
    st = s["settings"]
    rows = [
        ("network", f"working memory N={st['n']} D={st['d']} M={st['m']} T={st['t']} "
                    f"p={st['p']} ({st['w_bits']}-bit weights)"),
        ("F1 float", f"{s['f1_float']:.4f}"),
        ("F1 integer", f"{s['f1_int']:.4f}"),
        ("IR", f"{s['ir']['path']} {s['ir']['digest'][:23]}…"),
        ("Verilog", s["verilog"]),
    ]
    for sim_name, c in s["cosim"].items():
        rows.append((f"cosim {sim_name}", f"{c['steps']} steps, {c['mismatches']} mismatches, "
                                          f"{c['cycles']} cycles, {c['seconds']} s"))
    h = s["host_link"]
    rows.append(("host link", f"{h['steps']} steps through the UART protocol on the simulated "
                              f"board, " + ("bit-exact" if h["bit_exact"] else
                                            f"MISMATCH {h['first_mismatch']}") +
                              f" ({h['frames']} frames, {h['bytes_out']} B out, "
                              f"{h['bytes_in']} B in, {h['seconds']} s)"))
    if s.get("bitstream"):
        rows.append(("bitstream", s["bitstream"]))
        rows.append(("Fmax", f"{s['fmax_mhz']:.1f} MHz (core clock {s['constraint_mhz']:.1f} "
                             f"MHz, timing {'met' if s['timing_met'] else 'NOT MET'})"))
        rows.append(("utilisation", ", ".join(f"{k} {v['used']}/{v['available']}"
                                              for k, v in s["utilisation"].items())))
    rows.append(("result", "OK" if s["ok"] else "FAILED"))
    width = max(len(k) for k, _ in rows)
    print()
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")


# --------------------------------------------------------------------------------------------

def _supported(net, lanes: int = 1, core: str = "network") -> None:
    from rtl.cores import core as core_named
    core_named(core).check(net, lanes=lanes)


def _build(net, board: str, out: Path, *, lanes: int = 1, memories: dict | None = None,
           clock_hz: float | None = None, baud: int | None = None, core: str = "network",
           rows=None):
    """The host-link bitstream of ``net`` for ``board`` (see boards.top.build_board)."""
    from boards.top import build_board
    if board not in BOARDS:
        raise UserError(f"unknown board {board!r}; supported: {', '.join(BOARDS)}")
    from rtl.cores import core as core_named
    return build_board(net, board, build_dir=out / board, lanes=lanes, memories=memories or None,
                       clock_hz=clock_hz, baud=baud, core=core, rows=rows,
                       nextpnr_opts=core_named(core).nextpnr_opts)


def _build_json(res) -> dict:
    return {"bitstream": str(res.bitstream), "bitstream_bytes": res.bitstream.stat().st_size,
            "fmax_mhz": res.fmax_mhz, "constraint_mhz": res.constraint_mhz,
            "utilisation": {k: {"used": u.used, "available": u.available}
                            for k, u in res.resources.items()},
            "build_seconds": round(res.seconds, 1),
            "flash_image": str(res.flash_image) if res.flash_image else None,
            "flash_offset": res.flash_offset}


def _add_core(p) -> None:
    from rtl.cores import CORES
    p.add_argument("--core", choices=tuple(CORES), default="network",
                   help="; ".join(f"{name}: {spec.summary}" for name, spec in CORES.items()))
    p.add_argument("--rows", action="append", metavar="LAYER=R",
                   help="stack core: weight rows layer LAYER (>= 2) adds per cycle, 1-8 "
                        "(repeatable; default by layer width)")


def _rows(args) -> dict | None:
    """The stack core's ``--rows`` as {layer: rows}, or None."""
    if not args.rows:
        return None
    from rtl.cores import CORES
    if "rows" not in CORES[args.core].knobs:
        takers = [name for name, spec in CORES.items() if "rows" in spec.knobs]
        raise UserError(f"--rows does not apply to the {args.core} core (use "
                        f"{' or '.join('--core ' + t for t in takers)})")
    out = {}
    for item in args.rows:
        layer, eq, r = item.partition("=")
        if not eq or not layer.strip().isdigit() or not r.strip().isdigit():
            raise UserError(f"--rows {item!r}: expected LAYER=R with integers, e.g. 2=2")
        out[int(layer)] = int(r)
    return out


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="polychrony", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("demo", help="train -> IR -> reference -> Verilog -> cosim -> bitstream")
    p.add_argument("-o", "--output", default="out/demo", help="directory for every artefact")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-build", action="store_true", help="skip the FPGA bitstream")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--quiet", action="store_true", help="with --json: no progress on stderr")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("train", help="train a network and write its integer IR")
    tsub = p.add_subparsers(dest="what", required=True)
    q = tsub.add_parser("wm", help="working memory: store patterns, quantise, F1")
    q.add_argument("-o", "--output", default="wm.npz")
    q.add_argument("--preset", choices=("paper", "code"),
                   help="the paper's setting (N=512, D=41, M=16, T=1000, p=2e-3, beta 0.8) "
                        "or its notebook's (N=1024, p=1e-3, beta 0.7); flags override it")
    # Defaults: model.wm.run.DEFAULTS (the demo's); importing it here would load torch.
    for name, typ, default in (("n", int, 32), ("d", int, 16), ("m", int, 2), ("t", int, 48),
                               ("p", float, 0.035), ("w-bits", int, 4), ("pre", int, 10),
                               ("beta", int, 205)):
        q.add_argument(f"--{name}", type=typ, default=None,
                       help=f"(default {default}, or the preset's)")
    q.add_argument("--init", choices=("ls", "hebbian", "random"), default="ls",
                   help="least squares (default), the normalised Hebbian rule, or random")
    q.add_argument("--gain", type=float, default=None,
                   help="initialisation gain (default 1.5 for ls, 2.5 for hebbian, 1 for "
                        "random)")
    q.add_argument("--refractory", type=int, default=0,
                   help="targets' dead time in steps after a spike (the paper's text: 4)")
    q.add_argument("--train-steps", type=int, default=0,
                   help="surrogate-gradient training steps after the initialisation")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_train_wm)
    from model.audio.cli import add_parser as add_audio_parser
    add_audio_parser(tsub)  # train shd: DelRec / ConvDelRec

    p = sub.add_parser("sweep", help="working memory: F1 over a grid of settings x seeds "
                                     "(resumable JSONL)")
    p.add_argument("--grid", help="built-in grid name (see --list) or a grid JSON file")
    p.add_argument("--out", help="results file (JSON lines); points already there are skipped")
    p.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--seeds", help="override the grid's seeds, e.g. 0-4 or 0,3,7-9")
    p.add_argument("--cache", help="directory to keep float weights across grids")
    p.add_argument("--plot", help="write a PNG of the scan (F1 against the grid's axis)")
    p.add_argument("--list", action="store_true", help="list the built-in grids")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_sweep)

    from model.audio.data_cli import add_parser as add_data_parser
    add_data_parser(sub)

    p = sub.add_parser("check", help="validate an IR file and print what it holds")
    p.add_argument("net")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("generate", help="write the network core as Verilog")
    p.add_argument("net")
    p.add_argument("-o", "--output", default="build")
    p.add_argument("--name", default="polychrony_core", help="top module name")
    _add_core(p)
    p.add_argument("--lanes", type=int, default=1, help="neurons updated per cycle")
    p.add_argument("--memory", action="append", metavar="NAME=KIND",
                   help="memory kind of a weight array: block, spram (iCE40), lut or "
                        "loaded (filled at run time through wl) (repeatable; e.g. "
                        "proj0.weights=spram; default automatic)")
    p.add_argument("--spram-cells", action="store_true",
                   help="SPRAM arrays as SB_SPRAM256KA primitives (as on the device)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("cosim", help="co-simulate the Verilog against the reference")
    p.add_argument("net")
    p.add_argument("--sim", action="append", choices=("icarus", "verilator"),
                   help="simulator (repeatable; default icarus)")
    p.add_argument("--steps", type=int, default=100, help="steps of random stimulus")
    p.add_argument("--inputs", metavar="X.npy",
                   help="run these input frames instead of a random stimulus: integers of "
                        "shape (samples, steps, n0), e.g. from 'polychrony data frames'")
    p.add_argument("--count", type=int, help="with --inputs: the first N samples only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--idle", type=float, default=0.2, help="input idle-cycle probability")
    p.add_argument("--stall", type=float, default=0.2, help="output back-pressure probability")
    p.add_argument("--work", default="build/cosim", help="work directory (traces, logs)")
    _add_core(p)
    p.add_argument("--lanes", type=int, default=1, help="neurons updated per cycle")
    p.add_argument("--memory", action="append", metavar="NAME=KIND",
                   help="memory kind of a weight array: block, lut or loaded (the testbench "
                        "streams the load image first) (repeatable; default automatic)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_cosim)

    p = sub.add_parser("estimate", help="memory, logic and speed of the core, before synthesis")
    p.add_argument("net")
    p.add_argument("--board", default="icebreaker", choices=BOARDS)
    p.add_argument("--lanes", type=int, default=1, help="neurons updated per cycle")
    p.add_argument("--vectors", help="stimulus bundle (.npz from sim.vectors) for the activity")
    p.add_argument("--steps", type=int, default=100, help="steps of random stimulus otherwise")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--memory", action="append", metavar="NAME=KIND",
                   help="memory kind of a weight array: block, spram (iCE40), lut or "
                        "loaded (filled at run time through wl) (repeatable; e.g. "
                        "proj0.weights=spram; default automatic)")
    _add_core(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_estimate)

    p = sub.add_parser("fuzz", help="many random networks, bit-exact against the reference")
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--start", type=int, default=0, help="first seed")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--profile", choices=("full", "wm"), default="full")
    p.add_argument("--sim", choices=("amaranth", "icarus", "verilator"), default="amaranth")
    p.add_argument("--jobs", type=int, default=2, help="worker processes")
    p.add_argument("--work", default="build/fuzz", help="cocotb work directory")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_fuzz)

    p = sub.add_parser("run", help="run samples on a board over its UART host link (or on "
                                   "the simulated board)")
    p.add_argument("net")
    p.add_argument("--port", metavar="DEV", help="the board's serial port, e.g. /dev/ttyUSB1 "
                                                 "(or a pyserial URL)")
    p.add_argument("--simulate", action="store_true",
                   help="run the board top's Verilog in Verilator behind a pseudo-terminal")
    p.add_argument("--inputs", metavar="X.npy",
                   help="input frames: integers of shape (samples, steps, n0)")
    p.add_argument("--forced", metavar="F.npy",
                   help="forced rasters (the working-memory cue): 0/1 of shape "
                        "(samples, steps, n)")
    p.add_argument("--count", type=int, help="the first N samples only")
    p.add_argument("--membranes", action="store_true",
                   help="read every membrane at every step too (slower; the full trace)")
    p.add_argument("--prediction-only", action="store_true",
                   help="read only the read-out's prediction (least UART traffic)")
    p.add_argument("--check", action="store_true",
                   help="compare each sample with the reference simulator")
    p.add_argument("--baud", type=int, default=1_000_000)
    p.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for an answer")
    p.add_argument("--lanes", type=int, default=1, help="with --simulate: neurons per cycle")
    p.add_argument("--work", default="build/simboard", help="with --simulate: build directory")
    _add_core(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("build", help="synthesise, place and route a bitstream for a board")
    p.add_argument("net")
    p.add_argument("--board", default="icebreaker", choices=BOARDS)
    _add_core(p)
    p.add_argument("--lanes", type=int, default=1, help="neurons updated per cycle")
    p.add_argument("-o", "--output", default="build")
    p.add_argument("--memory", action="append", metavar="NAME=KIND",
                   help="memory kind of a weight array: block, spram (iCE40; loaded from the "
                        "configuration flash), lut (repeatable; e.g. proj0.weights=spram; "
                        "default automatic)")
    p.add_argument("--clock-mhz", type=float,
                   help="the core's clock (a PLL makes it; default: the board's)")
    p.add_argument("--baud", type=int, help="host-link baud rate (default: the board's)")
    p.add_argument("--vectors", help="stimulus bundle (.npz from sim.vectors) for the "
                                     "cycles-per-step figure")
    p.add_argument("--inputs", metavar="X.npy",
                   help="input frames (samples, steps, n0), e.g. from `polychrony data frames`: "
                        "the cycles per step of real samples (the stack and lean cores: the "
                        "mean over them)")
    p.add_argument("--count", type=int, help="with --inputs: the first N samples only")
    p.add_argument("--steps", type=int, default=100, help="steps of random stimulus otherwise")
    p.add_argument("--markdown", metavar="FILE", help="also write the report as a Markdown "
                                                      "table")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_build)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if getattr(args, "sim", "x") is None:
        args.sim = ["icarus"]
    for name in ("steps", "count", "jobs"):
        if getattr(args, name, 1) is not None and getattr(args, name, 1) < 1:
            _err(f"--{name} must be at least 1")
            return 2
    for name in ("idle", "stall"):
        v = getattr(args, name, 0.0)
        if not 0.0 <= v < 1.0:
            _err(f"--{name} must be in [0, 1), got {v}")
            return 2
    from model.ir import IRError
    from rtl.cores import UnsupportedNetwork
    from sim.cosim import CosimError
    from boards.build import BuildError
    try:
        return args.func(args)
    except (UserError, IRError, UnsupportedNetwork, CosimError, BuildError, ValueError) as e:
        _err(str(e))
        return 2
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
