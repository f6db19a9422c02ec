"""A weight array of memory kind ``loaded``: a RAM without initial contents, filled at run time.

Its words come through the core's ``wl`` load stream after the first reset, as for SPRAM (see
``docs/hardware.md#loaded-weights``). It has any depth, on any family: in hardware it stands
for an external memory or a host upload, in simulation it is a plain memory.

Why not an Amaranth ``Memory(init=[])``: Amaranth 0.5 always gives a memory initial contents
(zeros), and its Verilog backend writes them out, one ``initial`` line per word and the whole
array as one constant in the RTLIL it hands Yosys: for the working-memory network of the paper
(N = 512, D = 41, 8-bit weights, 16 lanes: 671,744 words of 128 bits) that is 86 Mbit of
constant and 671,744 lines. So for Verilog the array is an instance of
:data:`LOADED_RAM_MODULE`, a behavioural RAM with no ``initial`` block (``rtl.export.generate``
appends it to the core's Verilog; a board build adds it to the platform's files); for
Amaranth's simulator it is an ordinary memory with the same single-port behaviour.

Port behaviour (as :class:`~rtl.spram.SpramArray`): read and load share ``addr``; ``we``
writes ``wdata``; ``en`` reads into ``data`` at the clock edge; ``data`` holds while neither
happens; a read and a write never come in the same cycle.
"""

from __future__ import annotations

from amaranth.hdl import ClockSignal, Instance, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .spram import single_port_memory

__all__ = ["LoadedArray", "LOADED_RAM_NAME", "LOADED_RAM_MODULE"]

#: Name of the Verilog module that holds a ``loaded`` weight array.
LOADED_RAM_NAME = "polychrony_loaded_ram"

#: Its Verilog: a single-port RAM without initial contents (no ``initial`` block, so the
#: Verilog stays small whatever the depth; simulators start it at X or 0, and the core never
#: reads a word before the load has written it).
LOADED_RAM_MODULE = f"""\
// A weight array of memory kind "loaded" (polychrony, rtl/loaded.py): DEPTH words of WIDTH
// bits without initial contents, written through the core's wl load stream after reset.
module {LOADED_RAM_NAME} #(
  parameter DEPTH = 1,
  parameter WIDTH = 1,
  parameter ABITS = 1
) (
  input clk,
  input [ABITS-1:0] addr,
  input en,
  input we,
  input [WIDTH-1:0] wdata,
  output reg [WIDTH-1:0] data
);
  reg [WIDTH-1:0] mem [0:DEPTH-1];
  always @(posedge clk) begin
    if (we)
      mem[addr] <= wdata;
    else if (en)
      data <= mem[addr];
  end
endmodule
"""


class LoadedArray(wiring.Component):
    """``depth`` words of ``width`` bits, filled at run time. ``cell`` instantiates
    :data:`LOADED_RAM_MODULE` (Verilog, hardware) rather than a behavioural memory (Amaranth's
    simulator)."""

    def __init__(self, depth: int, width: int, *, cell: bool):
        if depth < 1 or width < 1:
            raise ValueError(f"a loaded array needs depth >= 1 and width >= 1, "
                             f"got {depth} x {width}")
        self.depth, self.width, self.cell = depth, width, cell
        self.abits = max(1, (depth - 1).bit_length())
        super().__init__({
            "addr": In(self.abits), "en": In(1), "data": Out(width),
            "we": In(1), "wdata": In(width),
        })

    def elaborate(self, platform):
        m = Module()
        if not self.cell:
            single_port_memory(m, self)
            return m
        m.submodules.ram = Instance(
            LOADED_RAM_NAME,
            p_DEPTH=self.depth, p_WIDTH=self.width, p_ABITS=self.abits,
            i_clk=ClockSignal(), i_addr=self.addr, i_en=self.en, i_we=self.we,
            i_wdata=self.wdata, o_data=self.data)
        return m
