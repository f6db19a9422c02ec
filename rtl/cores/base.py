"""The contract every hardware core implements, so that callers choose a core by asking the
registry (:data:`rtl.cores.CORES`) and never by a string switch of their own."""

from __future__ import annotations

from math import ceil

from typing import ClassVar, Literal

from amaranth.lib import wiring

from model.ir import Network

from ..errors import UnsupportedNetwork

__all__ = ["Core", "UnsupportedNetwork", "Measure"]

#: How a core's cycles per step must be measured: ``"model"`` from the reference trace's
#: activity (the core's cycle model is exact), ``"amaranth"`` by running the core in
#: Amaranth's simulator (:meth:`Core.simulate`), ``"verilator"`` by co-simulating its
#: generated Verilog with the read-out layer observed.
Measure = Literal["model", "amaranth", "verilator"]


class Core:
    """One hardware core: what it builds, which knobs it takes, how it is measured.

    A core is described by class attributes (its :attr:`component` class among them) and an
    :meth:`estimate`; :meth:`check` and :meth:`build` ask the component; the registry holds one
    instance per core. ``build`` returns a :class:`~amaranth.lib.wiring.Component` with the
    ports every
    core has: ``i`` (In stream of :func:`~rtl.interface.step_in_layout`), ``o`` (Out stream of
    :func:`~rtl.interface.step_out_layout`), ``busy`` (Out 1), and, when it keeps weights
    outside the bitstream, ``wl`` (In stream of ``load_width`` bits) with ``load_image()`` the
    words to stream on it after the first reset; ``kinds`` (weight array -> memory kind),
    ``memory_bits`` (weight array -> bits) and ``lanes``. A core with ``gated`` also takes
    ``gate=True`` (a ``mask`` port that silences observed layers but the last), and one with
    ``observe`` in its knobs has an ``observe`` attribute (the layers whose records go out).
    """

    #: The name users pass as ``--core``.
    name: ClassVar[str]
    #: The component class :meth:`build` makes; its ``check_args`` classmethod refuses what the
    #: constructor would (see :class:`rtl.checked.CheckedComponent`).
    component: ClassVar[type]
    #: One line for ``--help``: what the core is for.
    summary: ClassVar[str]
    #: Keyword knobs :meth:`build` takes besides ``lanes`` (``family`` and ``device`` are always
    #: accepted: they shape memories where a core uses them and are ignored otherwise).
    knobs: ClassVar[tuple[str, ...]] = ()
    #: ``lanes`` when the caller gives none.
    default_lanes: ClassVar[int] = 1
    #: Device families the core can be built for (None: every family).
    families: ClassVar[tuple[str, ...] | None] = None
    #: How its cycles per step are measured (see :data:`Measure`).
    measure: ClassVar[Measure] = "model"
    #: Takes ``gate`` (a host link then sends only the read-out's records when asked for a
    #: prediction only).
    gated: ClassVar[bool] = False
    #: The host link pairs it with the serial read-out (one lane per cycle, sums in block RAM).
    serial_readout: ClassVar[bool] = False
    #: Extra nextpnr options its board builds need.
    nextpnr_opts: ClassVar[str] = ""

    def check_knobs(self, knobs: dict) -> dict:
        """``knobs`` without the unset ones (and without ``family`` and ``device`` unless the
        core uses them); ``ValueError`` naming any the core does not take."""
        targets = ("family", "device")
        extra = sorted(k for k, v in knobs.items()
                       if v is not None and k not in (*self.knobs, "lanes", *targets))
        if extra:
            raise ValueError(f"the {self.name} core takes no {', '.join(extra)}")
        return {k: v for k, v in knobs.items()
                if v is not None and (k not in targets or k in self.knobs)}

    def lanes(self, lanes: int | None) -> int:
        """``lanes``, or :attr:`default_lanes` when it is None."""
        return self.default_lanes if lanes is None else lanes

    def check(self, net: Network, *, lanes: int | None = None, **knobs) -> None:
        """Raise :class:`UnsupportedNetwork` (or ``ValueError`` for a knob the core does not
        take) unless the core can be built for ``net`` with these knobs; build nothing."""
        try:
            self.component.check_args(net, lanes=self.lanes(lanes), **self.check_knobs(knobs))
        except UnsupportedNetwork as e:
            # The lean core plans its layers as the stack core does: its reasons name the
            # core that was asked for, and the way out as a core name, not a class.
            msg = str(e)
            for other in ("stack core", "lean core", "network core"):
                if msg.startswith(other):
                    msg = f"{self.name} core" + msg[len(other):]
            msg = msg.replace("use rtl.core.NetworkCore", "the network core builds it")
            raise UnsupportedNetwork(msg) from None

    def supports(self, net: Network, **knobs) -> str | None:
        """``None`` when the core can be built for ``net`` with ``knobs``, else the reason."""
        try:
            self.check(net, **knobs)
        except (UnsupportedNetwork, ValueError) as e:
            return str(e)
        return None

    def build(self, net: Network, *, lanes: int | None = None, **knobs) -> wiring.Component:
        """The core for ``net`` (``lanes`` defaults to :attr:`default_lanes`)."""
        return self.component(net, lanes=self.lanes(lanes), **self.check_knobs(knobs))

    def estimate(self, net: Network, *, family: str | None = None, device=None,
                 clock_mhz: float, lanes: int | None = None,
                 activity: list[dict] | None = None,
                 cycles: tuple[float, int, int] | None = None, **knobs):
        """An :class:`rtl.cost.Estimate` before synthesis, for ``device`` (a
        :class:`rtl.devices.Device` or its name) or else the largest device of ``family``
        (:func:`rtl.devices.target`). ``activity`` (one
        :func:`rtl.cost.activity` per sample) for a core measured by its ``"model"``;
        ``cycles`` (mean and max cycles per step, steps per sample) measured as
        :attr:`measure` says for the others."""
        raise NotImplementedError

    def lane_options(self, net: Network) -> tuple[int, ...]:
        """The lane counts an automatic choice tries, up to the widest LIF layer (and 256):
        powers of two and three times powers of two (1, 2, 3, 4, 6, 8, 12, ...: a memory a
        little too large at 2^k lanes often fits at 1.5 x 2^k), and the counts that split a
        layer into 1 to 8 equal groups (144 neurons: 144, 72, 48, 36, ...: no lane idles, no
        weight word is padded). :meth:`supports` still has the last word."""
        widths = [layer.n for layer in net.layers[1:] if layer.n > 0] or [1]
        top = min(256, max(widths))
        out = {p for k in range(9) for p in (1 << k, 3 << k) if p <= top}
        out |= {ceil(n / g) for n in widths for g in range(1, 9) if ceil(n / g) <= top}
        return tuple(sorted(out))

    def wiring(self, net: Network, *, lanes: int, **knobs) -> int:
        """The weight bits that must reach the lanes in one cycle, as far as routing is
        concerned: a number compared only with builds of the same core on the same family
        (``routing`` in ``rtl/calibration.json``). Here the widest weight word (``lanes``
        weights): the network core reads one projection at a time, and its builds failed to
        route when that word, spread over many lanes across the die, grew."""
        from ..memplan import projection_plan
        return max([lanes * pp.p.w_bits for pp in projection_plan(net) if pp.p.kind != "conv"]
                   or [0])

    def knob_options(self, net: Network) -> tuple[dict, ...]:
        """Further knob sets an automatic choice tries besides the defaults (``({},)``: only
        the defaults)."""
        return ({},)

    def expected_fmax(self, family: str, lanes: int, *, lut: int | None = None,
                      bram: int | None = None, grade: str | None = None) -> tuple[float, bool]:
        """``(MHz, measured)``: the post-route Fmax its host-link build is expected to reach on
        ``family``, and whether that figure comes from builds of this core (else the family's
        default).

        Given the design's size (``lut``: the core's LUT4 estimate, ``bram``: its block RAMs)
        and the core has a size model on the family (``fmax_size`` of ``rtl/calibration.json``,
        from ``python -m bench.calibrate_fmax``), the figure is that model's: Fmax falls with
        the logarithm of the design's size, ``a - b * ln(size / 1000)`` with ``size = lut +
        lut_per_block * bram``, scaled by the speed grade's factor (``grade``, the part
        number's suffix; ``grade_factor``, 1 for the grade the model was fitted on). Otherwise
        it is the lane table's (``fmax_mhz``, in the reference grade's terms): the first entry
        whose lanes are at least ``lanes``, times the family's factor for ``grade``
        (``grade_factor``)."""
        from math import log
        from ..calibration import calibration
        cal = calibration()
        model = cal.get("fmax_size", {}).get(self.name, {}).get(family)
        if model is not None and lut is not None:
            size = max(1.0, lut + model["lut_per_block"] * (bram or 0))
            mhz = model["a"] - model["b"] * log(size / 1000)
            mhz *= model.get("grade_factor", {}).get(str(grade), 1.0)
            return round(max(mhz, model["floor"]), 2), True
        table = cal["fmax_mhz"]
        factor = cal.get("grade_factor", {}).get(family, {}).get(str(grade), 1.0)
        for bound, mhz in table.get(self.name, {}).get(family, []):
            if lanes <= bound:
                return round(float(mhz) * factor, 2), True
        return float(table["default"][family]), False

    def simulate(self, net: Network, x, *, lanes: int | None = None, **knobs):
        """Run the core in Amaranth's simulator with the read-out observed, as a board asked
        for a prediction runs it; a core whose :attr:`measure` is ``"amaranth"`` has this.
        Returns an object with ``v`` (the read-out's membranes), ``prediction`` and
        ``cycles_per_step``."""
        raise NotImplementedError(f"the {self.name} core is not measured in Amaranth")

    def __repr__(self) -> str:
        return f"<{self.name} core>"
