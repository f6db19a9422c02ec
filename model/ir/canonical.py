"""The canonical form of a network: its header (JSON) and its arrays, and the content digest
over both that names a network in files, manifests and reports."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

import numpy as np

from .layers import InputLayer, LIFLayer, Projection

if TYPE_CHECKING:
    from .network import Network

__all__ = ["FORMAT", "VERSION", "header_of", "arrays_of", "content_digest", "digest"]

FORMAT = "polychrony-ir"
VERSION = 1


def _layer_header(i: int, l) -> dict:
    if isinstance(l, InputLayer):
        return {"kind": "input", "name": l.name, "n": l.n, "in_bits": l.in_bits}
    return {"kind": "lif", "name": l.name, "n": l.n, "v_bits": l.v_bits, "acc_bits": l.acc_bits,
            "beta": l.beta, "beta_shift": l.beta_shift, "threshold": l.threshold,
            "reset": l.reset, "forced": l.forced, "bias": f"layer{i}.bias"}


def _proj_header(k: int, p: Projection) -> dict:
    return {"kind": p.kind, "src": p.src, "dst": p.dst, "w_bits": p.w_bits,
            "weight": f"proj{k}.weight", "delay": f"proj{k}.delay"}


def arrays_of(net: Network) -> dict[str, np.ndarray]:
    """Every array of ``net`` by its entry name (``layer{i}.bias``, ``proj{k}.weight``, ...)."""
    out = {}
    for i, l in enumerate(net.layers):
        if isinstance(l, LIFLayer):
            out[f"layer{i}.bias"] = l.bias
    for k, p in enumerate(net.projections):
        out[f"proj{k}.weight"] = p.weight
        out[f"proj{k}.delay"] = p.delay
    return out


def header_of(net: Network) -> dict:
    """The header of ``net`` without its digest, as ``docs/ir.md`` describes it."""
    return {"format": FORMAT, "version": VERSION, "name": net.name, "max_delay": net.max_delay,
            "layers": [_layer_header(i, l) for i, l in enumerate(net.layers)],
            "projections": [_proj_header(k, p) for k, p in enumerate(net.projections)],
            "meta": net.meta}


def content_digest(header: dict, arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over a header (its ``digest`` field left out) and arrays, as ``"sha256:..."``."""
    # docs/ir.md ("Content digest") specifies this byte for byte; change both or neither.
    h = hashlib.sha256()
    body = {k: v for k, v in header.items() if k != "digest"}
    h.update(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
    for name in sorted(arrays):
        a = np.asarray(arrays[name], dtype="<i8")  # not ascontiguousarray: it makes () into (1,)
        h.update(f"\n{name}:{list(a.shape)}\n".encode())
        h.update(a.tobytes(order="C"))
    return "sha256:" + h.hexdigest()


def digest(net: Network) -> str:
    """Content digest: SHA-256 over the canonical header and every array as little-endian int64."""
    return content_digest(header_of(net), arrays_of(net))
