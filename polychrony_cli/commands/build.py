"""`polychrony build`: synthesise, place and route a board's bitstream."""

from __future__ import annotations

import json
from pathlib import Path

from ..common import (BOARDS, UserError, add_core_arguments, check_supported, load_inputs,
                      load_net, parse_memories, parse_rows, workload_for)
from ..steps import build_bitstream, build_json, estimate_on_board

__all__ = ["add_parser"]


def add_parser(sub) -> None:
    """Add ``build`` to the subcommands ``sub``."""
    p = sub.add_parser("build", help="synthesise, place and route a bitstream for a board")
    p.add_argument("net")
    p.add_argument("--board", default="icebreaker", choices=BOARDS)
    add_core_arguments(p)
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
                                     "cycles-per-step figure (default: the workload saved "
                                     "beside the IR by training)")
    p.add_argument("--inputs", metavar="X.npy",
                   help="input frames (samples, steps, n0), e.g. from `polychrony data frames`: "
                        "the cycles per step of real samples (the mean over them)")
    p.add_argument("--count", type=int, help="with --inputs or the workload: the first N "
                                             "samples only")
    p.add_argument("--steps", type=int, default=100,
                   help="steps of random stimulus when there is no workload, --inputs or "
                        "--vectors")
    p.add_argument("--force", action="store_true",
                   help="run synthesis and place-and-route even when the estimate says the "
                        "design does not fit the board's device")
    p.add_argument("--markdown", metavar="FILE", help="also write the report as a Markdown "
                                                      "table")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_build)


def cmd_build(args) -> int:
    from boards.report import MARKDOWN_HEADER, board_report
    from boards.top import sync_clock
    net = load_net(args.net)
    check_supported(net, args.lanes, args.core)
    memories = parse_memories(args.memory)
    from rtl.cores import CORES
    if memories and "memories" not in CORES[args.core].knobs:
        raise UserError(f"--memory does not apply to the {args.core} core (it places its "
                        f"weight memories itself)")
    clock_hz = None if args.clock_mhz is None else args.clock_mhz * 1e6
    try:
        clk, _ = sync_clock(args.board, clock_hz)
    except ValueError as e:
        raise UserError(f"--clock-mhz {args.clock_mhz}: {e}") from None
    rows = parse_rows(args)
    if args.inputs and args.vectors:
        raise UserError("give --inputs or --vectors, not both")
    inputs = load_inputs(args.inputs, net, args.count) if args.inputs else None
    wl, stimulus = workload_for(args, net, given=bool(args.inputs or args.vectors))
    if wl is not None and args.count:
        wl = wl.head(args.count)
    b, est = estimate_on_board(net, args.board, lanes=args.lanes, steps=args.steps, seed=0,
                               vectors=args.vectors, memories=memories, core=args.core,
                               work_dir=Path(args.output) / "cycles", rows=rows, inputs=inputs,
                               workload=wl)
    from boards.fit import board_fit
    fit = board_fit(est, b)
    if not fit.fits and not args.force:
        raise UserError(f"{args.net} on {b.name}: {fit.line()}; nothing was built (fewer "
                        f"--lanes, other --memory kinds, a larger board, or --force to try)")
    res = build_bitstream(net, args.board, Path(args.output), lanes=args.lanes,
                          memories=memories, clock_hz=clock_hz, baud=args.baud, core=args.core,
                          rows=rows)
    rep = board_report(net.name, b, est, res, clock_mhz=clk / 1e6)
    if args.markdown:
        Path(args.markdown).write_text(MARKDOWN_HEADER + "\n" + rep.markdown_row() + "\n")
    if args.json:
        src = "workload" if wl else "inputs" if args.inputs else \
            "vectors" if args.vectors else "random"
        print(json.dumps(build_json(res) | rep.to_json() | {"stimulus": src}, indent=1))
        return 0
    print(rep.text())
    print(f"  cycles from {stimulus}")
    if res.flash_image is not None:
        print(f"  weights: write {res.flash_image} at flash offset {res.flash_offset:#x} "
              f"(iceprog -o {res.flash_offset // (1 << 20)}M {res.flash_image})")
    return 0
