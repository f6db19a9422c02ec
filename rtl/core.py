"""Network core: every IR network as a streaming, time-multiplexed, event-driven LIF engine.

One generator builds the whole network from the IR: any number of LIF layers (spiking or
read-out), feed-forward and recurrent projections of the three kinds, multi-bit inputs,
biases, forced rasters. ``lanes`` (P) neurons are updated per cycle, and weight words hold one
weight per lane so that each lane gets a weight every cycle.

Every projection reads its presynaptic layer's recent history from a
:class:`~rtl.delay_line.DelayLine` of P-element words. Per step, after the record with
``last = 1`` has been accepted on ``i``, layers 1..L run in order. For layer l (G = ceil(n/P)
groups):

1. *gather* — one job per projection reads the arriving words (a taps projection reads the
   non-zero words of its whole window of delays in one pass). ``dense``/``taps`` jobs turn
   each non-zero element into a *pair* (weight row, value), one per cycle (an empty word
   costs a cycle); ``conv`` jobs copy whole words into a register vector. Pairs go into the
   pair list and, at once, into the accumulator for group 0.
2. *replay* — groups 1..G-1 read the E pairs back, one per cycle. A *marker* token ends each
   group: a group costs E + 1 cycles, the memory-port bound.
3. *fire*, overlapped — the marker hands the group's sums to the fire pipeline (hand-off
   register H; B1: bias, conv terms and leak; B1b: saturation; B2: threshold and reset, output
   record on ``o``, write-back) while the accumulator moves on. B2 writes the group's emitted
   spikes (own OR forced) as one word into every delay line that leaves layer l.

Work follows the spiking (neuron, delay) pairs and the words that hold them, never n·n·D;
:mod:`rtl.cost` models the cycles and ``docs/hardware.md`` explains them. Memory planning is
in :mod:`rtl.memplan`.

Why this file is long: it is one engine. ``elaborate`` builds the delay lines, the input
writes, per layer the datapath (``_datapath``, one method per stage: weight arrays and pair
list, weight read, accumulate, hand-off, conv loaders and terms, B1, B1b, B2 and the offer on
``o``) and the step sequencer (``_sequencer``; a layer's states come from ``_states``: gather
jobs, marker, replay). The stages share their registers through the small dataclasses below
(:class:`Token`, :class:`HandOff`, :class:`Current`, :class:`Saturated`, ...) rather than
ports; making them components is the open step of docs/layout.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from math import ceil
from typing import Literal

from amaranth.hdl import C, Cat, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import memory, stream
from amaranth.lib.wiring import In, Out

from model.ir import Network
from .checked import CheckedComponent
from .delay_line import DelayLine
from .devices import target
from .families import FAMILIES, ram_style
from .interface import step_in_layout, step_out_layout
from .logic import CONV_CHUNK, QUAD, OneHot, at_most_one, lowest_set, tree_sum
from .memplan import (STREAMED, ProjPlan, block_membranes, has_bias, load_image, load_width,
                      memory_bits, memory_kinds, pair_bits, projection_plan, supported,
                      weight_bank_depth, weight_words)
from .lif import LIFUnit, leak, leak_multipliers, saturate, scale
from .loaded import LOADED_RAM_MODULE, LOADED_RAM_NAME, LoadedArray
from .spram import SpramArray
from .words import pack_word

__all__ = ["NetworkCore", "Fault", "KEEP_COPIES"]

#: The Yosys command (run right after reading the netlist) that marks the flip-flops of
#: registers named ``*__dup*`` ``keep``: the deliberate copies of a register (``replicate``)
#: that synthesis would otherwise merge back into one (``opt_merge``; ``keep`` on the wires
#: alone does not stop it).
KEEP_COPIES = r"setattr -set keep 1 w:*__dup* %ci1 t:$dff t:$adff %u %i"

#: With ``replicate``, each block of this many lanes has its own copy of the fire stages'
#: valid flags, whose enables reach every lane's registers.
COPY_LANES = 16

Fault = Literal[None, "delay+1", "threshold>"]


def _untraced_read_port(mem: memory.Memory, **kwargs) -> memory.ReadPort:
    """``mem.read_port(**kwargs)``, with the name Amaranth gives a port it cannot trace to a
    variable (``$signature``): the pair list's port has always had it, and the generated Verilog
    keeps its names."""
    return mem.read_port(**kwargs)


@dataclass
class Token:
    """The registers of one token stage (see :meth:`NetworkCore._datapath`): a pair (weight row
    and value) or a marker, on its way from T0 through the weight read to the add. A stage
    carries the fields it needs; the others are None."""
    valid: Signal
    marker: Signal                  # hands a group off (group 0's marker, a group without pairs)
    last: Signal                    # the group's final pair, which also hands the group off
    g: Signal                       # the group the token is for
    new: Signal | None = None       # T0: a fresh pair, written to the pair list as it leaves T0
    base: Signal | None = None      # T0: the pair's weight row, row * G
    tag: Signal | None = None       # the pair's projection, among the layer's weighted ones
    val: Signal | None = None       # the pair's value (layers fed with multi-bit values)
    index: Signal | None = None     # T0: the pair's place in the pair list

    def carried(self) -> dict[str, Signal]:
        """The fields this stage has, by field name, in declaration order."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None}

    def like(self, prefix: str, l: int) -> Token:
        """A further stage with a register per carried field, named ``{prefix}{field}{l}``."""
        return Token(**{k: Signal.like(v, name=f"{prefix}{k}{l}")
                        for k, v in self.carried().items()})

    def load(self, src: Token) -> list:
        """Statements that move the token in ``src`` into this stage."""
        return [s.eq(getattr(src, k)) for k, s in self.carried().items()]


@dataclass
class TokenPipe:
    """The token stages of a layer, which move together."""
    go: Signal              # the token stages move this cycle (no hand-off waits for H)
    t0: Token               # loaded by a gather job (pairs) or from the replay request
    rq: Token               # the replay's request (its pair comes on the pair list's port)
    rp: Token               # the request with its pair, registered (the pair list's output
    #                         goes straight into a register, not across the die into T0: Fmax)
    stages: list[Token]     # T1 [, T2 [, T3, T4]] after T0: the last one is at the add


@dataclass
class WeightLoad:
    """Where the LOAD state is in the ``wl`` image (weight arrays in SPRAM or loaded RAM)."""
    active: Signal              # the LOAD state runs
    arr: Signal                 # the streamed array being written, in the image's order
    addr: Signal                # its word being written
    order: dict[int, int]       # projection index -> its array's place in the image


@dataclass
class Shared:
    """Sequencing state that every layer shares (one layer runs at a time)."""
    grp: Signal                 # group the replay issues
    p_next: Signal              # next pair the replay reads
    n_pairs: Signal             # E: pairs of the current layer
    left: Signal                # pairs the replay has yet to issue
    load: WeightLoad | None = None      # with weight arrays loaded through ``wl``
    fsm: OneHot | None = None           # the step sequencer's states
    #: (active, register, value): while a layer is not active (outside the FSM's states),
    #: the register takes the value every cycle (e.g. an extractor's ``end`` for its first job)
    idle: list = field(default_factory=list)


@dataclass
class InputWrite:
    """Input records on their way into the input layer's delay lines."""
    valid: Signal               # the lines write an accepted record this cycle
    accept: Signal | None       # the RECV state takes a record (None: no line leaves layer 0)


@dataclass
class WeightArray:
    """The weight memory of one dense or taps projection, in banks."""
    pp: ProjPlan
    ports: list                 # per bank: a read port, or a SpramArray / LoadedArray
    bank: int                   # depth of one bank
    streamed: bool              # written through ``wl`` (SPRAM or loaded RAM)


@dataclass
class PairFetch:
    """The pair list and the weight arrays of a layer with dense or taps projections."""
    arrays: list[WeightArray]   # in tag order
    rd: memory.ReadPort         # the pair list's read port (the replay reads it)
    tag_bits: int               # a pair is (tag, base, value): the projection's tag,
    base_bits: int              # its weight row
    value_bits: int             # and its value (0 bits when every input is binary)
    waddr: Signal               # the weight word of the token in T0
    #: With ``replicate``: per block-RAM weight bank, a copy of T0's (base, g) registers
    #: that drives only that bank's address (copies named ``*__dup*``: see
    #: :data:`KEEP_COPIES`).
    copies: list = field(default_factory=list)

    def follow(self, *, base=None, g=None) -> list:
        """Statements that give every copy what T0's ``base`` and ``g`` are given (placed
        beside T0's own assignments, so that the same conditions and priorities hold)."""
        return [c.eq(v) for cb, cg in self.copies for c, v in ((cb, base), (cg, g))
                if v is not None]


@dataclass
class HandOff:
    """Register H: a group's sums, handed off by its marker (or last pair), beside the group's
    membrane and bias words (read one stage ahead)."""
    valid: Signal
    g: Signal
    acc: list[Signal]           # per lane
    v: Signal                   # the group's membrane word
    b: Signal                   # the group's bias word
    load: Signal                # the group moves into H this cycle
    ready: Value = field(default_factory=lambda: C(1, 1))   # B1 may take H (conv: sums in)
    ready_next: Value = field(default_factory=lambda: C(1, 1))  # ``ready`` next cycle
    #: H may take a group this cycle: a register, computed a cycle ahead from the next
    #: values of H's, S's and R's spare's flags, so that the token stages' ``go`` comes from
    #: two registers, not from the fire pipeline's state (Fmax)
    free: Signal | None = None
    move: Signal | None = None          # H's group moves to S this cycle (B1)


@dataclass
class Current:
    """Register S (after B1): the group's input current and leaked membrane, per lane."""
    valid: Signal
    take: Signal                # S moves to R this cycle
    g: Signal
    i: list[Signal]             # bias + accumulated weights + conv terms
    u: list[Signal]             # the leaked membrane
    f: Signal                   # the group's forced spikes
    #: With ``replicate``: a copy of ``valid`` per block of lanes (see ``_lane_blocks``).
    copies: list = field(default_factory=list)


@dataclass
class Saturated:
    """Register R (after B1b): the group's saturated membrane, per lane, and R's spare: a
    second group held while R's record waits on ``o``."""
    valid: Signal
    take: Signal                # B2 takes R this cycle (the group's record leaves on ``o``)
    g: Signal
    v: list[Signal]
    f: Signal                   # the group's forced spikes
    spare: Saturated | None = None      # (its ``take`` unused)
    #: With ``replicate``: a copy of ``valid`` per block of lanes (see ``_lane_blocks``).
    copies: list = field(default_factory=list)


@dataclass
class Fired:
    """B2's outcome for the group in R."""
    spikes: Signal              # own spikes, one per lane (the output record's)
    emit: Signal                # own OR forced: what the outgoing delay lines get
    v_new: list[Signal]         # the membrane after threshold and reset


@dataclass
class Extractor:
    """The word extractor of a layer's gather jobs: the word prefetched in a line's read port,
    the word A that arrived from it (a register straight behind the block RAM's output: no
    logic between the memory and a register; Fmax), and the word W being turned into pairs."""
    rd: Signal                  # next word or list entry to read
    pf: Signal                  # a read is in the line's port
    pfw: Signal                 # the word that read is for (scanned lines)
    a_valid: Signal             # A holds a word
    a_data: Signal              # A's elements and word index
    a_word: Signal
    a_stamp: Signal             # A's step stamp (a window's entry: its tap comes from it)
    valid: Signal               # W holds a word
    # W's non-zero elements not yet emitted (its "mask") are kept as the lowest one's index
    # and the others, registers (no priority encoder behind a mask: Fmax).
    rest: Signal                # the mask without its lowest bit
    low: Signal                 # index of the mask's lowest bit
    data: Signal                # W's elements
    word: Signal                # W's word index
    tap: Signal                 # W's tap (a taps projection's window)
    end: Signal                 # rd has reached the job's limit (registered: Fmax)
    any: Signal                 # the mask is not zero (a register: Fmax)
    single: Signal              # the mask has at most one bit set (likewise)
    rest_low: Value = None      # index of rest's lowest bit (the next emission's `low`)


@dataclass
class LayerPath:
    """What the step sequencer drives and watches of one layer's datapath."""
    G: int                      # groups of P neurons
    incoming: list[ProjPlan]    # projections into the layer
    weighted: list[ProjPlan]    # those whose events become pairs (dense, taps), in tag order
    v_wr: memory.WritePort      # the membrane memory's write port (CLEAR zeroes it)
    tokens: TokenPipe
    fetch: PairFetch | None     # None without weighted projections
    active: Signal              # the sequencer is in the layer
    conv_ready: Value           # every conv vector holds the words group 0 needs
    fin: Signal                 # B2 has taken the layer's last group (registered)


class NetworkCore(CheckedComponent):
    """Streaming, time-multiplexed core for any IR network (see the module docstring).

    Ports: ``i`` (In stream, :func:`~rtl.interface.step_in_layout`), ``o`` (Out stream,
    :func:`~rtl.interface.step_out_layout` with ``lanes``), ``busy`` (high while a step runs).

    ``family`` (``"ice40"``, ``"ecp5"`` or None) only shapes the weight memories: with a
    family, each is split into banks of one block RAM's depth whose outputs are registered
    before they are selected, so that a block RAM's slow output never meets a multiplexer in
    the same cycle (Fmax; the behaviour and the cycle counts do not change). ``bank_depth``
    sets the bank depth directly. ``device`` (a name of :data:`rtl.devices.DEVICES`) plans the
    core for that device: its family, its block RAM and SPRAM budget for the automatic memory
    kinds and its multiplier blocks for the leaks; with only a family, the largest device of
    the family is assumed (:func:`rtl.devices.target`).

    ``memories`` sets the kind of weight arrays by name (:func:`memory_kinds`; the others are
    automatic for the device). Weight arrays in SPRAM start empty: the core then has a ``wl``
    In stream (words of ``load_width`` bits) and, after its first reset, takes the
    :meth:`load_image` words on it before it accepts any input. The SPRAM keeps its contents
    across later resets, so the load happens once per configuration. ``spram_cells`` builds
    SPRAM arrays from ``SB_SPRAM256KA`` primitives (default: when elaborated for a platform)
    rather than behavioural memories (see :class:`~rtl.spram.SpramArray`). Weight arrays of
    kind ``loaded`` (RAMs without initial contents, of any depth) are loaded the same way, in
    the same ``wl`` image; ``loaded_cells`` builds them as instances of the Verilog module
    :data:`~rtl.loaded.LOADED_RAM_MODULE` (default: when elaborated for a platform, which
    then gets the module as a file; :func:`rtl.export.generate` asks for them) rather than
    behavioural memories (see :class:`~rtl.loaded.LoadedArray`).

    ``replicate`` gives every block-RAM weight bank its own copy of the registers its address
    comes from (the pair's weight row and group in T0), and every block of
    :data:`COPY_LANES` lanes its own copy of the valid flags of S, R and R's spare, from which
    that block's register enables and selects are made: no one register then drives the
    address pins of every bank, or the clock enables of every lane, across the die (Fmax of
    wide cores with large, banked weight memories; the behaviour and the cycle counts do not
    change). Synthesis would merge the identical copies: the board builds mark them ``keep``
    (:data:`KEEP_COPIES`).

    ``fault`` plants a deliberate bug, so that tests can show verification catches it:
    ``"delay+1"`` delivers every event one step late, ``"threshold>"`` fires on
    ``v > threshold``.
    """

    @classmethod
    def check_args(cls, net: Network, *, lanes: int = 1, fault: Fault = None,
                   family: str | None = None, bank_depth: int | None = None,
                   memories: dict[str, str] | None = None, spram_cells: bool | None = None,
                   loaded_cells: bool | None = None, device: str | None = None,
                   replicate: bool = False) -> None:
        supported(net, lanes=lanes)
        if not isinstance(replicate, bool):
            raise ValueError(f"replicate must be True or False, got {replicate!r}")
        if fault not in (None, "delay+1", "threshold>"):
            raise ValueError(f"fault must be None, 'delay+1' or 'threshold>', got {fault!r}")
        if family is not None and family not in FAMILIES:
            raise ValueError(f"family must be None or one of {sorted(FAMILIES)}, "
                             f"got {family!r}")
        if bank_depth is not None and (bank_depth < 1 or bank_depth & (bank_depth - 1)):
            raise ValueError(f"bank_depth must be a power of two, got {bank_depth!r}")
        memory_kinds(net, lanes=lanes, family=family, memories=memories, device=device)

    def __init__(self, net: Network, *, lanes: int = 1, fault: Fault = None,
                 family: str | None = None, bank_depth: int | None = None,
                 memories: dict[str, str] | None = None, spram_cells: bool | None = None,
                 loaded_cells: bool | None = None, device: str | None = None,
                 replicate: bool = False):
        self.replicate = replicate
        #: The device planned for (None: generic Verilog for simulation).
        self.device = target(family, device)
        family = self.device.family if self.device is not None else None
        self.net, self.lanes, self.fault, self.family = net, lanes, fault, family
        self.bank_depth = bank_depth
        self.memories = dict(memories or {})
        self.spram_cells = spram_cells
        self.loaded_cells = loaded_cells
        self.kinds = memory_kinds(net, lanes=lanes, memories=memories, device=self.device)
        #: Membrane arrays given block RAM (:func:`~rtl.memplan.block_membranes`).
        self.block_membranes = block_membranes(net, self.kinds, lanes=lanes,
                                               device=self.device)
        ports = {
            "i": In(stream.Signature(step_in_layout(net))),
            "o": Out(stream.Signature(step_out_layout(net, lanes))),
            "busy": Out(1),
        }
        self.load_width = load_width(net, self.kinds, lanes=lanes)
        if self.load_width:
            ports["wl"] = In(stream.Signature(unsigned(self.load_width)))
        super().__init__(ports)

    def load_image(self) -> list[int]:
        """The words to stream on ``wl`` after the first reset (:func:`load_image`)."""
        return load_image(self.net, self.kinds, lanes=self.lanes)

    @property
    def memory_bits(self) -> dict[str, int]:
        return memory_bits(self.net, lanes=self.lanes)

    def elaborate(self, platform):
        m = Module()
        net, P = self.net, self.lanes
        layers = net.layers
        late = 1 if self.fault == "delay+1" else 0
        plan = projection_plan(net, late)
        lines = self._delay_lines(m, plan, late)
        outgoing = {s: [pp for pp in plan if pp.p.src == s] for s in range(len(layers))}
        inp = self._input_writes(m, lines, outgoing[0])

        # ---- shared sequencing state --------------------------------------------------------
        forced = {l: Signal(ceil(layers[l].n / P) * P, name=f"forced{l}")
                  for l in range(1, len(layers)) if layers[l].forced}
        # (reset-less: a pass loads every word it reads, or zeroes the vector first)
        conv_vec = {pp.index: [Signal(pp.element_bits, name=f"g{pp.index}_{j}", reset_less=True)
                               for j in range(pp.pre.n)]
                    for pp in plan if pp.p.kind == "conv"}
        cap = max([sum(pp.pre.n * pp.taps for pp in plan
                       if pp.p.dst == l and pp.p.kind != "conv") for l in range(1, len(layers))])
        gmax = max(ceil(l.n / P) for l in layers)
        sh = Shared(grp=Signal(range(gmax + 1), name="grp"),
                    p_next=Signal(range(cap + 1), name="p_next"),
                    n_pairs=Signal(range(cap + 1), name="n_pairs"),
                    left=Signal(range(cap + 1), name="left"))

        # ---- weight load (arrays in SPRAM or loaded): the LOAD state writes the wl words in
        # order
        streamed = [pp for pp in plan if self.kinds.get(f"proj{pp.index}.weights") in STREAMED]
        if streamed:
            sh.load = WeightLoad(
                active=Signal(name="loading"),
                arr=Signal(range(len(streamed)), name="ld_arr"),
                addr=Signal(range(max(pp.weight_depth(P) for pp in streamed)), name="ld_addr"),
                order={pp.index: k for k, pp in enumerate(streamed)})

        # SPRAM arrays: SB_SPRAM256KA primitives when built for a device (or asked for);
        # loaded arrays: instances of the RAM module without initial contents, likewise.
        primitive = platform is not None if self.spram_cells is None else self.spram_cells
        cells = platform is not None if self.loaded_cells is None else self.loaded_cells
        if cells and platform is not None and "loaded" in self.kinds.values():
            platform.add_file(f"{LOADED_RAM_NAME}.v", LOADED_RAM_MODULE)
        paths = {l: self._datapath(m, l, plan, lines, outgoing, forced, conv_vec, sh,
                                   primitive, cells)
                 for l in range(1, len(layers))}
        self._sequencer(m, paths, lines, inp, forced, sh, streamed, gmax)
        return m

    def _delay_lines(self, m, plan, late) -> dict[int, DelayLine]:
        """The delay lines, one per projection, by projection index."""
        P = self.lanes
        lines = {}
        for pp in plan:
            line = DelayLine(n=pp.pre.n, lanes=P, slots=pp.slots, mode=pp.mode,
                             value_bits=pp.element_bits,
                             offsets=pp.p.delays_of_pre(pp.pre.n) + late if pp.per_lane else 0,
                             first=0 if pp.per_lane else pp.first + late,
                             sparse=pp.p.src == 0, taps=pp.taps,
                             # A conv loader registers every word it reads, the cycle after.
                             hold=not (pp.per_lane and pp.p.kind == "conv"))
            m.submodules[f"line{pp.index}"] = lines[pp.index] = line
        return lines

    def _input_writes(self, m, lines, outgoing) -> InputWrite:
        """Input records into the lines that leave the input layer (``outgoing``): index ->
        (word, element), written one cycle after the record is accepted."""
        P, layers, rec = self.lanes, self.net.layers, self.i.payload
        a_valid = Signal()
        m.d.sync += a_valid.eq(0)
        accept = None
        if outgoing:
            n0, ib0 = layers[0].n, max(1, (P - 1).bit_length())
            g0 = ceil(n0 / P)
            a_word, a_lane = Signal(range(g0)), Signal(range(max(2, P)))
            a_value = Signal(max(1, layers[0].in_bits))
            accept = Signal()
            if P & (P - 1) == 0:
                a_index = Signal(len(rec.index))
                m.d.sync += a_index.eq(rec.index)
                m.d.comb += [a_word.eq(a_index >> (P.bit_length() - 1)),
                             a_lane.eq(a_index & (P - 1))]
            else:   # a small ROM divides by P
                wb = max(1, (g0 - 1).bit_length())
                rom = memory.Memory(shape=unsigned(wb + ib0), depth=n0,
                                    init=[(j // P) | (j % P) << wb for j in range(n0)])
                m.submodules.split0 = rom
                rp = rom.read_port()
                m.d.comb += [rp.addr.eq(rec.index), a_word.eq(rp.data[:wb]),
                             a_lane.eq(rp.data[wb:])]
            m.d.sync += a_value.eq(rec.value)
            with m.If(accept):
                m.d.sync += a_valid.eq(1)
            for pp in outgoing:
                line = lines[pp.index]
                m.d.comb += [line.wr_word.eq(a_word),
                             line.wr_data.eq(Cat(*[a_value[:pp.element_bits]] * P)),
                             line.wr_en.eq(Mux(a_valid, (C(1, P) << a_lane)[:P], 0))]
        return InputWrite(valid=a_valid, accept=accept)

    def _sequencer(self, m, paths, lines, inp, forced, sh, streamed, gmax):
        """The step sequencer: CLEAR, LOAD (weights through ``wl``), RECV (input records),
        WAIT0, the states of every layer (:meth:`_states`), END (the lines advance)."""
        P, layers, rec = self.lanes, self.net.layers, self.i.payload
        clr = Signal(range(gmax + 1))
        # Survives resets: the SPRAM (or the loaded RAM) keeps its contents until the device is
        # reconfigured.
        loaded = Signal(name="loaded", reset_less=True)
        # One register per state (a binary state register's enable ORs every transition).
        fsm = sh.fsm = OneHot(m, init="CLEAR", name="seq")
        # A synchronous reset does not clear block RAM: zero every membrane (and let every
        # delay line wipe itself) first.
        with fsm.state("CLEAR"):
            m.d.comb += self.busy.eq(1)
            for l, path in paths.items():
                m.d.comb += [path.v_wr.addr.eq(clr), path.v_wr.data.eq(0),
                             path.v_wr.en.eq(clr < path.G)]
            with m.If(clr != gmax):
                m.d.sync += clr.eq(clr + 1)
            with m.Elif(Cat(*[ln.ready for ln in lines.values()]).all()):
                if streamed:
                    with m.If(loaded):
                        fsm.next("RECV")
                    with m.Else():
                        fsm.next("LOAD")
                else:
                    fsm.next("RECV")

        if streamed:
            with fsm.state("LOAD"):
                ld = sh.load
                m.d.comb += [self.busy.eq(1), self.wl.ready.eq(1), ld.active.eq(1)]
                ends = [pp.weight_depth(P) - 1 for pp in streamed]
                end = C(ends[0], len(ld.addr))
                for k, e in enumerate(ends[1:], 1):
                    end = Mux(ld.arr == k, e, end)
                with m.If(self.wl.valid):
                    with m.If(ld.addr == end):
                        m.d.sync += ld.addr.eq(0)
                        with m.If(ld.arr == len(streamed) - 1):
                            m.d.sync += [ld.arr.eq(0), loaded.eq(1)]
                            fsm.next("RECV")
                        with m.Else():
                            m.d.sync += ld.arr.eq(ld.arr + 1)
                    with m.Else():
                        m.d.sync += ld.addr.eq(ld.addr + 1)

        with fsm.state("RECV"):
            m.d.comb += self.i.ready.eq(1)
            with m.If(self.i.valid & rec.valid):
                if inp.accept is not None:
                    m.d.comb += inp.accept.eq((rec.layer == 0) & (rec.index < layers[0].n)
                                              & (rec.value != 0))
                for l, f in forced.items():
                    with m.If((rec.layer == l) & (rec.index < layers[l].n)):
                        m.d.sync += f.bit_select(rec.index, 1).eq(1)
            with m.If(self.i.valid & rec.last):
                fsm.next("WAIT0")

        with fsm.state("WAIT0"):        # the last input record's write lands
            m.d.comb += self.busy.eq(1)
            with m.If(~inp.valid):
                m.d.sync += [sh.grp.eq(0), sh.p_next.eq(0), sh.n_pairs.eq(0),
                             sh.left.eq(0)]
                fsm.next("L1_J0")

        for l, path in paths.items():
            self._states(m, l, path, lines, forced, sh)

        with fsm.state("END"):
            m.d.comb += self.busy.eq(1)
            with m.If(Cat(*[ln.clean for ln in lines.values()]).all()):
                m.d.comb += [ln.advance.eq(1) for ln in lines.values()]
                fsm.next("RECV")
        fsm.check()
        for active, reg, value in sh.idle:
            with m.If(~active):
                m.d.sync += reg.eq(value)

    # ----------------------------------------------------------------------------------------
    def _datapath(self, m, l, plan, lines, outgoing, forced, conv_vec, sh, primitive,
                  cells) -> LayerPath:
        """Memories, the accumulator and the fire pipeline of layer l (state-independent).

        Tokens (a pair, or a marker) move T0 -> T1 (weight word read) -> T2 (weight word
        registered) [-> T3 (the selected weight) -> T4 (weight x value)] -> add. A marker, or a
        pair flagged ``last``, hands the group's sums to the hand-off register H, if H is free;
        else the token stages stall. Stage B1 adds bias and conv terms and applies the leak
        into S; B1b saturates into R; B2 thresholds and resets, offers the group on ``o``, writes
        it back and writes its emitted spikes into the outgoing delay lines.
        """
        layer = self.net.layers[l]
        G = ceil(layer.n / self.lanes)
        incoming = [pp for pp in plan if pp.p.dst == l]
        weighted = [pp for pp in incoming if pp.p.kind != "conv"]
        convs = [pp for pp in incoming if pp.p.kind == "conv"]
        v_wr, v_rd, b_rd = self._neuron_memories(m, l)
        tok = self._tokens(l)
        # ---- event fetch: the pair list and the weight words of the pairs
        fetch = None
        if weighted:
            arrays = self._weight_arrays(m, weighted, primitive, cells)
            fetch = self._pair_list(m, l, weighted, arrays, tok, sh)
        self._replay_into_t0(m, l, tok, fetch)
        terms = self._weight_read(m, l, weighted, tok, fetch) if weighted else None
        ta = tok.stages[-1]                                             # the add stage
        acc, summed, fresh = self._accumulate(m, l, ta, terms)          # stage A
        # ---- fire: H, B1, B1b, B2
        h, s, r = self._fire_registers(l, conv=bool(convs))
        self._hand_off(m, tok, acc, summed, fresh, v_rd, b_rd, h, s)
        active = Signal(name=f"active{l}")    # the FSM is in layer l
        conv_ready = self._conv_loaders(m, convs, lines, conv_vec, active)
        conv_terms = self._conv_terms(m, l, convs, conv_vec, h, ta.g)
        self._current_and_leak(m, l, h, s, r, conv_terms, forced)      # B1
        self._saturate(m, l, s, r)                                      # B1b
        self._h_free(m, h, s, r)
        fired = self._threshold(m, l, r)                                # B2
        self._offer(m, l, r, fired, v_wr, lines, outgoing[l])
        fin = self._layer_end(m, l, r, active, bool(outgoing[l]))
        return LayerPath(G=G, incoming=incoming, weighted=weighted, v_wr=v_wr, tokens=tok,
                         fetch=fetch, active=active, conv_ready=conv_ready, fin=fin)

    def _neuron_memories(self, m, l) -> tuple:
        """The membrane memory of layer l (its write port and its read port) and, for a
        layer with biases, the bias memory's read port (else None).

        The read port is not transparent: a group's membrane is read (before its hand-off)
        only after the previous pass wrote it back (a layer's pass ends once its last group's
        writes have landed), and a bypass from B2's write into the read data would put the
        output's handshake and the threshold in front of every lane's register (Fmax)."""
        P, layer = self.lanes, self.net.layers[l]
        G = ceil(layer.n / P)
        attrs = {"ram_style": "block"} if f"layer{l}.v" in self.block_membranes else None
        vmem = memory.Memory(shape=unsigned(P * layer.v_bits), depth=G, init=[], attrs=attrs)
        m.submodules[f"v{l}"] = vmem
        v_wr = vmem.write_port()
        v_rd = vmem.read_port()
        b_rd = None
        if has_bias(layer):      # no memory (and no add) for a layer without biases
            bias = list(layer.bias) + [0] * (G * P - layer.n)
            bmem = memory.Memory(shape=unsigned(P * layer.acc_bits), depth=G,
                                 init=[pack_word(bias[g * P:(g + 1) * P], layer.acc_bits)
                                       for g in range(G)])
            m.submodules[f"bias{l}"] = bmem
            b_rd = bmem.read_port()
        return v_wr, v_rd, b_rd

    def _group_shape(self, l) -> range:
        """The shape of a group index of layer l."""
        return range(max(2, ceil(self.net.layers[l].n / self.lanes)))

    def _tokens(self, l) -> TokenPipe:
        """T0, T1 and the replay request of layer l. A token is a pair (``last``: the group's
        final pair, which also hands the group off) or a marker (hands off a group; the
        group-0 marker and groups without pairs)."""
        gb = self._group_shape(l)
        t0 = Token(valid=Signal(name=f"t0v{l}"), marker=Signal(name=f"t0m{l}"),
                   last=Signal(name=f"t0l{l}"), g=Signal(gb, name=f"t0g{l}"),
                   new=Signal(name=f"t0new{l}"))
        t1 = Token(valid=Signal(name=f"t1v{l}"), marker=Signal(name=f"t1m{l}"),
                   last=Signal(name=f"t1l{l}"), g=Signal(gb, name=f"t1g{l}"))
        rq = Token(valid=Signal(name=f"rqv{l}"), marker=Signal(name=f"rqm{l}"),
                   last=Signal(name=f"rql{l}"), g=Signal(gb, name=f"rqg{l}"))
        rp = Token(valid=Signal(name=f"rpv{l}"), marker=Signal(name=f"rpm{l}"),
                   last=Signal(name=f"rpl{l}"), g=Signal(gb, name=f"rpg{l}", reset_less=True))
        return TokenPipe(go=Signal(name=f"go{l}"), t0=t0, rq=rq, rp=rp, stages=[t1])

    def _weight_arrays(self, m, weighted, primitive, cells) -> list[WeightArray]:
        """The weight memory of every dense or taps projection, in banks. Weight word row*G + g
        holds w[g*P : (g+1)*P, row] (see weight_words): one word feeds every lane. Pairs hold
        base = row*G."""
        net, P = self.net, self.lanes
        arrays = []
        for pp in weighted:
            width = P * pp.p.w_bits
            depth = pp.weight_depth(P)
            name = f"proj{pp.index}.weights"
            kind = self.kinds[name]
            # Arrays filled through wl have no initial contents.
            words = None if kind in STREAMED else weight_words(pp, P)
            bank = weight_bank_depth(net, pp.index, lanes=P, family=self.family,
                                     bank_depth=self.bank_depth, kind=kind)
            attrs = {"ram_style": ram_style(kind)} \
                if self.family is not None or name in self.memories else None
            ports = []
            for b in range(ceil(depth / bank)):
                size = min(bank, depth - b * bank)
                sub = f"w{pp.index}" + (f"_{b}" if b else "")
                if kind == "spram":
                    m.submodules[sub] = arr = SpramArray(size, width, primitive=primitive)
                    ports.append(arr)
                    continue
                if kind == "loaded":
                    m.submodules[sub] = arr = LoadedArray(size, width, cell=cells)
                    ports.append(arr)
                    continue
                chunk = words[b * bank:(b + 1) * bank]
                wm = memory.Memory(shape=unsigned(width), depth=len(chunk), init=chunk,
                                   attrs=attrs)
                m.submodules[sub] = wm
                ports.append(wm.read_port())
            arrays.append(WeightArray(pp=pp, ports=ports, bank=bank,
                                      streamed=kind in STREAMED))
        return arrays

    def _pair_list(self, m, l, weighted, arrays, tok, sh) -> PairFetch:
        """The pair list of layer l (fresh pairs are written as they leave T0; the replay reads
        them back) and the weight word address of the token in T0, into every bank."""
        net, P = self.net, self.lanes
        t0, t1, go = tok.t0, tok.stages[0], tok.go
        pb = pair_bits(net, l, P)
        tb = max(1, (len(weighted) - 1).bit_length())
        vb = max(pp.value_bits for pp in weighted)
        bb = pb - tb - vb
        t0.base = Signal(bb, name=f"t0b{l}")
        t0.tag = Signal(tb, name=f"t0t{l}")
        t0.val = Signal(max(1, vb), name=f"t0x{l}")
        t1.tag = Signal(tb, name=f"t1t{l}")
        t1.val = Signal(max(1, vb), name=f"t1x{l}")
        cap = sum(pp.pre.n * pp.taps for pp in weighted)
        pmem = memory.Memory(shape=unsigned(pb), depth=cap, init=[])
        m.submodules[f"pairs{l}"] = pmem
        # Transparent: the layer's final pair may be written in the very cycle the replay
        # reads it back (when E = 1).
        pr_wr = pmem.write_port()
        pr_rd = _untraced_read_port(pmem, transparent_for=(pr_wr,))
        # The read data must hold until T0 takes it, also after the replay state ends
        # with a stall: only the replay reads (it overrides this).
        m.d.comb += pr_rd.en.eq(0)
        t0.index = Signal(range(cap + 1), name=f"t0i{l}")
        packed = Cat(t0.tag, t0.base, t0.val[:vb]) if vb else Cat(t0.tag, t0.base)
        # Fresh pairs are written as they leave T0 (exactly once, even across stalls).
        m.d.comb += [pr_wr.addr.eq(t0.index), pr_wr.data.eq(packed),
                     pr_wr.en.eq(go & t0.valid & t0.new)]
        waddr = Signal(bb + 1, name=f"waddr{l}")     # weight word of the token in T0
        m.d.comb += waddr.eq(t0.base + t0.g)
        copies = []
        block_ports = sum(len(wa.ports) for wa in arrays if not wa.streamed)
        for wa in arrays:
            ab = (wa.bank - 1).bit_length()       # address bits of one bank
            if not wa.streamed:
                for port in wa.ports:
                    addr = waddr
                    if self.replicate and block_ports > 1:
                        k = len(copies)
                        cb = Signal.like(t0.base, name=f"t0b{l}__dup{k}")
                        cg = Signal.like(t0.g, name=f"t0g{l}__dup{k}")
                        copies.append((cb, cg))
                        addr = Signal(bb + 1, name=f"waddr{l}_{k}")
                        m.d.comb += addr.eq(cb + cg)
                    m.d.comb += [port.addr.eq(addr if len(wa.ports) == 1 else addr[:ab]),
                                 port.en.eq(go)]
                continue
            # SPRAM and loaded RAM: one port per block, so the read and the load share
            # the address.
            ld = sh.load
            we = ld.active & self.wl.valid & (ld.arr == ld.order[wa.pp.index])
            addr = Mux(ld.active, ld.addr, waddr)
            for b, arr in enumerate(wa.ports):
                m.d.comb += [arr.addr.eq(addr[:ab]), arr.en.eq(go & ~ld.active),
                             arr.wdata.eq(self.wl.payload[:len(arr.wdata)]),
                             arr.we.eq(we & ((ld.addr >> ab) == b if len(wa.ports) > 1
                                             else 1))]
        return PairFetch(arrays=arrays, rd=pr_rd, tag_bits=tb, base_bits=bb, value_bits=vb,
                         waddr=waddr, copies=copies)

    def _replay_into_t0(self, m, l, tok, fetch):
        """T0 refills from the replay (rq, then rp with the pair read from the pair list);
        gather states override this with pairs."""
        t0, t1, rq, rp = tok.t0, tok.stages[0], tok.rq, tok.rp
        with m.If(tok.go):
            m.d.sync += t1.load(t0) + \
                [t0.valid.eq(rp.valid), t0.marker.eq(rp.marker),
                 t0.last.eq(rp.last), t0.g.eq(rp.g), t0.new.eq(0),
                 rp.valid.eq(rq.valid), rp.marker.eq(rq.marker), rp.last.eq(rq.last),
                 rp.g.eq(rq.g), rq.valid.eq(0)]
            if fetch is not None:
                tb, bb, d = fetch.tag_bits, fetch.base_bits, fetch.rd.data
                pair = Signal(len(d), name=f"rpd{l}", reset_less=True)
                m.d.sync += [pair.eq(d), t0.tag.eq(pair[:tb]), t0.base.eq(pair[tb:tb + bb])]
                m.d.sync += fetch.follow(base=pair[tb:tb + bb], g=rp.g)
                if fetch.value_bits:
                    m.d.sync += t0.val.eq(pair[tb + bb:])

    def _weight_read(self, m, l, weighted, tok, fetch) -> list:
        """T2: the weight word of the pair's projection, registered (a block RAM's output goes
        straight into a register: Fmax); T3 and T4, for layers fed with multi-bit values: the
        selected weight, then the product weight x value, each registered. Returns each lane's
        term for the add."""
        P = self.lanes
        t1, go = tok.stages[0], tok.go
        wmax = max([pp.p.w_bits for pp in weighted] or [1])
        t2 = t1.like("t2", l)
        banked = any(len(wa.ports) > 1 for wa in fetch.arrays)
        with m.If(go):
            m.d.sync += t2.load(t1)
        if not banked:      # one memory per projection: select, then register
            wq = [Signal(signed(wmax), name=f"wq{l}_{k}", reset_less=True) for k in range(P)]
            with m.If(go):
                for lane in range(P):
                    sel = None
                    for t_i, wa in enumerate(fetch.arrays):
                        wb = wa.pp.p.w_bits
                        wv = wa.ports[0].data[lane * wb:(lane + 1) * wb].as_signed()
                        sel = wv if sel is None else Mux(t1.tag == t_i, wv, sel)
                    m.d.sync += wq[lane].eq(sel)
        else:               # banks: register every bank's word, select after
            words_q = []
            for t_i, wa in enumerate(fetch.arrays):
                ports = wa.ports
                regs = [Signal(len(port.data), name=f"wb{l}_{t_i}_{b}", reset_less=True)
                        for b, port in enumerate(ports)]
                if len(ports) == 1:
                    # One bank, whose depth need not be a power of two (a loaded RAM, an
                    # SPRAM array under 16K words): nothing to select.
                    with m.If(go):
                        m.d.sync += regs[0].eq(ports[0].data)
                    words_q.append(regs[0])
                    continue
                # The bank of the word now in T2: its index moves with the token.
                sel1 = Signal(range(max(2, len(ports))), name=f"wsel1{l}_{t_i}")
                sel2 = Signal.like(sel1, name=f"wsel2{l}_{t_i}")
                with m.If(go):
                    m.d.sync += [r.eq(port.data) for r, port in zip(regs, ports)]
                    m.d.sync += [sel1.eq(fetch.waddr >> (wa.bank.bit_length() - 1)),
                                 sel2.eq(sel1)]
                words_q.append(Cat(*regs).word_select(sel2, len(regs[0])))
            wq = []
            for lane in range(P):
                sel = None
                for t_i, pp in enumerate(weighted):
                    wb = pp.p.w_bits
                    wv = words_q[t_i][lane * wb:(lane + 1) * wb].as_signed()
                    sel = wv if sel is None else Mux(t2.tag == t_i, wv, sel)
                wq.append(sel)
        tok.stages.append(t2)
        if not fetch.value_bits:
            return wq
        return self._value_product(m, l, weighted, tok, fetch, wq)

    def _value_product(self, m, l, weighted, tok, fetch, wq) -> list:
        """T3: each lane's selected weight, registered; T4: the weight x the pair's value (the
        weight alone for a projection of binary inputs), registered. The select (banks,
        projections) and the product's adds would otherwise share one cycle (Fmax)."""
        P, vb, go = self.lanes, fetch.value_bits, tok.go
        t1, t2 = tok.stages[0], tok.stages[-1]
        wmax = max([pp.p.w_bits for pp in weighted] or [1])
        t3 = t1.like("t3", l)
        ws = [Signal(signed(wmax), name=f"ws{l}_{k}", reset_less=True) for k in range(P)]
        with m.If(go):
            m.d.sync += t3.load(t2) + [w.eq(x) for w, x in zip(ws, wq)]
        tok.stages.append(t3)
        t4 = t1.like("t4", l)
        pq = [Signal(signed(wmax + vb + 1), name=f"pq{l}_{k}", reset_less=True)
              for k in range(P)]
        usev = Cat(*[C(1 if pp.value_bits else 0, 1) for pp in weighted],
                   C(0, (1 << fetch.tag_bits) - len(weighted)))
        with m.If(go):
            m.d.sync += t4.load(t3)
            for lane in range(P):
                # weight x value as shifted adds in a balanced tree: no multiplier block,
                # whose routing in and out costs more than the adds, and no chain (Fmax).
                prod = tree_sum([Mux(t3.val[i], ws[lane] << i, 0) for i in range(vb)])
                m.d.sync += pq[lane].eq(Mux(usev.bit_select(t3.tag, 1),
                                            prod, ws[lane]))
        tok.stages.append(t4)
        return pq

    def _accumulate(self, m, l, ta, terms):
        """Stage A: the term of the pair at the add stage (token ``ta``) into every lane's
        accumulator. Returns the accumulators' values and their sums with the terms (the sums
        go into H at a pair flagged ``last``), and the flag that clears them.

        The accumulators take no reset and are not cleared at the hand-off: one flag, ``fresh``
        (set by the reset and at each hand-off), says that they count as zero, and the next
        pair's sum starts from zero instead. The soft reset then reaches one register, not
        every lane's accumulator bits (Fmax)."""
        P, layer = self.lanes, self.net.layers[l]
        acc = [Signal(signed(layer.acc_bits + 1), name=f"acc{l}_{k}", reset_less=True)
               for k in range(P)]
        fresh = Signal(name=f"acc_fresh{l}", init=1)
        value = [Mux(fresh, 0, a) for a in acc]
        summed = [value[lane] + terms[lane] if terms is not None else value[lane]
                  for lane in range(P)]
        pair = ta.valid & ~ta.marker
        with m.If(pair & ~ta.last):
            m.d.sync += [a.eq(x) for a, x in zip(acc, summed)] + [fresh.eq(0)]
        return value, summed, fresh

    def _fire_registers(self, l, conv: bool) -> tuple[HandOff, Current, Saturated]:
        """The registers of the fire pipeline of layer l: H, S and R (and, in a layer with conv
        projections, H's flag that the kernel's sums are in)."""
        P, layer = self.lanes, self.net.layers[l]
        gb = self._group_shape(l)
        # Only the valid flags take the soft reset: the data beside them is written before
        # it is read, and a reset net to every lane's registers is a long one (Fmax).
        h = HandOff(valid=Signal(name=f"h_valid{l}"),
                    g=Signal(gb, name=f"h_g{l}", reset_less=True),
                    acc=[Signal(signed(layer.acc_bits + 1), name=f"h_acc{l}_{k}",
                                reset_less=True) for k in range(P)],
                    v=Signal(P * layer.v_bits, name=f"h_v{l}", reset_less=True),
                    b=Signal(P * layer.acc_bits, name=f"h_b{l}", reset_less=True),
                    load=Signal(name=f"h_load{l}"), free=Signal(name=f"h_free{l}", init=1),
                    move=Signal(name=f"h_move{l}"))
        if conv:
            h.ready = Signal(name=f"h_ready{l}")
        s = Current(valid=Signal(name=f"s_valid{l}"), take=Signal(name=f"s_take{l}"),
                    g=Signal(gb, name=f"s_g{l}", reset_less=True),
                    i=[Signal(signed(layer.acc_bits + 3), name=f"s_i{l}_{k}", reset_less=True)
                       for k in range(P)],
                    u=[Signal(signed(layer.v_bits + 1), name=f"s_u{l}_{k}", reset_less=True)
                       for k in range(P)],
                    f=Signal(P, name=f"s_f{l}", reset_less=True))
        r, spare = (Saturated(valid=Signal(name=f"{x}_valid{l}"), take=Signal(name=f"{x}_take{l}"),
                              g=Signal(gb, name=f"{x}_g{l}", reset_less=True),
                              v=[Signal(signed(layer.v_bits), name=f"{x}_v{l}_{k}",
                                        reset_less=True) for k in range(P)],
                              f=Signal(P, name=f"{x}_f{l}", reset_less=True))
                   for x in ("r", "rs"))
        r.spare = spare
        blocks = self._lane_blocks()
        if len(blocks) > 1:
            for x, name in ((s, "s_valid"), (r, "r_valid"), (spare, "rs_valid")):
                x.copies = [Signal(name=f"{name}{l}__dup{j}") for j in range(len(blocks))]
        return h, s, r

    def _lane_blocks(self) -> list[range]:
        """The blocks of lanes that share a copy of the fire stages' flags: one block of
        every lane unless ``replicate`` (then blocks of :data:`COPY_LANES`)."""
        P = self.lanes
        size = COPY_LANES if self.replicate and P > COPY_LANES else P
        return [range(k, min(P, k + size)) for k in range(0, P, size)]

    def _hand_off(self, m, tok, acc, summed, fresh, v_rd, b_rd, h, s):
        """Hand-off register H: a marker (or a pair flagged ``last``) at the add stage moves
        the sums in and clears the accumulators (their ``fresh`` flag), when H is free; else
        the token stages stall."""
        ta, go = tok.stages[-1], tok.go
        hand = ta.valid & (ta.marker | ta.last)
        m.d.comb += [h.load.eq(hand & h.free), go.eq(~hand | h.free)]
        # v and bias are read one stage ahead, as the group's hand-off token moves into the
        # add stage, and go into registers beside H at the hand-off: a block RAM's slow output
        # then never feeds the leak multiply or the bias add in the same cycle (Fmax). While
        # the token waits, the read port holds its data.
        prev = tok.stages[-2] if len(tok.stages) > 1 else tok.t0
        pre_hand = prev.valid & (prev.marker | prev.last)
        m.d.comb += [v_rd.addr.eq(prev.g), v_rd.en.eq(go & pre_hand)]
        if b_rd is not None:
            m.d.comb += [b_rd.addr.eq(prev.g), b_rd.en.eq(go & pre_hand)]
            with m.If(h.load):
                m.d.sync += h.b.eq(b_rd.data)
        with m.If(h.load):
            m.d.sync += [h.valid.eq(1), h.g.eq(ta.g), h.v.eq(v_rd.data)] + \
                [x_h.eq(Mux(ta.marker, a, x)) for x_h, a, x in zip(h.acc, acc, summed)] + \
                [fresh.eq(1)]

    def _conv_loaders(self, m, convs, lines, conv_vec, active) -> Value:
        """Conv loaders: each conv projection copies its arriving words into its register
        vector on its own delay-line port, beside the gather and the replay. The marker of
        group 0 waits until the words group 0 needs are in (the value returned); the loader,
        one word per cycle, then stays ahead of the groups, which come at most one per
        cycle."""
        P = self.lanes
        ready_terms = []
        for pp in convs:
            line, vec, eb = lines[pp.index], conv_vec[pp.index], pp.element_bits
            gp = ceil(pp.pre.n / P)
            c = (pp.p.weight.shape[0] - 1) // 2
            c_rd = Signal(range(max(gp, line.capacity) + 1), name=f"c_rd{pp.index}")
            c_pf, c_arm = Signal(name=f"c_pf{pp.index}"), Signal(name=f"c_arm{pp.index}")
            c_word = Signal(range(max(2, gp)), name=f"c_word{pp.index}")
            c_loaded = Signal(range(gp + 1), name=f"c_loaded{pp.index}")
            data = line.rd_data
            if pp.per_lane:     # every word, in order
                limit, word, armed = gp, c_word, C(1, 1)
                need = min(gp, (P - 1 + c) // P + 1)   # words group 0 needs
            else:               # the list of non-zero words; words not listed are zero
                limit, word, armed = line.rd_count, line.rd_word_out, c_arm
                need = None
                with m.If(active & ~c_arm):
                    m.d.sync += [c_arm.eq(1)] + [x.eq(0) for x in vec]
            issue = active & armed & (c_rd < limit)
            m.d.comb += [line.rd_en.eq(issue), line.rd_word.eq(c_rd)]
            with m.If(issue):
                m.d.sync += [c_rd.eq(c_rd + 1), c_pf.eq(1), c_word.eq(c_rd)]
            with m.Else():
                m.d.sync += c_pf.eq(0)
            # The word read goes into an arrival register beside the line before it reaches
            # the register vector, which is spread over the lanes' windows (a block RAM's
            # output crossed the die into it: Fmax).
            c_av = Signal(name=f"c_av{pp.index}")
            c_ad = Signal(len(data), name=f"c_ad{pp.index}", reset_less=True)
            c_aw = Signal.like(word, name=f"c_aw{pp.index}", reset_less=True)
            m.d.sync += c_av.eq(c_pf)
            with m.If(c_pf):
                m.d.sync += [c_ad.eq(data), c_aw.eq(word)]
            with m.If(c_av):
                m.d.sync += c_loaded.eq(c_loaded + 1)
                for j in range(pp.pre.n):
                    elem = c_ad[(j % P) * eb:(j % P + 1) * eb]
                    # A list entry of an input line holds one element: keep the others.
                    hit = (c_aw == j // P) & (elem.any() if not pp.per_lane else 1)
                    with m.If(hit):
                        m.d.sync += vec[j].eq(elem)
            if need is None:
                ready_terms.append(armed & (c_rd == limit) & ~c_pf & ~c_av)
            else:
                # Every word in (the loader done) means at least ``need`` in, so the term is
                # ``c_loaded >= need``, kept as a flip-flop set as the need-th word arrives:
                # the sequencer waits on a register, not on a comparison (Fmax).
                c_ok = Signal(name=f"c_ok{pp.index}")
                with m.If(c_av & (c_loaded == need - 1)):
                    m.d.sync += c_ok.eq(1)
                ready_terms.append(c_ok)
            with m.If(~active):
                m.d.sync += [c_rd.eq(0), c_pf.eq(0), c_arm.eq(0), c_loaded.eq(0), c_av.eq(0)]
                if need is not None:
                    m.d.sync += c_ok.eq(0)
        return Cat(*ready_terms).all() if ready_terms else C(1, 1)

    def _conv_terms(self, m, l, convs, conv_vec, h, g) -> list:
        """Conv terms of the group entering H (group ``g``): the K-tap kernel over a window of
        the vector. Returns each lane's sum of the terms (0 without conv projections)."""
        P = self.lanes
        G = ceil(self.net.layers[l].n / P)
        lane_terms = [[] for _ in range(P)]
        for pp in convs:
            K = pp.p.weight.shape[0]
            c = (K - 1) // 2
            vec, vw = conv_vec[pp.index], pp.element_bits
            windows = []
            for gi in range(G):
                items = [vec[gi * P + x - c] if 0 <= gi * P + x - c < pp.pre.n else C(0, vw)
                         for x in range(P + K - 1)]
                windows.append(Cat(*items))
            # The window is picked as the group enters H and registered beside it, so that
            # B1 adds the kernel's terms without the G-way selection in its path (Fmax).
            # A part-select, not an Array: it becomes a continuous assignment, which Icarus
            # evaluates at time 0 even when its inputs never change.
            pick = Signal(len(windows[0]), name=f"pick{pp.index}")
            m.d.comb += pick.eq(Cat(*windows).word_select(g, len(windows[0])))
            win = Signal(len(windows[0]), name=f"win{pp.index}", reset_less=True)
            with m.If(h.load):
                m.d.sync += win.eq(pick)
            for lane in range(P):
                for k in range(K):
                    wk = int(pp.p.weight[k])
                    if wk == 0:
                        continue
                    g_val = win[(lane + k) * vw:(lane + k + 1) * vw]
                    wc = C(wk, signed(pp.p.w_bits))
                    term = g_val * wc if pp.value_bits else Mux(g_val, wc, 0)
                    lane_terms[lane].append(term)
        if not convs:
            return [0] * P
        # The kernel's sums take three registered stages beside H (`h.ready` when they are
        # in), so that B1 adds one register instead of the whole kernel (Fmax): each lane's
        # terms in groups of QUAD adjacent taps (over spikes, one LUT4 per bit), registered
        # the cycle after the group enters H, so that the window's wide fan-out across the
        # lanes meets registers after one level of logic; those in chunks of CONV_CHUNK taps
        # the cycle after, each a balanced tree; their sum the cycle after that. H holds a
        # conv layer's group four cycles at least.
        quads = [[tree_sum(ts[i:i + QUAD]) for i in range(0, len(ts), QUAD)]
                 for ts in lane_terms]
        quad_q = [[Signal(Value.cast(t).shape(), name=f"cquad{l}_{lane}_{i}", reset_less=True)
                   for i, t in enumerate(qs)] for lane, qs in enumerate(quads)]
        per = CONV_CHUNK // QUAD
        parts = [[tree_sum(qs[i:i + per]) for i in range(0, len(qs), per)] for qs in quad_q]
        part_q = [[Signal(Value.cast(t).shape(), name=f"cpart{l}_{lane}_{i}",
                          reset_less=True)
                   for i, t in enumerate(ps)] for lane, ps in enumerate(parts)]
        sums = [tree_sum(list(ps)) for ps in part_q]
        csum = [Signal(Value.cast(t).shape(), name=f"csum{l}_{lane}", reset_less=True)
                for lane, t in enumerate(sums)]
        stage = Signal(range(4), name=f"h_stage{l}")
        h.ready_next = Mux(h.load, 0, Mux(h.valid & (stage == 2), 1, h.ready))
        with m.If(h.load):
            m.d.sync += [stage.eq(0), h.ready.eq(0)]
        with m.Elif(h.valid & (stage == 0)):
            m.d.sync += [stage.eq(1)] + [q.eq(t) for qs, ts in zip(quad_q, quads)
                                         for q, t in zip(qs, ts)]
        with m.Elif(h.valid & (stage == 1)):
            m.d.sync += [stage.eq(2)] + [q.eq(t) for qs, ps in zip(part_q, parts)
                                         for q, t in zip(qs, ps)]
        with m.Elif(h.valid & (stage == 2)):
            m.d.sync += [stage.eq(3), h.ready.eq(1)] + [c.eq(t) for c, t in zip(csum, sums)]
        return csum

    def _current_and_leak(self, m, l, h, s, r, conv_terms, forced):
        """B1: H's sums plus bias and conv terms (the current), and the leaked membrane, into
        S (with the group's forced spikes)."""
        net, P = self.net, self.lanes
        layer = net.layers[l]
        # S moves on whenever R's spare is free (a register), not when R's record is taken:
        # the output's ready then never reaches back through H into the token stages (Fmax).
        m.d.comb += [s.take.eq(s.valid & ~r.spare.valid),
                     h.move.eq(h.valid & h.ready & (~s.valid | s.take))]
        budget = None if self.device is None else self.device.dsp
        family = None if self.device is None else self.device.family
        on_dsp = leak_multipliers(net.layers[1:], P, budget, family=family)[l - 1]
        with m.If(h.move):
            m.d.sync += [s.valid.eq(1), s.g.eq(h.g)] + [c.eq(1) for c in s.copies]
            with m.If(~h.load):
                m.d.sync += h.valid.eq(0)
            for lane in range(P):
                b = h.b[lane * layer.acc_bits:(lane + 1) * layer.acc_bits].as_signed()
                v = h.v[lane * layer.v_bits:(lane + 1) * layer.v_bits].as_signed()
                m.d.sync += [s.i[lane].eq(h.acc[lane] + b + conv_terms[lane]),
                             # Arithmetic shift of a signed product: floor, as the contract.
                             s.u[lane].eq(leak(v, layer.beta, layer.beta_shift,
                                               multiplier=on_dsp[lane]))]
            if l in forced:
                m.d.sync += s.f.eq(forced[l].word_select(h.g, P))
        with m.Elif(s.take):
            m.d.sync += [s.valid.eq(0)] + [c.eq(0) for c in s.copies]

    def _saturate(self, m, l, s, r):
        """B1b: the membrane plus the current, saturated to v_bits, into R, or into R's spare
        while R's record waits; R refills from the spare as that record leaves. With ``o``
        always ready the spare stays empty and the timing is that of a single R."""
        P, layer = self.lanes, self.net.layers[l]
        sp = r.spare
        sat = [saturate(s.u[lane] + s.i[lane], layer.v_bits) for lane in range(P)]
        # The spare's contents load whenever S moves (S cannot move while the spare is full,
        # and they are read only once it is): their enable is S's, not the output's ready,
        # which then reaches fewer flip-flops (Fmax).
        blocks = self._lane_blocks()
        if len(blocks) == 1:
            with m.If(s.take):
                m.d.sync += [sp.g.eq(s.g), sp.f.eq(s.f)] + \
                    [sv.eq(v) for sv, v in zip(sp.v, sat)]
            # R loads from the spare when it holds a record (S is then still), else from S.
            with m.If((r.take & sp.valid) | (s.take & (~r.valid | r.take))):
                m.d.sync += [r.g.eq(Mux(sp.valid, sp.g, s.g)),
                             r.f.eq(Mux(sp.valid, sp.f, s.f))] + \
                    [rv.eq(Mux(sp.valid, v_sp, v)) for rv, v_sp, v in zip(r.v, sp.v, sat)]
        else:
            # As above, but each block of lanes takes its enables and selects from its own
            # copies of the flags, so that no one flag drives every lane's registers.
            with m.If(s.take):
                m.d.sync += [sp.g.eq(s.g), sp.f.eq(s.f)]
            with m.If((r.take & sp.valid) | (s.take & (~r.valid | r.take))):
                m.d.sync += [r.g.eq(Mux(sp.valid, sp.g, s.g)),
                             r.f.eq(Mux(sp.valid, sp.f, s.f))]
            for j, lanes in enumerate(blocks):
                s_valid, r_valid, sp_valid = s.copies[j], r.copies[j], sp.copies[j]
                s_take = s_valid & ~sp_valid
                with m.If(s_take):
                    m.d.sync += [sp.v[k].eq(sat[k]) for k in lanes]
                with m.If((r.take & sp_valid) | (s_take & (~r_valid | r.take))):
                    m.d.sync += [r.v[k].eq(Mux(sp_valid, sp.v[k], sat[k])) for k in lanes]
        with m.If(r.take & sp.valid):
            m.d.sync += [sp.valid.eq(0)] + [c.eq(0) for c in sp.copies]
        with m.Elif(s.take & (~r.valid | r.take)):
            m.d.sync += [r.valid.eq(1)] + [c.eq(1) for c in r.copies]
        with m.Elif(s.take):
            m.d.sync += [sp.valid.eq(1)] + [c.eq(1) for c in sp.copies]
        with m.Elif(r.take):
            m.d.sync += [r.valid.eq(0)] + [c.eq(0) for c in r.copies]

    @staticmethod
    def _h_free(m, h, s, r):
        """H's ``free`` for the next cycle, from the next values of the flags it depends on
        (as B1, B1b and B2 set them): H empty, or its group about to move to S (its sums in,
        and S empty or moving on)."""
        sp = r.spare
        h_valid = h.load | (h.valid & ~h.move)
        s_valid = h.move | (s.valid & ~s.take)
        sp_valid = (sp.valid | (s.take & r.valid)) & ~r.take
        s_take = s_valid & ~sp_valid
        m.d.sync += h.free.eq(~h_valid | (h.ready_next & (~s_valid | s_take)))

    def _threshold(self, m, l, r) -> Fired:
        """B2, threshold and reset: one LIF unit per lane on the group in R. Lanes past the
        layer's last neuron neither spike nor keep a membrane."""
        P, layer = self.lanes, self.net.layers[l]
        spikes, emit = Signal(P, name=f"spikes{l}"), Signal(P, name=f"emit{l}")
        v_new = [Signal(signed(layer.v_bits), name=f"vnew{l}_{k}") for k in range(P)]
        for lane in range(P):
            u = LIFUnit(layer, i_width=layer.acc_bits + 3, part="after_saturate",
                        fault="threshold>" if self.fault == "threshold>" else None)
            m.submodules[f"lif{l}_{lane}"] = u
            # Only the last group can hold lanes past the layer's end: an equality with a
            # constant, not a multiply and a compare per lane (Fmax).
            G = ceil(layer.n / P)
            live = C(1, 1) if lane < layer.n - (G - 1) * P else (r.g != G - 1)
            m.d.comb += [u.v.eq(r.v[lane]), u.i_in.eq(0),
                         spikes[lane].eq(u.spike & live),
                         emit[lane].eq((u.spike | r.f[lane]) & live),
                         v_new[lane].eq(Mux(live, u.v_new, 0))]
        return Fired(spikes=spikes, emit=emit, v_new=v_new)

    def _offer(self, m, l, r, fired, v_wr, lines, outgoing):
        """B2, the output: the group's record is offered on ``o``; as it is taken, R empties,
        the membranes are written back and the emitted spikes go, as one word, into a
        register from which they are written the next cycle into every delay line that
        leaves layer l (``outgoing``): the threshold's result meets a register, not the
        lines' write logic (Fmax)."""
        P = self.lanes
        G = ceil(self.net.layers[l].n / P)
        last_layer = l == len(self.net.layers) - 1
        out = self.o.payload
        with m.If(r.valid):
            m.d.comb += [self.o.valid.eq(1), out.layer.eq(l),
                         out.index.eq(scale(r.g, P, multiplier=False)),
                         out.spike.eq(fired.spikes),
                         out.last.eq((r.g == G - 1) & last_layer)]
            m.d.comb += [out.v[lane].eq(fired.v_new[lane]) for lane in range(P)]
            with m.If(self.o.ready):
                m.d.comb += r.take.eq(1)
        # The membranes are written back a cycle later, from registers: a wide membrane
        # memory's write enable and data then come from registers, not from the output's
        # handshake and the threshold (Fmax). The next pass of the layer reads them long after.
        # The data registers load every cycle (they are written only the cycle after a take):
        # the output's ready enables one flip-flop, not a record's width of them (Fmax).
        vq_en = Signal(name=f"vq_en{l}")
        vq_g = Signal.like(r.g, name=f"vq_g{l}", reset_less=True)
        vq_data = Signal(len(v_wr.data), name=f"vq_data{l}", reset_less=True)
        m.d.sync += [vq_en.eq(r.take), vq_g.eq(r.g), vq_data.eq(Cat(*fired.v_new))]
        m.d.comb += [v_wr.addr.eq(vq_g), v_wr.data.eq(vq_data), v_wr.en.eq(vq_en)]
        if outgoing:
            wq_en = Signal(name=f"wq_en{l}")
            wq_word = Signal(range(max(2, G)), name=f"wq_word{l}", reset_less=True)
            wq_data = Signal(P, name=f"wq_data{l}", reset_less=True)
            m.d.sync += [wq_en.eq(r.take), wq_word.eq(r.g), wq_data.eq(fired.emit)]
            for pp in outgoing:
                line = lines[pp.index]
                m.d.comb += [line.wr_word.eq(wq_word), line.wr_data.eq(wq_data),
                             line.wr_en.eq(Mux(wq_en, C(-1, P), 0))]

    def _layer_end(self, m, l, r, active, writes: bool) -> Signal:
        """The layer ends once B2 has taken its last group (every token came before that
        group's hand-off) and, when it writes delay lines, that group's writes have landed
        (a cycle later). Registered."""
        G = ceil(self.net.layers[l].n / self.lanes)
        fin = Signal(name=f"fin{l}")
        ended = r.take & (r.g == G - 1)
        if writes:
            taken = Signal(name=f"last_taken{l}")
            m.d.sync += taken.eq(ended)
            ended = taken
        with m.If(ended):
            m.d.sync += fin.eq(1)
        with m.If(~active):
            m.d.sync += fin.eq(0)
        return fin

    def _states(self, m, l, path, lines, forced, sh):
        """FSM states of layer l: gather jobs L{l}_J*, the group-0 marker L{l}_M, the replay
        of groups 1..G-1 L{l}_R, and L{l}_W waiting for the pipeline to empty."""
        jobs = self._gather_states(m, l, path, lines, sh)
        self._replay_states(m, l, path, forced, sh, jobs)

    def _gather_states(self, m, l, path, lines, sh) -> int:
        """The gather states L{l}_J*: one job per dense or taps projection (a taps projection is
        one job over its whole window). Returns the number of jobs."""
        P, weighted = self.lanes, path.weighted
        # The word extractor of the gather jobs, one per layer (so that a line's read data
        # meets only the layer's own lines on its way into W: Fmax).
        xlines = [lines[pp.index] for pp in weighted]
        gx = max([ceil(pp.pre.n / P) for pp in weighted] or [1])
        xmax = max([gx] + [ln.window_capacity for ln in xlines])
        ebx = max([pp.element_bits for pp in weighted] or [1])
        # k = None: each word's tap comes from the line with the word.
        jobs = [(pp, None if pp.mode == "window" else 0) for pp in path.incoming
                if pp.p.kind != "conv"]
        tmax = max([pp.taps for pp, k in jobs if k is None] or [1])
        x = Extractor(rd=Signal(range(xmax + 1), name=f"x_rd{l}"),
                      pf=Signal(name=f"x_pf{l}"),
                      pfw=Signal(range(max(2, gx)), name=f"x_pfw{l}"),
                      a_valid=Signal(name=f"x_a_valid{l}"),
                      a_data=Signal(P * ebx, name=f"x_a_data{l}", reset_less=True),
                      a_word=Signal(range(max(2, gx)), name=f"x_a_word{l}", reset_less=True),
                      a_stamp=Signal(max([lines[pp.index].stamp_bits for pp in weighted]
                                         or [1]), name=f"x_a_stamp{l}", reset_less=True),
                      valid=Signal(name=f"x_valid{l}"),
                      rest=Signal(P, name=f"x_rest{l}", reset_less=True),
                      low=Signal(range(max(2, P)), name=f"x_low{l}", reset_less=True),
                      data=Signal(P * ebx, name=f"x_data{l}"),
                      word=Signal(range(max(2, gx)), name=f"x_word{l}"),
                      tap=Signal(range(tmax), name=f"x_tap{l}"),
                      end=Signal(name=f"x_end{l}"), any=Signal(name=f"x_any{l}"),
                      single=Signal(name=f"x_single{l}", init=1))
        if jobs:    # the layer's, built once for all its jobs
            x.rest_low = lowest_set(m, x.rest, f"low_rest{l}")
        limits = [self._job_limit(pp, lines[pp.index]) for pp, _ in jobs]
        if jobs:    # entering the first job, rd is 0; its count may land in the same cycle
            pp0 = jobs[0][0]
            empty = limits[0] == 0 if pp0.per_lane else lines[pp0.index].rd_empty_next
            sh.idle.append((path.active, x.end, empty))
        for q, (pp, k) in enumerate(jobs):
            nxt = f"L{l}_J{q + 1}" if q + 1 < len(jobs) else f"L{l}_M"
            # x.end as the next job starts (rd 0 again)
            end_next = limits[q + 1] == 0 if q + 1 < len(jobs) else C(0, 1)
            with sh.fsm.state(f"L{l}_J{q}"):
                self._gather_job(m, l, q, pp, k, q == len(jobs) - 1, nxt, path, x,
                                 lines[pp.index], sh, limits[q], end_next)
        return len(jobs)

    def _job_limit(self, pp, line) -> Value:
        """The words a gather job reads: every word of a scanned line, or the count of the
        slot's (or window's) list of non-zero words, stable since the line advanced."""
        return C(ceil(pp.pre.n / self.lanes)) if pp.per_lane else line.rd_count

    def _gather_job(self, m, l, q, pp, k, last_job, nxt, path, x, line, sh, limit, end_next):
        """Gather job q of layer l (in its state): read the arriving words of projection pp
        from its delay line and turn each non-zero element into a pair (weight row, value),
        one per cycle, into T0."""
        P, G, busy = self.lanes, path.G, self.busy
        go, t0 = path.tokens.go, path.tokens.t0
        grp, n_pairs = sh.grp, sh.n_pairs
        eb = pp.element_bits
        data = line.rd_data
        m.d.comb += [busy.eq(1), path.active.eq(1)]
        # Only the replay reads `grp`, and it starts at group 1: set here in every cycle, not
        # in the layer's final cycle (no path from the extractor's decisions into it; Fmax).
        m.d.sync += grp.eq(1)
        # Scan every word (element k comes from its own slot), or walk the list of non-zero
        # words of the slot (or of the whole window of taps): `limit` words. x.end says
        # rd == limit (rd never passes it), a register kept with rd, so that the comparison
        # is not between the line's count and the state machine (Fmax).
        word = x.pfw if pp.per_lane else line.rd_word_out
        low = x.low
        # W empties with this emission when it holds at most one bit. Whether it does, and
        # whether it holds any, are registers kept with the mask (the extractor's decisions
        # then start at registers; Fmax); x & (x - 1) is x without its lowest bit.
        single = x.single
        empties = ~x.valid | single
        move = x.a_valid & empties & go         # A -> W
        take = x.pf & (~x.a_valid | move) & go  # the line's read port -> A
        done = x.end & ~x.pf & ~x.a_valid & empties
        emits = go & x.valid & x.any
        # The layer's very last pair hands group 0 off itself (no marker cycle) when
        # the conv loaders are ready by then.
        final = Signal(name=f"final{l}_{q}")
        if last_job:
            m.d.comb += final.eq(done & emits & path.conv_ready)
        with m.If(emits):
            # Counted as they are found, so that the replay may start right after.
            m.d.sync += [n_pairs.eq(n_pairs + 1), sh.left.eq(sh.left + 1),
                         t0.index.eq(n_pairs)]
            taps_g = pp.taps * G
            # Constant multiplies as shifted adds: a multiplier block here sat on the
            # ECP5 critical path (docs/hardware.md#timing).
            tap = scale(x.tap, G, multiplier=False) if k is None else k * G
            base = scale(x.word, P * taps_g, multiplier=False) + \
                scale(low, taps_g, multiplier=False) + tap
            m.d.sync += [t0.valid.eq(1), t0.marker.eq(0), t0.last.eq(final),
                         t0.g.eq(0), t0.new.eq(1), t0.base.eq(base),
                         t0.tag.eq(path.weighted.index(pp))]
            m.d.sync += path.fetch.follow(base=base, g=0)
            if pp.value_bits:
                m.d.sync += t0.val.eq(x.data.word_select(low, eb))
            elif path.fetch.value_bits:
                m.d.sync += t0.val.eq(1)
        with m.If(take):
            m.d.sync += [x.a_valid.eq(1), x.a_data.eq(data), x.a_word.eq(word)]
            if k is None:
                m.d.sync += x.a_stamp.eq(line.rd_stamp)
        with m.Elif(move):
            m.d.sync += x.a_valid.eq(0)
        a = x.a_data
        nz = Cat(*[a[e * eb:(e + 1) * eb].any() for e in range(P)])
        low_nz = lowest_set(m, nz, f"low_nz{l}_{q}")
        with m.If(go):
            with m.If(move):
                nz_rest = (nz & (nz - 1))[:P]
                m.d.sync += [x.valid.eq(1), x.rest.eq(nz_rest), x.low.eq(low_nz),
                             x.any.eq(nz.any()), x.single.eq(at_most_one(nz)), x.data.eq(a),
                             x.word.eq(x.a_word)]
                if k is None:
                    sb = len(line.rd_stamp)
                    m.d.sync += x.tap.eq((line.tap_base - x.a_stamp[:sb])[:sb])
            with m.Elif(x.valid):
                # The mask loses the bit just emitted: it becomes `rest`, which is kept
                # without its own lowest bit, so one carry chain per cycle, not two; whether
                # the new mask is single (rest has at most one bit) is a carry-free tree.
                rest2 = (x.rest & (x.rest - 1))[:P]
                m.d.sync += [x.rest.eq(rest2), x.any.eq(~single),
                             x.single.eq(at_most_one(x.rest)), x.low.eq(x.rest_low)]
                with m.If(single):
                    m.d.sync += x.valid.eq(0)
        issue = go & (~x.pf | take) & ~x.end
        m.d.comb += [line.rd_en.eq(issue), line.rd_word.eq(x.rd)]
        # rd + 1 == limit as an equality of registers (the line keeps its count - 1).
        last = x.rd == (C(limit.value - 1) if pp.per_lane else line.rd_count_m1)
        with m.If(issue):
            m.d.sync += [x.rd.eq(x.rd + 1), x.pf.eq(1), x.pfw.eq(x.rd), x.end.eq(last)]
        with m.Elif(take):
            m.d.sync += x.pf.eq(0)
        with m.If(go & done):
            m.d.sync += [x.rd.eq(0), x.pf.eq(0), x.valid.eq(0), x.end.eq(end_next)]
            with m.If(final):
                sh.fsm.next(f"L{l}_R" if G > 1 else f"L{l}_W")
            with m.Else():
                sh.fsm.next(nxt)

    def _replay_states(self, m, l, path, forced, sh, jobs):
        """The marker of group 0 (L{l}_M; L{l}_J0 for a layer without gather jobs), the replay
        of groups 1..G-1 (L{l}_R) and L{l}_W, which waits for the last group to be fired."""
        G, busy = path.G, self.busy
        go, t0, rq = path.tokens.go, path.tokens.t0, path.tokens.rq
        grp, p_next, n_pairs = sh.grp, sh.p_next, sh.n_pairs
        nxt_layer = "END" if l == len(self.net.layers) - 1 else f"L{l + 1}_J0"
        after_m = f"L{l}_R" if G > 1 else f"L{l}_W"
        with sh.fsm.state(f"L{l}_M" if jobs else f"L{l}_J0"):
            m.d.comb += [busy.eq(1), path.active.eq(1)]
            m.d.sync += grp.eq(1)             # (as in the gather jobs)
            with m.If(go & path.conv_ready):
                m.d.sync += [t0.valid.eq(1), t0.marker.eq(1), t0.last.eq(0),
                             t0.g.eq(0), t0.new.eq(0)]
                if path.fetch is not None:
                    m.d.sync += path.fetch.follow(g=0)
                sh.fsm.next(after_m)
        if G > 1:
            with sh.fsm.state(f"L{l}_R"):
                m.d.comb += [busy.eq(1), path.active.eq(1)]
                if path.fetch is not None:
                    m.d.comb += [path.fetch.rd.addr.eq(p_next), path.fetch.rd.en.eq(go)]
                # A group is its E pairs, the last one flagged, or one marker when E = 0.
                # `left` counts down, so the test is shallow (Fmax).
                left = sh.left
                ends = (n_pairs == 0) | (left == 1)
                with m.If(go):
                    m.d.sync += [rq.valid.eq(1), rq.marker.eq(n_pairs == 0),
                                 rq.last.eq((n_pairs != 0) & ends), rq.g.eq(grp)]
                    with m.If(ends):
                        m.d.sync += [p_next.eq(0), left.eq(n_pairs)]
                        with m.If(grp == G - 1):
                            sh.fsm.next(f"L{l}_W")
                        with m.Else():
                            m.d.sync += grp.eq(grp + 1)
                    with m.Else():
                        m.d.sync += [p_next.eq(p_next + 1), left.eq(left - 1)]

        with sh.fsm.state(f"L{l}_W"):
            m.d.comb += [busy.eq(1), path.active.eq(1)]
            # Every group has been fired and written to the delay lines before the next
            # layer gathers them (`fin` is registered, see the datapath).
            with m.If(path.fin):
                if l in forced:
                    m.d.sync += forced[l].eq(0)
                m.d.sync += [n_pairs.eq(0), p_next.eq(0), sh.left.eq(0)]
                sh.fsm.next(nxt_layer)
