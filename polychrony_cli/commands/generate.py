"""`polychrony generate`: write a core as Verilog."""

from __future__ import annotations

from pathlib import Path

from ..common import (add_core_arguments, bounded, check_supported, load_net, parse_memories,
                      parse_rows)

__all__ = ["add_parser"]


def add_parser(sub) -> None:
    """Add ``generate`` to the subcommands ``sub``."""
    p = sub.add_parser("generate", help="write the network core as Verilog")
    p.add_argument("net")
    p.add_argument("-o", "--out", "--output", dest="output", metavar="DIR",
                   default="build",
                   help="directory for the Verilog and its manifest")
    p.add_argument("--name", default="polychrony_core", help="top module name")
    add_core_arguments(p)
    p.add_argument("--lanes", type=bounded(int, 1), default=1, help="neurons updated per cycle")
    p.add_argument("--memory", action="append", metavar="NAME=KIND",
                   help="memory kind of a weight array: block, spram (iCE40), lut or "
                        "loaded (filled at run time through wl) (repeatable; e.g. "
                        "proj0.weights=spram; default automatic)")
    p.add_argument("--spram-cells", action="store_true",
                   help="SPRAM arrays as SB_SPRAM256KA primitives (as on the device)")
    p.set_defaults(func=cmd_generate)


def cmd_generate(args) -> int:
    from rtl.export import generate
    net = load_net(args.net)
    check_supported(net, args.lanes, args.core)
    man = generate(net, args.output, name=args.name, lanes=args.lanes,
                   memories=parse_memories(args.memory), spram_cells=args.spram_cells,
                   core=args.core, rows=parse_rows(args))
    print(f"wrote {Path(args.output) / man['verilog']} and {man['top']}.json "
          f"(IR {man['ir_digest'][:19]}…)")
    if "load" in man:
        streamed = ", ".join(f"{k} ({v})" for k, v in man["memory_kinds"].items()
                             if v in ("spram", "loaded"))
        print(f"  weights loaded at run time ({streamed}): stream the "
              f"{man['load']['words']} words of {man['load']['image']} "
              f"({man['load']['width']} bits) on wl after reset")
    return 0
