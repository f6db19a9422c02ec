"""The host link: the framed UART protocol (:mod:`.protocol`, one executable spec for both
ends), the UART (:mod:`.uart`), frames (:mod:`.framing`), the read-outs (:mod:`.readout`), and
:class:`~.host.HostLink`, the board side around a core."""

from .framing import CRC16, FrameRx, FrameTx, uart_divisor
from .host import HostLink

__all__ = ["CRC16", "FrameRx", "FrameTx", "HostLink", "uart_divisor"]
