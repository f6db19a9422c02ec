"""The ``sync`` clock of a board top: PLL settings (pure functions) and the clock/reset module.

:func:`ice40_pll` and :func:`ecp5_pll` pick PLL dividers the way Project IceStorm's ``icepll``
and Project Trellis' ``ecppll`` do (same search order, same tie-breaks, same arithmetic), so
their answers can be checked against those tools. Each returns the primitive's parameters
and the frequency they achieve; a request outside the PLL's documented ranges raises
``ValueError`` naming the limit.

:class:`ClockReset` makes the ``sync`` domain at that frequency from the board's oscillator
pin: through ``SB_PLL40_PAD`` (iCE40) or ``EHXPLLL`` (ECP5), or straight from the oscillator
when no PLL is needed. ``sync`` has a synchronous reset that is held until the PLL has locked
and a further power-on delay has passed (iCE40 block RAM reads zeros for ~3 us after
configuration; Amaranth's own default domain waits 15 us for the same reason), and while the
board's reset button (if any) is pressed.
"""

from __future__ import annotations

import math
import struct

from amaranth.hdl import (ClockDomain, ClockSignal, Const, Elaboratable, Instance, Module,
                          Signal)
from amaranth.lib import io
from amaranth.lib.cdc import FFSynchronizer, ResetSynchronizer

__all__ = ["ICE40_LIMITS", "ECP5_LIMITS", "POR_SECONDS", "ice40_pll", "ecp5_pll", "pll_for",
           "ClockReset"]

#: iCE40 PLL frequency ranges in Hz (``icepll.cc``'s ``limit_in/pfd/vco/out``, from the
#: iCE40 sysCLOCK PLL Design and Usage Guide, TN1251).
ICE40_LIMITS = {
    "input": (10e6, 133e6),
    "pfd": (10e6, 133e6),
    "vco": (533e6, 1066e6),
    "output": (16e6, 275e6),
}

#: ECP5 PLL frequency ranges in Hz: input, output and VCO from the ECP5 family data sheet
#: (FPGA-DS-02012, "sysCLOCK PLL Timing"), the PFD range from ``ecppll.cpp``'s PFD_MIN/MAX.
#: (``ecppll`` only warns below a 10 MHz output; the data sheet allows 3.125 MHz.)
ECP5_LIMITS = {
    "input": (8e6, 400e6),
    "pfd": (3.125e6, 400e6),
    "vco": (400e6, 800e6),
    "output": (3.125e6, 400e6),
}

#: Divider ranges searched (as icepll's SIMPLE feedback mode and ecppll do).
ICE40_DIVIDERS = {"DIVR": (0, 15), "DIVF": (0, 127), "DIVQ": (1, 6)}
ECP5_DIVIDERS = {"CLKI_DIV": (1, 128), "CLKFB_DIV": (1, 80), "CLKOP_DIV": (1, 128)}

#: Power-on delay after lock before ``sync`` leaves reset (as Amaranth's iCE40 default domain).
POR_SECONDS = 15e-6


def _check_range(what: str, f_hz: float, limits: tuple[float, float], family: str) -> None:
    lo, hi = limits
    if not (isinstance(f_hz, (int, float)) and math.isfinite(f_hz)):
        raise ValueError(f"{family} PLL {what} frequency must be a finite number, got {f_hz!r}")
    if not lo <= f_hz <= hi:
        raise ValueError(f"{family} PLL {what} frequency {f_hz / 1e6:.6g} MHz is outside the "
                         f"{what} range {lo / 1e6:g}-{hi / 1e6:g} MHz")


def _check_tolerance(family: str, f_out_hz: float, achieved: float,
                     tolerance: float | None) -> None:
    if tolerance is not None and abs(achieved - f_out_hz) > tolerance * f_out_hz:
        raise ValueError(f"{family} PLL cannot make {f_out_hz / 1e6:.6g} MHz within "
                         f"{tolerance:.2%}: the nearest it can make is "
                         f"{achieved / 1e6:.6g} MHz")


def ice40_pll(f_in_hz: float, f_out_hz: float, *, tolerance: float | None = 0.02) -> dict:
    """``SB_PLL40_*`` settings for ``f_out_hz`` from ``f_in_hz`` in SIMPLE feedback mode.

    Returns ``{"DIVR", "DIVF", "DIVQ", "FILTER_RANGE", "f_pfd_hz", "f_vco_hz",
    "achieved_hz"}``; the same answer as ``icepll -i <in MHz> -o <out MHz>`` (it scans DIVR,
    DIVF, DIVQ upwards and keeps the first setting with the smallest error):
    f_pfd = f_in / (DIVR + 1), f_vco = f_pfd * (DIVF + 1), f_out = f_vco / 2**DIVQ.
    ``ValueError`` if a frequency is outside :data:`ICE40_LIMITS` or the best setting is
    further than ``tolerance`` (relative; ``None``: no check) from the request.
    """
    _check_range("input", f_in_hz, ICE40_LIMITS["input"], "iCE40")
    _check_range("output", f_out_hz, ICE40_LIMITS["output"], "iCE40")
    # icepll works in MHz doubles; so does this, so that boundary cases compare the same.
    f_in, f_out = f_in_hz / 1e6, f_out_hz / 1e6
    (pfd_lo, pfd_hi), (vco_lo, vco_hi) = (tuple(x / 1e6 for x in ICE40_LIMITS[k])
                                          for k in ("pfd", "vco"))
    best = None
    for divr in range(ICE40_DIVIDERS["DIVR"][1] + 1):
        f_pfd = f_in / (divr + 1)
        if f_pfd < pfd_lo or f_pfd > pfd_hi:
            continue
        for divf in range(ICE40_DIVIDERS["DIVF"][1] + 1):
            f_vco = f_pfd * (divf + 1)
            if f_vco < vco_lo or f_vco > vco_hi:
                continue
            for divq in range(ICE40_DIVIDERS["DIVQ"][0], ICE40_DIVIDERS["DIVQ"][1] + 1):
                fout = f_vco * 2.0 ** -divq
                if best is None or abs(fout - f_out) < abs(best[0] - f_out):
                    best = (fout, divr, divf, divq)
    if best is None:   # cannot happen for an input within range, kept for clarity
        raise ValueError(f"iCE40 PLL: no valid setting for {f_in:g} MHz -> {f_out:g} MHz")
    _, divr, divf, divq = best
    f_pfd = f_in / (divr + 1)
    filter_range = (1 if f_pfd < 17 else 2 if f_pfd < 26 else 3 if f_pfd < 44 else
                    4 if f_pfd < 66 else 5 if f_pfd < 101 else 6)
    achieved = f_in_hz * (divf + 1) / (divr + 1) / 2 ** divq
    _check_tolerance("iCE40", f_out_hz, achieved, tolerance)
    return {"DIVR": divr, "DIVF": divf, "DIVQ": divq, "FILTER_RANGE": filter_range,
            "f_pfd_hz": f_in_hz / (divr + 1), "f_vco_hz": f_in_hz * (divf + 1) / (divr + 1),
            "achieved_hz": achieved}


def _f32(x: float) -> float:
    """``x`` rounded to the nearest IEEE single (``ecppll`` computes in C ``float``)."""
    return struct.unpack("f", struct.pack("f", x))[0]


def ecp5_pll(f_in_hz: float, f_out_hz: float, *, tolerance: float | None = 0.02) -> dict:
    """``EHXPLLL`` settings for ``f_out_hz`` on CLKOP (fed back to CLKFB) from ``f_in_hz``.

    Returns ``{"CLKI_DIV", "CLKFB_DIV", "CLKOP_DIV", "CLKOP_CPHASE", "f_pfd_hz", "f_vco_hz",
    "achieved_hz"}``; the same answer as ``ecppll -i <in MHz> -o <out MHz>``:
    f_pfd = f_in / CLKI_DIV, f_out = f_pfd * CLKFB_DIV, f_vco = f_out * CLKOP_DIV. ecppll
    scans CLKI_DIV, CLKFB_DIV, CLKOP_DIV upwards, keeps the smallest error and, among equal
    errors, the VCO nearest 600 MHz; CLKOP_CPHASE is its 180-degree phase
    (``int(0.5 * f_vco / f_out)``). The search is done in single precision as ecppll does, so
    even ties and the truncated phase come out the same. ``ValueError`` as :func:`ice40_pll`,
    with :data:`ECP5_LIMITS`.
    """
    _check_range("input", f_in_hz, ECP5_LIMITS["input"], "ECP5")
    _check_range("output", f_out_hz, ECP5_LIMITS["output"], "ECP5")
    f_in, f_out = _f32(f_in_hz / 1e6), _f32(f_out_hz / 1e6)
    pfd_lo, pfd_hi = (x / 1e6 for x in ECP5_LIMITS["pfd"])
    vco_lo, vco_hi = (x / 1e6 for x in ECP5_LIMITS["vco"])
    od_max = ECP5_DIVIDERS["CLKOP_DIV"][1]
    error = math.inf
    best = None          # (refclk_div, feedback_div, output_div, fout, fvco)
    best_fvco = 0.0
    for input_div in range(1, ECP5_DIVIDERS["CLKI_DIV"][1] + 1):
        fpfd = _f32(f_in / input_div)
        if fpfd < pfd_lo or fpfd > pfd_hi:
            continue
        for feedback_div in range(1, ECP5_DIVIDERS["CLKFB_DIV"][1] + 1):
            base = _f32(fpfd * feedback_div)
            # Only output dividers near the VCO range can pass; the exact test is below.
            lo = max(1, math.floor(vco_lo / base) - 1)
            hi = min(od_max, math.ceil(vco_hi / base) + 1)
            for output_div in range(lo, hi + 1):
                fvco = _f32(base * output_div)
                if fvco < vco_lo or fvco > vco_hi:
                    continue
                fout = _f32(fvco / output_div)
                err = abs(_f32(fout - f_out))
                if err < error or (err == error
                                   and abs(_f32(fvco - 600)) < abs(_f32(best_fvco - 600))):
                    error, best_fvco = err, fvco
                    best = (input_div, feedback_div, output_div, fout, fvco)
    if best is None:
        raise ValueError(f"ECP5 PLL: no valid setting for {f_in:g} MHz -> {f_out:g} MHz")
    input_div, feedback_div, output_div, fout, fvco = best
    ns_phase = _f32(1 / (fout * 1e6) * 0.5)
    cphase = int(ns_phase * (fvco * 1e6))
    achieved = f_in_hz * feedback_div / input_div
    _check_tolerance("ECP5", f_out_hz, achieved, tolerance)
    return {"CLKI_DIV": input_div, "CLKFB_DIV": feedback_div, "CLKOP_DIV": output_div,
            "CLKOP_CPHASE": cphase, "f_pfd_hz": f_in_hz / input_div,
            "f_vco_hz": achieved * output_div, "achieved_hz": achieved}


def pll_for(family: str, f_in_hz: float, f_out_hz: float | None, *,
            tolerance: float | None = 0.02) -> dict | None:
    """The PLL settings for ``family`` ("ice40" or "ecp5"), or ``None`` when ``f_out_hz`` is
    ``None`` or equals the oscillator (``sync`` then runs from the oscillator itself)."""
    if f_out_hz is None or f_out_hz == f_in_hz:
        return None
    if family == "ice40":
        return ice40_pll(f_in_hz, f_out_hz, tolerance=tolerance)
    if family == "ecp5":
        return ecp5_pll(f_in_hz, f_out_hz, tolerance=tolerance)
    raise ValueError(f"no PLL support for FPGA family {family!r}")


# ------------------------------------------------------------------------------------------
# The clock/reset module.

class ClockReset(Elaboratable):
    """Drives the clock and reset of the ``sync`` domain from an oscillator pin.

    The domain itself (``ClockDomain("sync")``) is defined by the parent module, so that it is
    visible to the whole design (Amaranth 0.6 will require domains to be defined in a common
    parent of their users).

    ``clk_port`` is the oscillator's port (``platform.request(name, dir="-")``),
    ``osc_hz`` its frequency, ``pll`` the settings from :func:`pll_for` (``None``: no
    PLL) for ``family``. ``rst`` (a 1-bit value, 1 = reset, asynchronous to anything) is
    the reset button. ``sync`` is held in reset while the PLL is unlocked, for
    :data:`POR_SECONDS` after it locks, and while ``rst`` is 1; its reset is released
    synchronously. ``self.clk`` is the clock net (the top's clock constraint goes on it)
    and ``self.locked`` the PLL's lock output (constant 1 without a PLL). With ``clk_port``
    None (simulation) neither is driven here: a testbench toggles ``clk`` and sets ``locked``.
    """

    def __init__(self, family: str, clk_port, osc_hz: float, pll: dict | None, *,
                 rst=None, domain: str = "sync"):
        self.family, self.clk_port, self.osc_hz, self.pll = family, clk_port, osc_hz, pll
        self.rst = Const(0) if rst is None else rst
        self.domain = domain
        self.freq_hz = osc_hz if pll is None else pll["achieved_hz"]
        self.clk = Signal(name=f"{domain}_clk")
        self.locked = Signal(name="pll_locked")
        self.por_cycles = max(2, math.ceil(POR_SECONDS * self.freq_hz))

    def elaborate(self, platform):
        m = Module()
        p = self.pll
        if self.clk_port is None:
            pass        # simulation: the testbench drives self.clk and self.locked
        elif p is None:
            m.submodules.clk_buf = buf = io.Buffer("i", self.clk_port)
            m.d.comb += [self.clk.eq(buf.i), self.locked.eq(1)]
        elif self.family == "ice40":
            # The oscillator pin feeds the PLL directly (no SB_IO in between): iCEBreaker's
            # 12 MHz input, pin 35 (IOT_46b_G0), is the UP5K's PLL pad.
            m.submodules.pll = Instance(
                "SB_PLL40_PAD",
                p_FEEDBACK_PATH="SIMPLE",
                p_DIVR=p["DIVR"], p_DIVF=p["DIVF"], p_DIVQ=p["DIVQ"],
                p_FILTER_RANGE=p["FILTER_RANGE"],
                i_PACKAGEPIN=self.clk_port.io,
                i_RESETB=Const(1), i_BYPASS=Const(0),
                o_PLLOUTGLOBAL=self.clk, o_LOCK=self.locked)
        elif self.family == "ecp5":
            m.submodules.clk_buf = buf = io.Buffer("i", self.clk_port)
            # As ecppll writes it: CLKOP fed back, filter settings as Lattice's tools.
            m.submodules.pll = Instance(
                "EHXPLLL",
                a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
                a_MFG_GMCREF_SEL="2",
                p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED",
                p_STDBY_ENABLE="DISABLED", p_DPHASE_SOURCE="DISABLED",
                p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
                p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
                p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=p["CLKOP_DIV"],
                p_CLKOP_CPHASE=p["CLKOP_CPHASE"], p_CLKOP_FPHASE=0,
                p_CLKFB_DIV=p["CLKFB_DIV"], p_CLKI_DIV=p["CLKI_DIV"],
                p_FEEDBK_PATH="CLKOP",
                i_CLKI=buf.i, i_CLKFB=self.clk, o_CLKOP=self.clk,
                i_RST=Const(0), i_STDBY=Const(0),
                i_PHASESEL0=Const(0), i_PHASESEL1=Const(0), i_PHASEDIR=Const(1),
                i_PHASESTEP=Const(1), i_PHASELOADREG=Const(1),
                i_PLLWAKESYNC=Const(0), i_ENCLKOP=Const(0),
                o_LOCK=self.locked)
        else:
            raise ValueError(f"no PLL support for FPGA family {self.family!r}")

        # Power-on delay, counted on the new clock once the PLL has locked.
        por = f"{self.domain}_por"
        m.domains += ClockDomain(por, reset_less=True, local=True)
        m.d.comb += ClockSignal(por).eq(self.clk)
        locked = Signal(name="locked_sync")
        m.submodules.lock_sync = FFSynchronizer(self.locked, locked, o_domain=por)
        timer = Signal(range(self.por_cycles + 1), name="por_timer")
        ready = Signal(name="por_ready")
        with m.If(~locked):
            m.d[por] += [timer.eq(0), ready.eq(0)]
        with m.Elif(timer == self.por_cycles):
            m.d[por] += ready.eq(1)
        with m.Else():
            m.d[por] += timer.eq(timer + 1)

        m.d.comb += ClockSignal(self.domain).eq(self.clk)
        m.submodules.reset_sync = ResetSynchronizer(~ready | self.rst, domain=self.domain)
        return m
