"""`polychrony estimate`: memory, logic and speed of a core on a board, before synthesis."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from ..common import (UserError, add_board_argument, add_core_arguments, board_of, bounded,
                      check_memories, check_supported, load_net, parse_memories, parse_rows,
                      stimulus_source, workload_for)
from ..steps import estimate_on_board, estimate_rows, samples_of

__all__ = ["add_parser"]

#: Exit status of ``--require-fit`` (and of an automatic choice) when nothing fits.
NO_FIT = 3


def add_parser(sub) -> None:
    """Add ``estimate`` to the subcommands ``sub``."""
    p = sub.add_parser("estimate", help="memory, logic and speed of the core, before synthesis "
                                        "(by default of the fastest configuration that fits)")
    p.add_argument("net")
    add_board_argument(p, "estimate")
    p.add_argument("--vectors", help="stimulus bundle (.npz from sim.vectors) for the activity "
                                     "(default: the workload saved beside the IR by training)")
    p.add_argument("--steps", type=bounded(int, 1), default=100,
                   help="steps of random stimulus when there is neither")
    p.add_argument("--seed", type=bounded(int, 0), default=0)
    p.add_argument("--memory", action="append", metavar="NAME=KIND",
                   help="memory kind of a weight array: block, spram (iCE40), lut or "
                        "loaded (filled at run time through wl) (repeatable; e.g. "
                        "proj0.weights=spram; default automatic)")
    add_core_arguments(p, auto=True)
    p.add_argument("--require-fit", action="store_true",
                   help=f"exit with status {NO_FIT} when the design (core and host link) does "
                        f"not fit the board's device")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_estimate)


def cmd_estimate(args) -> int:
    board_of(args)
    net = load_net(args.net)
    wl, stimulus = workload_for(args, net, given=bool(args.vectors))
    if args.core == "auto" or args.lanes == "auto":
        return _estimate_auto(args, net, wl, stimulus)
    check_supported(net, args.lanes, args.core)
    from boards.fit import board_fit
    with tempfile.TemporaryDirectory(prefix="polychrony-estimate-") as tmp:
        b, est = estimate_on_board(net, args.board, lanes=args.lanes, steps=args.steps,
                                   seed=args.seed, vectors=args.vectors, workload=wl,
                                   memories=parse_memories(args.memory), core=args.core,
                                   rows=parse_rows(args), work_dir=Path(tmp))
    fit = board_fit(est, b)
    status = NO_FIT if args.require_fit and not fit.fits else 0
    if args.json:
        print(json.dumps(est.to_json() | {"board": b.name, "core": args.core,
                                          "device_resources": b.resources,
                                          "fit": fit.to_json(),
                                          "stimulus": stimulus_source(args, wl)},
                         indent=1))
    else:
        print(f"  {'stimulus':<12} {stimulus}")
        _print_estimate(b, est)
    if status:
        print(f"error: {args.net} on {b.name}: {fit.line()}", file=sys.stderr)
    return status


def _estimate_auto(args, net, wl, stimulus) -> int:
    from boards.catalog import board
    from ..choose import ORDER, choose, table
    b = board(args.board)
    work = samples_of(net, steps=args.steps, seed=args.seed, vectors=args.vectors, workload=wl)
    core = None if args.core == "auto" else args.core
    rows = parse_rows(args)
    memories = parse_memories(args.memory) or None
    check_memories(net, b, memories)

    def say(line):
        if not args.json:
            print(f"  ... {line}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="polychrony-estimate-") as tmp:
        choice = choose(net, args.board, work, core=core,
                        lanes=None if args.lanes == "auto" else args.lanes, rows=rows,
                        memories=memories, work_dir=Path(tmp), progress=say)
    best = choice.best
    if args.json:
        out = {"board": b.name, "device_resources": b.resources,
               "stimulus": stimulus_source(args, wl),
               "choice": choice.to_json()}
        if best is not None:
            out |= best.estimate.to_json() | {"core": best.core, "knobs": best.knobs,
                                              "fit": best.fit.to_json()}
        print(json.dumps(out, indent=1))
    else:
        print(f"  {'stimulus':<12} {stimulus}")
        print(f"  configurations for {b.name} ({b.fpga.label}), {ORDER}:")
        for line in table(choice):
            print(line)
        if best is not None:
            print(f"  chosen: {best.label} at {best.clock_mhz:g} MHz (expected Fmax "
                  f"{best.fmax_mhz:g} MHz{'' if best.fmax_measured else ', no builds yet'})")
            _print_estimate(b, best.estimate)
    if best is None:
        raise UserError(f"{args.net}: {choice.nowhere(b)}", status=NO_FIT)
    return 0


def _print_estimate(b, est) -> None:
    for k, v in estimate_rows(b, est):
        print(f"  {k:<12} {v}")
    print("  per array:")
    for name, bits in est.memory_bits.items():
        where = f"{est.spram[name]:>4} SPRAM" if name in est.spram else \
            "   off chip (loaded)" if name in est.offchip else \
            f"{est.blocks[name]:>4} blocks" + (" (LUT RAM)" if est.kinds.get(name) == "lut"
                                               else "")
        print(f"    {name:<22} {bits:>10,} bits  {where}")
