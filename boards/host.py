"""Host driver: run a network on a board (or the simulated board) over the framed UART link.

::

    from boards.host import Board
    with Board("/dev/ttyUSB1", net=net) as board:     # checks the board runs ``net``
        trace = board.run(x)                          # a model.ir.Trace
        print(trace.prediction)

The driver speaks ``docs/protocol.md`` (:mod:`rtl.link.protocol`): stop-and-wait, one frame in
flight, each response matched by its sequence number. Every wait has a timeout; a board that
stops answering raises :class:`LinkTimeout`, an error frame raises :class:`BoardError`, bytes
that do not parse raise :class:`LinkError`. After any of these, :meth:`Board.resync` (or a new
:meth:`Board.run`, which resets the board first) brings the link back. Runs come back as the
contract's :class:`~model.ir.Trace`, checked with the same input validation as the reference.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from model.ir import Network, Trace, digest, validate_inputs
from rtl.link import protocol as P

__all__ = ["LinkError", "LinkTimeout", "BoardError", "Board", "open_port"]


class LinkError(RuntimeError):
    """The link broke: bytes that do not follow the protocol, or a closed port."""


class LinkTimeout(LinkError):
    """The board did not answer in time."""


class BoardError(LinkError):
    """The board answered with an error frame; ``code``, ``command`` and ``detail`` say which."""

    def __init__(self, code: int, command: int, detail: int, what: str = ""):
        self.code, self.command, self.detail = code, command, detail
        name = P.ERROR_NAMES.get(code, f"error {code}")
        extra = f" at payload byte {detail}" if code == P.ERR_PAYLOAD else ""
        super().__init__(f"board reported {name} for command 0x{command:02X}{extra}"
                         + (f" ({what})" if what else ""))


def open_port(port: str, baud: int, timeout: float):
    """A pyserial port (``port`` may be a device path or a pyserial URL such as
    ``socket://host:port``)."""
    import serial
    try:
        return serial.serial_for_url(port, baudrate=baud, timeout=timeout, write_timeout=timeout)
    except (serial.SerialException, ValueError, OSError) as e:
        raise LinkError(f"cannot open serial port {port!r}: {e}") from None


@dataclass(frozen=True)
class Timing:
    """Wall-clock cost of one :meth:`Board.run`."""

    seconds: float
    frames: int
    bytes_out: int
    bytes_in: int


class Board:
    """A board running a polychrony host-link top.

    ``port``: a device path / pyserial URL, or an open pyserial-like object (``read``,
    ``write``, ``reset_input_buffer``, ``timeout``). ``net``: when given, :meth:`connect`
    checks that the board runs exactly this network (IR digest) and raises otherwise.
    ``timeout``: seconds to wait for any byte of a response before :class:`LinkTimeout`.
    """

    def __init__(self, port, *, net: Network | None = None, baud: int = 1_000_000,
                 timeout: float = 2.0, connect: bool = True):
        self._own = isinstance(port, str)
        self.port_name = port if self._own else getattr(port, "port", repr(port))
        self.port = open_port(port, baud, timeout) if self._own else port
        self.timeout = timeout
        self.net = net
        self.info: P.LinkInfo | None = None
        self.last_timing: Timing | None = None
        self._seq = 0
        self._decoder = P.FrameDecoder()
        self._frames: list = []
        self._bytes_in = self._bytes_out = 0
        if connect:
            try:
                self.connect()
            except BaseException:
                self.close()
                raise

    # -- context manager ----------------------------------------------------------------------
    def __enter__(self) -> "Board":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._own and self.port is not None:
            try:
                self.port.close()
            except Exception:
                pass
        self.port = None

    # -- framing ----------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        if self.port is None:
            raise LinkError("the port is closed")
        try:
            self.port.write(data)
            self.port.flush()
        except Exception as e:  # serial.SerialException, OSError: the device went away
            raise LinkError(f"{self.port_name}: write failed: {e}") from None
        self._bytes_out += len(data)

    def read_frame(self, deadline_s: float):
        """The next complete frame (or ProtocolError instance); LinkTimeout when no byte
        arrives for ``deadline_s`` seconds."""
        last = time.monotonic()
        while not self._frames:
            try:
                chunk = self.port.read(max(1, getattr(self.port, "in_waiting", 0) or 1))
            except Exception as e:
                raise LinkError(f"{self.port_name}: read failed: {e}") from None
            if chunk:
                self._bytes_in += len(chunk)
                self._frames.extend(self._decoder.feed(chunk))
                last = time.monotonic()
            elif time.monotonic() - last > deadline_s:
                partial = f" ({self._decoder.pending} bytes of an unfinished frame)" \
                    if self._decoder.pending else ""
                raise LinkTimeout(f"{self.port_name}: no answer from the board for "
                                  f"{deadline_s:g} s{partial}")
        return self._frames.pop(0)

    def request(self, cmd: int, payload: bytes = b"", *, what: str = "") -> bytes:
        """Send one command and return its response payload (stop-and-wait)."""
        self._seq = (self._seq + 1) & 0xFF
        seq = self._seq
        self._write(P.frame(cmd, seq, payload))
        stale = 0
        while True:
            f = self.read_frame(self.timeout)
            if isinstance(f, P.ProtocolError):
                raise LinkError(f"{self.port_name}: garbled response to command 0x{cmd:02X}: "
                                f"{f}")
            rcmd, rseq, rp = f
            if rseq != seq:              # a stale answer to an earlier, abandoned request
                stale += 1
                if stale > 16:
                    raise LinkError(f"{self.port_name}: more than 16 frames that answer no "
                                    f"request (last SEQ {rseq}, waiting for {seq})")
                continue
            if rcmd == P.CMD_ERROR:
                raise BoardError(*P.parse_error(rp), what=what)
            if rcmd != cmd | P.RESPONSE:
                raise LinkError(f"{self.port_name}: response code 0x{rcmd:02X} to command "
                                f"0x{cmd:02X}")
            return rp

    def resync(self, quiet_s: float = 0.05) -> None:
        """Discard whatever is in flight: send an END (closes any partial frame on the board),
        wait until the line is quiet, then drop everything received."""
        self._write(bytes([P.END]))
        end = time.monotonic() + max(quiet_s, 0.0)
        while time.monotonic() < end:
            try:
                waiting = getattr(self.port, "in_waiting", 0)
                if waiting:
                    self.port.read(waiting)
                    end = time.monotonic() + quiet_s
                else:
                    time.sleep(0.005)
            except Exception as e:
                raise LinkError(f"{self.port_name}: read failed: {e}") from None
        self._decoder = P.FrameDecoder()
        self._frames.clear()

    # -- commands ---------------------------------------------------------------------------
    def connect(self) -> P.LinkInfo:
        """Resynchronise, identify the board and check its network against ``net``."""
        self.resync()
        self.info = self.identify()
        if self.net is not None:
            want = digest(self.net)
            if self.info.digest != want:
                raise LinkError(f"{self.port_name}: the board runs network "
                                f"{self.info.name!r} ({self.info.digest[:19]}...), not "
                                f"{self.net.name!r} ({want[:19]}...): build and load a "
                                f"bitstream of this network")
        return self.info

    def identify(self) -> P.LinkInfo:
        return P.parse_ident(self.request(P.CMD_IDENT, what="IDENT"))

    def reset(self) -> None:
        """Clear the board's network state (membranes, delay lines, read-out sums)."""
        self.request(P.CMD_RESET, what="RESET")

    def status(self) -> P.Status:
        return P.parse_status(self.request(P.CMD_STATUS, what="STATUS"))

    # -- running ----------------------------------------------------------------------------
    def _events(self, x, forced, steps) -> tuple[list[list[tuple[int, int, int]]], int]:
        info = self.info
        net = self.net
        if steps is None and x is None and forced:
            steps = len(next(iter(forced.values())))
        if net is not None:
            x, forced, T = validate_inputs(net, x, forced, steps)
        else:
            T = steps if steps is not None else (len(x) if x is not None else
                                                  len(next(iter((forced or {}).values()))))
        events = []
        for t in range(T):
            ev = []
            if x is not None and info.sizes[0]:
                row = np.asarray(x[t])
                ev += [(0, int(j), int(row[j])) for j in np.flatnonzero(row)]
            for l in sorted(forced or {}):
                ev += [(l, int(j), 1) for j in np.flatnonzero(np.asarray(forced[l][t]))]
            events.append(ev)
        return events, T

    def run(self, x: np.ndarray | None = None, forced: dict[int, np.ndarray] | None = None,
            *, steps: int | None = None, membranes: bool = True, spikes: bool = True,
            reset: bool = True, progress: Callable[[int, int], None] | None = None) -> Trace:
        """Run one sample from a cleared network and return its :class:`~model.ir.Trace`.

        ``x`` is the ``(T, n0)`` input, ``forced`` the forced rasters, as for
        :func:`sim.reference.simulate` (checked the same way when ``net`` was given).
        ``membranes``: also read every LIF layer's membrane at every step (the full trace,
        comparable bit for bit with the reference); without it the trace has only spikes
        (``v`` is empty) and the prediction. ``spikes=False`` (with ``membranes=False``) asks
        for the prediction alone, the least UART traffic (a deployed classifier); the trace's
        ``spikes`` is then empty too. ``reset=False`` continues from the board's current state
        (the prediction then covers every step since the last reset). ``progress(steps_done,
        T)`` is called after each frame.
        """
        if self.info is None:
            self.connect()
        info = self.info
        t0 = time.monotonic()
        b0, i0 = self._bytes_out, self._bytes_in
        events, T = self._events(x, forced, steps)      # checked before the board is touched
        if info.max_steps and T > info.max_steps:
            raise ValueError(f"a sample of {T} steps is longer than the board's read-out "
                             f"holds ({info.max_steps} steps): rebuild with a larger max_steps")
        if reset:
            self.reset()
        has_readout = info.kinds[-1] == "readout"
        flags = (P.FLAG_SPIKES if spikes else 0) | (P.FLAG_MEMBRANES if membranes else 0) | \
            (P.FLAG_PREDICT if has_readout else 0)
        chunks = P.step_chunks(info, events, flags)
        parts, pred, done = [], None, 0
        for payload, n in chunks:
            rp = self.request(P.CMD_STEP, payload, what=f"STEP at step {done}")
            out = P.parse_step_response(info, rp, n, payload[0])
            parts.append(out)
            if out.prediction is not None:
                pred = out.prediction
            done += n
            if progress:
                progress(done, T)
        lif = range(1, len(info.sizes))
        got_spikes = {l: np.concatenate([p.spikes[l] for p in parts]) for l in lif
                      if info.kinds[l] == "spiking"} if (spikes or membranes) else {}
        v = {l: np.concatenate([p.v[l] for p in parts]) for l in lif} if membranes else {}
        if pred == P.NO_PREDICTION:
            raise LinkError(f"the board's read-out overflowed after {T} steps (max_steps "
                            f"{info.max_steps})")
        self.last_timing = Timing(time.monotonic() - t0, len(chunks) + int(reset),
                                  self._bytes_out - b0, self._bytes_in - i0)
        return Trace(spikes=got_spikes, v=v, prediction=pred if has_readout else None)
