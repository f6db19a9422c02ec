"""rtl.logic: the one-hot state machine helper, the lowest-set-bit index, the spike sums."""

import pytest
from amaranth.hdl import Module, Signal, signed
from amaranth.sim import Simulator

from rtl.logic import OneHot, at_most_one, lowest_set, spike_sum


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


def _masks(width: int, exhaustive: int, pairs):
    """Every mask when ``width <= exhaustive``; else none, all, each single bit, the bit
    pairs ``pairs`` and 300 random masks."""
    import random
    if width <= exhaustive:
        return range(1 << width)
    rng = random.Random(width)
    return [0, (1 << width) - 1] + [1 << k for k in range(width)] + \
        [(1 << a) | (1 << b) for a, b in pairs] + [rng.getrandbits(width) for _ in range(300)]


def _outputs(m: Module, mask: Signal, out, masks) -> list[tuple[int, int]]:
    """(mask, value of ``out``) for each mask, settled in Amaranth's simulator."""
    got = []

    async def bench(ctx):
        for v in masks:
            ctx.set(mask, v)
            got.append((v, ctx.get(out)))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert len(got) == len(masks)
    return got


@pytest.mark.parametrize("width", [1, 5, 8, 9, 48])
def test_lowest_set_is_the_index_of_the_lowest_bit(width):
    """Both forms (a priority chain up to 8 bits, a one-hot OR tree above): every mask of
    up to 9 bits, and for 48 bits each single bit, each pair and random masks; 0 when none."""
    m = Module()
    mask = Signal(width)
    low = lowest_set(m, mask, "low")
    masks = _masks(width, 9, [(a, b) for a in range(0, width, 5) for b in range(a, width, 7)])
    for v, k in _outputs(m, mask, low, masks):
        want = (v & -v).bit_length() - 1 if v else 0
        assert k == want, f"mask {v:#x}: lowest set bit {want}, got {k}"


@pytest.mark.parametrize("width", [1, 2, 7, 10, 33])
def test_at_most_one_matches_the_carry_form(width):
    """Every mask of up to 10 bits, and for 33 bits each single bit, each pair and random
    masks: the tree says what x & (x - 1) == 0 says."""
    m = Module()
    mask = Signal(width)
    one = Signal()
    m.d.comb += one.eq(at_most_one(mask))
    masks = _masks(width, 10, [(a, b) for a in range(width) for b in range(a + 1, width, 3)])
    for v, k in _outputs(m, mask, one, masks):
        assert k == (v & (v - 1) == 0), f"mask {v:#x}: got {k}"


@pytest.mark.parametrize("weights", [[5], [-128, 127, -1], [3, 0, -7, 12, 0, 0, 0, 0, -100, 1, 2],
                                     [0, 0, 0, 0, 9], [0, 0, 0]])
def test_spike_sum_is_the_sum_of_the_set_bits_weights(weights):
    """Every mask of the bits: the tables of four taps (zero tables dropped, negative and
    extreme weights, a last table of fewer taps) sum to what the masked weights sum to."""
    m = Module()
    mask = Signal(len(weights))
    out = Signal(signed(16))
    m.d.comb += out.eq(spike_sum(list(mask), weights))
    for v, k in _outputs(m, mask, out, range(1 << len(weights))):
        want = sum(w for b, w in enumerate(weights) if v >> b & 1)
        assert k == want, f"mask {v:#x}: want {want}, got {k}"
    with pytest.raises(ValueError, match=f"{len(weights) + 1} bits against {len(weights)} w"):
        spike_sum([*mask, mask[0]], weights)
