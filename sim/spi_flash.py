"""A behavioural SPI NOR flash for Amaranth simulations (the part a board's loader reads).

It models what :class:`boards.flash.FlashLoader` relies on, with the timing rule that matters:
the chip starts in deep power-down (where the iCE40 leaves it after configuration) and ignores
every command but 0xAB (release); after a release it needs chip select high for
``wake_cycles`` before it answers. 0x03 READ takes a 24-bit address and then shifts out bytes
MSB first, changing its output after each falling SCK edge (SPI mode 0), until chip select
falls. Anything else is recorded in :attr:`SpiFlashModel.errors`.
"""

from __future__ import annotations

__all__ = ["SpiFlashModel"]


class SpiFlashModel:
    """Attach with ``sim.add_process(model.process(sck, cs, copi, cipo))`` and
    ``sim.add_process(model.clock)``; ``data`` is written at byte ``offset`` of a ``size``-byte
    chip whose other bytes read 0xFF; ``wake_cycles`` is t_RES1 in clock cycles."""

    def __init__(self, data: bytes, *, offset: int = 0, size: int = 1 << 24,
                 wake_cycles: int = 36):
        self.mem = bytearray(b"\xff" * size)
        self.mem[offset:offset + len(data)] = data
        self.wake_cycles = wake_cycles
        self.errors: list[str] = []
        self.reads: list[int] = []          # start address of every READ
        self.now = 0

    async def clock(self, ctx):
        """Counts clock cycles (for the wake-up rule)."""
        async for _ in ctx.tick():
            self.now += 1

    def process(self, sck, cs, copi, cipo):
        async def run(ctx):
            awake, woke_at = False, None
            prev_sck, prev_cs = 0, 0
            bits, n_bits = 0, 0
            cmd, addr, out_bit = None, 0, -1
            ctx.set(cipo, 1)
            async for s, c, d in ctx.changed(sck, cs).sample(copi):
                if c and not prev_cs:                    # selected
                    bits, n_bits, cmd, out_bit = 0, 0, None, -1
                    if awake is False and woke_at is not None:
                        if self.now - woke_at < self.wake_cycles:
                            self.errors.append(f"selected {self.now - woke_at} cycles after "
                                               f"release, needs {self.wake_cycles}")
                        else:
                            awake = True
                if not c and prev_cs:                    # deselected
                    if cmd == 0xAB:
                        woke_at = self.now
                    ctx.set(cipo, 1)
                if c and s and not prev_sck:             # rising SCK: take COPI
                    if cmd is None or (cmd == 0x03 and n_bits < 32):
                        bits = bits << 1 | d
                        n_bits += 1
                        if n_bits == 8:
                            cmd = bits
                            if cmd != 0xAB and not awake:
                                self.errors.append(f"command {cmd:#04x} while powered down")
                                cmd = -1
                            elif cmd not in (0xAB, 0x03):
                                self.errors.append(f"unsupported command {cmd:#04x}")
                        if cmd == 0x03 and n_bits == 32:
                            addr = bits & 0xFFFFFF
                            self.reads.append(addr)
                    elif cmd == 0x03:
                        out_bit += 1
                if c and not s and prev_sck and cmd == 0x03 and n_bits == 32:
                    # falling SCK: the next data bit (the first right after the address)
                    k = out_bit + 1
                    byte = self.mem[(addr + k // 8) % len(self.mem)]
                    ctx.set(cipo, byte >> (7 - k % 8) & 1)
                prev_sck, prev_cs = s, c
        return run
