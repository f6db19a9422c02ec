"""The automatic choice of hardware: which core, how many lanes, which rows and which clock.

:func:`choose` enumerates the registry's cores (:data:`rtl.cores.CORES`) x their lane options x
their knob options that support the network on the board's family, estimates each one's
resources against the board's own device (:func:`boards.fit.board_fit`: the core plus the host
link), and for those that fit works out the cycles per step on the workload, the clock
(:func:`clock_for`: the core's expected Fmax less :data:`CLOCK_MARGIN`, as the board's PLL can
make it) and so samples per second. Candidates are ranked by samples per second; ties go to the
fewer LUTs, then the registry's order, then fewer lanes, so the same IR, workload and board
always give the same choice.

Cycles: a core with an exact cycle model (``measure == "model"``) is estimated from the
reference run's activity for every lane count; a core that must be measured (in Verilator or
Amaranth's simulator) is measured only at its best candidates (the most lanes that fit, per knob
set; more lanes never cost cycles), :data:`MEASURE_PER_CORE` of them, and its other lane counts
are dropped as slower.

Candidates that fit with margin come first; a design that fits with less than 10 % of the
logic left (``tight``) is ranked after every one of them, so it is chosen only when nothing
fits with margin — unless it is ``proven``, like a build of the same core that routed as full
as it is: then the margin has been shown not to be needed, and it ranks with the others (the
fastest design of a small device is often the fullest: the lean core on the iCE40UP5K).
Among each, the ``proven`` ones come first: no wider (weight bits per cycle) and no fuller (share of the
LUT4s, give or take :data:`SHARE_SLACK`; anything under :data:`SHARE_FLOOR` counts) than a
build of the same core that routed on the family (``routing`` in ``rtl/calibration.json``),
so that a build of an hour that fails is not the first thing tried when a configuration like
one that routed is at hand; a measured core's proven candidates are measured first.

Routing: nextpnr's failures on large ECP5 designs came from the buses that carry weights from
the block RAMs to the lanes more than from the logic count. Each core measures those buses
(:meth:`rtl.cores.Core.wiring`, weight bits per cycle); a candidate whose wiring is at least
that of a build of the same core that failed to place and route on the family, or whose logic
takes at least the share of the device's LUT4s such a build took (``routing`` in
``rtl/calibration.json``, from ``python -m bench.calibrate_fmax``), is dropped with that
reason.
``build`` tries the ranked candidates in turn when place and route or timing fails (see
``polychrony_cli.commands.build``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from model.ir import Network

__all__ = ["CLOCK_MARGIN", "MEASURE_PER_CORE", "ORDER", "Candidate", "Choice", "clock_for",
           "choose", "routing_limit",
           "build_choice", "nextpnr_options", "table"]

#: The clock is set this much below the expected Fmax.
CLOCK_MARGIN = 0.05

#: A candidate counts as like a build that routed (``proven``) up to this much more of the
#: device's LUT4s than the estimate of the fullest such build, and always below SHARE_FLOOR
#: of them, where fullness is not what makes routing fail. (No slack: the shares compared are
#: both estimates, and 5 points more sent the stack core into builds that did not route.)
SHARE_SLACK = 0.0
SHARE_FLOOR = 0.5

#: How many candidates of a measured core get their cycles measured, and how many lane counts
#: (the most that fit) of each knob set.
MEASURE_PER_CORE = 6
MEASURE_LANES = 2


def _knob(v) -> str:
    """A knob's value as people write it: ``{2: 2}`` as ``2=2``."""
    if isinstance(v, dict):
        return ",".join(f"{k}={x}" for k, x in sorted(v.items()))
    return str(v)


@dataclass
class Candidate:
    """One configuration: a core, its lanes and knobs, and what is known of it."""

    core: str
    lanes: int
    knobs: dict = field(default_factory=dict)
    estimate: object | None = None        # rtl.cost.Estimate (cycles filled in once known)
    fit: object | None = None             # boards.fit.Fit
    fmax_mhz: float | None = None         # expected post-route Fmax
    fmax_measured: bool = False           # ... from builds of this core (else a default)
    clock_mhz: float | None = None        # the clock it would run at
    cycles_known: bool = False
    wiring: int | None = None             # weight bits per cycle (Core.wiring)
    proven: bool = False                  # no wider nor fuller than a build that routed
    dropped: str | None = None            # why it is not ranked

    @property
    def label(self) -> str:
        extra = "".join(f", {k} {_knob(v)}" for k, v in sorted(self.knobs.items()))
        return f"{self.core}, {self.lanes} lane{'s' if self.lanes != 1 else ''}{extra}"

    @property
    def slug(self) -> str:
        """The label as a directory name."""
        return "".join(ch if ch.isalnum() else "-" for ch in self.label).strip("-")

    @property
    def samples_per_s(self) -> float | None:
        if not self.cycles_known or self.clock_mhz is None:
            return None
        e = self.estimate
        return self.clock_mhz * 1e6 / e.cycles_per_step / e.steps_per_sample

    def build_knobs(self) -> dict:
        """What ``build``/``estimate`` pass on for this candidate (``core``, ``lanes``,
        ``rows``)."""
        return {"core": self.core, "lanes": self.lanes, "rows": self.knobs.get("rows")}

    def to_json(self) -> dict:
        e = self.estimate
        return {"core": self.core, "lanes": self.lanes, "knobs": self.knobs,
                "verdict": None if self.fit is None else self.fit.verdict,
                "lut": None if e is None else e.lut,
                "bram": None if e is None else sum(e.blocks.values()),
                "fmax_mhz": self.fmax_mhz, "fmax_measured": self.fmax_measured,
                "clock_mhz": self.clock_mhz, "wiring": self.wiring, "proven": self.proven,
                "cycles_per_step": round(e.cycles_per_step, 1) if self.cycles_known else None,
                "samples_per_s": None if self.samples_per_s is None
                else round(self.samples_per_s, 2),
                "dropped": self.dropped}


@dataclass
class Choice:
    """Every candidate: the ranked ones (best first) and the dropped ones with their reason."""

    ranked: list[Candidate]
    dropped: list[Candidate]

    @property
    def best(self) -> Candidate | None:
        return self.ranked[0] if self.ranked else None

    def nowhere(self, board) -> str:
        """Why nothing was ranked, in one line: the configuration that came closest and the
        resource it lacks most, or the cores' reasons when none supports the network."""
        planned = [c for c in self.dropped if c.fit is not None and not c.fit.fits]
        if planned:
            def worst(c):
                return max(n.share for n in c.fit.failing)
            c = min(planned, key=worst)
            n = c.fit.failing[0]
            return (f"fits nowhere on the {board.name} ({board.fpga.label}): the closest "
                    f"configuration ({c.label}) needs {n.label} {n.used:,} of {n.available:,} "
                    f"({n.used - n.available:,} over)")
        wide = [c for c in self.dropped if c.dropped.startswith(("too wide to route",
                                                                 "too full to route"))]
        if wide:
            c = min(wide, key=lambda c: c.wiring)
            return (f"fits the {board.name} ({board.fpga.label}) but would not route: "
                    f"{c.label} is {c.dropped}")
        unplanned = [c for c in self.dropped if c.dropped.startswith("cannot be planned")]
        if unplanned:
            c = unplanned[0]
            return (f"fits nowhere on the {board.name} ({board.fpga.label}): {c.label} "
                    f"{c.dropped}")
        reasons = sorted({c.dropped for c in self.dropped if c.dropped})
        return (f"no core can be built for it on the {board.name}: " + "; ".join(reasons[:3])
                + (f" (and {len(reasons) - 3} more)" if len(reasons) > 3 else ""))

    def to_json(self) -> dict:
        return {"ranked": [c.to_json() for c in self.ranked],
                "dropped": [c.to_json() for c in self.dropped]}


def routing_limit(core: str, family: str) -> dict:
    """What routed and what did not for ``core`` on ``family`` (``routing`` in
    ``rtl/calibration.json``): ``routed`` and ``failed``, the largest wiring
    (:meth:`rtl.cores.Core.wiring`) of a build that placed and routed and the least of one
    that did not; ``routed_lut_share`` and ``failed_lut_share``, the same for the share of the
    device's LUT4s (each absent when unknown)."""
    from rtl.calibration import calibration
    return dict(calibration().get("routing", {}).get(core, {}).get(family, {}))


def clock_for(board, fmax_mhz: float, baud: int | None = None) -> float:
    """The clock in MHz that ``board`` makes for a design of expected Fmax ``fmax_mhz``: the
    highest the PLL reaches at or below ``fmax_mhz * (1 - CLOCK_MARGIN)`` whose UART divisor
    for ``baud`` (default: the board's) is within the link's tolerance; the oscillator's own
    frequency when that is as high as anything the PLL makes at or below it. A clock below
    the oscillator's is made by the PLL (the OrangeCrab's 48 MHz is above what a large design
    reaches)."""
    from boards.clocks import pll_for
    from rtl.link import uart_divisor
    want = fmax_mhz * (1 - CLOCK_MARGIN)
    osc = board.clock_mhz
    baud = baud or board.uart_baud
    for tries in range(60):
        target = want * (1 - 0.01 * tries)
        if osc <= want and target <= osc:
            return osc              # the oscillator itself is the highest left: no PLL
        try:
            pll = pll_for(board.family, osc * 1e6, target * 1e6)
        except ValueError:
            continue
        got = (osc * 1e6 if pll is None else pll["achieved_hz"]) / 1e6
        try:
            uart_divisor(got * 1e6, baud)
        except ValueError:      # the host link could not keep to the baud rate there
            continue
        if got <= want:
            return got
    return osc


def _order(c: Candidate, registry: list[str]) -> tuple:
    # A tight design like one that routed (as full, as wide) has shown that the margin it
    # lacks is not needed: it ranks with the proven ones.
    risky = c.fit is not None and c.fit.verdict == "tight" and not c.proven
    return (risky, not c.proven, -(c.samples_per_s or 0.0),
            c.estimate.lut if c.estimate else 0, registry.index(c.core), c.lanes, c.label)


def choose(net: Network, board_name: str, work, *, core: str | None = None,
           lanes: int | None = None, rows=None, memories: dict | None = None,
           work_dir: Path | None = None, baud: int | None = None,
           measure_per_core: int = MEASURE_PER_CORE,
           progress: Callable[[str], None] | None = None) -> Choice:
    """Rank the configurations of ``net`` on board ``board_name`` on ``work`` (a list of
    ``(x, forced, steps)``). ``core``, ``lanes`` and ``rows`` pin those choices; ``memories``
    goes to cores that take it; ``baud`` is the host link's (default: the board's), which
    the clock must serve. ``work_dir`` holds measurements (needed for cores measured in
    Verilator); ``progress`` gets one line per measurement."""
    from boards.catalog import board as board_named
    from boards.fit import board_fit
    from rtl.cores import CORES
    from rtl.cost import activity
    from sim.cosim import CosimError
    from sim.reference import simulate
    from .common import UserError
    from .steps import measure_cycles

    b = board_named(board_name)
    registry = list(CORES)
    say = progress or (lambda line: None)
    steps = int(work[0][2])
    cands: list[Candidate] = []
    for name in ([core] if core else registry):
        spec = CORES[name]
        if memories and "memories" not in spec.knobs:
            cands.append(Candidate(name, lanes or spec.default_lanes,
                                   dropped="places its weight memories itself (--memory given)"))
            continue
        if spec.families is not None and b.family not in spec.families:
            cands.append(Candidate(name, lanes or spec.default_lanes,
                                   dropped=f"built for {', '.join(spec.families)} only"))
            continue
        knob_sets = [{"rows": rows}] if rows else list(spec.knob_options(net))
        for knobs in knob_sets:
            for p in ([lanes] if lanes else spec.lane_options(net)):
                cands.append(Candidate(name, p, dict(knobs)))
    acts = None
    for c in cands:
        if c.dropped:
            continue
        spec = CORES[c.core]
        extra = {"memories": memories} if memories and "memories" in spec.knobs else {}
        why = spec.supports(net, lanes=c.lanes, **c.knobs, **extra)
        if why is not None:
            c.dropped = f"does not support the network: {why}"
            continue
        c.fmax_mhz, c.fmax_measured = spec.expected_fmax(b.family, c.lanes,
                                                         grade=b.part_suffix)
        c.clock_mhz = clock_for(b, c.fmax_mhz, baud)
        try:
            if spec.measure == "model":
                if acts is None:
                    acts = [activity(net, simulate(net, x, f, steps=s), x, f)
                            for x, f, s in work]
                c.estimate = spec.estimate(net, device=b.fpga, clock_mhz=c.clock_mhz,
                                           lanes=c.lanes, activity=acts, **extra, **c.knobs)
                c.cycles_known = True
            else:       # resources do not depend on the cycles: fill those in later
                c.estimate = spec.estimate(net, device=b.fpga, clock_mhz=c.clock_mhz,
                                           lanes=c.lanes, cycles=(1.0, 1, steps), **c.knobs)
        except ValueError as e:
            c.dropped = f"cannot be planned on the {b.fpga.label}: {str(e).splitlines()[0]}"
            continue
        # With the design's size known, the Fmax (and so the clock) of a size model
        # (fmax_size, rtl/calibration.json) replaces the lane table's first guess.
        fmax = spec.expected_fmax(b.family, c.lanes, lut=c.estimate.lut,
                                  bram=sum(c.estimate.blocks.values()), grade=b.part_suffix)
        if fmax[0] != c.fmax_mhz:
            c.fmax_mhz, c.fmax_measured = fmax
            c.clock_mhz = clock_for(b, c.fmax_mhz, baud)
            c.estimate = dataclasses.replace(c.estimate, clock_mhz=c.clock_mhz)
        c.fit = board_fit(c.estimate, b)
        if not c.fit.fits:
            c.dropped = c.fit.line()
            continue
        c.wiring = spec.wiring(net, lanes=c.lanes, **c.knobs)
        limit = routing_limit(c.core, b.family)
        lut = c.fit.need("lut")
        if limit.get("failed") is not None and c.wiring >= limit["failed"]:
            c.dropped = (f"too wide to route: {c.wiring:,} weight bits per cycle, and a "
                         f"{c.core}-core build with {limit['failed']:,} failed to route on "
                         f"{b.family} (routing, rtl/calibration.json)")
        elif limit.get("failed_lut_share") and lut.share >= limit["failed_lut_share"]:
            c.dropped = (f"too full to route: {lut.share:.0%} of the LUT4s, "
                         f"and a {c.core}-core build with {limit['failed_lut_share']:.0%} "
                         f"failed to route on {b.family} (routing, rtl/calibration.json)")
        full = max(limit.get("routed_lut_share", -1) + SHARE_SLACK, SHARE_FLOOR)
        c.proven = c.wiring <= limit.get("routed", -1) and lut.share <= full
    # Measured cores: the most lanes that fit (MEASURE_LANES of them) per knob set, among the
    # proven candidates and among the others; the proven ones first.
    for name in registry:
        spec = CORES[name]
        if spec.measure == "model":
            continue
        fitting = [c for c in cands if c.core == name and not c.dropped]
        per_set: dict[tuple, list[Candidate]] = {}
        for c in sorted(fitting, key=lambda c: -c.lanes):
            per_set.setdefault((_knob(c.knobs), c.proven), []).append(c)
        top = [c for group in per_set.values() for c in group[:MEASURE_LANES]]
        chosen = sorted(top, key=lambda c: (not c.proven, -c.lanes, c.label))[:measure_per_core]
        for c in fitting:
            if c not in chosen:
                c.dropped = ("not measured: more lanes of the same knobs fit" if c not in top
                             else f"not measured: beyond the {measure_per_core} measured per "
                                  f"core")
        for c in chosen:
            say(f"measure {c.label} ({spec.measure})")
            knobs = {k: v for k, v in c.knobs.items() if k in spec.knobs}
            wd = None if work_dir is None else Path(work_dir) / c.slug
            try:
                cps, cmax, sps = measure_cycles(spec, net, work, lanes=c.lanes, work_dir=wd,
                                                **knobs)
            except (UserError, CosimError, ValueError, RuntimeError, OSError) as e:
                # A failed measurement drops the candidate and says why in the table.
                c.dropped = f"measurement failed: {str(e).splitlines()[0][:200]}"
                continue
            c.estimate = dataclasses.replace(c.estimate, cycles_per_step=cps, cycles_max=cmax,
                                             steps_per_sample=sps)
            c.cycles_known = True
    ranked = sorted((c for c in cands if not c.dropped), key=lambda c: _order(c, registry))
    dropped = [c for c in cands if c.dropped]
    # Slower lane counts of a model core are kept in the ranking (the table shows the best).
    return Choice(ranked, dropped)


def nextpnr_options(c: Candidate, *, router2: bool = False) -> str:
    """nextpnr options for building candidate ``c``: its core's own (the stack core's name
    router2), router2 when ``router2`` (:func:`build_choice`'s second chance for a try that
    router1 did not finish), and the family's placement options for a design that leaves room
    (:func:`boards.fit.placement_options`)."""
    from boards.fit import placement_options
    from rtl.cores import CORES
    opts = CORES[c.core].nextpnr_opts
    if router2 and "--router" not in opts:
        opts = f"{opts} --router router2".strip()
    return opts if c.fit is None else placement_options(c.fit, opts)


def router_of(opts: str) -> str:
    """The nextpnr router that options ``opts`` ask for: router2 when named, else router1
    (nextpnr's default)."""
    return "router2" if "router2" in opts else "router1"


def _router_gave_up(e: Exception) -> bool:
    """Whether a failed build stopped in routing: stopped at its time limit, or nextpnr's
    error names routing (a design that does not place fails the same way with any router)."""
    text = str(e)
    return "did not finish within" in text or \
        any("rout" in line.lower() for line in text.splitlines() if line.startswith("ERROR"))


#: A build that met timing is built once more at the clock its report supports when that is
#: at least this much faster (the expected Fmax is a model's; the report is the design's).
CLIMB = 0.10


def build_choice(net, board_name: str, queue, out: Path, *, clock_mhz: float | None = None,
                 memories: dict | None = None, baud: int | None = None, say=None,
                 time_limit: float | None = None, climb: bool = True):
    """Build the candidates of ``queue`` (:class:`polychrony_cli.choose.Candidate`, best
    first) in turn until one meets timing: each at its planned clock (or ``clock_mhz``), then
    once more at the clock its report supports: lower when timing is missed, higher when it
    is met and that clock is at least :data:`CLIMB` faster (``climb``; never with
    ``clock_mhz``), keeping the first build if the faster one misses, unless the faster one's
    own report still supports a clock at least CLIMB above the first's: then once more at
    that clock (a third build, kept if it meets timing). A try routed by nextpnr's default
    router (router1) that fails or is stopped is built once more with router2 (faster on
    congested designs, slower clocks where both finish) before the next candidate. Each try
    builds in its
    own directory under ``out/<board>/`` and is stopped after ``time_limit`` seconds (a
    failed try). Returns ``(candidate, result, clock_mhz, tries)`` of
    the build to keep (the fastest that met timing, else the fastest built), ``tries`` one
    dict per build; ``UserError`` when nothing built."""
    from boards.build import BuildError
    from boards.catalog import board as board_named
    from rtl.cores import CORES
    from .common import UserError
    from .steps import build_bitstream
    b = board_named(board_name)
    say = say or (lambda line: None)
    tries, built = [], []
    for cand in queue:
        clock = clock_mhz or cand.clock_mhz
        met = None                      # a build of this candidate that met timing
        router2 = False                 # router1 did not finish a try of this candidate
        # The clock planned, then once at what the report allows; after a faster try that
        # missed, once more at what its own report allows, if that is still a climb. A try
        # router1 does not finish is built again with router2 (not counted as an attempt).
        attempt = 0
        while attempt < 3:
            opts = nextpnr_options(cand, router2=router2)
            router = router_of(opts)
            say(f"build {cand.label} at {clock:g} MHz" + (" with router2" if router2 else ""))
            where = out / board_name / (f"{cand.slug}-{clock:.3f}MHz" +
                                        ("-router2" if router2 else ""))
            takes = "memories" in CORES[cand.core].knobs
            try:
                res = build_bitstream(net, board_name, out, lanes=cand.lanes,
                                      memories=memories if takes else None,
                                      clock_hz=clock * 1e6, baud=baud, core=cand.core,
                                      rows=cand.knobs.get("rows"), timing_allow_fail=True,
                                      build_dir=where, nextpnr_opts=opts,
                                      time_limit=time_limit)
            except BuildError as e:
                tries.append({"configuration": cand.label, **cand.build_knobs(),
                              "wiring": cand.wiring, "clock_mhz": clock, "router": router,
                              "result": f"failed: {str(e).splitlines()[0][:200]}"})
                if met is not None:     # the faster try failed: keep the one that met
                    return (*met, tries)
                if router == "router1" and _router_gave_up(e):
                    say("router1 did not finish: once more with router2")
                    router2 = True
                    continue
                break
            k, attempt = attempt, attempt + 1
            tries.append({"configuration": cand.label, **cand.build_knobs(),
                          "wiring": cand.wiring, "clock_mhz": clock, "router": router,
                          "fmax_mhz": res.fmax_mhz,
                          "result": "timing met" if res.timing_met else "timing missed"})
            built.append((cand, res, clock))
            if met is not None:         # a faster try: kept if it met timing too
                if res.timing_met:
                    return cand, res, clock, tries
                lower = clock_for(b, res.fmax_mhz, baud) if res.fmax_mhz else None
                if k == 2 or lower is None or lower >= clock or \
                        lower < met[2] * (1 + CLIMB):
                    return (*met, tries)
                say(f"faster try missed (Fmax {res.fmax_mhz:.1f} MHz): once more at "
                    f"{lower:g} MHz")
                clock = lower
                continue
            if res.timing_met:
                faster = clock_for(b, res.fmax_mhz, baud) \
                    if climb and clock_mhz is None and res.fmax_mhz and k == 0 else None
                if faster is None or faster < clock * (1 + CLIMB):
                    return cand, res, clock, tries
                say(f"timing met with room: Fmax {res.fmax_mhz:.1f} MHz")
                met, clock = (cand, res, clock), faster
                continue
            if clock_mhz is not None or not res.fmax_mhz or k:
                break
            clock = clock_for(b, res.fmax_mhz, baud)
    if not built:
        raise UserError(f"{net.name} on {board_name}: no configuration built (" +
                        "; ".join(f"{t['configuration']}: {t['result']}" for t in tries) + ")")
    def speed(t):       # steps per second at the Fmax reached
        return (t[1].fmax_mhz or 0) / t[0].estimate.cycles_per_step
    cand, res, clock = max(built, key=speed)
    return cand, res, clock, tries


#: How the table is ordered, for its heading.
ORDER = ("best first: those like a build that routed, then the others (tight ones last), each "
         "by samples/s")


def table(choice: Choice, *, top: int = 8) -> list[str]:
    """The ranking for people: the ``top`` candidates (``routed before``: no wider and no
    fuller than a build of the core that routed on the family), then how many were dropped
    and why."""
    lines = [f"  {'#':>2}  {'configuration':<30} {'LUT4':>7} {'BRAM':>5} {'verdict':<12} "
             f"{'routed before':<13} {'clock':>6} {'cycles/step':>11} {'samples/s':>10}"] \
        if choice.ranked else ["  no configuration fits"]
    for k, c in enumerate(choice.ranked[:top], 1):
        e = c.estimate
        lines.append(f"  {k:>2}  {c.label:<30} {e.lut + _link_lut(c):>7,} "
                     f"{sum(e.blocks.values()):>5} {c.fit.verdict:<12} "
                     f"{'yes' if c.proven else 'no':<13} {c.clock_mhz:>6.1f} "
                     f"{e.cycles_per_step:>11,.0f} {c.samples_per_s:>10,.1f}")
    if len(choice.ranked) > top:
        lines.append(f"      ... {len(choice.ranked) - top} more that fit, ranked lower")
    reasons: dict[str, list[str]] = {}
    for c in choice.dropped:
        key = c.dropped.split(":")[0] if c.dropped else "?"
        reasons.setdefault(key, []).append(c.label)
    for why, labels in sorted(reasons.items()):
        shown = ", ".join(labels[:4]) + (f" and {len(labels) - 4} more" if len(labels) > 4
                                          else "")
        lines.append(f"  dropped ({why}): {shown}")
    return lines


def _link_lut(c: Candidate) -> int:
    return c.fit.need("lut").used - c.estimate.lut
