"""The board layer around a platform-independent inner top: clock, reset, UART pins, LEDs.

An *inner top* is an ``Elaboratable`` made by a factory ``make_inner(clk_hz)`` that gets the
final ``sync`` frequency (to size its UART divisor). It has ``rx`` (1-bit input, idle high),
``tx`` (1-bit output, idle high) and ``leds`` (1..8 bits output: bit 0 heartbeat, bit 1 busy,
bit 2 error), runs entirely in ``sync`` and never calls ``platform.request``.

:class:`BoardTop` puts it on any board of :mod:`boards.catalog`::

    top = BoardTop("ulx3s-85f", make_inner)           # the board's default clock (PLL)
    top.achieved_clock_hz                             # known before elaboration
    build(top, board_platform("ulx3s-85f"), build_dir="build")

Where each board's host link and LEDs are: its entry in :mod:`boards.catalog`
(:attr:`Board.io`, :attr:`Board.host_link`).
"""

from __future__ import annotations

from typing import Callable

from amaranth.build import ResourceError
from amaranth.hdl import ClockDomain, Elaboratable, Module, Value
from amaranth.lib import io
from amaranth.lib.cdc import FFSynchronizer

from .catalog import BoardIO, board
from .clocks import ClockReset, pll_for

__all__ = ["BoardTop", "board_platform", "board_io", "sync_clock", "host_top", "board_design",
           "build_board"]


def board_platform(board_name: str):
    """A fresh amaranth-boards platform for ``board_name``, with the resources the board top
    adds (the host-link UART on OrangeCrab and Colorlight, the iCEBreaker's break-off PMOD)."""
    return board(board_name).platform()


def board_io(board_name: str) -> BoardIO:
    """The resources the board top uses on ``board_name`` (UART, LEDs, buttons)."""
    return board(board_name).io


def sync_clock(board_name: str, clock_hz: float | None = None) -> tuple[float, dict | None]:
    """The ``sync`` frequency a board top gets on ``board_name`` for ``clock_hz`` (None: the
    board's default, :attr:`Board.sync_mhz`), and the PLL settings (None: no PLL)."""
    b = board(board_name)
    osc_hz = b.clock_mhz * 1e6
    if clock_hz is None:
        clock_hz = b.sync_mhz * 1e6
    pll = pll_for(b.family, osc_hz, clock_hz)
    return (osc_hz if pll is None else pll["achieved_hz"]), pll


def _check_inner(inner) -> None:
    if not isinstance(inner, Elaboratable):
        raise TypeError(f"make_inner must return an Elaboratable, got {inner!r}")
    for name, lo, hi in (("rx", 1, 1), ("tx", 1, 1), ("leds", 1, 8)):
        sig = getattr(inner, name, None)
        if not isinstance(sig, Value):
            raise TypeError(f"the inner top has no signal {name!r}")
        if not lo <= len(sig) <= hi:
            want = "1 bit" if lo == hi else f"{lo}..{hi} bits"
            raise ValueError(f"the inner top's {name!r} must be {want} wide, not {len(sig)}")


class BoardTop(Elaboratable):
    """``make_inner``'s top on board ``board_name`` with a ``sync`` clock of ``clock_hz``.

    ``clock_hz`` None takes the board's default (:attr:`Board.sync_mhz`); the oscillator's
    frequency means no PLL. The PLL's achieved frequency is :attr:`achieved_clock_hz` (set at
    construction); ``make_inner`` is called with it, once, here; the inner top is
    :attr:`inner`. ``sync`` is reset until the PLL locks plus 15 us, and while the board's
    reset button is pressed (see :class:`boards.clocks.ClockReset`). nextpnr derives the
    clock constraint of the PLL's output from the oscillator's.

    Pins: the host-link UART's ``rx`` reaches ``inner.rx`` through a two-flip-flop
    synchronizer (idle high), ``inner.tx`` drives its ``tx``; ``inner.leds`` bit k drives the
    board's k-th LED of :attr:`io` (bits beyond the board's LEDs, or LEDs beyond ``leds``, are
    left alone). Use it with :func:`board_platform`. An unknown board, a clock the board
    cannot make or an unfit inner top raises before the top exists.
    """

    def __new__(cls, board_name: str, make_inner: Callable[[float], Elaboratable], *,
                clock_hz: float | None = None):
        # Everything that can fail (the board's name, the clock, the inner top) runs before the
        # Elaboratable exists, so a top that could not be made is not "created but never used"
        # (src_loc_at=1: the warning of an unused top names our caller's line).
        b = board(board_name)
        achieved_clock_hz, pll = sync_clock(board_name, clock_hz)
        inner = make_inner(achieved_clock_hz)
        _check_inner(inner)
        self = super().__new__(cls, src_loc_at=1)
        self.board, self.io, self.pll, self.inner = b, b.io, pll, inner
        self.achieved_clock_hz = achieved_clock_hz
        self.requested_clock_hz = b.sync_mhz * 1e6 if clock_hz is None else float(clock_hz)
        return self

    def elaborate(self, platform):
        if platform is None:
            raise TypeError("BoardTop needs a platform (board_platform(name)); simulate the "
                            "inner top instead")
        b, bio = self.board, self.io
        m = Module()

        # Reset button: resets `sync` (the PLL module synchronizes it).
        rst = None
        if bio.reset is not None:
            m.submodules.rst_buf = rst_buf = io.Buffer(
                "i", platform.request(*bio.reset, dir="-"))
            rst = rst_buf.i

        m.domains.sync = ClockDomain("sync")
        clk_port = platform.request(platform.default_clk, dir="-")
        m.submodules.clocks = ClockReset(b.family, clk_port, b.clock_mhz * 1e6, self.pll,
                                         rst=rst)
        # No clock constraint on the PLL output: nextpnr derives it from the oscillator pin's
        # constraint and the PLL's dividers ("Derived frequency constraint of 24.0 MHz"); a
        # constraint on the net by name is ignored, as synthesis renames the net.

        m.submodules.inner = inner = self.inner

        # Host link. The FPGA's tx drives the resource's tx pin; rx is the FPGA's input.
        uart = platform.request(*bio.uart, dir="-")
        m.submodules.uart_rx = rx_buf = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = tx_buf = io.Buffer("o", uart.tx)
        m.submodules.rx_sync = FFSynchronizer(rx_buf.i, inner.rx, init=1)
        m.d.comb += tx_buf.o.eq(inner.tx)

        # LEDs: one request per resource (the OrangeCrab's RGB LED has three subsignals).
        ports = {}
        for k, (name, number, sub) in enumerate(bio.leds[:len(inner.leds)]):
            if (name, number) not in ports:
                try:
                    ports[name, number] = platform.request(name, number, dir="-")
                except ResourceError:        # e.g. the iCEBreaker without its PMOD
                    ports[name, number] = None
            port = ports[name, number]
            if port is None:
                continue
            m.submodules[f"led_{k}"] = led = io.Buffer(
                "o", port if sub is None else getattr(port, sub))
            m.d.comb += led.o.eq(inner.leds[k])

        # The SPI flash of a weight loader (SPRAM weights on the iCE40UP5K).
        loader = getattr(inner, "loader", None)
        if loader is not None and hasattr(loader, "sck"):
            flash = platform.request("spi_flash_1x", 0, dir="-")
            for pin, sig, d in (("cs", loader.cs, "o"), ("clk", loader.sck, "o"),
                                ("copi", loader.copi, "o"), ("cipo", loader.cipo, "i"),
                                ("wp", 0, "o"), ("hold", 0, "o")):
                if not hasattr(flash, pin):
                    continue
                m.submodules[f"flash_{pin}"] = buf = io.Buffer(d, getattr(flash, pin))
                m.d.comb += buf.o.eq(sig) if d == "o" else sig.eq(buf.i)

        # A button that reloads the configuration (OrangeCrab: back to the bootloader).
        if bio.reboot is not None:
            (btn_name, btn_num), (prog_name, prog_num) = bio.reboot
            m.submodules.reboot_btn = btn = io.Buffer(
                "i", platform.request(btn_name, btn_num, dir="-"))
            m.submodules.reboot_prog = prog = io.Buffer(
                "o", platform.request(prog_name, prog_num, dir="-"))
            m.submodules.reboot_sync = FFSynchronizer(btn.i, prog.o, o_domain="sync",
                                                      reset_less=True)
        return m


def host_top(net, board_name: str, *, lanes: int = 1, memories: dict | None = None,
             clock_hz: float | None = None, baud: int | None = None,
             max_steps: int | None = None,
             **core_knobs) -> BoardTop:
    """The host-link top of ``net`` on ``board_name``: :class:`~rtl.link.HostLink` (network
    core, UART, protocol) in :class:`BoardTop`, the core's memories shaped for the board's
    family, SPRAM weights loaded from the configuration flash (iCE40UP5K)."""
    from rtl.link import HostLink, uart_divisor
    from rtl.link.readout import DEFAULT_MAX_STEPS
    from .flash import FlashLoader

    if max_steps is None:
        max_steps = DEFAULT_MAX_STEPS

    b = board(board_name)
    baud = b.uart_baud if baud is None else int(baud)
    core_knobs.setdefault("family", b.family)
    core_knobs.setdefault("device", b.chip)

    def make_inner(clk_hz: float):
        return HostLink.around(net, divisor=uart_divisor(clk_hz, baud),
                               clock_hz=round(clk_hz), baud=baud, lanes=lanes,
                               memories=memories, max_steps=max_steps,
                               loader=lambda image, width: FlashLoader(
                                   words=len(image), width=width, clk_hz=clk_hz),
                               **core_knobs)

    return BoardTop(board_name, make_inner, clock_hz=clock_hz)


def board_design(net, board_name: str, *, lanes: int = 1, memories: dict | None = None,
                 clock_hz: float | None = None, baud: int | None = None,
                 max_steps: int | None = None, headroom: float = 0.0, **core_knobs) -> str:
    """The design fingerprint (:func:`boards.build.design_fingerprint`) that
    :func:`build_board` records for the same arguments, without building: whether a recorded
    build still stands for what the generators give now."""
    from .build import fingerprint
    return fingerprint(host_top(net, board_name, lanes=lanes, memories=memories,
                                clock_hz=clock_hz, baud=baud, max_steps=max_steps,
                                **core_knobs), board_platform(board_name), headroom=headroom)


def build_board(net, board_name: str, *, build_dir, lanes: int = 1,
                memories: dict | None = None, clock_hz: float | None = None,
                baud: int | None = None, max_steps: int | None = None, seed: int = 1,
                timing_allow_fail: bool = False, nextpnr_opts: str = "",
                time_limit: float | None = None, headroom: float = 0.0, **core_knobs):
    """Build the host-link bitstream of ``net`` for ``board_name`` (see :func:`host_top`;
    ``time_limit`` in seconds and ``headroom``, see :func:`boards.build.build`);
    SPRAM weights also give ``weights.bin`` in ``build_dir``, to be written at the loader's
    flash offset (``iceprog -o 1M weights.bin``). ``nextpnr_opts`` are extra nextpnr options
    (e.g. ``--router router2``, far faster than the default router on large designs)."""
    from dataclasses import replace
    from pathlib import Path
    from .build import build
    from .flash import flash_image

    top = host_top(net, board_name, lanes=lanes, memories=memories, clock_hz=clock_hz,
                   baud=baud, max_steps=max_steps, **core_knobs)
    result = build(top, board_platform(board_name), build_dir=build_dir, seed=seed,
                   timing_allow_fail=timing_allow_fail, nextpnr_opts=nextpnr_opts,
                   time_limit=time_limit, headroom=headroom)
    loader = top.inner.loader
    if loader is None:
        return result
    path = Path(result.build_dir) / "weights.bin"
    flash_image(top.inner.image, loader.width, path)
    return replace(result, flash_image=path, flash_offset=loader.offset)
