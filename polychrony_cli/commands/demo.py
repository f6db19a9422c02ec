"""`polychrony demo`: the whole flow on the embedded default (train, IR, reference, Verilog,
co-simulation, host link, bitstream)."""

from __future__ import annotations

import json
from pathlib import Path

from ..common import Progress, UserError, bounded, make_safe
from ..steps import build_bitstream, build_json, cosim

__all__ = ["add_parser"]


def add_parser(sub) -> None:
    """Add ``demo`` to the subcommands ``sub``."""
    p = sub.add_parser("demo", help="train -> IR -> reference -> Verilog -> cosim -> bitstream")
    p.add_argument("-o", "--out", "--output", dest="output", metavar="DIR",
                   default="out/demo",
                   help="directory for every artefact")
    p.add_argument("--seed", type=bounded(int, 0), default=0)
    p.add_argument("--no-build", action="store_true", help="skip the FPGA bitstream")
    p.add_argument("--port", metavar="DEV",
                   help="an iCEBreaker on this serial port (e.g. /dev/ttyUSB1): program it "
                        "with the bitstream and run the recall trials on it")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--quiet", action="store_true", help="with --json: no progress on stderr")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args) -> int:
    from model.ir import load, load_workload, save, save_workload, workload_path
    from model.wm.run import run_wm
    from rtl.export import generate
    from sim.reference import simulate

    out = Path(args.output)
    if args.port and args.no_build:
        raise UserError("--port loads the bitstream this demo builds: drop --no-build")
    if args.port and not Path(args.port).exists():
        raise UserError(f"--port {args.port}: no such serial port (is the board plugged in?)")
    steps_total = 7 - (1 if args.no_build else 0) + (1 if args.port else 0)
    prog = Progress(steps_total, quiet=args.json and args.quiet)
    summary: dict = {}
    with prog.stage("train: least-squares working memory, quantise to the integer IR"):
        wm = run_wm(seed=args.seed)
        summary.update(f1_float=wm["f1_float"], f1_int=wm["f1_int"], settings=wm["settings"])
    with prog.stage("IR and workload: save, reload, design-rule check"):
        path = save(wm["net"], out / "net.npz")
        net = load(path)
        wl = load_workload(save_workload(wm["workload"], workload_path(path)), net)
        summary["ir"] = {"path": str(path), "digest": net.digest,
                         "workload": str(workload_path(path))}
    with prog.stage("reference: integer simulation of the recall trials"):
        refs = [simulate(net, *wl.sample(i), steps=wl.steps) for i in range(wl.samples)]
        _, forced = wl.sample(0)
        steps = wl.steps
        trace = refs[0]
        summary["reference"] = {"steps": steps, "trials": wl.samples,
                                "f1": wl.score(refs)["value"],
                                "spikes": int(trace.spikes[1].sum())}
    with prog.stage("generate: Amaranth core -> Verilog"):
        vdir = out / "verilog"
        man = generate(net, vdir)
        summary["verilog"] = str(vdir / man["verilog"])
        summary["memory_bits"] = man["memory_bits"]
    with prog.stage("cosim: cocotb, Icarus and Verilator, every step"):
        summary["cosim"] = {}
        for simulator in ("icarus", "verilator"):
            res = cosim(net, None, forced, steps, simulator, out / "cosim", args.seed,
                        idle=0.1, stall=0.1, verilog_dir=vdir)
            summary["cosim"][simulator] = {"steps": res.steps, "mismatches": res.mismatches,
                                           "first_mismatch": res.first_mismatch,
                                           "cycles": res.cycles,
                                           "seconds": round(res.seconds, 2)}
    with prog.stage("host link: the driver runs the recall trials on the simulated board top"):
        from boards.simboard import SimBoard, simulated_board
        exe, div = simulated_board(net, make_safe(out / "simboard"))
        with SimBoard(exe, div) as sb:
            summary["host_link"] = _trials(sb.port, net, wl, refs)
    if not args.no_build:
        with prog.stage("build: iCEBreaker host-link bitstream with YoWASP yosys + nextpnr"):
            res = build_bitstream(net, "icebreaker", out / "build")
            summary.update(build_json(res), timing_met=res.timing_met)
    else:
        summary.update(bitstream=None, fmax_mhz=None, utilisation=None)
    if args.port:
        with prog.stage(f"board: program the iCEBreaker, run the recall trials on {args.port}"):
            from boards.program import (ProgramError, loader_path, program_commands,
                                        run_program)
            if not summary["timing_met"]:
                raise UserError("the bitstream missed its clock: not loading it")
            try:
                run_program(program_commands("icebreaker", res.bitstream,
                                             loader=loader_path()), board="icebreaker")
            except ProgramError as e:
                raise UserError(str(e), status=1) from None
            summary["board"] = _trials(args.port, net, wl, refs)
    ok = (summary["f1_float"] == 1.0 and summary["f1_int"] == 1.0 and
          all(c["mismatches"] == 0 and c["steps"] == steps for c in summary["cosim"].values())
          and summary["host_link"]["bit_exact"]
          and summary["host_link"]["f1"] == summary["reference"]["f1"]
          and (args.no_build or (summary["bitstream"] and summary["timing_met"]))
          and (not args.port or (summary["board"]["bit_exact"]
                                 and summary["board"]["f1"] == summary["reference"]["f1"])))
    summary["ok"] = bool(ok)
    if args.json:
        print(json.dumps(summary, indent=1, default=str))
    else:
        _print_demo(summary)
    return 0 if ok else 1


def _trials(port: str, net, wl, refs) -> dict:
    """Run every recall trial of ``wl`` through the host driver on ``port`` and compare each
    returned trace with the reference's ``refs``."""
    from boards.host import Board
    got, timings = [], []
    with Board(port, net=net, timeout=10) as board:
        for i in range(wl.samples):
            got.append(board.run(*wl.sample(i), steps=wl.steps))
            timings.append(board.last_timing)
    mms = [r.first_mismatch(g) for r, g in zip(refs, got)]
    mm = next((m for m in mms if m is not None), None)
    return {"steps": wl.steps, "trials": len(got), "bit_exact": mm is None,
            "first_mismatch": None if mm is None else str(mm), "f1": wl.score(got)["value"],
            "bytes_out": sum(t.bytes_out for t in timings),
            "bytes_in": sum(t.bytes_in for t in timings),
            "frames": sum(t.frames for t in timings),
            "seconds": round(sum(t.seconds for t in timings), 2)}


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
    rows.append(("host link", f"{h['trials']} recall trials of {h['steps']} steps through the "
                              f"UART protocol on the simulated board, F1 {h['f1']:.4f}, " +
                              ("bit-exact" if h["bit_exact"] else
                               f"MISMATCH {h['first_mismatch']}") +
                              f" ({h['frames']} frames, {h['bytes_out']} B out, "
                              f"{h['bytes_in']} B in, {h['seconds']} s)"))
    if s.get("bitstream"):
        rows.append(("bitstream", s["bitstream"]))
        rows.append(("Fmax", f"{s['fmax_mhz']:.1f} MHz (core clock {s['constraint_mhz']:.1f} "
                             f"MHz, timing {'met' if s['timing_met'] else 'NOT MET'})"))
        rows.append(("utilisation", ", ".join(f"{k} {v['used']}/{v['available']}"
                                              for k, v in s["utilisation"].items())))
    if s.get("board"):
        b = s["board"]
        rows.append(("on the board", f"{b['trials']} recall trials on the iCEBreaker, F1 "
                                     f"{b['f1']:.4f}, " + ("bit-exact" if b["bit_exact"] else
                                                          f"MISMATCH {b['first_mismatch']}")
                                     + f" ({b['seconds']} s)"))
    rows.append(("result", "OK" if s["ok"] else "FAILED"))
    width = max(len(k) for k, _ in rows)
    print()
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
