"""OrangeCrab r0.2 (ECP5 25F/85F, 48 MHz): its platform with the host-link UART added.

The OrangeCrab's USB port goes straight to FPGA pins (no USB-serial bridge chip): it runs the
DFU bootloader, and a USB-serial port on it would need a USB device core in the gateware. The
host link is therefore a UART on the Feather header for a 3.3 V USB-serial cable (FTDI
TTL-232R-3V3 or similar), on the pins the Feather standard and LiteX's OrangeCrab platform
name RX and TX (silkscreen "0" and "1"):

* header pin "0" (ball N17): FPGA RX, to the cable's TXD (weak pull-up, so an unplugged cable
  reads idle);
* header pin "1" (ball M18): FPGA TX, to the cable's RXD;
* and the cable's GND to a header GND.

The board's entry (device, clock, the pins the board top uses) is in :mod:`boards.catalog`.
LEDs: the RGB LED, green = heartbeat (bit 0), blue = busy (bit 1), red = error (bit 2).
The user button does not reset the design: as in the OrangeCrab's own examples it pulls
PROGRAMN and reloads the configuration, i.e. returns to the DFU bootloader, so a new bitstream
can be loaded without unplugging the board. Builds also run ``dfu-suffix`` (see
:func:`boards.build.tool_env`: a no-op when it is not installed).
"""

from __future__ import annotations

from amaranth.build import Attrs
from amaranth_boards import orangecrab_r0_2
from amaranth_boards.resources import UARTResource

__all__ = ["PLATFORMS", "SIZES", "UART_RESOURCES", "orangecrab_platform"]

#: The amaranth-boards platform of each size.
PLATFORMS = {"25F": orangecrab_r0_2.OrangeCrabR0_2_25FPlatform,
             "85F": orangecrab_r0_2.OrangeCrabR0_2_85FPlatform}
SIZES = tuple(PLATFORMS)

#: The host-link UART on the Feather header (connector ``io`` 0, pins "0" and "1").
UART_RESOURCES = [
    UARTResource(0, rx="0", tx="1", conn=("io", 0),
                 attrs=Attrs(IO_TYPE="LVCMOS33", PULLMODE="UP")),
]


def orangecrab_platform(size: str = "25F"):
    """The amaranth-boards OrangeCrab r0.2 platform of ECP5 ``size`` (48 MHz clock), with the
    host-link UART on the Feather header added as resource ``uart`` 0."""
    if size not in SIZES:
        raise ValueError(f"OrangeCrab size must be one of {SIZES}, got {size!r}")
    p = PLATFORMS[size]()
    p.add_resources(UART_RESOURCES)
    return p

