"""Steps of the flow that several commands and the benchmarks share: measuring a core's cycles
per step on a workload, and estimating its cost on a board from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model.ir import Network

__all__ = ["StepError", "measure_cycles", "estimate_core"]


class StepError(Exception):
    """A step could not produce its result (the message says why); printed without a
    traceback by the command line."""


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
        raise StepError(f"{spec.name} core co-simulation failed: "
                        f"{(bad or ['runs missing'])[0]}")
    return [r.cycles / r.steps for r in res.results]


def _amaranth_cycles(spec, net: Network, work, lanes: int, knobs: dict):
    """The core in Amaranth's simulator with the read-out observed; its read-out membranes at
    every step and its prediction must equal the reference's."""
    from sim.reference import simulate
    per = []
    for x, forced, steps in work:
        if forced:
            raise StepError(f"the {spec.name} core takes no forced rasters")
        x = np.zeros((steps, net.layers[0].n), np.int64) if x is None else x
        ref = simulate(net, x)
        run = spec.simulate(net, x, lanes=lanes, **knobs)
        last = len(net.layers) - 1
        if not np.array_equal(run.v, ref.v[last]) or run.prediction != ref.prediction:
            raise StepError(f"{spec.name} core simulation differs from the reference "
                            f"(prediction {run.prediction} vs {ref.prediction})")
        per.append(run.cycles_per_step)
    return per


def measure_cycles(spec, net: Network, work, *, lanes: int, work_dir: Path | None = None,
                   **knobs) -> tuple[float, int, int]:
    """(mean and max cycles per step, steps per sample) of core ``spec`` on ``work`` (a list
    of ``(x, forced, steps)``), measured the way the core says (:data:`rtl.cores.Measure`):
    its Verilog co-simulated, or the core run in Amaranth's simulator. A core measured by its
    ``"model"`` is estimated from activity instead (:func:`estimate_core`)."""
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


def estimate_core(spec, net: Network, work, *, family: str, clock_mhz: float, lanes: int,
                  work_dir: Path | None = None, **knobs):
    """An :class:`rtl.cost.Estimate` of core ``spec`` for ``net`` on ``family`` at
    ``clock_mhz``, its cycles from ``work`` (a list of ``(x, forced, steps)``): the activity
    of the reference run of each sample for a core with a cycle model, else measured
    (:func:`measure_cycles`). ``knobs`` go to the core."""
    if spec.families is not None and family not in spec.families:
        raise StepError(f"the {spec.name} core is built for {', '.join(spec.families)}, "
                        f"not {family}")
    if spec.measure == "model":
        from rtl.cost import activity
        from sim.reference import simulate
        acts = [activity(net, simulate(net, x, forced, steps=steps), x, forced)
                for x, forced, steps in work]
        return spec.estimate(net, family=family, clock_mhz=clock_mhz, lanes=lanes,
                             activity=acts, **knobs)
    build_knobs = {k: v for k, v in knobs.items() if k in spec.knobs}
    cycles = measure_cycles(spec, net, work, lanes=lanes, work_dir=work_dir, **build_knobs)
    return spec.estimate(net, family=family, clock_mhz=clock_mhz, lanes=lanes, cycles=cycles,
                         **knobs)
