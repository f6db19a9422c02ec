"""Stream transfers and simulator runs for the tests that drive Amaranth components."""

from amaranth.sim import Simulator


async def stream_put(ctx, stream, payload):
    """Offer ``payload`` on ``stream`` until the component takes it; valid is low after."""
    ctx.set(stream.valid, 1)
    ctx.set(stream.payload, payload)
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def stream_get(ctx, stream, *, rng=None, p_ready=1.0):
    """Take one payload from ``stream``. With ``rng``, ready is high in each cycle with
    probability ``p_ready`` (random back-pressure); it keeps its last value after."""
    while True:
        ready = int(rng.random() < p_ready) if rng is not None else 1
        ctx.set(stream.ready, ready)
        _, _, valid, payload = await ctx.tick().sample(stream.valid, stream.payload)
        if valid and ready:
            return payload


def run_testbenches(dut, *testbenches, period=1e-6):
    """Simulate ``dut`` with the given testbenches until they all return. ``period`` is the
    sync clock's (None: no clock, a combinational design)."""
    sim = Simulator(dut)
    if period is not None:
        sim.add_clock(period)
    for tb in testbenches:
        sim.add_testbench(tb)
    sim.run()
