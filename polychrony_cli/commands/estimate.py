"""`polychrony estimate`: memory, logic and speed of a core on a board, before synthesis."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..common import (BOARDS, add_core_arguments, check_supported, load_net, parse_memories,
                      parse_rows, workload_for)
from ..steps import estimate_on_board, estimate_rows

__all__ = ["add_parser"]


def add_parser(sub) -> None:
    """Add ``estimate`` to the subcommands ``sub``."""
    p = sub.add_parser("estimate", help="memory, logic and speed of the core, before synthesis")
    p.add_argument("net")
    p.add_argument("--board", default="icebreaker", choices=BOARDS)
    p.add_argument("--lanes", type=int, default=1, help="neurons updated per cycle")
    p.add_argument("--vectors", help="stimulus bundle (.npz from sim.vectors) for the activity "
                                     "(default: the workload saved beside the IR by training)")
    p.add_argument("--steps", type=int, default=100,
                   help="steps of random stimulus when there is neither")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--memory", action="append", metavar="NAME=KIND",
                   help="memory kind of a weight array: block, spram (iCE40), lut or "
                        "loaded (filled at run time through wl) (repeatable; e.g. "
                        "proj0.weights=spram; default automatic)")
    add_core_arguments(p)
    p.add_argument("--require-fit", action="store_true",
                   help="exit with status 3 when the design (core and host link) does not fit "
                        "the board's device")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_estimate)


def cmd_estimate(args) -> int:
    import tempfile
    net = load_net(args.net)
    check_supported(net, args.lanes, args.core)
    wl, stimulus = workload_for(args, net, given=bool(args.vectors))
    with tempfile.TemporaryDirectory(prefix="polychrony-estimate-") as tmp:
        b, est = estimate_on_board(net, args.board, lanes=args.lanes, steps=args.steps,
                                   seed=args.seed, vectors=args.vectors, workload=wl,
                                   memories=parse_memories(args.memory), core=args.core,
                                   rows=parse_rows(args), work_dir=Path(tmp))
    from boards.fit import board_fit
    fit = board_fit(est, b)
    status = 3 if args.require_fit and not fit.fits else 0
    if args.json:
        src = "workload" if wl else "vectors" if args.vectors else "random"
        print(json.dumps(est.to_json() | {"board": b.name, "device_resources": b.resources,
                                          "fit": fit.to_json(), "stimulus": src},
                         indent=1))
        return status
    print(f"  {'stimulus':<12} {stimulus}")
    for k, v in estimate_rows(b, est):
        print(f"  {k:<12} {v}")
    print("  per array:")
    for name, bits in est.memory_bits.items():
        where = f"{est.spram[name]:>4} SPRAM" if name in est.spram else \
            "   off chip (loaded)" if name in est.offchip else \
            f"{est.blocks[name]:>4} blocks" + (" (LUT RAM)" if est.kinds.get(name) == "lut"
                                               else "")
        print(f"    {name:<22} {bits:>10,} bits  {where}")
    if status:
        print(f"error: {args.net} on {b.name}: {fit.line()}", file=sys.stderr)
    return status
