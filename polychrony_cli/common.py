"""What every subcommand shares: the user-error type, progress on stderr, and reading the
network, the inputs and the knobs a user passes."""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from boards.catalog import BOARDS as BOARD_CATALOG

__all__ = ["BOARDS", "UserError", "error", "Progress", "load_net", "parse_memories", "bounded",
           "make_safe", "read_npy", "add_board_argument", "board_of", "load_samples", "load_inputs",
           "load_forced", "check_supported", "add_core_arguments", "parse_rows"]

#: The boards ``--board`` takes.
BOARDS = tuple(BOARD_CATALOG)


class UserError(Exception):
    """A problem the user can fix; printed without a traceback, exit ``status`` (2 unless
    said otherwise)."""

    def __init__(self, message: str, *, status: int = 2):
        super().__init__(message)
        self.status = status


def error(msg: str) -> None:
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


def load_net(path: str):
    """The IR file at ``path``, checked (:func:`model.ir.load`)."""
    from model.ir import load
    return load(path)


def parse_memories(specs) -> dict[str, str]:
    """``--memory NAME=KIND`` options as a dict (checked against the network later)."""
    out = {}
    for spec in specs or []:
        name, sep, kind = spec.partition("=")
        if not sep or not name or not kind:
            raise UserError(f"--memory expects NAME=KIND (e.g. proj0.weights=spram or "
                            f"proj0.weights=loaded), got {spec!r}")
        out[name] = kind
    return out


#: Characters GNU Make cannot take in a path (Verilator builds with make).
_MAKE_HOSTILE = frozenset(" \t#$:;=%\\\"'")


def make_safe(path) -> Path:
    """``path`` (a directory, created), or when make could not build in it (a space, ``#``,
    ``:``, ... anywhere in it) a directory of the same name's digest in the temporary
    directory, said on stderr: Verilator builds through make, and make refuses such paths
    (even through a symbolic link: it works in the physical directory)."""
    path = Path(path).absolute()
    if not _MAKE_HOSTILE.intersection(str(path)):
        path.mkdir(parents=True, exist_ok=True)
        return path
    base = Path(tempfile.gettempdir()) / "polychrony-work"
    if _MAKE_HOSTILE.intersection(str(base)):
        raise UserError(f"{path}: Verilator (through make) cannot build in a path with spaces "
                        "or special characters, and neither can the temporary directory "
                        f"{base}; use another work directory")
    safe = base / hashlib.sha256(str(path).encode()).hexdigest()[:16]
    safe.mkdir(parents=True, exist_ok=True)
    print(f"polychrony: note: make cannot build in {str(path)!r} (a space or special "
          f"character); working in {safe} instead", file=sys.stderr)
    return safe


#: The board taken when a command that needs one is given none (and says so).
DEFAULT_BOARD = "icebreaker"


def add_board_argument(p, what: str) -> None:
    """``--board``: which board to ``what`` for (default: the iCEBreaker, said on stderr)."""
    p.add_argument("--board", default=None, choices=BOARDS,
                   help=f"the board to {what} for (default {DEFAULT_BOARD}, with a note)")


def board_of(args) -> str:
    """``args.board``, or the default board with a note on stderr when none was given."""
    if args.board is None:
        args.board = DEFAULT_BOARD
        print(f"polychrony: note: no --board given: {DEFAULT_BOARD} "
              f"({BOARD_CATALOG[DEFAULT_BOARD].fpga.label}); pass --board to choose",
              file=sys.stderr)
    return args.board


def read_npy(path: str, what: str) -> np.ndarray:
    """The array of a ``.npy`` file (never unpickled), or one line saying what the file is."""
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
    except OSError as e:
        raise UserError(f"{path}: cannot read {what} ({e.strerror or e})") from None
    if magic != b"\x93NUMPY":
        kind = ("a WAV file" if magic[:4] == b"RIFF" else "an .npz archive" if magic[:2] == b"PK"
                else "not a .npy file")
        raise UserError(f"{path}: {kind}, but {what} must be a .npy array of integers (input "
                        "frames: e.g. from 'polychrony data frames')")
    try:
        a = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        msg = ("it holds Python objects, which polychrony never unpickles" if "pickle" in str(e)
               else str(e))
        raise UserError(f"{path}: not a readable .npy array of integers: {msg}") from None
    return a


def load_samples(path: str, kinds: str, what: str, n: int, shape: str) -> np.ndarray:
    """A ``.npy`` (never a pickle) of ``kinds`` dtype, ``(S, T, n)`` or ``(T, n)``, as 3-D."""
    a = read_npy(path, what)
    if not isinstance(a, np.ndarray) or a.dtype.kind not in kinds:
        raise UserError(f"{path}: {what} must be an integer array, got "
                        f"{getattr(a, 'dtype', type(a).__name__)}")
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[2] != n:
        raise UserError(f"{path}: {what} must have shape {shape}, got {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise UserError(f"{path}: {what} must hold at least one sample of at least one step, "
                        f"got shape {a.shape}")
    return a


def load_inputs(path: str, net, count: int | None) -> np.ndarray:
    """Input frames for cosim: a ``.npy`` of integers, ``(S, T, n0)`` or ``(T, n0)`` (no pickle)."""
    x = load_samples(path, "iu", "inputs", net.input.n,
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


def load_forced(path: str, net, count: int | None) -> np.ndarray:
    """Forced rasters for ``run``: a ``.npy`` of 0/1 integers, ``(S, T, n)`` or ``(T, n)``."""
    layers = net.forced_layers
    if len(layers) != 1:
        raise UserError(f"--forced needs a network with one forced layer; {net.name!r} has "
                        f"{len(layers)}")
    n = net.layers[layers[0]].n
    f = load_samples(path, "iub", "a forced raster", n,
                      f"(samples, steps, n={n}) for layer {layers[0]}")
    if f.size and (int(f.min()) < 0 or int(f.max()) > 1):
        raise UserError(f"{path}: forced rasters hold 0 or 1, got values in "
                        f"[{int(f.min())}, {int(f.max())}]")
    if count is not None:
        f = f[:count]
    return f.astype(np.uint8)


def check_supported(net, lanes: int = 1, core: str = "network") -> None:
    """Refuse (with the core's reason) a network the core cannot build with ``lanes``."""
    from rtl.cores import core as core_named
    core_named(core).check(net, lanes=lanes)


def add_core_arguments(p, *, auto: bool = False) -> None:
    """``--core`` and ``--rows`` (with ``auto``: ``--core auto`` is the default and ``--lanes``
    is added, default ``auto``: the tool chooses, see :mod:`polychrony_cli.choose`)."""
    from rtl.cores import CORES
    choices = (("auto",) if auto else ()) + tuple(CORES)
    p.add_argument("--core", choices=choices, default="auto" if auto else "network",
                   help=("auto: the fastest configuration that fits the board; " if auto
                         else "") +
                        "; ".join(f"{name}: {spec.summary}" for name, spec in CORES.items()))
    if auto:
        p.add_argument("--lanes", type=_lanes, default="auto",
                       help="neurons updated per cycle, or auto (the fastest that fits)")
    p.add_argument("--rows", action="append", metavar="LAYER=R",
                   help="stack core: weight rows layer LAYER (>= 2) adds per cycle, 1-8 "
                        "(repeatable; default by layer width)")


def bounded(kind: type = int, lo: float | None = None, hi: float | None = None, *,
            above: bool = False):
    """An argparse ``type``: a ``kind`` (int or float) in ``[lo, hi]`` (``(lo, hi]`` with
    ``above``); a value outside is refused at parse time with the limit in the message."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") \
                from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text}")
        if lo is not None and (value <= lo if above else value < lo):
            raise argparse.ArgumentTypeError(
                f"must be {'above' if above else 'at least'} {lo}, got {text}")
        if hi is not None and value > hi:
            raise argparse.ArgumentTypeError(f"must be at most {hi}, got {text}")
        return value
    parse.__name__ = kind.__name__  # argparse names the type in its messages
    parse.bounds = (lo, hi, above)  # for tests that look for values out of range
    return parse


def _lanes(text: str):
    if text == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or auto, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_rows(args) -> dict | None:
    """The stack core's ``--rows`` as {layer: rows}, or None."""
    if not args.rows:
        return None
    from rtl.cores import CORES
    if args.core == "auto":
        raise UserError("--rows applies to the stack core: give --core stack with it")
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


def workload_for(args, net, *, given: bool):
    """``(workload, words)``: the workload saved beside the IR at ``args.net`` unless the
    user ``given`` a stimulus of their own, and how a report names the stimulus."""
    from model.ir import find_workload, workload_path
    if given:
        return None, "the stimulus given"
    wl = find_workload(args.net, net)
    if wl is None:
        return None, (f"{args.steps} steps of random stimulus (no workload beside the IR: "
                      f"{workload_path(args.net)})")
    return wl, f"the workload beside the IR: {wl.describe()}"


def check_memories(net, board, memories: dict) -> None:
    """Refuse ``--memory`` choices that name no weight array, an unknown kind or a kind the
    board's device lacks (``ValueError`` naming the array), before anything is planned."""
    if memories:
        from rtl.memplan import memory_kinds
        memory_kinds(net, lanes=1, memories=memories, device=board.fpga)


def stimulus_source(args, wl) -> str:
    """Where a command's samples came from, as its JSON says: ``workload``, ``inputs``,
    ``vectors`` or ``random``."""
    if wl is not None:
        return "workload"
    if getattr(args, "inputs", None):
        return "inputs"
    return "vectors" if getattr(args, "vectors", None) else "random"
