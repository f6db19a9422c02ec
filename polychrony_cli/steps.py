"""Steps of the flow that several commands and the benchmarks share: co-simulating a core,
measuring its cycles per step on a workload, estimating its cost on a board, and building a
board's bitstream. A step that cannot produce its result raises
:class:`~polychrony_cli.common.UserError` with the reason."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from model.ir import Network

from .common import BOARDS, UserError

__all__ = ["measure_cycles", "estimate_core", "cosim", "estimate_on_board", "estimate_rows",

           "build_bitstream", "build_json"]


def _verilator_cycles(spec, net: Network, work, lanes: int, work_dir: Path, knobs: dict):
    """The core's generated Verilog in Verilator, inputs streamed at one record per cycle
    while outputs drain; only the read-out's records go out (as on a board asked for
    predictions only); the observed membranes must be bit-exact at every step of every sample."""
    from rtl.export import generate
    from sim.cosim import Stimulus, run_cosim_batch
    from sim.reference import simulate
    generate(net, Path(work_dir) / "verilog", lanes=lanes, core=spec.name,
             observe=[len(net.layers) - 1], **knobs)
    stimuli = [Stimulus(simulate(net, x, forced, steps=steps), x, forced)
               for x, forced, steps in work]
    res = run_cosim_batch(Path(work_dir) / "verilog", stimuli, simulator="verilator",
                          work_dir=Path(work_dir), idle=0, stall=0, fast=False)
    bad = [r.describe() for r in res.results if not r.ok]
    if bad or len(res.results) != len(stimuli):
        raise UserError(f"{spec.name} core co-simulation failed: "
                        f"{(bad or ['runs missing'])[0]}")
    return [r.cycles / r.steps for r in res.results]


def _amaranth_cycles(spec, net: Network, work, lanes: int, knobs: dict):
    """The core in Amaranth's simulator with the read-out observed; its read-out membranes at
    every step and its prediction must equal the reference's."""
    from sim.reference import simulate
    per = []
    for x, forced, steps in work:
        if forced:
            raise UserError(f"the {spec.name} core takes no forced rasters")
        x = np.zeros((steps, net.layers[0].n), np.int64) if x is None else x
        ref = simulate(net, x)
        run = spec.simulate(net, x, lanes=lanes, **knobs)
        last = len(net.layers) - 1
        if not np.array_equal(run.v, ref.v[last]) or run.prediction != ref.prediction:
            raise UserError(f"{spec.name} core simulation differs from the reference "
                            f"(prediction {run.prediction} vs {ref.prediction})")
        per.append(run.cycles_per_step)
    return per


def cycles_cache_dir() -> Path:
    """Where measured cycles are kept: ``$POLYCHRONY_CACHE`` or ``~/.cache/polychrony``, under
    ``cycles/``."""
    import os
    root = os.environ.get("POLYCHRONY_CACHE") or \
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "polychrony"
    return Path(root) / "cycles"


def _cycles_key(spec, net: Network, work, lanes: int, knobs: dict) -> str:
    """A digest of everything a measurement depends on: the network, every sample, the core,
    its lanes and knobs, and the generators' source (:func:`_rtl_digest`)."""
    import hashlib
    import json
    h = hashlib.sha256()
    h.update(json.dumps([_rtl_digest(), net.digest, spec.name, lanes,
                         sorted((k, repr(v)) for k, v in knobs.items())]).encode())
    for x, forced, steps in work:
        h.update(str(steps).encode())
        if x is not None:
            h.update(np.ascontiguousarray(np.asarray(x, np.int64)).tobytes())
        for l in sorted(forced or {}):
            h.update(f"f{l}".encode())
            h.update(np.ascontiguousarray(np.asarray(forced[l], np.uint8)).tobytes())
    return h.hexdigest()


@functools.cache
def _rtl_digest() -> str:
    """A digest of the source of the generators and simulators a measurement runs (``rtl``,
    ``sim``), so that a changed core is measured again."""
    import hashlib
    import rtl
    import sim
    h = hashlib.sha256()
    for pkg in (rtl, sim):
        root = Path(pkg.__file__).parent
        for f in sorted(root.rglob("*.py")):
            h.update(str(f.relative_to(root.parent)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def measure_cycles(spec, net: Network, work, *, lanes: int, work_dir: Path | None = None,
                   cache: bool = True, **knobs) -> tuple[float, int, int]:
    """(mean and max cycles per step, steps per sample) of core ``spec`` on ``work`` (a list
    of ``(x, forced, steps)``), measured the way the core says (:data:`rtl.cores.Measure`):
    its Verilog co-simulated, or the core run in Amaranth's simulator. A core measured by its
    ``"model"`` is estimated from activity instead (:func:`estimate_core`). With ``cache``,
    a measurement is kept in :func:`cycles_cache_dir` and reused for the same network,
    samples, core, lanes, knobs and generator source."""
    import json
    path = cycles_cache_dir() / f"{_cycles_key(spec, net, work, lanes, knobs)}.json"
    if cache and path.exists():
        try:
            got = json.loads(path.read_text())
            return float(got["mean"]), int(got["max"]), int(got["steps"])
        except (ValueError, KeyError, TypeError):
            pass            # a damaged entry is measured again and rewritten
    out = _measure_cycles(spec, net, work, lanes=lanes, work_dir=work_dir, **knobs)
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"mean": out[0], "max": out[1], "steps": out[2],
                                   "core": spec.name, "lanes": lanes, "network": net.digest}))
        tmp.replace(path)
    return out


def _measure_cycles(spec, net: Network, work, *, lanes: int, work_dir: Path | None = None,
                    **knobs) -> tuple[float, int, int]:
    if spec.measure == "verilator":
        if work_dir is None:
            raise ValueError("measuring in co-simulation needs a work_dir")
        per = _verilator_cycles(spec, net, work, lanes, work_dir, knobs)
    elif spec.measure == "amaranth":
        per = _amaranth_cycles(spec, net, work, lanes, knobs)
    else:
        raise ValueError(f"the {spec.name} core is estimated from its cycle model, not "
                         f"measured")
    return float(np.mean(per)), int(np.ceil(max(per))), int(work[0][2])


def estimate_core(spec, net: Network, work, *, device, clock_mhz: float, lanes: int,
                  work_dir: Path | None = None, **knobs):
    """An :class:`rtl.cost.Estimate` of core ``spec`` for ``net`` on ``device`` (a
    :class:`rtl.devices.Device` or its name) at ``clock_mhz``, its cycles from ``work`` (a list
    of ``(x, forced, steps)``): the activity of the reference run of each sample for a core
    with a cycle model, else measured (:func:`measure_cycles`). ``knobs`` go to the core."""
    from rtl.devices import target
    device = target(device=device)
    if spec.families is not None and device.family not in spec.families:
        raise UserError(f"the {spec.name} core is built for {', '.join(spec.families)}, "
                        f"not {device.family} (the {device.label})")
    if spec.measure == "model":
        from rtl.cost import activity
        from sim.reference import simulate
        acts = [activity(net, simulate(net, x, forced, steps=steps), x, forced)
                for x, forced, steps in work]
        return spec.estimate(net, device=device, clock_mhz=clock_mhz, lanes=lanes,
                             activity=acts, **knobs)
    build_knobs = {k: v for k, v in knobs.items() if k in spec.knobs}
    cycles = measure_cycles(spec, net, work, lanes=lanes, work_dir=work_dir, **build_knobs)
    return spec.estimate(net, device=device, clock_mhz=clock_mhz, lanes=lanes, cycles=cycles,
                         **knobs)


def cosim(net, x, forced, steps: int, simulator: str, work: Path, seed: int, *,
          idle: float, stall: float, lanes: int = 1, verilog_dir: Path | None = None,
          memories: dict | None = None, core: str = "network", rows=None,
          waves: bool = False):
    """Co-simulate the core's Verilog (generated into ``work/verilog`` unless ``verilog_dir``
    holds it) against the reference run of ``x`` / ``forced``; a :class:`sim.cosim` result."""
    from rtl.export import generate
    from sim.cosim import run_cosim
    from sim.reference import simulate

    trace = simulate(net, x, forced, steps=steps)
    if verilog_dir is None:
        verilog_dir = work / "verilog"
        generate(net, verilog_dir, lanes=lanes, memories=memories, core=core, rows=rows)
    return run_cosim(verilog_dir, trace, x, forced, simulator=simulator, work_dir=work,
                     seed=seed, idle=idle, stall=stall, waves=waves)


def estimate_on_board(net, board_name: str, *, lanes: int, steps: int, seed: int,
                      vectors: str | None = None, memories: dict | None = None,
                      core: str = "network", work_dir: Path | None = None, rows=None,
                      inputs: np.ndarray | None = None, workload=None,
                      clock_mhz: float | None = None):
    """(board, estimate) of ``net`` on ``board_name`` at ``clock_mhz`` (default the board's
    core clock); the cycles come from every sample of ``workload`` (a
    :class:`model.ir.Workload`), else of ``inputs`` (``(S, T, n0)``), else ``vectors``, else
    ``steps`` of random stimulus."""
    from boards.catalog import board
    from rtl.cores import core as core_named
    b = board(board_name)
    work = samples_of(net, steps=steps, seed=seed, vectors=vectors, inputs=inputs,
                      workload=workload)
    return b, estimate_core(core_named(core), net, work, device=b.fpga,
                            clock_mhz=clock_mhz or b.sync_mhz, lanes=lanes, work_dir=work_dir,
                            memories=memories or None, rows=rows)


def samples_of(net, *, steps: int, seed: int, vectors: str | None = None,
               inputs: np.ndarray | None = None, workload=None) -> list[tuple]:
    """The samples a step runs, as ``(x, forced, steps)``: every sample of ``workload`` (a
    :class:`model.ir.Workload`), else of ``inputs`` (``(S, T, n0)``), else the bundle at
    ``vectors``, else ``steps`` of random stimulus drawn from ``seed``."""
    from sim.randnet import random_stimulus
    work = None
    if workload is not None:
        work = [(*workload.sample(i), workload.steps) for i in range(workload.samples)]
    elif inputs is not None:
        x, forced = inputs[0], None
        work = [(xs, None, xs.shape[0]) for xs in inputs]
    elif vectors:
        from sim.vectors import load_bundle
        bundle = load_bundle(vectors)
        if bundle.digest != net.digest:
            raise UserError(f"{vectors}: vectors were made for IR {bundle.digest[:19]}…, "
                            f"not for this network ({net.digest[:19]}…)")
        x, forced = bundle.x, bundle.forced
    else:
        x, forced = random_stimulus(net, steps, seed)
    if work is None:
        T = len(x) if x is not None and len(x) else steps
        work = [(x, forced, T)]
    return work


def estimate_rows(b, est) -> list[tuple[str, str]]:
    """The estimate as (label, text) rows for people, against the board's device, the last
    one the fit verdict (:func:`boards.fit.board_fit`)."""
    from boards.fit import board_fit, link_cost
    r = b.resources
    blocks = sum(est.blocks.values())
    off = sum(est.offchip.values())
    return [
        ("board", f"{b.name} ({b.device}, core clock {est.clock_mhz:g} MHz), lanes "
                  f"{est.lanes}"),
        ("memory", f"{sum(est.memory_bits.values()) - off:,} bits in {blocks} blocks "
                   f"(device: {r['bram']})" + (
                       f", {sum(est.spram.values())} SPRAM (device: {r.get('spram', 0)})"
                       if est.spram else "") + (
                       f"; {off:,} bits off chip (loaded)" if off else "")),
        ("logic", f"~{est.lut:,} LUT4 in the core, ~{est.lut + link_cost(b.family, est.lanes)['lut']:,} with the "
                  f"host link (device: {r['lut']:,}), {est.dsp} multipliers "
                  f"(device: {r['dsp']})"),
        ("cycles/step", f"{est.cycles_per_step:.0f} mean, {est.cycles_max} max "
                        f"over {est.steps_per_sample} steps"),
        ("speed", f"{est.steps_per_s:,.0f} steps/s, {est.samples_per_s:,.1f} samples/s "
                  f"at {est.clock_mhz:g} MHz"),
        ("fit", board_fit(est, b).line()),
    ]


def build_bitstream(net, board: str, out: Path, *, lanes: int = 1,
                    memories: dict | None = None, clock_hz: float | None = None,
                    baud: int | None = None, core: str = "network", rows=None,
                    timing_allow_fail: bool = False, build_dir: Path | None = None,
                    nextpnr_opts: str | None = None, time_limit: float | None = None):
    """The host-link bitstream of ``net`` for ``board`` in ``build_dir`` (default
    ``out/<board>``; see boards.top.build_board), with ``nextpnr_opts`` (default: the core's
    own), stopped after ``time_limit`` seconds."""
    from boards.top import build_board
    if board not in BOARDS:
        raise UserError(f"unknown board {board!r}; supported: {', '.join(BOARDS)}")
    from rtl.cores import core as core_named
    return build_board(net, board, build_dir=build_dir or out / board, lanes=lanes,
                       memories=memories or None,
                       clock_hz=clock_hz, baud=baud, core=core, rows=rows,
                       nextpnr_opts=core_named(core).nextpnr_opts if nextpnr_opts is None
                       else nextpnr_opts,
                       timing_allow_fail=timing_allow_fail, time_limit=time_limit)


def build_json(res) -> dict:
    """A build result as JSON values."""
    return {"bitstream": str(res.bitstream), "bitstream_bytes": res.bitstream.stat().st_size,
            "fmax_mhz": res.fmax_mhz, "constraint_mhz": res.constraint_mhz,
            "utilisation": {k: {"used": u.used, "available": u.available}
                            for k, u in res.resources.items()},
            "build_seconds": round(res.seconds, 1),
            "flash_image": str(res.flash_image) if res.flash_image else None,
            "flash_offset": res.flash_offset}

