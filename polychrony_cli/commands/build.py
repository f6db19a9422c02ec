"""`polychrony build`: synthesise, place and route a board's bitstream."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ..common import (UserError, add_board_argument, add_core_arguments, board_of, bounded,
                      check_memories, check_supported, load_inputs, load_net, make_safe,
                      parse_memories, parse_rows, stimulus_source, workload_for)
from ..steps import build_json, samples_of

__all__ = ["add_parser"]


def add_parser(sub) -> None:
    """Add ``build`` to the subcommands ``sub``."""
    p = sub.add_parser("build", help="synthesise, place and route a bitstream for a board")
    p.add_argument("net")
    add_board_argument(p, "build")
    add_core_arguments(p, auto=True)
    p.add_argument("-o", "--out", "--output", dest="output", metavar="DIR",
                   default="build",
                   help="directory for the build products")
    p.add_argument("--memory", action="append", metavar="NAME=KIND",
                   help="memory kind of a weight array: block, spram (iCE40; loaded from the "
                        "configuration flash), lut (repeatable; e.g. proj0.weights=spram; "
                        "default automatic)")
    p.add_argument("--clock-mhz", type=bounded(float, 0.0, above=True),
                   help="the core's clock (a PLL makes it; default: the core's expected Fmax "
                        "less 5 %%, then once more at what the report supports: lower when "
                        "timing is missed, at least 10 %% higher when it is met with room)")
    p.add_argument("--no-climb", action="store_true",
                   help="keep the first build that meets timing, even when its report "
                        "supports a clock 10 %% or more faster (one build less)")
    p.add_argument("--tries", type=bounded(int, 1), default=3,
                   help="configurations to try, best first, when place and route fails or "
                        "timing cannot be met (default 3)")
    p.add_argument("--try-minutes", type=bounded(float, 0.0, above=True), default=45,
                   help="stop a try whose synthesis, placement and routing run longer than "
                        "this: a try routed with nextpnr's default router is built once more "
                        "with router2, any other goes on to the next configuration (default "
                        "45)")
    p.add_argument("--baud", type=bounded(int, 1),
                   help="host-link baud rate (default: the board's)")
    p.add_argument("--vectors", help="stimulus bundle (.npz from sim.vectors) for the "
                                     "cycles-per-step figure (default: the workload saved "
                                     "beside the IR by training)")
    p.add_argument("--inputs", metavar="X.npy",
                   help="input frames (samples, steps, n0), e.g. from `polychrony data frames`: "
                        "the cycles per step of real samples (the mean over them)")
    p.add_argument("--count", type=bounded(int, 1),
                   help="with --inputs or the workload: the first N "
                                             "samples only")
    p.add_argument("--steps", type=bounded(int, 1), default=100,
                   help="steps of random stimulus when there is no workload, --inputs or "
                        "--vectors")
    p.add_argument("--force", action="store_true",
                   help="with --core and --lanes given: run synthesis and place-and-route even "
                        "when the estimate says the design does not fit the board's device")
    p.add_argument("--markdown", metavar="FILE", help="also write the report as a Markdown "
                                                      "table")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_build)


def cmd_build(args) -> int:
    board_of(args)
    from boards.catalog import board
    from boards.report import MARKDOWN_HEADER, board_report
    from boards.top import sync_clock
    from rtl.cores import CORES
    from ..choose import ORDER, build_choice, choose, table
    net = load_net(args.net)
    b = board(args.board)
    pinned = args.core != "auto" and args.lanes != "auto"
    if pinned:
        check_supported(net, args.lanes, args.core)
    memories = parse_memories(args.memory)
    check_memories(net, b, memories)
    if memories and args.core != "auto" and "memories" not in CORES[args.core].knobs:
        raise UserError(f"--memory does not apply to the {args.core} core (it places its "
                        f"weight memories itself)")
    if args.clock_mhz is not None:
        try:
            sync_clock(args.board, args.clock_mhz * 1e6)
        except ValueError as e:
            raise UserError(f"--clock-mhz {args.clock_mhz}: {e}") from None
    if args.tries < 1:
        raise UserError(f"--tries must be at least 1, got {args.tries}")
    if not args.try_minutes > 0:
        raise UserError(f"--try-minutes must be positive, got {args.try_minutes}")
    rows = parse_rows(args)
    if args.inputs and args.vectors:
        raise UserError("give --inputs or --vectors, not both")
    inputs = load_inputs(args.inputs, net, args.count) if args.inputs else None
    wl, stimulus = workload_for(args, net, given=bool(args.inputs or args.vectors))
    if wl is not None and args.count:
        wl = wl.head(args.count)
    work = samples_of(net, steps=args.steps, seed=0, vectors=args.vectors, inputs=inputs,
                      workload=wl)

    def say(line):
        if not args.json:
            print(f"  ... {line}", file=sys.stderr, flush=True)

    out = Path(args.output)
    choice = choose(net, args.board, work, core=None if args.core == "auto" else args.core,
                    lanes=None if args.lanes == "auto" else args.lanes, rows=rows,
                    memories=memories or None, work_dir=make_safe(out / "cycles"), progress=say,
                    baud=args.baud)
    queue = choice.ranked[:args.tries]
    if not queue:
        forced = [c for c in choice.dropped if pinned and args.force and c.estimate is not None]
        if not forced:
            hint = ("; nothing was built (fewer --lanes, other --memory kinds, a larger board, "
                    "or --force to try)") if pinned else "; nothing was built"
            raise UserError(f"{args.net}: {choice.nowhere(b)}{hint}", status=3)
        queue = forced[:1]
    if not args.json and not pinned:
        print(f"configurations for {b.name} ({b.fpga.label}), {ORDER}:")
        for line in table(choice):
            print(line)
    unknown = [c.label for c in queue if not c.cycles_known]
    if unknown:
        raise UserError(f"{args.net} on {b.name}: the cycles of {unknown[0]} are unknown "
                        f"(a core that must be measured is measured only when it fits)")
    cand, res, clock, tries = build_choice(net, args.board, queue, out,
                                           clock_mhz=args.clock_mhz, memories=memories,
                                           baud=args.baud, say=say,
                                           time_limit=args.try_minutes * 60,
                                           climb=not args.no_climb)
    est = cand.estimate
    clk, _ = sync_clock(args.board, clock * 1e6)
    rep = board_report(net.name, b, est, res, clock_mhz=clk / 1e6)
    if args.markdown:
        Path(args.markdown).write_text(MARKDOWN_HEADER + "\n" + rep.markdown_row() + "\n")
    src = stimulus_source(args, wl)
    record = (build_json(res) | rep.to_json() |
              {"stimulus": src, "core": cand.core, "knobs": cand.knobs, "tries": tries,
               "choice": choice.to_json()})
    # what `polychrony program OUT` reads: the bitstream that met timing, and its board
    rel = {k: os.path.relpath(record[k], out) for k in ("bitstream", "flash_image")
           if record.get(k)}
    (out / "build.json").write_text(json.dumps(record | {"relative": rel}, indent=1) + "\n")
    if args.json:
        print(json.dumps(record, indent=1))
        return 0 if res.timing_met else 1
    print(rep.text())
    print(f"  {cand.label}, cycles from {stimulus}")
    if len(tries) > 1:
        print("  tries: " + "; ".join(
            f"{t['configuration']} at {t['clock_mhz']:g} MHz"
            f"{' (router2)' if t.get('router') == 'router2' else ''}: {t['result']}"
            for t in tries))
    if res.flash_image is not None:
        print(f"  weights: {res.flash_image} at flash offset {res.flash_offset:#x} "
              "(polychrony program writes both)")
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    bit = os.path.relpath(res.bitstream, out)
    print(f"  products: {out} ({size / 2**20:.1f} MB in all; the bitstream {bit}, "
          f"{res.bitstream.stat().st_size:,} bytes; build.json, and each try's build.log)")
    print(f"  next: polychrony program {out} --board {args.board}")
    return 0 if res.timing_met else 1
