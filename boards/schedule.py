"""The stand-alone demo top: the network core replaying a stored stimulus schedule, on LEDs.

Board-independent: :class:`ScheduleTop` runs in the platform's default clock domain and asks
the platform only for ``led`` 0..6 (as many as it has) and, for SPRAM weights, the SPI flash;
:func:`build_schedule` builds it for any board of :mod:`boards.catalog`. It has no host link
(that is :func:`boards.top.host_top`); the schedule helpers also give the stimulus the
reference simulator needs to check what the top does.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np
from amaranth.build import ResourceError
from amaranth.hdl import Module, Signal, Mux, Cat, Elaboratable
from amaranth.lib import io, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from model.ir import Network
from rtl.core import NetworkCore
from rtl.interface import step_in_layout, step_records
from rtl.link.readout import Readout
from .build import BuildResult, build
from .catalog import board
from .flash import FLASH_OFFSET, FlashLoader, flash_image

__all__ = ["Schedule", "schedule_records", "schedule_stimulus", "default_schedule",
           "SchedulePlayer", "RegisterSlice", "ScheduleTop", "build_schedule"]

#: Per step, the forced neurons (a network with a forced layer) or the input events (a network
#: whose input layer has neurons): an index (value 1) or an (index, value) pair each; a step with
#: none is an empty list.
Schedule = Sequence[Sequence]


def _forced_n(net: Network) -> int:
    """Neurons of the forced layer (0 if the network has none)."""
    forced = net.forced_layers
    return net.layers[forced[0]].n if forced else 0


def _target(net: Network) -> tuple[int, int, int]:
    """(layer, neurons, largest value) that schedule events go to: the forced layer, else the
    input layer, else none (0, 0, 0)."""
    if net.forced_layers:
        return net.forced_layers[0], _forced_n(net), 1
    if net.layers[0].n:
        return 0, net.layers[0].n, (1 << net.layers[0].in_bits) - 1
    return 0, 0, 0


def _check_schedule(net: Network, schedule: Schedule) -> list[list[tuple[int, int]]]:
    """Each step as sorted (index, value) pairs, checked against the network."""
    layer, n, vmax = _target(net)
    what = "forces neurons" if net.forced_layers else "sends inputs"
    steps = []
    for t, step in enumerate(schedule):
        events = {}
        for e in step:
            j, v = (int(e[0]), int(e[1])) if isinstance(e, (tuple, list)) else (int(e), 1)
            if not n:
                raise ValueError(f"schedule step {t} {what} {list(step)} but network "
                                 f"{net.name!r} has no forced layer and no inputs")
            if not 0 <= j < n:
                raise ValueError(f"schedule step {t}: indices must be in [0, {n - 1}], got {j}")
            if not 1 <= v <= vmax:
                raise ValueError(f"schedule step {t}: value of index {j} must be in "
                                 f"[1, {vmax}], got {v}")
            if events.get(j, v) != v:
                raise ValueError(f"schedule step {t}: index {j} given twice with different "
                                 f"values ({events[j]}, {v})")
            events[j] = v
        steps.append(sorted(events.items()))
    if not steps:
        raise ValueError("schedule must hold at least one step")
    return steps


def schedule_records(net: Network, schedule: Schedule) -> list[dict]:
    """The ``step_in_layout`` records of ``schedule``: one per event (sorted by index,
    duplicates dropped), ``last = 1`` on each step's final record, one ``valid = 0`` record per
    empty step."""
    layer = _target(net)[0]
    return [rec for step in _check_schedule(net, schedule)
            for rec in step_records([j for j, _ in step], layer=layer,
                                    values=[v for _, v in step])]


def schedule_stimulus(net: Network, schedule: Schedule, steps: int):
    """``(x, forced)`` for :func:`sim.reference.simulate` of ``steps`` steps of ``schedule``
    replayed in a loop (as the board top does)."""
    layer, n, _ = _target(net)
    sched = _check_schedule(net, schedule)
    raster = np.zeros((steps, n), np.int64)
    for t in range(steps):
        for j, v in sched[t % len(sched)]:
            raster[t, j] = v
    if net.forced_layers:
        return None, {layer: raster.astype(np.uint8)}
    return (raster if n else None), None


def default_schedule(net: Network, *, cue_steps: int | None = None, steps: int | None = None,
                     p: float | None = None, seed: int = 0) -> list[list]:
    """A cue then quiet steps: ``cue_steps`` (default ``net.max_delay``, at least 1) steps of a
    seeded Bernoulli(``p``) raster, then empty steps up to ``steps`` (default ``4 *
    cue_steps``, at least 16). The raster forces the forced layer (``p`` default 0.25: cue and
    free recall), or else drives the input layer with values uniform in [1, 2**in_bits - 1]
    (``p`` default 0.1); a network with neither gets only empty steps."""
    cue = max(1, net.max_delay) if cue_steps is None else int(cue_steps)
    total = max(16, 4 * cue) if steps is None else int(steps)
    if not 0 <= cue <= total or total < 1:
        raise ValueError(f"need 0 <= cue_steps <= steps and steps >= 1, got cue_steps={cue}, "
                         f"steps={total}")
    layer, n, vmax = _target(net)
    if p is None:
        p = 0.25 if net.forced_layers else 0.1
    rng = np.random.default_rng(seed)
    raster = rng.random((cue, n)) < p
    if net.forced_layers or not n:
        return [np.flatnonzero(raster[t]).tolist() if t < cue else [] for t in range(total)]
    values = rng.integers(1, vmax + 1, (cue, n))
    return [[(int(j), int(values[t, j])) for j in np.flatnonzero(raster[t])] if t < cue else []
            for t in range(total)]


def _countdown(m: Module, cycles: int, name: str) -> tuple[Signal, Signal]:
    """A timer: ``expired`` rises ``cycles`` clock edges after ``reload`` is asserted (it starts
    expired).

    The count restarts from zero, not from a constant: a load of mixed ones and zeros maps to
    set and reset flip-flops that cannot share a tile, which splits the carry chain (a timer
    built that way was a board top's critical path).
    """
    count = Signal(range(cycles), name=f"{name}_count")
    expired = Signal(init=1, name=f"{name}_expired")
    reload = Signal(name=f"{name}_reload")
    with m.If(reload):
        m.d.sync += [count.eq(0), expired.eq(cycles == 1)]
    with m.Elif(~expired):
        m.d.sync += count.eq(count + 1)
        with m.If(count == cycles - 2):
            m.d.sync += expired.eq(1)
    return expired, reload


class RegisterSlice(wiring.Component):
    """One register stage on a stream (full throughput): ``o`` is driven from flip-flops, so
    that a block RAM's output upstream never reaches the consumer's logic in the same cycle."""

    def __init__(self, layout):
        super().__init__({"i": In(stream.Signature(layout)),
                          "o": Out(stream.Signature(layout))})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.i.ready):
            m.d.sync += [self.o.valid.eq(self.i.valid), self.o.payload.eq(self.i.payload)]
        return m


class SchedulePlayer(wiring.Component):
    """Replays a schedule forever as ``step_in_layout`` records on ``o``, from a ROM.

    With ``step_cycles`` set, a step's first record is offered no sooner than ``step_cycles``
    cycles after the previous step's first record (the pace of a visible demo); with ``None``
    the player sends as fast as ``o`` accepts. The ROM holds :func:`schedule_records`
    (``len(records)`` words of ``index_bits + 2`` bits); it is read synchronously, so ``o`` is
    first valid on the second cycle after reset.
    """

    def __init__(self, net: Network, schedule: Schedule, *, step_cycles: int | None = None):
        if step_cycles is not None and (isinstance(step_cycles, bool)
                                        or not isinstance(step_cycles, int) or step_cycles < 1):
            raise ValueError(f"step_cycles must be a positive integer or None, "
                             f"got {step_cycles!r}")
        self.records = schedule_records(net, schedule)
        self.steps = len(_check_schedule(net, schedule))
        self.step_cycles = step_cycles
        self._layout = step_in_layout(net)
        super().__init__({"o": Out(stream.Signature(self._layout))})

    def elaborate(self, platform):
        m = Module()
        depth = len(self.records)
        m.submodules.rom = rom = memory.Memory(shape=self._layout, depth=depth,
                                               init=self.records)
        rd = rom.read_port()

        addr = Signal(range(depth))    # the record rd.data holds (once primed)
        primed = Signal()              # rd.data is valid: one cycle after reset
        go = Signal()                  # the pace allows the current step to be sent
        nxt = Mux(addr == depth - 1, 0, addr + 1)
        fire = self.o.valid & self.o.ready
        # Read ahead on a transfer so the next record is ready the cycle after.
        m.d.comb += [rd.addr.eq(Mux(fire, nxt, addr)),
                     self.o.payload.eq(rd.data),
                     self.o.valid.eq(primed & go)]
        m.d.sync += primed.eq(1)
        with m.If(fire):
            m.d.sync += addr.eq(nxt)

        if self.step_cycles is None:
            m.d.comb += go.eq(1)
        else:
            expired, reload = _countdown(m, self.step_cycles, "pace")
            with m.If(~go & expired):
                m.d.comb += reload.eq(1)
                m.d.sync += go.eq(1)
            # A step ends with its `last` record; the next one waits for the timer.
            with m.If(fire & self.o.payload.last):
                m.d.sync += go.eq(0)
        return m


def _top_knobs(net: Network, schedule: Schedule | None, step_hz: float | None,
               hold_hz: float, show: Sequence[int] | None) -> tuple[list, list[int]]:
    """:class:`ScheduleTop`'s checked schedule (as :func:`_check_schedule` gives it) and
    ``show``; ``ValueError`` naming the argument otherwise."""
    steps = _check_schedule(net, default_schedule(net) if schedule is None else schedule)
    if step_hz is not None and not step_hz > 0:
        raise ValueError(f"step_hz must be positive or None, got {step_hz!r}")
    if not hold_hz > 0:
        raise ValueError(f"hold_hz must be positive, got {hold_hz!r}")
    n = max(layer.n for layer in net.layers[1:])
    show = list(range(min(5, n))) if show is None else [int(q) for q in show]
    if len(show) > 5 or any(not 0 <= q < n for q in show):
        raise ValueError(f"show must list at most 5 neuron indices in [0, {n - 1}], "
                         f"got {show}")
    return steps, show


class ScheduleTop(Elaboratable):
    """Network core, schedule player and LEDs: a demo that needs no host (any board).

    The player replays ``schedule`` (see :func:`default_schedule`) forever, without clearing
    the core between loops (the platform's reset, e.g. the iCEBreaker's user button, restarts
    at step 0). The core's output is always accepted. At ``step_hz`` steps per second
    (``None``: as fast as the core runs) the LEDs show, per completed step:

    * ``led`` 1 (iCEBreaker: green): toggles at each completed step (heartbeat);
    * ``led`` 0 (iCEBreaker: red): some neuron spiked;
    * ``led`` 2..6 (iCEBreaker: the break-off PMOD, if present): neurons ``show[0..4]`` of
      layer 1 spiked.

    LEDs the platform lacks are left out. Spike LEDs are refreshed at step ends at most every
    ``1 / hold_hz`` s and show every spike since the previous refresh, so a free-running core
    still gives a visible picture. ``elaborate(None)`` (simulation) requests no pins; the LED
    values are then in ``heartbeat`` and ``spike_leds`` (bit 0 = any spike, bit 1 + q =
    ``show[q]``).

    A network whose last layer is a read-out gets a :class:`~rtl.link.readout.Readout`: each loop of
    the schedule is one sample, and ``led`` 2..6 show the binary prediction of the last
    completed sample (``prediction``, ``prediction_valid``) instead of neurons' spikes.

    When the core keeps weights in SPRAM, a :class:`~boards.flash.FlashLoader` reads them
    from the configuration flash at ``flash_offset`` (:meth:`flash_image` gives the bytes)
    after reset, and the core starts once they are in; in simulation its pins are
    ``self.loader.sck/cs/copi/cipo``. A bad ``schedule``, ``step_hz``, ``hold_hz`` or ``show``
    raises ``ValueError`` before the top exists.
    """

    def __new__(cls, net: Network, schedule: Schedule | None = None, *,
                step_hz: float | None = 8.0, hold_hz: float = 20.0,
                show: Sequence[int] | None = None, **core_knobs):
        # Checked before the Elaboratable exists, so a refused top is not "created but never
        # used" (src_loc_at=1: the warning of an unused top names our caller's line).
        _top_knobs(net, schedule, step_hz, hold_hz, show)
        return super().__new__(cls, src_loc_at=1)

    def __init__(self, net: Network, schedule: Schedule | None = None, *,
                 step_hz: float | None = 8.0, hold_hz: float = 20.0,
                 show: Sequence[int] | None = None, flash_offset: int = FLASH_OFFSET,
                 **core_knobs):
        self.net = net
        self.schedule, self.show = _top_knobs(net, schedule, step_hz, hold_hz, show)
        self.step_hz, self.hold_hz = step_hz, hold_hz
        self.core = NetworkCore(net, **core_knobs)
        self.image = self.core.load_image()
        self.loader = None
        if self.image:
            self.loader = FlashLoader(words=len(self.image), width=self.core.load_width,
                                      offset=flash_offset)
        self.heartbeat = Signal()
        self.spike_leds = Signal(1 + len(self.show))
        self.readout = None
        if not net.layers[-1].spiking:
            self.readout = Readout(net, lanes=self.core.lanes,
                                   max_steps=len(self.schedule))
            self.prediction = Signal.like(self.readout.prediction)
            self.prediction_valid = Signal()

    def flash_image(self, path: str | Path | None = None) -> bytes:
        """The flash bytes that hold the SPRAM weights (empty when there are none)."""
        if self.loader is None:
            return b""
        return flash_image(self.image, self.loader.width, path)

    def elaborate(self, platform):
        m = Module()
        freq = 12e6 if platform is None else platform.default_clk_frequency
        step_cycles = None if self.step_hz is None else max(1, round(freq / self.step_hz))
        m.submodules.core = core = self.core
        m.submodules.player = player = SchedulePlayer(self.net, self.schedule,
                                                      step_cycles=step_cycles)
        # A register stage: the schedule ROM's output would otherwise feed the core's input
        # decode in the same cycle (the ECP5 critical path of large networks).
        m.submodules.slice = rs = RegisterSlice(step_in_layout(self.net))
        wiring.connect(m, player.o, rs.i)
        wiring.connect(m, rs.o, core.i)
        m.d.comb += core.o.ready.eq(1)
        if self.loader is not None:
            m.submodules.loader = self.loader
            wiring.connect(m, self.loader.o, core.wl)
            if platform is not None:
                flash = platform.request("spi_flash_1x", 0, dir="-")
                for pin, sig, d in (("cs", self.loader.cs, "o"), ("clk", self.loader.sck, "o"),
                                    ("copi", self.loader.copi, "o"),
                                    ("cipo", self.loader.cipo, "i"),
                                    ("wp", 0, "o"), ("hold", 0, "o")):
                    m.submodules[f"flash_{pin}"] = buf = io.Buffer(d, getattr(flash, pin))
                    m.d.comb += buf.o.eq(sig) if d == "o" else sig.eq(buf.i)

        rec = core.o.payload
        done = core.o.valid & rec.last
        lanes = self.core.lanes
        if self.readout is not None:
            # One sample per loop of the schedule: clear at the loop's first record, the final
            # step is the loop's last.
            m.submodules.readout = ro = self.readout
            steps = len(self.schedule)
            step = Signal(range(steps), name="sample_step")
            first = Signal(init=1, name="sample_first")
            m.d.comb += [ro.rec.eq(rec), ro.fire.eq(core.o.valid),
                         ro.clear.eq(core.o.valid & first), ro.last_step.eq(step == steps - 1)]
            with m.If(core.o.valid):
                m.d.sync += first.eq(0)
            with m.If(done):
                m.d.sync += [step.eq(Mux(step == steps - 1, 0, step + 1)),
                             first.eq(step == steps - 1)]
            with m.If(ro.valid):
                m.d.sync += [self.prediction.eq(ro.prediction), self.prediction_valid.eq(1)]
        # LED 0: any spike; LED 1 + q: neuron show[q] of layer 1, wherever its lane is.
        hits = Cat(rec.spike.any(),
                   *((rec.layer == 1) & (rec.index <= q) & (q < rec.index + lanes) &
                     (rec.spike >> (q - rec.index).as_unsigned())[0] for q in self.show))
        seen = Signal.like(self.spike_leds)     # spikes since the last refresh
        expired, reload = _countdown(m, max(1, round(freq / self.hold_hz)), "hold")
        with m.If(core.o.valid):
            m.d.sync += seen.eq(seen | hits)
        with m.If(done):
            m.d.sync += self.heartbeat.eq(~self.heartbeat)
            with m.If(expired):
                m.d.comb += reload.eq(1)
                m.d.sync += [self.spike_leds.eq(seen | hits), seen.eq(0)]

        if platform is not None:
            shown = [self.spike_leds[1 + q] for q in range(len(self.show))]
            if self.readout is not None:
                shown = [self.prediction[q] if q < len(self.prediction) else 0
                         for q in range(5)]
            outs = [self.spike_leds[0], self.heartbeat, *shown]
            for k, value in enumerate(outs):
                try:
                    port = platform.request("led", k, dir="-")
                except ResourceError:   # no break-off PMOD: only the red and green LEDs
                    break
                m.submodules[f"led_{k}"] = led = io.Buffer("o", port)
                m.d.comb += led.o.eq(value)
        return m


def build_schedule(net: Network, board_name: str = "icebreaker", *, build_dir: str | Path,
                   schedule: Schedule | None = None, step_hz: float | None = 8.0,
                   show: Sequence[int] | None = None, seed: int = 1,
                   timing_allow_fail: bool = False, nextpnr_opts: str = "",
                   **core_knobs) -> BuildResult:
    """Build a bitstream of :class:`ScheduleTop` for ``net`` replaying ``schedule`` (default:
    :func:`default_schedule`) on ``board_name`` at the board's oscillator clock (no PLL);
    ``core_knobs`` go to the core. See :func:`boards.build.build` for ``seed``,
    ``timing_allow_fail``, ``nextpnr_opts`` and the result. The core's weight memories are banked for the
    board's family unless ``family`` says otherwise; weights in SPRAM also give ``weights.bin``
    in ``build_dir`` (:attr:`BuildResult.flash_image`), to be written at the top's flash
    offset: ``iceprog -o 1M weights.bin``."""
    b = board(board_name)
    core_knobs.setdefault("family", b.family)
    core_knobs.setdefault("device", b.chip)
    top = ScheduleTop(net, schedule, step_hz=step_hz, show=show, **core_knobs)
    result = build(top, b.platform(), build_dir=build_dir, seed=seed,
                   timing_allow_fail=timing_allow_fail, nextpnr_opts=nextpnr_opts)
    if top.loader is None:
        return result
    path = result.build_dir / "weights.bin"
    top.flash_image(path)
    return replace(result, flash_image=path, flash_offset=top.loader.offset)
