"""rtl.link.protocol: CRC, framing, the decoder, IDENT and STEP chunks (pure Python)."""

import random
import struct

import pytest

from rtl.link import protocol as P
from sim.randnet import random_network


# --------------------------------------------------------------------------------------------
# Protocol units (pure Python).

def test_crc_known_answer_and_zero_residue():
    assert P.crc16(b"123456789") == 0x29B1          # CRC-16/CCITT-FALSE check value
    b = P.body(0x04, 9, bytes(range(40)))
    assert P.crc16(b) == 0 and P.crc16(b[:-1] + bytes([b[-1] ^ 1])) != 0


def test_frame_escapes_and_decoder_round_trip():
    payload = bytes([P.END, P.ESC, 0x00, P.ESC_END, P.END, P.END])
    f = P.frame(P.CMD_STEP, P.END, payload)
    assert f[0] == P.END and f[-1] == P.END and P.END not in f[1:-1]
    dec = P.FrameDecoder()
    assert dec.feed(f[:5]) == [] and dec.pending > 0
    assert dec.feed(f[5:]) == [(P.CMD_STEP, P.END, payload)]


def test_decoder_resynchronises_after_garbage_and_truncation():
    good = P.frame(P.CMD_IDENT, 3)
    dec = P.FrameDecoder()
    out = dec.feed(b"\x01\x02\xff" + good[:-3] + good + good)
    # The garbage (ended by the truncated frame's END) and the truncated frame (ended by the
    # next frame's END) are two bad frames; both good frames survive.
    assert [o for o in out if not isinstance(o, P.ProtocolError)] == [(P.CMD_IDENT, 3, b"")] * 2
    assert sum(isinstance(o, P.ProtocolError) for o in out) == 2


def test_decoder_checks_length_trailer():
    b = bytearray(P.body(P.CMD_STEP, 1, b"abc"))
    b[-4] = 4                                              # LEN says 4, the body holds 3
    b[-2:] = struct.pack(">H", P.crc16(bytes(b[:-2])))     # with a valid CRC
    out = P.FrameDecoder().feed(bytes([P.END]) + bytes(b) + bytes([P.END]))
    assert isinstance(out[0], P.ProtocolError) and "LEN" in str(out[0])


def _info(net, max_body=P.MAX_BODY, lanes=1):
    return P.parse_ident(P.ident_payload(net, lanes=lanes, clock_hz=12_000_000, baud=1_000_000,
                                         max_steps=100, max_body=max_body))


def test_ident_round_trip():
    net = random_network(1)
    info = _info(net, lanes=3)
    assert info.sizes == tuple(l.n for l in net.layers) and info.lanes == 3
    assert info.digest.startswith("sha256:") and info.name == net.name
    assert info.kinds[0] == "input" and info.token == P.token_format(net)
    with pytest.raises(P.ProtocolError, match="not a polychrony board"):
        P.parse_ident(b"XXXX" + bytes(60))


def _unpack_chunks(info, chunks):
    """Events per completed step from STEP payloads (the board's parse, in Python)."""
    steps, cur, split = [], [], 0
    tb = info.token.nbytes
    ib, vb = info.token.index_bits, info.token.value_bits
    for payload, n in chunks:
        off, done = 1, 0
        while off < len(payload):
            cnt = struct.unpack_from("<H", payload, off)[0]
            off += 2
            for _ in range(cnt & 0x7FFF):
                tok = int.from_bytes(payload[off:off + tb], "little")
                off += tb
                cur.append((tok >> (ib + vb), tok & ((1 << ib) - 1), tok >> ib & ((1 << vb) - 1)))
            if not cnt & P.CONTINUES:
                steps.append(cur)
                cur, done = [], done + 1
            else:
                split += 1
        assert done == n and len(payload) <= info.max_payload
    return steps, split


@pytest.mark.parametrize("max_body", [12, 40, P.MAX_BODY])
def test_step_chunks_split_steps_and_round_trip(max_body):
    net = random_network(0)
    info = _info(net, max_body=max_body)
    rng = random.Random(max_body)
    n0, vmax = net.layers[0].n, (1 << net.layers[0].in_bits) - 1
    events = [[(0, j, rng.randint(1, vmax)) for j in sorted(rng.sample(range(n0), rng.randint(0, n0)))]
              for _ in range(60)]
    chunks = P.step_chunks(info, events, P.FLAG_SPIKES | P.FLAG_PREDICT)
    steps, split = _unpack_chunks(info, chunks)
    assert steps == events
    assert all(p[0] == P.FLAG_SPIKES for p, _ in chunks[:-1])
    assert chunks[-1][0][0] == P.FLAG_SPIKES | P.FLAG_PREDICT
    # 6-byte payloads hold 3 one-byte tokens: steps of 4 or 5 events must be split (larger
    # payloads are filled greedily, so a step may be split at any payload's end).
    if max_body == 12:
        assert split > 0


def test_step_chunks_keep_responses_within_the_len_field(wm8):
    from dataclasses import replace
    info = replace(_info(wm8), sizes=(0, 4000), bits=(1, 24))
    per = P.response_bytes_per_step(info, P.FLAG_MEMBRANES)
    assert per == 4000 * 3 + 4000                # 1 lane: a spike byte per group of 1
    chunks = P.step_chunks(info, [[]] * 40, P.FLAG_MEMBRANES)
    assert all(n * per <= P.MAX_RESPONSE for _, n in chunks) and sum(n for _, n in chunks) == 40
    assert P.response_bytes_per_step(info, P.FLAG_SPIKES) == 2 * 4000 + 2
    with pytest.raises(ValueError, match="LEN field"):
        P.step_chunks(replace(info, sizes=(0, 40000)), [[]], P.FLAG_MEMBRANES)
