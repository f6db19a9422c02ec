"""rtl.link: the host driver against the simulated board (Verilator behind a pty):
bit-exact runs, corrupted bytes, truncated frames, disconnects."""

import random
import struct
import time

import numpy as np
import pytest
from amaranth.back import verilog

from rtl.link import protocol as P
from rtl.link import HostLink, uart_divisor
from sim.randnet import random_network, random_stimulus
from sim.reference import simulate

serial = pytest.importorskip("serial")

from boards.host import Board, BoardError, LinkError  # noqa: E402
from boards.simboard import SimBoard, build_simboard  # noqa: E402
from tests.nets import tiny_net  # noqa: E402

DIV = 4


def test_uart_divisor_limits():
    assert uart_divisor(12e6, 1_000_000) == 12
    with pytest.raises(ValueError, match="at least 4"):
        uart_divisor(12e6, 4_000_000)
    assert uart_divisor(12e6, 921_600) == 13           # 13.02 cycles per bit: 0.16 % off
    with pytest.raises(ValueError, match="% off"):
        uart_divisor(12e6, 2_600_000)                  # 4.6 cycles per bit: 5 is 7.7 % off


# --------------------------------------------------------------------------------------------
# The simulated board.

def _simboard(tmp_path_factory, net, name, platform=None, extra_verilog=(), **knobs):
    d = tmp_path_factory.mktemp(name)
    top = HostLink.around(net, divisor=DIV, clock_hz=1_000_000, baud=250_000, heartbeat=False,
                          **knobs)
    (d / "board.v").write_text(verilog.convert(top, name="board", platform=platform,
                                               ports=[top.rx, top.tx, top.leds]))
    return build_simboard(d / "board.v", "board", d / "work", extra_verilog=extra_verilog)


@pytest.fixture(scope="module")
def wm_board(tmp_path_factory, wm8):
    net = wm8
    exe = _simboard(tmp_path_factory, net, "wm")
    with SimBoard(exe, DIV) as sb:
        yield net, sb


@pytest.fixture(scope="module")
def audio_board(tmp_path_factory):
    """A random network with multi-bit inputs, three LIF layers and a read-out, 2 lanes, and a
    64-byte frame buffer so that samples span many frames and steps are split. The core is
    planned for an iCE40, whose link takes the core's records without the skid buffer (the
    other boards here keep it)."""
    net = random_network(1)
    assert net.layers[0].in_bits > 1 and not net.layers[-1].spiking
    exe = _simboard(tmp_path_factory, net, "audio", lanes=2, max_steps=64, max_body=24,
                    family="ice40")
    with SimBoard(exe, DIV) as sb:
        yield net, sb


def test_skid_buffer_except_on_ice40():
    """The records reach the encoder through the two-record skid buffer, except from a core
    planned for an iCE40 (the audio board below runs that way)."""
    net = random_network(1)
    def text(**knobs):
        top = HostLink.around(net, divisor=DIV, lanes=2, heartbeat=False, **knobs)
        return verilog.convert(top, name="board", ports=[top.rx, top.tx, top.leds])
    assert "rec_vb" in text() and "rec_vb" in text(family="ecp5")
    assert "rec_vb" not in text(family="ice40")


def _cue(net, T, seed):
    rng = np.random.default_rng(seed)
    f = (rng.random((T, net.layers[1].n)) < 0.3).astype(np.uint8)
    f[6:] = 0
    return {1: f}


def test_split_counter_carries_into_its_upper_half():
    """The STATUS step counter counts its halves apart (a registered carry): 8 bits here,
    incremented across three wraps of its lower half, in bursts of consecutive cycles and with
    gaps; whole two cycles after each increment; a clear wins over a carry in flight."""
    from amaranth.hdl import Module, Signal
    from amaranth.sim import Simulator

    from rtl.link.host import SplitCounter
    m = Module()
    value, inc, clear = Signal(8, name="v"), Signal(), Signal()
    c = SplitCounter(m, value)
    with m.If(inc):
        c.inc(m)
    with m.If(clear):
        c.clear(m)
    rng = random.Random(3)
    seen = []

    async def bench(ctx):
        n = 0
        while n < 3 * 16 + 5:
            burst = rng.randint(1, 4)
            for _ in range(burst):
                ctx.set(inc, 1)
                await ctx.tick()
                n += 1
            ctx.set(inc, 0)
            await ctx.tick()
            await ctx.tick()
            seen.append((n % 256, ctx.get(value)))
        # A carry in flight: the lower half at 15, one increment, then a clear at once.
        while ctx.get(value) % 16 != 15:
            ctx.set(inc, 1)
            await ctx.tick()
        ctx.set(inc, 0)
        await ctx.tick()
        ctx.set(inc, 1)
        await ctx.tick()
        ctx.set(inc, 0)
        ctx.set(clear, 1)
        await ctx.tick()
        ctx.set(clear, 0)
        await ctx.tick()
        await ctx.tick()
        seen.append((0, ctx.get(value)))

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert len(seen) > 10
    for want, got in seen:
        assert got == want, f"counted {want}, the counter reads {got}"


def test_wm_recall_bit_exact(wm_board):
    net, sb = wm_board
    with Board(sb.port, net=net, timeout=10) as b:
        assert b.info.sizes == (0, 8) and b.info.forced == (False, True)
        for seed in range(3):
            forced = _cue(net, 50, seed)
            ref = simulate(net, forced=forced, steps=50)
            got = b.run(forced=forced)
            assert ref.first_mismatch(got) is None, ref.first_mismatch(got)
            spikes_only = b.run(forced=forced, membranes=False)
            assert spikes_only.v == {} and np.array_equal(spikes_only.spikes[1], ref.spikes[1])
        assert b.status().steps == 50


def test_audio_like_network_bit_exact_across_split_frames(audio_board):
    net, sb = audio_board
    with Board(sb.port, net=net, timeout=10) as b:
        assert b.info.max_payload == 18 and b.info.lanes == 2
        for seed in range(3):
            x, forced = random_stimulus(net, 40, seed)
            ref = simulate(net, x, forced, steps=40)
            got = b.run(x, forced, steps=40)
            assert ref.first_mismatch(got) is None, ref.first_mismatch(got)
            assert got.prediction == ref.prediction
            quick = b.run(x, forced, steps=40, membranes=False)
            assert quick.prediction == ref.prediction
            assert all(np.array_equal(quick.spikes[l], ref.spikes[l]) for l in ref.spikes)
            alone = b.run(x, forced, steps=40, membranes=False, spikes=False)
            assert alone.prediction == ref.prediction and alone.spikes == {}
            assert b.last_timing.bytes_in < 20 * b.last_timing.frames
        assert b.last_timing.frames > 5
        with pytest.raises(ValueError, match="longer than the board's read-out"):
            b.run(np.zeros((65, net.layers[0].n), np.int64))


def test_nine_lanes_bit_exact(tmp_path_factory):
    """Nine lanes: two spike bytes a record in the dense form, up to nine spikes a record in
    the sparse one, membranes of two and three bytes, groups with lanes past the layer."""
    net = random_network(9)
    assert max(l.n for l in net.layers[1:]) < 9 and max(l.v_bits for l in net.layers[1:]) > 16
    exe = _simboard(tmp_path_factory, net, "wide", lanes=9, max_steps=64)
    with SimBoard(exe, DIV) as sb, Board(sb.port, net=net, timeout=10) as b:
        for seed in range(2):
            x, forced = random_stimulus(net, 30, seed)
            ref = simulate(net, x, forced, steps=30)
            got = b.run(x, forced, steps=30)
            assert ref.first_mismatch(got) is None, ref.first_mismatch(got)
            sparse = b.run(x, forced, steps=30, membranes=False)
            assert sparse.v == {}
            for l in ref.spikes:
                assert np.array_equal(sparse.spikes[l], ref.spikes[l]), l
        assert sum(int(s.sum()) for s in ref.spikes.values()) > 0


def test_ecp5_link_runs_the_core_in_its_own_reset_domain(tmp_path_factory):
    """The link as generated for an ECP5 board: the core, its read-out and loader run in a
    domain of their own, reset only through the global buffer (a DCCA, modelled here as the
    wire it is). Bit-exact over several runs, each after a RESET, and one that continues."""
    from boards.top import board_platform
    net = random_network(1)
    d = tmp_path_factory.mktemp("dcca")
    (d / "dcca.v").write_text("module DCCA(input CLKI, input CE, output CLKO);\n"
                              "  assign CLKO = CLKI & CE;\nendmodule\n")
    exe = _simboard(tmp_path_factory, net, "ecp5", platform=board_platform("ulx3s-85f"),
                    extra_verilog=[d / "dcca.v"], lanes=2, max_steps=64)
    text = (exe.parent.parent / "board.v").read_text()
    assert "DCCA" in text and "soft_rst_g" in text
    with SimBoard(exe, DIV) as sb, Board(sb.port, net=net, timeout=10) as b:
        for seed in range(3):
            x, forced = random_stimulus(net, 40, seed)
            ref = simulate(net, x, forced, steps=40)
            got = b.run(x, forced, steps=40)
            assert ref.first_mismatch(got) is None, (seed, ref.first_mismatch(got))
            assert got.prediction == ref.prediction
        x, forced = random_stimulus(net, 40, 7)
        ref = simulate(net, x, forced, steps=40)
        half = {k: v[:20] for k, v in forced.items()} if forced else None
        ref20 = simulate(net, x[:20], half, steps=20)
        first = b.run(x[:20], half, steps=20)
        assert ref20.first_mismatch(first) is None, ref20.first_mismatch(first)
        rest = b.run(x[20:], {k: v[20:] for k, v in forced.items()} if forced else None,
                     steps=20, reset=False)
        for l in ref.spikes:
            assert np.array_equal(rest.spikes[l], ref.spikes[l][20:]), l
        assert rest.prediction == ref.prediction


def test_wrong_network_is_refused(wm_board):
    _, sb = wm_board
    other = tiny_net(seed=3, name="wm8")
    with pytest.raises(LinkError, match="not 'wm8'"):
        Board(sb.port, net=other, timeout=10)


def _raw(b: Board, data: bytes) -> None:
    b.port.write(data)
    b.port.flush()


def _expect_error(b: Board, seq: int) -> tuple[int, int, int]:
    while True:
        f = b.read_frame(10)
        assert not isinstance(f, P.ProtocolError), f
        if f[1] == seq:
            assert f[0] == P.CMD_ERROR, f
            return P.parse_error(f[2])


def test_corrupted_and_malformed_frames_are_reported_and_nothing_runs(wm_board):
    net, sb = wm_board
    forced = _cue(net, 20, 7)
    ref = simulate(net, forced=forced, steps=20)
    with Board(sb.port, net=net, timeout=10) as b:
        b.reset()
        before = b.status()
        payload = P.step_chunks(b.info, [[(1, 2, 1)], []], P.FLAG_SPIKES)[0][0]
        # A flipped payload bit: bad CRC.
        f = bytearray(P.frame(P.CMD_STEP, 0x41, payload))
        f[5] ^= 0x04
        _raw(b, bytes(f))
        assert _expect_error(b, 0x41)[0] == P.ERR_CRC
        # A wrong LEN trailer with a valid CRC.
        body = bytearray(P.body(P.CMD_STEP, 0x42, payload))
        body[-4] += 1
        body[-2:] = struct.pack(">H", P.crc16(bytes(body[:-2])))
        _raw(b, bytes([P.END]) + bytes(body) + bytes([P.END]))
        assert _expect_error(b, 0x42)[0] == P.ERR_LENGTH
        # An unknown command, an event for the input layer (which has no channels), a payload
        # ending inside a step.
        _raw(b, P.frame(0x33, 0x43))
        assert _expect_error(b, 0x43)[:2] == (P.ERR_COMMAND, 0x33)
        bad = bytes([P.FLAG_SPIKES]) + struct.pack("<H", 1) + \
            bytes([P.token_format(net).pack(0, 3, 1)])
        _raw(b, P.frame(P.CMD_STEP, 0x44, bad))
        assert _expect_error(b, 0x44) == (P.ERR_PAYLOAD, P.CMD_STEP, 3)
        short = bytes([P.FLAG_SPIKES]) + struct.pack("<H", 2) + \
            bytes([P.token_format(net).pack(1, 2, 1)])                # 1 of 2 events
        _raw(b, P.frame(P.CMD_STEP, 0x45, short))
        assert _expect_error(b, 0x45) == (P.ERR_PAYLOAD, P.CMD_STEP, 4)
        # A frame longer than the buffer.
        _raw(b, P.frame(P.CMD_STEP, 0x46, bytes(P.MAX_BODY)))
        assert _expect_error(b, 0x46)[0] == P.ERR_TOO_LONG
        after = b.status()
        assert after.steps == before.steps == 0             # nothing of the bad frames ran
        assert after.crc_errors == before.crc_errors + 1
        assert after.length_errors == before.length_errors + 2
        got = b.run(forced=forced)                          # and the board still works
        assert ref.first_mismatch(got) is None
        # Through the driver, a board error is an exception naming it.
        with pytest.raises(BoardError, match="unknown command"):
            b.request(0x33)


def test_garbage_and_truncated_frames_then_resync(wm_board):
    net, sb = wm_board
    forced = _cue(net, 30, 3)
    ref = simulate(net, forced=forced, steps=30)
    rng = random.Random(5)
    with Board(sb.port, net=net, timeout=10) as b:
        for trial in range(3):
            junk = bytes(rng.randrange(256) for _ in range(200)) + bytes([P.ESC])
            truncated = P.frame(P.CMD_STEP, 0x70, bytes([P.FLAG_SPIKES]) + bytes(8))[:-4]
            _raw(b, junk + truncated)
            b.resync()
            got = b.run(forced=forced)
            assert ref.first_mismatch(got) is None
        assert b.status().uart_errors == 0         # garbage bytes are well-formed UART bytes


def test_disconnect_mid_frame_and_reconnect(wm_board):
    net, sb = wm_board
    forced = _cue(net, 30, 4)
    ref = simulate(net, forced=forced, steps=30)
    b = Board(sb.port, net=net, timeout=10)
    b.reset()
    payload = P.step_chunks(b.info, [[(1, 1, 1)]] * 10, P.FLAG_SPIKES)[0][0]
    _raw(b, P.frame(P.CMD_STEP, 0x12, payload)[:7])     # the host goes away mid-frame
    b.close()
    with Board(sb.port, net=net, timeout=10) as b2:       # a new host session
        got = b2.run(forced=forced)
        assert ref.first_mismatch(got) is None


def test_unplugged_board_raises_and_nothing_hangs(tmp_path_factory, wm8):
    net = wm8
    exe = _simboard(tmp_path_factory, net, "wm")           # cached build
    sb = SimBoard(exe, DIV).start()
    try:
        b = Board(sb.port, net=net, timeout=1.0)
        forced = _cue(net, 700, 1)
        seen = []

        def unplug(done, total):                           # after the first frame of several
            seen.append(done)
            sb.kill()

        t0 = time.monotonic()
        with pytest.raises(LinkError):
            b.run(forced=forced, membranes=False, progress=unplug)
        assert len(seen) == 1 and 0 < seen[0] < 700
        assert time.monotonic() - t0 < 10
        with pytest.raises(LinkError):                     # and stays an error, not a hang
            b.status()
        b.close()
    finally:
        sb.stop()
