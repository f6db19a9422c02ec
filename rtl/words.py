"""Weight words: signed integers packed into memory words, element 0 in the low bits."""

from __future__ import annotations

import numpy as np

__all__ = ["pack_word", "pack_rows", "live_bits"]


def pack_word(values, width: int) -> int:
    """Pack signed integers into one word, element 0 in the low bits."""
    word = 0
    mask = (1 << width) - 1
    for k, x in enumerate(values):
        word |= (int(x) & mask) << (k * width)
    return word


def pack_rows(rows: np.ndarray, width: int, chunk: int = 1 << 15) -> list[int]:
    """:func:`pack_word` of every row of ``rows`` (``(words, elements)`` signed integers), done
    with numpy a chunk of rows at a time (a large working memory has hundreds of thousands of
    words of a hundred bits and more)."""
    rows = np.asarray(rows, np.int64) & ((1 << width) - 1)
    n, k = rows.shape
    if k * width <= 63:
        shifts = np.arange(k, dtype=np.int64) * width
        return [int(x) for x in (rows << shifts).sum(1)]
    out = []
    bit = np.arange(width, dtype=np.int64)
    for a in range(0, n, chunk):
        part = rows[a:a + chunk]
        bits = ((part[:, :, None] >> bit) & 1).astype(np.uint8).reshape(len(part), k * width)
        packed = np.packbits(bits, axis=1, bitorder="little")
        out += [int.from_bytes(r.tobytes(), "little") for r in packed]
    return out


def live_bits(rows: np.ndarray, width: int, bank: int | None = None) -> list[int]:
    """Bits of the word that :func:`pack_rows` packs ``rows`` into (``width`` bits per
    element) that are not the same in every row, per bank of ``bank`` rows (one bank when
    None): Yosys removes a ROM's constant bit columns before it maps the rest to block RAM,
    so these are the bits a bank really stores."""
    rows = np.asarray(rows, np.int64) & ((1 << width) - 1)
    bank = bank or max(1, len(rows))
    out = []
    for a in range(0, len(rows), bank):
        part = rows[a:a + bank]
        ones = np.bitwise_or.reduce(part, axis=0)
        both = np.bitwise_and.reduce(part, axis=0)
        differ = ones & ~both
        out.append(int(sum(bin(int(x)).count("1") for x in differ)))
    return out
