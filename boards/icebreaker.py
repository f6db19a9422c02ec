"""iCEBreaker (iCE40UP5K, 12 MHz): its platform with the reset button and the break-off PMOD.

The board's entry (device, clock and PLL, the host link on the FT2232H's channel B, the pins
the board top uses) is in :mod:`boards.catalog`; this module holds what the amaranth-boards
platform needs added: the user button as the platform's default reset (used by tops that run
in the platform's own ``sync`` domain, such as :class:`boards.schedule.ScheduleTop`), and the
break-off PMOD's five LEDs (``led`` 2..6).
"""

from __future__ import annotations

from amaranth_boards.icebreaker import ICEBreakerPlatform

__all__ = ["icebreaker_platform"]


def icebreaker_platform(*, break_off_pmod: bool = True) -> ICEBreakerPlatform:
    """An iCEBreaker platform whose user button resets the design (restarting the schedule),
    with the break-off PMOD's five LEDs (``led`` 2..6) when ``break_off_pmod``."""
    platform = ICEBreakerPlatform()
    platform.default_rst = "button"
    if break_off_pmod:
        platform.add_resources(platform.break_off_pmod)
    return platform
