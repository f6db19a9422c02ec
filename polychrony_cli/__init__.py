"""polychrony: spiking networks whose memory lives in synaptic delays, from training to an
FPGA. Train, check, simulate (the integer reference), import/export NIR, generate Verilog,
co-simulate it bit for bit, estimate, build a bitstream and run it on a board."""

from __future__ import annotations

import argparse
import importlib
import sys

from .commands import ORDER
from .common import UserError, error

__all__ = ["main"]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("polychrony")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"


class _Help(argparse.HelpFormatter):
    """Every option's default in ``--help``, unless its help already says it (or it has none
    worth saying: off, unset)."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (default in (None, False, argparse.SUPPRESS) or "default" in text
                or not action.option_strings or isinstance(default, list)):
            return text
        return f"{text} (default: %(default)s)" if text else "(default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """Every subcommand's parser: defaults shown in help."""

    def __init__(self, *args, **kw):
        kw.setdefault("formatter_class", _Help)
        super().__init__(*args, **kw)


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="polychrony", description=__doc__)
    ap.add_argument("--version", action="version", version=f"polychrony {_version()}")
    sub = ap.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    for name in ORDER:
        importlib.import_module(f".commands.{name}", __name__).add_parser(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "sim", "x") is None:
        args.sim = ["icarus"]
    for name in ("steps", "count", "jobs"):
        if getattr(args, name, 1) is not None and getattr(args, name, 1) < 1:
            error(f"--{name} must be at least 1")
            return 2
    for name in ("idle", "stall"):
        v = getattr(args, name, 0.0)
        if not 0.0 <= v < 1.0:
            error(f"--{name} must be in [0, 1), got {v}")
            return 2
    from model.ir import IRError
    from rtl.cores import UnsupportedNetwork
    from sim.cosim import CosimError
    from boards.build import BuildError
    from boards.simboard import SimBoardError
    try:
        return args.func(args)
    except (UserError, IRError, UnsupportedNetwork, CosimError, BuildError, SimBoardError,
            ValueError) as e:
        error(str(e))
        return getattr(e, "status", 2)
    except KeyboardInterrupt:
        error("interrupted")
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except ModuleNotFoundError as e:
        if e.name not in ("torch", "scipy", "matplotlib"):
            raise
        error(f"'polychrony {args.cmd}' needs {e.name}, which trains and plots and is not "
              "installed: pip install 'polychrony[train]' (torch==2.13.0 is the CPU wheel; "
              "bash scripts/setup.sh installs everything)")
        return 2
    except OSError as e:  # a missing or unreadable file or directory the user named
        error(str(e) if e.filename is None or str(e.filename) in str(e) else
              f"{e.filename}: {e.strerror or e}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
