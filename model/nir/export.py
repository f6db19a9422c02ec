"""IR -> NIR: a polychrony network as a NIR graph that any NIR reader can run in float, with
everything NIR cannot say kept in ``metadata["polychrony"]`` so that :func:`model.nir.from_nir`
gives the same IR back, byte for byte.

Node keys: ``input``; ``layer{i}`` for LIF layer ``i``; ``proj{k}`` for projection ``k``
(``proj{k}.tap{t}`` for tap ``t`` of a ``taps`` projection) and ``<that>.delay`` for the Delay
node before it; ``link{i}`` (zero weights) into a layer that no feed-forward projection feeds; ``output`` after the last layer.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from model.ir import Network, Projection

from .convention import DT, FORMAT, NAMESPACE, VERSION, leak_to_nir, threshold_to_nir

__all__ = ["to_nir", "write_nir", "conv_matrix", "summary"]

_F32_EXACT = 1 << 24


def _meta(**fields) -> dict:
    return {NAMESPACE: json.dumps(fields, separators=(",", ":"))}  # key order kept: meta


def _floats(a: np.ndarray) -> np.ndarray:
    """Integers as floats a reader can take: float32 while exact, float64 beyond 2**24."""
    a = np.asarray(a, dtype=np.int64)
    exact32 = not a.size or int(np.abs(a).max()) < _F32_EXACT
    return a.astype(np.float32 if exact32 else np.float64)


def conv_matrix(kernel: np.ndarray, n: int) -> np.ndarray:
    """The ``(n, n)`` matrix (of the kernel's dtype) of a ``conv`` projection: post ``i`` hears pre
    ``j = i + k - (K-1)/2`` through ``kernel[k]`` when ``0 <= j < n`` (zero "same" padding)."""
    kernel = np.asarray(kernel)
    half = (kernel.size - 1) // 2
    m = np.zeros((n, n), dtype=kernel.dtype)
    i = np.arange(n)
    for k, w in enumerate(kernel):
        j = i + k - half
        ok = (j >= 0) & (j < n)
        m[i[ok], j[ok]] = w
    return m


def _neuron(nir, layer, i: int, dt: float):
    leak = leak_to_nir(layer.beta, layer.beta_shift, dt)
    n = layer.n
    meta = _meta(layer=i, name=layer.name, v_bits=layer.v_bits, acc_bits=layer.acc_bits,
                 beta=layer.beta, beta_shift=layer.beta_shift, threshold=layer.threshold,
                 reset=layer.reset, forced=layer.forced)
    zeros = np.zeros(n)
    if layer.threshold is None:
        if leak is None:
            return nir.I(r=np.full(n, 1.0 / dt), metadata=meta)
        tau, r = leak
        return nir.LI(tau=np.full(n, tau), r=np.full(n, r), v_leak=zeros, metadata=meta)
    th = np.full(n, threshold_to_nir(layer.threshold))
    if leak is None:
        return nir.IF(r=np.full(n, 1.0 / dt), v_threshold=th, v_reset=zeros, metadata=meta)
    tau, r = leak
    return nir.LIF(tau=np.full(n, tau), r=np.full(n, r), v_leak=zeros, v_threshold=th,
                   v_reset=zeros, metadata=meta)


def _branches(p: Projection, n_pre: int, n_post: int):
    """``(suffix, weight matrix, NIR delay steps per pre, extra metadata)`` per branch of a
    projection: one branch, or one per tap. A recurrent branch is one step shorter in NIR:
    the step that a discrete-time reader adds on every recurrent cycle."""
    one = 1 if p.recurrent else 0
    if p.kind == "taps":
        for t in range(p.n_taps):
            d = np.full(n_pre, int(p.delay) + t - one, dtype=np.int64)
            yield f".tap{t}", p.weight[:, :, t], d, {"tap": t, "taps": p.n_taps,
                                                      "d0": int(p.delay)}
        return
    w = conv_matrix(p.weight, n_post) if p.kind == "conv" else p.weight
    extra = {"delay": "scalar" if p.delay.ndim == 0 else "per-pre"}
    if p.kind == "conv":
        extra["kernel"] = [int(v) for v in p.weight]
    yield "", w, p.delays_of_pre(n_pre) - one, extra


def to_nir(net: Network, *, dt: float = DT):
    """The NIR graph (``nir.NIRGraph``) of ``net``, with Euler step ``dt`` seconds."""
    import nir
    if not (isinstance(dt, float) and np.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a positive number of seconds, got {dt!r}")
    nodes: dict = {}
    edges: list = []
    inp = net.layers[0]
    nodes["input"] = nir.Input(input_type={"input": np.array([inp.n])},
                               metadata=_meta(layer=0, name=inp.name, in_bits=inp.in_bits))
    for i, layer in enumerate(net.layers[1:], 1):
        nodes[f"layer{i}"] = _neuron(nir, layer, i, dt)
    src_key = lambda l: "input" if l == 0 else f"layer{l}"  # noqa: E731
    biased = set()
    for k, p in enumerate(net.projections):
        n_pre, n_post = net.layers[p.src].n, net.layers[p.dst].n
        for suffix, w, d, extra in _branches(p, n_pre, n_post):
            key = f"proj{k}{suffix}"
            fields = dict(projection=k, kind=p.kind, src=p.src, dst=p.dst, w_bits=p.w_bits,
                          **extra)
            if p.dst not in biased:
                biased.add(p.dst)
                fields["bias"] = p.dst
                node = nir.Affine(weight=_floats(w), bias=_floats(net.layers[p.dst].bias),
                                  metadata=_meta(**fields))
            else:
                node = nir.Linear(weight=_floats(w), metadata=_meta(**fields))
            nodes[key] = node
            if d.size and d.any():
                nodes[f"{key}.delay"] = nir.Delay(delay=d.astype(np.float64) * dt)
                edges += [(src_key(p.src), f"{key}.delay"), (f"{key}.delay", key)]
            else:
                edges.append((src_key(p.src), key))
            edges.append((key, f"layer{p.dst}"))
    fed = {p.dst for p in net.projections if not p.recurrent}
    for i, layer in enumerate(net.layers[1:], 1):
        if i in fed:
            continue
        # A layer no feed-forward projection feeds still hangs from the layer before it in
        # NIR (a reader finds its layers by following edges from the input): zero weights,
        # carrying the layer's bias if no projection does (NIR has no constant source).
        n_pre = net.layers[i - 1].n
        w = np.zeros((layer.n, n_pre), np.float32)
        if i in biased:
            nodes[f"link{i}"] = nir.Linear(weight=w, metadata=_meta(link=i))
        else:
            nodes[f"link{i}"] = nir.Affine(weight=w, bias=_floats(layer.bias),
                                           metadata=_meta(link=i, bias=i))
        edges += [(src_key(i - 1), f"link{i}"), (f"link{i}", f"layer{i}")]
    last = net.layers[-1]
    nodes["output"] = nir.Output(output_type={"output": np.array([last.n])})
    edges.append((f"layer{len(net.layers) - 1}", "output"))
    meta = _meta(format=FORMAT, version=VERSION, dt=dt, name=net.name,
                 max_delay=net.max_delay, meta=net.meta,
                 readout=("argmax over neurons of the summed membrane of the last layer"
                          if last.threshold is None else "spikes of the last layer"))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta, type_check=True)


def write_nir(net: Network, path: str | Path, *, dt: float = DT) -> Path:
    """Write ``net`` as a NIR HDF5 file at ``path``; return the path."""
    import nir
    path = Path(path)
    graph = to_nir(net, dt=dt)
    tmp = path.with_name(path.name + ".tmp")
    nir.write(tmp, graph)
    tmp.replace(path)
    return path


def summary(graph) -> dict:
    """Node counts by type, the number of delayed branches and the longest NIR delay."""
    kinds = Counter(type(n).__name__ for n in graph.nodes.values())
    delays = [n.delay for n in graph.nodes.values() if type(n).__name__ == "Delay"]
    longest = max((float(np.max(d)) for d in delays if np.size(d)), default=0.0)
    return {"nodes": len(graph.nodes), "edges": len(graph.edges),
            "types": dict(sorted(kinds.items())), "delay_nodes": len(delays),
            "longest_delay_s": longest}
