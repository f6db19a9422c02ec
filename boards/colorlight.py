"""Colorlight 5A-75B r7.0 (ECP5 25F, 25 MHz): its platform with the host-link UART added.

The 5A-75B has no USB-serial bridge, and every pin on its HUB75 connectors J1..J8 goes through
a 74HC245 buffer that is wired as an output and powered from 5 V: a receive pin is impossible
there without rework, and a transmit pin would swing 5 V. The only FPGA pins at 3.3 V that are
easy to reach are on J19, the pads of the on-board LED and button, which amaranth-boards and
LiteX already use as a UART. The host link is there, for a 3.3 V USB-serial cable:

* J19 pin 2 (ball M13, the KEY button's net): FPGA RX, to the cable's TXD (weak pull-up; do
  not press the button while the cable drives the line);
* J19 pin 5 (ball P11, the DATA_LED- net): FPGA TX, to the cable's RXD (the LED flickers
  with the traffic);
* and the cable's GND to a board GND.

The board top therefore drives no LED and has no reset button on this board (``sync`` is
reset by power-on and PLL lock only). The board's entry (device, clock, the pins the board top
uses) is in :mod:`boards.catalog`.
"""

from __future__ import annotations

from amaranth.build import Attrs
from amaranth_boards.colorlight_5a75b_r7_0 import Colorlight_5A75B_R70Platform
from amaranth_boards.resources import UARTResource

__all__ = ["UART_RESOURCES", "colorlight_platform"]

#: The host link on J19 (pins 2 and 5). amaranth-boards' own ``uart`` 0 uses the same balls
#: but without a pull-up on RX; this one (number 1) adds it.
UART_RESOURCES = [
    UARTResource(1, rx="2", tx="5", conn=("j", 19),
                 attrs=Attrs(IO_TYPE="LVCMOS33", PULLMODE="UP")),
]


def colorlight_platform():
    """The amaranth-boards Colorlight 5A-75B r7.0 platform (25 MHz clock) with the host-link
    UART (resource ``uart`` 1, J19) added."""
    p = Colorlight_5A75B_R70Platform()
    p.add_resources(UART_RESOURCES)
    return p

