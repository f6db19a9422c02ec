"""The host-link protocol in plain Python: framing, CRC, commands and payload formats.

``docs/protocol.md`` is the specification; this module is its executable form, shared by the
board-side generator (:mod:`rtl.link`) and the host driver (:mod:`boards.host`). It imports
numpy and :mod:`model.ir` only.

A frame on the wire is ``END, escape(body), END`` (SLIP bytes, RFC 1055). The body is::

    CMD  SEQ  PAYLOAD...  LEN(u16 LE)  CRC(u16 BE)

``LEN`` counts the payload bytes; ``CRC`` is CRC-16/CCITT-FALSE over ``CMD .. LEN``, sent most
significant byte first, so that the CRC of a whole correct body is 0. The length is a trailer
(not a header) so that the board can stream a response whose length it does not know in
advance, and still let the receiver check it.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass
from math import ceil

import numpy as np

from model.ir import Network, digest

__all__ = [
    "END", "ESC", "ESC_END", "ESC_ESC", "VERSION", "MAGIC", "MAX_BODY",
    "CMD_IDENT", "CMD_RESET", "CMD_STATUS", "CMD_STEP", "RESPONSE", "CMD_ERROR",
    "ERR_CRC", "ERR_LENGTH", "ERR_TOO_LONG", "ERR_COMMAND", "ERR_PAYLOAD", "ERROR_NAMES",
    "FLAG_SPIKES", "FLAG_MEMBRANES", "FLAG_PREDICT", "CONTINUES", "NO_PREDICTION",
    "ProtocolError", "crc16", "body", "frame", "FrameDecoder",
    "TokenFormat", "token_format", "LinkInfo", "ident_payload", "parse_ident",
    "MAX_RESPONSE", "response_bytes_per_step", "step_chunks", "StepOutput", "parse_step_response", "Status", "parse_status",
    "parse_error",
]

END, ESC, ESC_END, ESC_ESC = 0xC0, 0xDB, 0xDC, 0xDD
VERSION = 1
MAGIC = b"PLCY"
#: Bytes of the board's frame-buffer memory: the body of a frame (CMD + SEQ + payload + LEN +
#: CRC) and the IDENT reply stored above it; IDENT reports how many a frame may use.
MAX_BODY = 512

CMD_IDENT, CMD_RESET, CMD_STATUS, CMD_STEP = 0x01, 0x02, 0x03, 0x04
#: A response carries the command's code with this bit set, and the request's SEQ.
RESPONSE = 0x80
CMD_ERROR = 0xFF

ERR_CRC, ERR_LENGTH, ERR_TOO_LONG, ERR_COMMAND, ERR_PAYLOAD = 1, 2, 3, 4, 5
ERROR_NAMES = {ERR_CRC: "bad CRC", ERR_LENGTH: "bad length", ERR_TOO_LONG: "frame too long",
               ERR_COMMAND: "unknown command", ERR_PAYLOAD: "bad payload"}

FLAG_SPIKES, FLAG_MEMBRANES, FLAG_PREDICT = 1, 2, 4
#: Bit 15 of a step's event count: more events of the same step follow (in the next chunk).
CONTINUES = 0x8000
#: The prediction field when the sample ran longer than the read-out's ``max_steps``.
NO_PREDICTION = 0xFFFF


class ProtocolError(ValueError):
    """Bytes that do not follow the protocol (a response the driver cannot parse)."""


# --------------------------------------------------------------------------------------------
# CRC and framing.

def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, initial 0xFFFF, not reflected, no final XOR) of
    ``data``, continuing from ``crc`` (``crc16(b"123456789") == 0x29B1``). The gateware uses
    the same algorithm from ``amaranth.lib.crc``."""
    return binascii.crc_hqx(data, crc)


def body(cmd: int, seq: int, payload: bytes = b"") -> bytes:
    """The unescaped body of a frame: CMD, SEQ, payload, LEN, CRC."""
    if not 0 <= cmd <= 0xFF or not 0 <= seq <= 0xFF:
        raise ValueError(f"cmd and seq must be bytes, got {cmd}, {seq}")
    if len(payload) > 0xFFFF:
        raise ValueError(f"payload of {len(payload)} bytes exceeds the 65535-byte LEN field")
    b = bytes([cmd, seq]) + bytes(payload) + struct.pack("<H", len(payload))
    return b + struct.pack(">H", crc16(b))


def _escape(data: bytes) -> bytes:
    return data.replace(bytes([ESC]), bytes([ESC, ESC_ESC])).replace(bytes([END]),
                                                                    bytes([ESC, ESC_END]))


def frame(cmd: int, seq: int, payload: bytes = b"") -> bytes:
    """A whole frame on the wire (leading and trailing END)."""
    return bytes([END]) + _escape(body(cmd, seq, payload)) + bytes([END])


class FrameDecoder:
    """Splits a byte stream into frames; resynchronises at every END.

    :meth:`feed` returns the frames completed by the new bytes as ``(cmd, seq, payload)``, or
    as a :class:`ProtocolError` instance for a frame that failed its checks (too short, bad
    escape, length or CRC). Empty frames (two ENDs in a row) are skipped.
    """

    def __init__(self, max_body: int = 1 << 24):
        self.max_body = max_body
        self._buf = bytearray()
        self._esc = False
        self._bad = None

    def feed(self, data: bytes) -> list:
        out = []
        for b in data:
            if b == END:
                if self._buf or self._bad:
                    out.append(self._finish())
                self._buf.clear()
                self._esc, self._bad = False, None
                continue
            if self._esc:
                self._esc = False
                if b == ESC_END:
                    b = END
                elif b == ESC_ESC:
                    b = ESC
                else:
                    self._bad = self._bad or f"bad escape 0xDB 0x{b:02X}"
            elif b == ESC:
                self._esc = True
                continue
            if len(self._buf) >= self.max_body:
                self._bad = self._bad or f"frame longer than {self.max_body} bytes"
                continue
            self._buf.append(b)
        return out

    @property
    def pending(self) -> int:
        """Bytes of an unfinished frame."""
        return len(self._buf)

    def _finish(self):
        b = bytes(self._buf)
        if self._bad:
            return ProtocolError(self._bad)
        if len(b) < 6:
            return ProtocolError(f"frame of {len(b)} bytes is shorter than the 6-byte minimum")
        if crc16(b) != 0:
            return ProtocolError(f"bad CRC in a frame of {len(b)} bytes")
        n = struct.unpack("<H", b[-4:-2])[0]
        if n != len(b) - 6:
            return ProtocolError(f"LEN says {n} payload bytes, the frame holds {len(b) - 6}")
        return b[0], b[1], b[2:-4]


# --------------------------------------------------------------------------------------------
# What the board runs: the token format and the IDENT payload.

def _ibits(n: int) -> int:
    return max(1, (n - 1).bit_length())


@dataclass(frozen=True)
class TokenFormat:
    """How one input event is packed: ``index | value << index_bits | layer << (index_bits +
    value_bits)``, little-endian in ``nbytes`` bytes (the core's input record without its
    ``valid`` and ``last`` bits)."""

    index_bits: int
    value_bits: int
    layer_bits: int

    @property
    def bits(self) -> int:
        return self.index_bits + self.value_bits + self.layer_bits

    @property
    def nbytes(self) -> int:
        return ceil(self.bits / 8)

    def pack(self, layer: int, index: int, value: int) -> int:
        return index | value << self.index_bits | layer << (self.index_bits + self.value_bits)


def token_format(net: Network) -> TokenFormat:
    """The token format of ``net`` (the same field widths as ``rtl.interface.step_in_layout``)."""
    return TokenFormat(_ibits(max(l.n for l in net.layers)), max(1, net.layers[0].in_bits),
                       _ibits(len(net.layers)))


@dataclass(frozen=True)
class LinkInfo:
    """What IDENT reports: the protocol, the build and the network the board runs."""

    version: int
    max_body: int
    lanes: int
    clock_hz: int
    baud: int
    max_steps: int            # longest sample the read-out's sums hold (0: no read-out)
    digest: str               # "sha256:..." of the IR
    name: str
    sizes: tuple[int, ...]    # neurons (channels for layer 0) per layer
    kinds: tuple[str, ...]    # "input", "spiking" or "readout" per layer
    forced: tuple[bool, ...]
    bits: tuple[int, ...]     # in_bits of layer 0, v_bits of the others
    token: TokenFormat

    @property
    def max_payload(self) -> int:
        return self.max_body - 6

    def value_bytes(self, layer: int) -> int:
        """Bytes of one membrane value of ``layer`` in a STEP response."""
        return ceil(self.bits[layer] / 8)


_KINDS = ("input", "spiking", "readout")


def ident_payload(net: Network, *, lanes: int, clock_hz: int, baud: int, max_steps: int,
                  max_body: int = MAX_BODY) -> bytes:
    """The IDENT response payload of a board running ``net`` (see ``docs/protocol.md``)."""
    tok = token_format(net)
    hexd = digest(net).split(":", 1)[1]
    name = net.name.encode()[:64]
    out = MAGIC + struct.pack("<BBHHIII", VERSION, 0, max_body, lanes, int(clock_hz), int(baud),
                              max_steps)
    out += bytes.fromhex(hexd)
    out += struct.pack("<BBBB", tok.index_bits, tok.value_bits, tok.layer_bits, len(net.layers))
    for l, layer in enumerate(net.layers):
        kind = 0 if l == 0 else (1 if layer.spiking else 2)
        bits = layer.in_bits if l == 0 else layer.v_bits
        out += struct.pack("<HBBB", layer.n, kind, int(bool(getattr(layer, "forced", False))),
                           bits)
    return out + bytes([len(name)]) + name


def parse_ident(p: bytes) -> LinkInfo:
    """The :class:`LinkInfo` of an IDENT payload."""
    try:
        if p[:4] != MAGIC:
            raise ProtocolError(f"IDENT payload does not start with {MAGIC!r} (got {p[:4]!r}): "
                                f"not a polychrony board")
        version, _, max_body, lanes, clock_hz, baud, max_steps = struct.unpack_from(
            "<BBHHIII", p, 4)
        if version != VERSION:
            raise ProtocolError(f"board speaks protocol version {version}, this driver "
                                f"{VERSION}")
        off = 4 + struct.calcsize("<BBHHIII")
        dig = "sha256:" + p[off:off + 32].hex()
        off += 32
        ib, vb, lb, nl = struct.unpack_from("<BBBB", p, off)
        off += 4
        sizes, kinds, forced, bits = [], [], [], []
        for _ in range(nl):
            n, kind, f, b = struct.unpack_from("<HBBB", p, off)
            off += 5
            sizes.append(n), kinds.append(_KINDS[kind]), forced.append(bool(f)), bits.append(b)
        name = p[off + 1:off + 1 + p[off]].decode()
        if off + 1 + p[off] != len(p):
            raise ProtocolError(f"IDENT payload has {len(p)} bytes, expected {off + 1 + p[off]}")
    except (struct.error, IndexError, UnicodeDecodeError) as e:
        raise ProtocolError(f"malformed IDENT payload ({len(p)} bytes): {e}") from None
    return LinkInfo(version, max_body, lanes, clock_hz, baud, max_steps, dig, name,
                    tuple(sizes), tuple(kinds), tuple(forced), tuple(bits),
                    TokenFormat(ib, vb, lb))


# --------------------------------------------------------------------------------------------
# STEP: requests and responses.

#: The largest response payload LEN can describe.
MAX_RESPONSE = 0xFFFF


def response_bytes_per_step(info: LinkInfo, flags: int) -> int:
    """The most response bytes one step can produce with ``flags`` (every neuron spiking)."""
    total = 0
    for l in range(1, len(info.sizes)):
        n, spiking = info.sizes[l], info.kinds[l] == "spiking"
        if flags & FLAG_MEMBRANES:
            groups = ceil(n / info.lanes)
            total += n * info.value_bytes(l) + (groups * ceil(info.lanes / 8) if spiking else 0)
        elif flags & FLAG_SPIKES and spiking:
            total += 2 * n + 2
    return total


def step_chunks(info: LinkInfo, events: list[list[tuple[int, int, int]]], flags: int,
                max_payload: int | None = None) -> list[tuple[bytes, int]]:
    """Pack the steps' events into STEP payloads of at most ``max_payload`` bytes.

    ``events[t]`` lists step t's events as ``(layer, index, value)``. Returns ``(payload,
    steps)`` pairs: each payload is the flags byte then, per step (or part of a step), a u16
    count and that many tokens; a step split across payloads has :data:`CONTINUES` set on all
    but its final count. ``FLAG_PREDICT`` goes on the final payload only; ``steps`` is the
    number of steps a payload completes. A payload completes at most as many steps as keep its
    response within :data:`MAX_RESPONSE` bytes even if every neuron spikes.
    """
    per_step = response_bytes_per_step(info, flags)
    max_steps = (MAX_RESPONSE - 2) // per_step if per_step else 1 << 30
    if max_steps < 1:
        raise ValueError(f"one step's response ({per_step} bytes with flags {flags:#x}) "
                         f"exceeds the {MAX_RESPONSE}-byte LEN field: ask for spikes instead "
                         f"of membranes")
    cap = (info.max_payload if max_payload is None else max_payload) - 1
    tb = info.token.nbytes
    per = (cap - 2) // tb            # events that fit one count
    if per < 1:
        raise ValueError(f"max_payload {cap + 1} cannot hold one event")
    chunks, cur, done = [], bytearray(), 0

    def flush():
        nonlocal cur, done
        chunks.append([bytearray([flags & ~FLAG_PREDICT]) + cur, done])
        cur, done = bytearray(), 0

    for step in events:
        toks = [info.token.pack(*e).to_bytes(tb, "little") for e in step]
        while True:
            room = (cap - len(cur) - 2) // tb
            if room < 0 or (room < len(toks) and room < 1):
                flush()
                continue
            take = toks[:room]
            toks = toks[room:]
            cur += struct.pack("<H", len(take) | (CONTINUES if toks else 0)) + b"".join(take)
            if not toks:
                done += 1
                if done == max_steps:
                    flush()
                break
            flush()
    if cur or not chunks:
        flush()
    if flags & FLAG_PREDICT:
        chunks[-1][0][0] |= FLAG_PREDICT
    return [(bytes(p), n) for p, n in chunks]


@dataclass
class StepOutput:
    """The parsed STEP response: per step, spikes and (optionally) membranes per layer."""

    spikes: dict[int, np.ndarray]      # layer -> (steps, n) uint8
    v: dict[int, np.ndarray]           # layer -> (steps, n) int64 (when requested)
    prediction: int | None


def parse_step_response(info: LinkInfo, p: bytes, steps: int, flags: int) -> StepOutput:
    """Decode a STEP response payload of ``steps`` steps sent with ``flags``.

    Per step, per LIF layer in order: with ``FLAG_MEMBRANES``, per group of ``lanes`` neurons
    the spike bits (``ceil(lanes / 8)`` bytes, spiking layers only) then each neuron's membrane
    (:meth:`LinkInfo.value_bytes` bytes, little-endian two's complement); else, with
    ``FLAG_SPIKES``, a spiking layer's spiking neuron indices (u16 each) ended by 0xFFFF. With
    ``FLAG_PREDICT``, a u16 prediction ends the payload.
    """
    lif = range(1, len(info.sizes))
    spiking = [l for l in lif if info.kinds[l] == "spiking"]
    spikes = {l: np.zeros((steps, info.sizes[l]), np.uint8) for l in spiking}
    v = {l: np.zeros((steps, info.sizes[l]), np.int64) for l in lif} \
        if flags & FLAG_MEMBRANES else {}
    P = info.lanes
    sb = ceil(P / 8)
    off = 0

    def take(k: int) -> bytes:
        nonlocal off
        if off + k > len(p):
            raise ProtocolError(f"STEP response of {len(p)} bytes ends early (needed {k} more "
                                f"at byte {off})")
        off += k
        return p[off - k:off]

    for t in range(steps):
        for l in lif:
            n = info.sizes[l]
            if flags & FLAG_MEMBRANES:
                vb = info.value_bytes(l)
                for g in range(0, n, P):
                    if l in spikes:
                        bits = int.from_bytes(take(sb), "little")
                        for k in range(min(P, n - g)):
                            spikes[l][t, g + k] = bits >> k & 1
                    for k in range(min(P, n - g)):
                        v[l][t, g + k] = int.from_bytes(take(vb), "little", signed=True)
            elif flags & FLAG_SPIKES and l in spikes:
                while True:
                    j = struct.unpack("<H", take(2))[0]
                    if j == 0xFFFF:
                        break
                    if j >= n:
                        raise ProtocolError(f"step {t} layer {l}: spike index {j} >= {n}")
                    spikes[l][t, j] = 1
    pred = None
    if flags & FLAG_PREDICT:
        pred = struct.unpack("<H", take(2))[0]
    if off != len(p):
        raise ProtocolError(f"STEP response has {len(p) - off} bytes after its {steps} steps")
    return StepOutput(spikes, v, pred)


@dataclass(frozen=True)
class Status:
    """The board's counters since configuration (the step count since the last RESET)."""

    steps: int          # steps run since the last RESET
    crc_errors: int     # frames dropped for a bad CRC
    length_errors: int  # frames dropped for a bad LEN, a short body or an overflow
    dropped: int        # frames that arrived while the board was busy
    uart_errors: int    # bytes with a bad stop bit (and receiver overruns)


def parse_status(p: bytes) -> Status:
    if len(p) != 12:
        raise ProtocolError(f"STATUS payload has {len(p)} bytes, expected 12")
    return Status(*struct.unpack("<IHHHH", p))


def parse_error(p: bytes) -> tuple[int, int, int]:
    """``(code, command, detail)`` of an ERROR payload."""
    if len(p) != 4:
        raise ProtocolError(f"ERROR payload has {len(p)} bytes, expected 4")
    return p[0], p[1], struct.unpack("<H", p[2:4])[0]
