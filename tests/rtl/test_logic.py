"""rtl.logic: the one-hot state machine helper."""

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from rtl.logic import OneHot


def _machine():
    """A (init) -> B on go; B -> C; C -> A on go, else stays; B's and C's registers only."""
    m = Module()
    go = Signal()
    fsm = OneHot(m, init="A", name="t")
    with fsm.state("A"):
        with m.If(go):
            fsm.next("B")
    with fsm.state("B"):
        fsm.next("C")
    with fsm.state("C"):
        with m.If(go):
            fsm.next("A")
    fsm.check()
    return m, go, fsm


def test_one_hot_follows_its_transitions_one_register_at_a_time():
    m, go, fsm = _machine()
    seen = []

    async def bench(ctx):
        for g in [0, 1, 0, 0, 0, 1, 1, 0]:
            ctx.set(go, g)
            bits = tuple(ctx.get(fsm.ongoing(s)) for s in "ABC")
            assert sum(bits) == 1, bits
            seen.append("ABC"[bits.index(1)])
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert "".join(seen) == "AABCCCAB"


def test_one_hot_refuses_misuse():
    m = Module()
    fsm = OneHot(m, init="A", name="t")
    with pytest.raises(RuntimeError, match="outside a state"):
        fsm.next("B")
    with fsm.state("A"):
        fsm.next("B")
        with pytest.raises(RuntimeError, match="inside state"):
            with fsm.state("B"):
                pass
    with pytest.raises(RuntimeError, match="without statements: \\['B'\\]"):
        fsm.check()
    with pytest.raises(RuntimeError, match="described twice"):
        with fsm.state("A"):
            pass
