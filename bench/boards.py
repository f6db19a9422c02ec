"""Host-link bitstreams of the project's networks on the supported boards: estimate against
nextpnr, and speed at the achieved clock (resumable; one JSON record per build).

    python -m bench.boards [--only wm-demo] [--boards icebreaker ulx3s-85f] [--pinned [--cores lean]]
        [--refresh | --stale | --rebuild]

By default it builds the (network, board) pairs of :data:`AUTO_JOBS` the way ``polychrony
build NET --board B`` does with no knobs: the tool chooses the core, lanes, rows and clock
(:func:`polychrony_cli.choose.choose`) on the network's workload (the working memories: every
recall trial; the audio networks: the same 8 test samples) and builds its candidates in turn
(:func:`polychrony_cli.choose.build_choice`). Each row names the configuration chosen and the
record keeps every try (``bench/results/boards_auto.json`` and ``.md``). ``--pinned`` builds
the configurations of :data:`JOBS`, picked by hand (``bench/results/boards.json`` and ``.md``).

Networks (each with the activity of its real workload, for cycles per step):

* ``wm-demo``: the demo's working memory (``model.wm.run.run_wm(seed=0)``: N = 32, D = 16), on a
  recall trial (cue, then free recall);
* ``convdelrec``: the trained ConvDelRec (H = 256, K = 31, 8-bit weights,
  ``bench/networks/convdelrec_k31.npz``, integer test accuracy in its ``meta``), on 8 test
  samples of the embedded set in its 136-step window;
* ``wm-128``: a working memory of N = 128, D = 41 (4-bit weights, M = 8 patterns of T = 281,
  p_A = 2e-3: ``run_wm(n=128, d=41, m=8, t=281, p=2e-3, w_bits=4, seed=0)``), near the largest
  N whose N·N·D weights fit the ECP5-85F's block RAM, on its recall trial;
* ``wm-144``: the same with N = 144, at 144 lanes (one group) and 60 MHz: the largest N
  whose weights the estimate still fits; any ``wm-N`` is the same recipe with N neurons, and
  ``wm-N-w8`` with 8-bit weights (``bench.fmax_seeds --network wm-101-w8``);
* ``convdelrec-w4``: the same architecture trained with 4-bit weights
  (``bench/networks/convdelrec_k31_w4.npz``), for the iCE40UP5K's SPRAM;
* ``convdelrec-voices-w4``: the same architecture, 4-bit, trained on the many-voice corpus
  (``data synth --corpus voices --seed 2``, no waveform augmentation, unseen-voice fold;
  ``bench/networks/convdelrec_voices_w4.npz``, its float checkpoint beside it), on the first 8
  test samples of its workload (unseen voices of three engines);
* ``delrec``: the trained DelRec of the same table and seed (dense recurrence, H = 256,
  8-bit weights, ``bench/networks/delrec.npz``), on the same 8 test samples.

A job may also name the core: ``"stack"`` builds :class:`rtl.stack.StackCore` (its cycles
per step come from co-simulating the generated Verilog on the workload in Verilator, and its
row is labelled "stack core"). The 8-bit ``convdelrec`` on the stack core at 32 lanes is not
a job: it synthesises (57.9 k LUT4, 69 %) and places, but did not finish routing in 40
minutes of router2. ``"lean"`` builds :class:`rtl.lean.LeanCore` for the iCE40UP5K (its
cycles per step come from simulating the core with the host link's serial read-out on the
workload in Amaranth, bit-exact at every step; row labelled "lean core").

Each pinned (network, board, lanes, memories) job builds with ``boards.top.build_board`` and
records :meth:`boards.report.BoardReport.to_json`; a job (pinned or automatic) already in the
output file is skipped, and a failed build is recorded with its error (e.g. "does not fit").
A record keeps the fingerprint of the design it built (``design``:
:func:`boards.build.design_fingerprint`); ``--stale`` builds again the records whose design
the current generators no longer give (or that have none: failed builds, older records), so
that a change to the generated logic is followed by exactly the builds it invalidates, and a
rebuild stopped half way resumes. ``--refresh`` (automatic builds) does the same and also
chooses again.
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

__all__ = ["JOBS", "AUTO_JOBS", "main", "reestimate", "record_rows", "parse_rows", "build_seed"]

ROOT = Path(__file__).resolve().parent.parent

#: (network, board, lanes, memories[, clock MHz[, core[, rows]]]) builds of the README table
#: (the clock defaults to the board's ``sync_mhz`` when None or left out; the core to
#: ``"network"``, :class:`rtl.core.NetworkCore`; ``"stack"`` is :class:`rtl.stack.StackCore`,
#: whose ``rows`` per cycle by layer may be given).
JOBS = [
    ("wm-demo", "icebreaker", 1, None, 40),
    ("wm-demo", "icebreaker", 8, None, 40),
    *[("wm-demo", b, 1, None) for b in ("ulx3s-12f", "ulx3s-25f", "ulx3s-45f",
                                        "ulx3s-85f", "orangecrab-25f", "orangecrab-85f",
                                        "colorlight-5a75b")],
    ("convdelrec", "icebreaker", 1, {"proj0.weights": "spram", "proj1.weights": "spram",
                                     "proj3.weights": "spram"}),
    ("convdelrec-w4", "icebreaker", 4, {"proj0.weights": "spram", "proj1.weights": "spram",
                                        "proj3.weights": "spram"}),
    ("convdelrec", "ulx3s-85f", 16, None, 90),
    ("wm-128", "ulx3s-85f", 64, None),
    ("wm-144", "ulx3s-85f", 144, None, 60),
    ("convdelrec-w4", "ulx3s-85f", 32, None, 40, "stack", {2: 2}),
    ("convdelrec-w4", "icebreaker", 2, None, 26, "lean"),
    ("convdelrec", "icebreaker", 2, None, 26, "lean"),
    ("delrec", "ulx3s-85f", 16, None),
    ("convdelrec-voices-w4", "ulx3s-85f", 32, None, 45, "stack", {2: 2}),
    ("convdelrec-voices-w4", "icebreaker", 2, None, 26, "lean"),
]


#: (network, board) pairs built with the tool's own choice (``--auto``): the rows of the README's
#: board table.
AUTO_JOBS = [
    *[("wm-demo", b) for b in ("icebreaker", "ulx3s-12f", "ulx3s-25f", "ulx3s-45f",
                               "ulx3s-85f", "orangecrab-25f", "orangecrab-85f",
                               "colorlight-5a75b")],
    ("convdelrec-w4", "icebreaker"), ("convdelrec-w4", "ulx3s-85f"),
    ("wm-128", "ulx3s-85f"), ("wm-144", "ulx3s-85f"),
    ("convdelrec", "ulx3s-85f"), ("delrec", "ulx3s-85f"),
    # every other (bench network, board) pair the choice says fits
    # (python -m bench.choice_accuracy --pairs): the rest of the accuracy measurement
    ("convdelrec", "icebreaker"), ("convdelrec-w4", "ulx3s-45f"), ("convdelrec", "ulx3s-45f"),
    ("delrec", "ulx3s-45f"), ("convdelrec-w4", "ulx3s-25f"), ("convdelrec-w4", "orangecrab-25f"),
    ("convdelrec-w4", "colorlight-5a75b"), ("convdelrec-w4", "orangecrab-85f"),
    ("wm-128", "orangecrab-85f"), ("wm-144", "orangecrab-85f"),
    ("convdelrec", "orangecrab-85f"), ("delrec", "orangecrab-85f"),
]


#: A try of an automatic build still placing or routing after this long is stopped (as
#: ``polychrony build``'s default ``--try-minutes``).
TRY_MINUTES = 45

#: nextpnr's seed for the hand-picked builds (recorded in each; Fmax varies by seed:
#: ``python -m bench.fmax_seeds`` builds a configuration at several). The automatic builds
#: go through ``polychrony build``'s path, which builds at :func:`boards.build.build`'s
#: default seed; their records name it too.
SEED = 1


def build_seed() -> int:
    """The seed ``polychrony build`` places and routes with (:func:`boards.build.build`'s
    default)."""
    from boards.build import build
    return inspect.signature(build).parameters["seed"].default


def _auto_work(name: str):
    """(net, work) of an automatic job: the working memories' whole recall workload, the audio
    networks' 8 test samples (as the hand-picked jobs)."""
    if name.startswith("wm-"):
        wm = _wm(name)
        wl = wm["workload"]
        return wm["net"], [(*wl.sample(i), wl.steps) for i in range(wl.samples)]
    return _network(name)


def run_auto(name: str, board: str, net, work, build_root: Path) -> dict:
    """Choose and build ``net`` on ``board`` as ``polychrony build`` does with no knobs."""
    from boards.catalog import board as board_info
    from boards.report import board_report
    from boards.top import sync_clock
    from polychrony_cli.choose import build_choice, choose
    from polychrony_cli.common import UserError
    key = f"{name}|{board}|auto"
    root = build_root / key.replace("|", "_")
    t0 = time.monotonic()
    choice = choose(net, board, work, work_dir=root / "cycles",
                    progress=lambda line: print(f"  ... {line}", flush=True))
    rec = {"key": key, "network": name, "board": board, "choice": choice.to_json()}
    if choice.best is None:
        rec.update(error=choice.nowhere(board_info(board)), estimate=None, lanes=0, seconds=0.0)
        return rec
    try:
        cand, res, clock, tries = build_choice(net, board, choice.ranked[:3], root,
                                               say=lambda line: print(f"  ... {line}",
                                                                      flush=True),
                                               time_limit=TRY_MINUTES * 60)
    except UserError as e:
        rec.update(error=str(e)[:400], estimate=choice.best.estimate.to_json(),
                   lanes=choice.best.lanes, seconds=round(time.monotonic() - t0, 1))
        return rec
    clk, _ = sync_clock(board, clock * 1e6)
    rep = board_report(f"{name} ({cand.label})", board_info(board), cand.estimate, res,
                       clock_mhz=clk / 1e6)
    rec.update(rep.to_json(), key=key, configuration=cand.label, core=cand.core,
               seed=build_seed(), design=res.design, build_clock_mhz=clock,
               knobs=json.loads(json.dumps(cand.knobs)), tries=json.loads(json.dumps(tries)))
    return rec


#: Before tries recorded their router, the automatic choice routed a design with router2
#: above this many estimated LUT4 (with the host link), and a core whose own options say so
#: (the stack core) always.
OLD_ROUTER2_ABOVE_LUT = 15000


def _try_router(t: dict, rec: dict) -> str | None:
    """The router of try ``t`` of record ``rec``: recorded, or for older records the rule of
    then, when the try is of the record's configuration (whose estimate it keeps); None when
    it cannot be told."""
    from polychrony_cli.choose import router_of
    from rtl.cores import CORES
    if "router" in t:
        return t["router"]
    if router_of(CORES[t["core"]].nextpnr_opts) == "router2":   # the stack core's own options
        return "router2"
    if t.get("configuration") == rec.get("configuration") and \
            "lut_estimate_with_link" in rec:
        return "router2" if rec["lut_estimate_with_link"] > OLD_ROUTER2_ABOVE_LUT else "router1"
    return None


def _first_try(t: dict, rec: dict) -> tuple:
    return (t["core"], int(t["lanes"]), json.dumps(t.get("rows") or None, sort_keys=True),
            round(float(t["clock_mhz"]), 4), _try_router(t, rec))


def _same_first_try(rec: dict, net, board: str, work, build_root: Path):
    """Compare the current choice's first try (core, lanes, rows, clock, router) with the tries of
    ``rec``: None when it is the recorded first try; the record to keep instead, when it is
    the recorded last try and that one met timing (the same Verilog, clock and seed give the
    same bitstream: its result is what the first try now gives; the tries before it, made
    with an earlier calibration, are dropped from it and counted in ``earlier_tries``); else
    a line saying what differs."""
    from polychrony_cli.choose import choose, nextpnr_options, router_of
    root = build_root / rec["key"].replace("|", "_")
    choice = choose(net, board, work, work_dir=root / "cycles")
    tries = rec.get("tries") or []
    if choice.best is None or not tries or "clock_mhz" not in tries[0]:
        return "no first try to compare"
    c = choice.best
    rows = c.knobs.get("rows")
    now = (c.core, c.lanes, json.dumps({str(k): v for k, v in rows.items()} if rows else None,
                                       sort_keys=True), round(c.clock_mhz, 4),
           router_of(nextpnr_options(c)))
    recorded = [_first_try(t, rec) if "clock_mhz" in t else None for t in tries]
    if recorded[0] == now:
        return None
    if recorded[-1] == now and tries[-1].get("result") == "timing met":
        kept = dict(rec, choice=choice.to_json(), tries=tries[-1:],
                    earlier_tries=rec.get("earlier_tries", 0) + len(tries) - 1)
        return kept
    return f"first try was {recorded[0]}, now {now}"


def _wm(name: str) -> dict:
    """The working memory of a bench name (:func:`model.wm.run.run_wm`, seed 0): ``wm-demo``;
    ``wm-N``, N neurons, D = 41, M = 8 patterns of T = 281, p_A = 2e-3, 4-bit weights;
    ``wm-N-w8``, the same with 8-bit weights."""
    import re
    from model.wm.run import run_wm
    if name == "wm-demo":
        return run_wm(seed=0)
    m = re.fullmatch(r"wm-(\d+)(?:-w(\d+))?", name)
    if m is None:
        raise ValueError(f"unknown network {name!r}")
    return run_wm(n=int(m.group(1)), d=41, m=8, t=281, p=2e-3, w_bits=int(m.group(2) or 4),
                  seed=0)


def _network(name: str):
    """(net, list of (x, forced, steps)) of a benchmark network and its workload."""
    if name.startswith("wm-"):
        from model.wm.recall import trial_forcing
        wm = _wm(name)
        s = wm["settings"]
        f = trial_forcing(wm["targets"], s["d"], pre=s["pre"], p=s["p"], seed=0)[0]
        return wm["net"], [(None, {1: f.astype(np.uint8)}, f.shape[0])]
    if name in ("convdelrec", "convdelrec-w4", "delrec"):
        from model.ir import load
        from model.audio.pack import default_data
        from model.audio.shd import bin_counts, load as load_shd
        net = load(ROOT / "bench/networks" / {"convdelrec": "convdelrec_k31.npz",
                                              "convdelrec-w4": "convdelrec_k31_w4.npz",
                                              "delrec": "delrec.npz"}[name])
        steps = int(net.meta["steps"])
        test = load_shd(default_data()[1])
        xb = bin_counts(test, steps=steps).x[:8]
        return net, [(x.astype(np.int64), None, steps) for x in xb]
    if name == "convdelrec-voices-w4":
        from model.ir import load, load_workload, workload_path
        path = ROOT / "bench/networks/convdelrec_voices_w4.npz"
        net = load(path)
        w = load_workload(workload_path(path), net).head(8)
        return net, [(w.sample(i)[0].astype(np.int64), None, w.steps) for i in range(w.samples)]
    raise ValueError(f"unknown network {name!r}")


def _options(job) -> tuple[float | None, str, dict]:
    """(clock MHz or None, core, the stack core's rows or None) of a job."""
    _, _, _, _, *rest = job
    clock = rest[0] if rest else None
    core = rest[1] if len(rest) > 1 else "network"
    rows = rest[2] if len(rest) > 2 else None
    return clock, core, rows


def rows_text(rows: dict) -> str:
    """The stack core's rows per layer as text, layers in order: ``2=2,3=4`` (keys may be
    the strings of stored records)."""
    return ",".join(f"{int(k)}={v}" for k, v in sorted(rows.items(), key=lambda kv: int(kv[0])))


def _key(job) -> str:
    net, board, lanes, mem, *_ = job
    clock, core, rows = _options(job)
    key = f"{net}|{board}|{lanes}|" + ",".join(f"{k}={v}" for k, v in sorted((mem or {}).items()))
    key += (f"|{clock:g}MHz" if clock else "") + (f"|{core}" if core != "network" else "")
    # (The key names the build directory: no spaces or colons, which make refuses.)
    return key + ("" if not rows else "|rows" + rows_text(rows))


def _activities(net, work) -> list[dict]:
    """What the core's work depends on (:func:`rtl.cost.activity`), per sample of ``work``."""
    from rtl.cost import activity
    from sim.reference import simulate
    return [activity(net, simulate(net, x, forced, steps=steps), x, forced)
            for x, forced, steps in work]


def run_job(job, net, acts, build_root: Path, work=None) -> dict:
    """Build one job; ``acts``: the activity of each sample of the network's workload
    ``work`` (whose samples a stack-core job co-simulates for its cycles)."""
    from boards.build import BuildError
    from boards.catalog import board as board_info
    from boards.fit import board_fit, placement_options
    from boards.report import board_report
    from boards.top import build_board, sync_clock
    from polychrony_cli.steps import estimate_core
    from rtl.cores import CORES

    name, board, lanes, mem, *_ = job
    _, core, rows = _options(job)
    if CORES[core].measure != "model" and work is None:
        raise ValueError(f"a {core}-core job needs the workload to simulate")
    b = board_info(board)
    design = _design_args(job)
    clk, _ = sync_clock(board, design["clock_hz"])
    rec = {"key": _key(job), "network": name, "board": board, "lanes": lanes,
           "memories": mem or {}, "core": core, "seed": SEED,
           **({"rows": {str(l): r for l, r in rows.items()}} if rows else {})}
    build_dir = build_root / _key(job).replace("|", "_").replace(",", "_").replace("=", "-")
    spec = CORES[core]
    try:
        if spec.measure == "model":
            # Mean cycles per step over the workload: one estimate per sample, averaged.
            est = spec.estimate(net, device=b.fpga, clock_mhz=clk / 1e6, lanes=lanes,
                                activity=acts, memories=mem)
        else:
            est = estimate_core(spec, net, work, device=b.fpga, clock_mhz=clk / 1e6,
                                lanes=lanes, work_dir=build_dir / "cosim", rows=rows)
    except ValueError as e:         # e.g. the weights need more SPRAM than the device has
        rec.update(error=str(e).splitlines()[0][:400], estimate=None, seconds=0.0)
        return rec
    cps = est.cycles_per_step
    t0 = time.monotonic()
    try:
        # The core's own nextpnr options (the stack core routes with router2: minutes where
        # the default router1 crawls for hours) and the placement the tool would ask for.
        opts = placement_options(board_fit(est, b), spec.nextpnr_opts)
        rec["nextpnr_opts"] = opts
        res = build_board(net, board, build_dir=build_dir, **design,
                          timing_allow_fail=True, nextpnr_opts=opts, seed=SEED)
    except (BuildError, ValueError) as e:
        lines = str(e).splitlines()
        errors = [ln.strip() for ln in lines if "ERROR" in ln] or lines[:1]
        rec.update(error=errors[0][:400], estimate=est.to_json(),
                   seconds=round(time.monotonic() - t0, 1))
        # What synthesis asked for, when placement failed for want of cells.
        rpt = build_dir / "top.rpt"
        if rpt.exists():
            luts = re.findall(r"^\s*(\d+)\s+(?:SB_LUT4|LUT4)\s*$", rpt.read_text(), re.M)
            if luts:
                rec["yosys_lut4"] = int(luts[-1])
        return rec
    label = name if core == "network" else f"{name}, {core} core"
    rep = board_report(label, b, est, res, clock_mhz=clk / 1e6)
    rep = replace(rep, cycles_per_step=cps)
    rec.update(rep.to_json(), design=res.design)
    return rec


def _stale(rec: dict, design) -> str | None:
    """Why a record no longer stands for the build the current generators give (``design``:
    a callable giving their fingerprint), or None when it does."""
    if not rec.get("design"):
        return "no design recorded"
    now = design()
    if now != rec["design"]:
        return "the generated design changed"
    return None


def _design_args(job) -> dict:
    """What a pinned job's design depends on: :func:`run_job` builds with these, and
    :func:`job_design` fingerprints them."""
    name, board, lanes, mem, *_ = job
    clock, core, rows = _options(job)
    return dict(lanes=lanes, memories=mem, clock_hz=clock * 1e6 if clock else None,
                core=core, rows=rows)


def job_design(job, net) -> str:
    """The design fingerprint a pinned job's build gets from the current generators
    (:func:`boards.top.board_design` with :func:`run_job`'s arguments; no tool runs)."""
    from boards.top import board_design
    return board_design(net, job[1], **_design_args(job))


def auto_design(rec: dict, net) -> str | None:
    """The design fingerprint that the build an automatic record kept (core, lanes, rows and
    the clock it asked for, ``build_clock_mhz``, as :func:`polychrony_cli.choose.build_choice`
    builds it) gets from the current generators; None for a record without a build or
    without that clock (older records)."""
    from boards.top import board_design
    if "error" in rec or "build_clock_mhz" not in rec:
        return None
    return board_design(net, rec["board"], lanes=int(rec["lanes"]),
                        clock_hz=float(rec["build_clock_mhz"]) * 1e6, core=rec["core"],
                        rows=record_rows(rec))


def parse_rows(rows) -> dict | None:
    """Rows per layer as stored: a dict (JSON keys are strings) or, in older records, its
    Python text (``"{2: 2}"``)."""
    import ast
    if isinstance(rows, str):
        rows = ast.literal_eval(rows)
    return {int(k): int(v) for k, v in rows.items()} if rows else None


def record_rows(rec: dict) -> dict | None:
    """The stack core's rows per layer of a stored record (``rows``, or an automatic build's
    ``knobs``)."""
    return parse_rows(rec.get("rows") or (rec.get("knobs") or {}).get("rows"))


def reestimate(rec: dict, nets: dict):
    """The estimate of a stored record's build (or failed build) with the current cost model:
    the network core's cycles from its model on the workload's first sample (as
    :func:`run_job` reports), a measured core's cycles as stored (one per step when the record
    has none: the resources do not depend on them). ``nets`` caches
    ``name -> (net, activities, work)``."""
    from boards.catalog import board as board_info
    from rtl.cores import CORES
    name = rec["key"].split("|")[0]      # (a stack-core row's "network" is a label)
    if name not in nets:
        net, work = _network(name)
        nets[name] = net, _activities(net, work), work
    net, acts, _ = nets[name]
    spec = CORES[rec.get("core", "network")]
    if spec.measure == "model":
        return _estimate(rec, net, acts[0])
    old = rec.get("estimate") or {}  # the measured cycles stay; the resources are estimated again
    cycles = (old["cycles_per_step"], old["cycles_max"], old["steps_per_sample"]) if old \
        else (1.0, 1, 1)
    return spec.estimate(net, device=board_info(rec["board"]).fpga,
                         clock_mhz=old.get("clock_mhz", 50.0), lanes=rec["lanes"],
                         rows=record_rows(rec), cycles=cycles)


#: The fields of a stored estimate that say how fast: an automatic record keeps its own (the
#: choice's, over the whole workload) when its resources are estimated again.
SPEED_FIELDS = ("clock_mhz", "cycles_per_step", "cycles_max", "steps_per_sample", "steps_per_s",
                "samples_per_s")


def refresh_estimates(records, nets: dict, *, keep_speed: bool = False) -> None:
    """Estimate every record of ``records`` that has an estimate again with the current cost
    model (:func:`reestimate`; ``nets`` its cache), in place, keeping the build's results;
    with ``keep_speed`` (automatic records) the speed fields stay as recorded
    (:data:`SPEED_FIELDS`) and only the resources are estimated again."""
    from boards.fit import link_cost
    for rec in records:
        if not rec.get("estimate"):
            continue
        est = reestimate(rec, nets).to_json()
        if keep_speed:
            est.update({k: rec["estimate"][k] for k in SPEED_FIELDS if k in rec["estimate"]})
        rec["estimate"] = est
        if "lut_estimate_with_link" in rec:
            rec["lut_estimate_with_link"] = est["lut"] + link_cost(est["family"],
                                                                   est["lanes"])["lut"]


def _estimate(rec: dict, net, act):
    """The estimate of a stored record's build with the current cost model (``act``: the
    activity of the workload's first sample, as :func:`run_job` reports)."""
    from boards.catalog import board as board_info
    from rtl.cost import estimate
    return estimate(net, act, device=board_info(rec["board"]).fpga,
                    clock_mhz=rec.get("clock_mhz") or (rec.get("estimate") or {}).get(
                        "clock_mhz", 50.0),
                    lanes=rec["lanes"], memories=rec.get("memories") or None)


def markdown(records: list[dict]) -> str:
    from boards.catalog import board
    from boards.fit import link_cost
    from boards.report import MARKDOWN_HEADER, BoardReport
    rows = [MARKDOWN_HEADER]
    for r in records:
        if "error" not in r:
            rows.append(BoardReport.from_json(r).markdown_row())
        else:
            # The core's estimate plus the link's, as in the rows of finished builds.
            link = link_cost(board(r["board"]).family, r["lanes"])["lut"]
            est = (f"{r['estimate']['lut'] + link:,}"
                   if r.get("estimate") else "-")
            why = r["error"]
            cell = re.search(r"no BELs remaining to implement cell type '(\w+)", why)
            region = re.search(r"Failed to expand region .* of (\d+) (\w+)s", why)
            if cell:
                why = f"placement ran out of {cell.group(1)} cells"
            elif region:
                why = f"placement needs {int(region.group(1)):,} {region.group(2)} cells"
            asked = f" (Yosys: {r['yosys_lut4']:,} LUT4)" if "yosys_lut4" in r else ""
            core = r.get("core", "network")
            label = r["network"] if core == "network" else f"{r['network']}, {core} core"
            rows.append(f"| {label} | {r['board']} | {r['lanes']} | {est} | "
                        f"does not fit: {why[:160]}{asked} |" + " |" * 9)
    seeds = sorted({r["seed"] for r in records if "seed" in r})
    if seeds:
        rows += ["", "nextpnr seed " + ", ".join(map(str, seeds)) +
                 (" (every build)" if len(seeds) == 1 and all("seed" in r for r in records)
                  else "")]
    return "\n".join(rows) + "\n"


def main(argv=None) -> int:
    from boards.report import BoardReport
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", help="networks to build (default: all)")
    ap.add_argument("--boards", nargs="*", help="boards to build for (default: all)")
    ap.add_argument("--cores", nargs="*",
                    help="with --pinned: only the jobs on these cores (default: all)")
    ap.add_argument("--out", help="records (default bench/results/boards_auto.json, with "
                                  "--pinned boards.json)")
    ap.add_argument("--markdown", help="the table (default beside --out, .md)")
    ap.add_argument("--build-dir", default="build/bench-boards")
    ap.add_argument("--pinned", action="store_true",
                    help="build the hand-picked configurations of JOBS instead of the tool's "
                         "own choice")
    ap.add_argument("--auto", action="store_true", help=argparse.SUPPRESS)   # the default
    ap.add_argument("--refresh", action="store_true",
                    help="automatic builds: choose again with the current calibration, and "
                         "build again the pairs whose first try would differ (core, lanes, "
                         "rows or clock) or whose design is stale (--stale); a pair whose "
                         "first try and design are the same keeps its record (the same "
                         "design, clock and seed give the same bitstream)")
    ap.add_argument("--stale", action="store_true",
                    help="build again the recorded jobs whose design (the fingerprint of the "
                         "generated netlist) the current generators no longer give, or that "
                         "have none (failed builds, older records); the others keep their "
                         "records")
    ap.add_argument("--rebuild", action="store_true",
                    help="build every selected job again, recorded or not (after a change "
                         "to the generated logic: a recorded build no longer stands for the "
                         "bitstream the same choice gives)")
    ap.add_argument("--refresh-estimates", action="store_true",
                    help="recompute every stored record's estimate with the current cost "
                         "model (after a recalibration), keeping its build results; "
                         "automatic records keep their measured speed and get their "
                         "resources estimated again")
    ap.add_argument("--dry-run", action="store_true",
                    help="build nothing and write nothing: say which jobs the other options "
                         "would build, and why (it still generates each recorded design to "
                         "compare fingerprints, and --refresh chooses again, which may "
                         "simulate cycles: minutes, not hours)")
    args = ap.parse_args(argv)
    if args.auto and args.pinned:
        ap.error("--auto (the default) and --pinned exclude each other")
    if args.dry_run and args.refresh_estimates:
        ap.error("--refresh-estimates rewrites the records: it has no --dry-run")
    stem = "boards" if args.pinned else "boards_auto"
    args.out = Path(args.out or ROOT / f"bench/results/{stem}.json")
    args.markdown = Path(args.markdown or args.out.with_suffix(".md"))
    if not args.pinned:
        return _main_auto(args)
    out = Path(args.out)
    done = {r["key"]: r for r in json.loads(out.read_text())} if out.exists() else {}
    jobs = [j for j in JOBS if (not args.only or j[0] in args.only)
            and (not args.boards or j[1] in args.boards)
            and (not args.cores or _options(j)[1] in args.cores)]
    nets = {}
    if args.refresh_estimates:
        refresh_estimates(done.values(), nets)
        out.write_text(json.dumps(list(done.values()), indent=1))
    would = []
    for job in jobs:
        if _key(job) in done and not (args.rebuild or args.stale):
            continue
        if job[0] not in nets:
            net, work = _network(job[0])
            nets[job[0]] = net, _activities(net, work), work
        net, acts, work = nets[job[0]]
        why = "not recorded" if _key(job) not in done else "--rebuild"
        if _key(job) in done and not args.rebuild:
            why = _stale(done[_key(job)], lambda: job_design(job, net))
            if why is None:
                print(f"{_key(job)}: the design is the one recorded", flush=True)
                continue
            if not args.dry_run:
                print(f"{_key(job)}: {why}: building again", flush=True)
        if args.dry_run:
            would.append((_key(job), why))
            continue
        print(f"building {_key(job)} ...", flush=True)
        rec = run_job(job, net, acts, Path(args.build_dir), work)
        done[rec["key"]] = rec
        out.write_text(json.dumps(list(done.values()), indent=1))
        print("  " + (f"failed: {rec['error']}" if "error" in rec else
                      BoardReport.from_json(rec).markdown_row()), flush=True)
    if args.dry_run:
        return _say_would(would, len(jobs))
    order = {_key(j): i for i, j in enumerate(JOBS)}
    records = sorted(done.values(), key=lambda r: order.get(r["key"], len(order)))
    Path(args.markdown).write_text(markdown(records))
    print(markdown(records))
    return 0


def _say_would(would: list, selected: int) -> int:
    """``--dry-run``'s answer: the jobs a run would build, each with its reason."""
    for key, why in would:
        print(f"{key}: would be built ({why})", flush=True)
    print(f"{len(would)} of the {selected} selected jobs would be built; nothing was built "
          "or written (--dry-run)", flush=True)
    return 0


def _main_auto(args) -> int:
    from boards.report import BoardReport
    out, md = args.out, args.markdown
    done = {r["key"]: r for r in json.loads(out.read_text())} if out.exists() else {}
    if args.refresh_estimates:
        refresh_estimates(done.values(), {}, keep_speed=True)
        out.write_text(json.dumps(list(done.values()), indent=1))
    nets, would, selected = {}, [], 0
    for name, board in AUTO_JOBS:
        if (args.only and name not in args.only) or (args.boards and board not in args.boards):
            continue
        selected += 1
        key = f"{name}|{board}|auto"
        if key in done and not (args.refresh or args.stale or args.rebuild):
            continue
        if name not in nets:
            nets[name] = _auto_work(name)
        net, work = nets[name]
        why = "not recorded" if key not in done else "--rebuild"
        if key in done and not args.rebuild:
            why = _stale(done[key], lambda: auto_design(done[key], net))
            if why is None and not args.refresh:
                print(f"{key}: the design is the one recorded", flush=True)
                continue
            if why is None:     # --refresh: the same design; is the choice's first try?
                same = _same_first_try(done[key], net, board, work, Path(args.build_dir))
                if same is None:
                    print(f"{key}: the first try is the same as recorded", flush=True)
                    continue
                if isinstance(same, dict):
                    print(f"{key}: the first try is the recorded last one, which met timing"
                          + (" (would be kept as the record)" if args.dry_run else ""),
                          flush=True)
                    if not args.dry_run:
                        done[key] = same
                        out.write_text(json.dumps(list(done.values()), indent=1))
                    continue
                why = same
            if not args.dry_run:
                print(f"{key}: {why}: building again", flush=True)
        if args.dry_run:
            would.append((key, why))
            continue
        print(f"choosing and building {name} on {board} ...", flush=True)
        rec = run_auto(name, board, net, work, Path(args.build_dir))
        done[key] = rec
        out.write_text(json.dumps(list(done.values()), indent=1))
        print("  " + (f"failed: {rec['error']}" if "error" in rec else
                      BoardReport.from_json(rec).markdown_row()), flush=True)
    if args.dry_run:
        return _say_would(would, selected)
    order = {f"{n}|{b}|auto": i for i, (n, b) in enumerate(AUTO_JOBS)}
    records = sorted(done.values(), key=lambda r: order.get(r["key"], len(order)))
    md.write_text(markdown(records))
    print(markdown(records))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
