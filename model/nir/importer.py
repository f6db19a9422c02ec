"""NIR -> IR. Two ways in:

* **exact**: a graph that polychrony exported (its metadata says so) comes back as the same
  IR, every integer read from the nodes and checked against the metadata, never guessed;
* **quantised**: any other float graph becomes a chain of layers (:mod:`.graph`), each
  neuron node is discretised with forward Euler (:mod:`.convention`), and the weights,
  thresholds, leaks and delays are rounded to integers, each approximation measured and
  reported (:class:`ImportReport`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model.ir import (MAX_BETA_SHIFT, MAX_BITS, InputLayer, LIFLayer, Network, Projection,
                      current_bounds, signed_bits)

from .convention import DT, FORMAT, NIRError, discretise, leak_to_nir, threshold_to_nir
from .export import conv_matrix
from .graph import NEURONS, node_meta, read_graph, reduce_graph

__all__ = ["ImportReport", "from_nir", "read_nir"]


@dataclass
class ImportReport:
    """What the import did: ``mode`` (``exact`` or ``quantised``), one entry per layer, and
    ``notes`` (every approximation and assumption, one line each)."""

    mode: str
    dt: float
    layers: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def to_json(self) -> dict:
        return {"mode": self.mode, "dt": self.dt, "layers": self.layers, "notes": self.notes}


def _chain(g, input_key: str, raws) -> list[str]:
    """The neuron nodes in layer order: each takes feed-forward input from the one before."""
    ff: dict = {}
    for rp in raws:
        if rp.src != rp.dst:
            ff.setdefault(rp.dst, set()).add(rp.src)
    neurons = [k for k, n in g.nodes.items() if type(n).__name__ in NEURONS]
    for key in neurons:
        srcs = ff.get(key, set())
        if len(srcs) > 1:
            raise NIRError("takes feed-forward input from " + " and ".join(sorted(srcs))
                           + ": a polychrony layer is fed by the layer before it only "
                           "(and by itself)", node=key)
        if not srcs:
            raise NIRError("no feed-forward input reaches this neuron node (only its own "
                           "recurrence): it has no place in a chain of layers", node=key)
    chain = [input_key]
    nxt = {}
    for key in neurons:
        (src,) = ff[key]
        if src in nxt:
            raise NIRError(f"feeds both {nxt[src]!r} and {key!r}: polychrony's layers form "
                           "one chain", node=src)
        nxt[src] = key
    while chain[-1] in nxt:
        chain.append(nxt[chain[-1]])
    missing = [k for k in neurons if k not in chain]
    if missing:
        raise NIRError("is not on the chain of layers from the input (a cycle between "
                       "different layers?)", node=missing[0])
    return chain


def _groups(raws, chain):
    """Projections per (src layer, dst layer, polychrony projection index or None)."""
    index = {k: i for i, k in enumerate(chain)}
    groups: dict = {}
    for rp in raws:
        k = rp.meta.get("projection") if rp.meta and "projection" in rp.meta else None
        if rp.meta and "link" in rp.meta:
            continue
        key = (index[rp.src], index[rp.dst], k)
        groups.setdefault(key, []).append(rp)
    return groups


def _is_conv(m: np.ndarray) -> np.ndarray | None:
    """The shortest odd kernel whose "same" correlation matrix is ``m``, or None."""
    n = m.shape[0]
    if m.shape != (n, n) or n == 0:
        return None
    half = max((abs(o) for o in range(-(n - 1), n) if np.diagonal(m, o).any()), default=0)
    kernel = np.array([np.diagonal(m, o)[0] for o in range(-half, half + 1)])
    return kernel if np.array_equal(conv_matrix(kernel, n), m) else None


def _float_projections(rps, recurrent: bool, n_pre: int, n_post: int):
    """``[(kind, float weight, delay array)]`` for one group of parallel paths, with the
    recurrent step added back (IR delay = NIR delay + 1 on a recurrent path)."""
    dm = rps[0].dmap
    for rp in rps[1:]:
        dm = dm + rp.dmap
    one = 1 if recurrent else 0
    conv = all(rp.conv for rp in rps)
    if dm.maps is None:
        d = dm.dpre + one
        delay = np.int64(d[0]) if d.size and (d == d[0]).all() else d
        if not d.size:
            delay = np.int64(one)
        if conv:
            kernel = _is_conv(dm.m)
            if kernel is not None:
                return [("conv", kernel, delay)]
        return [("dense", dm.m, delay)]
    maps = {d: m for d, m in dm.maps.items() if np.any(m)} or {min(dm.maps): dm.maps[min(dm.maps)]}
    ds = sorted(maps)
    d0, span = ds[0], ds[-1] - ds[0] + 1
    w = np.zeros((n_post, n_pre, span))
    for d, m in maps.items():
        w[:, :, d - d0] = m
    return [("taps", w, np.int64(d0 + one))]


def _exact(net_meta: dict, g, chain, raws, biases, file) -> Network:
    """Rebuild the IR of a polychrony export from its nodes, checking every value against the
    metadata."""
    def bad(msg, node=""):
        raise NIRError(f"a polychrony export, but {msg} (edited after export? pass "
                       "--requantise to import it as a float graph)", node=node, file=file)

    layers = []
    for i, key in enumerate(chain):
        node = g.nodes[key]
        md = node_meta(node)
        if md is None or md.get("layer") != i:
            bad(f"its metadata does not say it is layer {i}", key)
        if i == 0:
            layers.append(InputLayer(n=int(np.prod(node.input_type["input"])),
                                     in_bits=md["in_bits"], name=md["name"]))
            continue
        leak = leak_to_nir(md["beta"], md["beta_shift"], net_meta["dt"])
        kind = type(node).__name__
        spiking = md["threshold"] is not None
        want = {(True, True): "IF", (True, False): "LIF", (False, True): "I",
                (False, False): "LI"}[(spiking, leak is None)]
        if kind != want:
            bad(f"layer {i} is a {kind}, its leak and threshold say {want}", key)
        if leak is not None and not np.allclose(node.tau, leak[0], rtol=1e-12, atol=0):
            bad(f"tau disagrees with the leak {md['beta']}/2**{md['beta_shift']}", key)
        if spiking and not np.all(np.asarray(node.v_threshold) ==
                                  threshold_to_nir(md["threshold"])):
            bad("v_threshold disagrees with the integer threshold", key)
        bias = biases.get(key, np.zeros(0))
        n = int(np.size(node.v_threshold if spiking else node.r))
        bias = np.zeros(n) if np.size(bias) == 0 else np.asarray(bias)
        if not np.array_equal(bias, np.rint(bias)):
            bad(f"the bias of layer {i} is not integer", key)
        layers.append(LIFLayer(n=n, v_bits=md["v_bits"], acc_bits=md["acc_bits"],
                               beta=md["beta"], beta_shift=md["beta_shift"],
                               threshold=md["threshold"], reset=md["reset"],
                               bias=np.rint(bias).astype(np.int64), forced=md["forced"],
                               name=md["name"]))
    by_index: dict = {}
    for rp in raws:
        if rp.meta is None:
            bad("a path between layers has no polychrony metadata", rp.nodes[-1] if rp.nodes
                else rp.dst)
        if "link" in rp.meta:
            continue
        by_index.setdefault(rp.meta["projection"], []).append(rp)
    projs = []
    for k in range(len(by_index)):
        if k not in by_index:
            bad(f"projection {k} is missing")
        rps = by_index[k]
        md = rps[0].meta
        n_post = layers[md["dst"]].n
        one = 1 if md["src"] == md["dst"] else 0

        def ints(a, what):
            a = np.asarray(a)
            if not np.array_equal(a, np.rint(a)):
                bad(f"the {what} of projection {k} are not integers", rps[0].nodes[-1])
            return np.rint(a).astype(np.int64)

        for rp in rps:
            if rp.dmap.maps is not None:
                bad(f"projection {k} has delays after its weights", rp.nodes[-1])
        if md["kind"] == "taps":
            taps = sorted(rps, key=lambda r: r.meta["tap"])
            if [r.meta["tap"] for r in taps] != list(range(md["taps"])):
                bad(f"projection {k} lacks some of its {md['taps']} taps")
            w = np.stack([ints(r.dmap.m, "weights") for r in taps], axis=2)
            for t, r in enumerate(taps):
                if not (r.dmap.dpre == md["d0"] + t - one).all():
                    bad(f"tap {t} of projection {k} has the wrong delay", r.nodes[-1])
            delay = np.int64(md["d0"])
        else:
            (rp,) = rps
            d = rp.dmap.dpre + one
            if md["delay"] == "scalar":
                if d.size and not (d == d[0]).all():
                    bad(f"projection {k} has one delay per neuron, its metadata says one",
                        rp.nodes[-1])
                delay = np.int64(d[0] if d.size else one)
            else:
                delay = d.astype(np.int64)
            m = ints(rp.dmap.m, "weights")
            if md["kind"] == "conv":
                w = np.asarray(md["kernel"], dtype=np.int64)
                if not np.array_equal(conv_matrix(w, n_post), m):
                    bad(f"projection {k}'s matrix is not its kernel's", rp.nodes[-1])
            else:
                w = m
        projs.append(Projection(kind=md["kind"], src=md["src"], dst=md["dst"],
                                w_bits=md["w_bits"], weight=w, delay=delay))
    return Network(layers=layers, projections=projs, max_delay=net_meta["max_delay"],
                   name=net_meta["name"], meta=net_meta["meta"])


def _leak_int(beta: float, leak_bits: int) -> tuple[int, int]:
    one = 1 << leak_bits
    return int(min(one, max(0, round(beta * one)))), leak_bits


def _quantised(g, chain, raws, biases, sizes, notes, *, dt, w_bits, v_bits, in_bits,
               leak_bits, calibration, name) -> tuple[Network, list]:
    groups = _groups(raws, chain)
    disc = {}
    for key in chain[1:]:
        disc[key] = discretise(g.nodes[key], sizes[key], dt, key)
    layer_infos = []
    layers = [InputLayer(n=sizes[chain[0]], in_bits=in_bits, name="input")]
    projs = []
    float_projs: dict = {}
    order = lambda kv: (kv[0][1], kv[0][0] == kv[0][1], str(kv[0][2]))  # noqa: E731
    for (s, d, _), rps in sorted(groups.items(), key=order):
        n_pre, n_post = sizes[chain[s]], sizes[chain[d]]
        for kind, w, delay in _float_projections(rps, s == d, n_pre, n_post):
            float_projs.setdefault(d, []).append((s, kind, w, delay))
    for d, key in enumerate(chain[1:], 1):
        dz = disc[key]
        n = sizes[key]
        if not np.allclose(dz.beta, dz.beta[0], rtol=0, atol=1e-12):
            raise NIRError("tau differs between neurons: a polychrony layer has one leak",
                           node=key)
        if dz.v_reset is not None and np.any(dz.v_reset != 0):
            raise NIRError(f"v_reset = {float(np.max(np.abs(dz.v_reset))):.6g}: polychrony "
                           "resets to 0 (or subtracts the threshold); a reset potential is "
                           "not supported", node=key)
        gain = dz.gain
        bias_f = gain * np.broadcast_to(biases.get(key, 0.0), (n,)) + dz.drive
        # Per-neuron gains and thresholds: spiking is unchanged when a neuron's current,
        # membrane and threshold are scaled alike, so each row is scaled to one threshold.
        row = gain.copy()
        th = None
        if dz.threshold is not None:
            if (dz.threshold <= 0).any():
                raise NIRError("v_threshold must be > 0 for polychrony's threshold (>= 1 in "
                               "integers)", node=key)
            th = float(dz.threshold.max())
            norm = th / dz.threshold
            row = row * norm
            bias_f = bias_f * norm
            if not np.allclose(norm, 1.0):
                notes.append(f"{key}: thresholds differ between neurons; each neuron's weights "
                             "and bias were scaled to one threshold (spikes unchanged)")
        elif not np.allclose(row, row[0]):
            notes.append(f"{key}: a read-out with per-neuron gains; the argmax read-out sees "
                         "them as scaled weights")
        fps = []
        uniform = np.allclose(row, row[0])
        for s, kind, w, delay in float_projs.get(d, []):
            if kind == "conv" and not uniform:
                kind, w = "dense", conv_matrix(w, n)
            if kind == "conv":
                fps.append((s, kind, w * row[0], delay))
            else:
                fps.append((s, kind, w * (row[:, None, None] if kind == "taps" else
                                          row[:, None]), delay))
        wmax = max([float(np.abs(w).max(initial=0)) for _, _, w, _ in fps] + [0.0])
        top = (1 << (w_bits - 1)) - 1
        on_grid = all(np.allclose(w, np.rint(w), rtol=0, atol=1e-6) for _, _, w, _ in fps)
        if on_grid and 0 < wmax <= top:
            scale = 1.0  # integer weights that fit w_bits stay as they are: no rounding
        elif wmax > 0:
            scale = top / wmax
        elif np.abs(bias_f).max(initial=0) > 0:
            scale = top / float(np.abs(bias_f).max())
        else:
            scale = 1.0
        err = 0.0
        for s, kind, w, delay in fps:
            wi = np.rint(w * scale)
            err = max(err, float(np.abs(wi - w * scale).max(initial=0)))
            projs.append(Projection(kind=kind, src=s, dst=d, w_bits=w_bits,
                                    weight=wi.astype(np.int64), delay=delay))
        threshold = None
        if th is not None:
            # v > th over integers is v >= floor(th) + 1 (th within float noise of an
            # integer counts as that integer)
            threshold = int(np.floor(th * scale + 1e-9 * max(1.0, th * scale))) + 1
        beta, shift = _leak_int(float(dz.beta[0]), leak_bits)
        layers.append(LIFLayer(n=n, v_bits=MAX_BITS,
                               acc_bits=MAX_BITS, beta=beta, beta_shift=shift,
                               threshold=threshold, reset="zero",
                               bias=np.rint(bias_f * scale).astype(np.int64), name=key))
        layer_infos.append({
            "layer": d, "node": key, "kind": type(g.nodes[key]).__name__, "neurons": n,
            "scale": scale, "weight_rounding_lsb": err,
            "threshold": None if th is None else {"float": th, "integer": threshold},
            "leak": {"float": float(dz.beta[0]), "integer": f"{beta}/2**{shift}",
                     "error": abs(beta / (1 << shift) - float(dz.beta[0]))},
        })
    max_delay = max([p.max_delay for p in projs] + [0])
    wide = Network(layers=layers, projections=projs, max_delay=max_delay, name=name)
    layers = list(wide.layers)
    for d in range(1, len(layers)):
        lo, hi = current_bounds(wide, d)
        acc = signed_bits(int(min(lo.min(initial=0), 0)), int(max(hi.max(initial=0), 0)))
        if acc > MAX_BITS:
            raise NIRError(f"the worst-case current needs {acc} bits, more than {MAX_BITS}",
                           node=chain[d])
        layers[d] = _with(layers[d], acc_bits=acc)
    sized = _size_membranes(layers, projs, max_delay, name, v_bits, calibration, layer_infos,
                            notes, chain)
    return sized, layer_infos


def _with(layer: LIFLayer, **changes) -> LIFLayer:
    f = dict(n=layer.n, v_bits=layer.v_bits, acc_bits=layer.acc_bits, beta=layer.beta,
             beta_shift=layer.beta_shift, threshold=layer.threshold, reset=layer.reset,
             bias=layer.bias, forced=layer.forced, name=layer.name)
    f.update(changes)
    return LIFLayer(**f)


def _size_membranes(layers, projs, max_delay, name, v_bits, calibration, infos, notes, chain):
    """Membrane widths: given (``v_bits``), or from the calibration inputs (the narrowest width
    whose run equals the run without saturation), or from the worst-case bound."""
    from model.quantise import membrane_bounds

    def net_with(widths):
        ls = [layers[0]] + [_with(l, v_bits=w) for l, w in zip(layers[1:], widths)]
        return Network(layers=ls, projections=projs, max_delay=max_delay, name=name)

    base = net_with([l.v_bits for l in layers[1:]])
    if v_bits is not None:
        widths = [v_bits] * (len(layers) - 1)
        for l, info in zip(layers[1:], infos):
            if l.threshold is not None and l.threshold > (1 << (v_bits - 1)) - 1:
                raise NIRError(f"the threshold {l.threshold} does not fit --v-bits {v_bits}",
                               node=l.name)
    else:
        widths = []
        for d, l in enumerate(layers[1:], 1):
            lo, hi = current_bounds(base, d)
            lo, hi = int(lo.min(initial=0)), int(hi.max(initial=0))
            if l.beta < (1 << l.beta_shift):
                vlo, vhi = membrane_bounds(lo, hi, beta=l.beta, beta_shift=l.beta_shift,
                                           threshold=l.threshold)
                widths.append(min(signed_bits(vlo, vhi), MAX_BITS))
            else:
                widths.append(min(signed_bits(8 * lo, 8 * hi + (l.threshold or 0)), MAX_BITS))
    if calibration is not None:
        from model.int_forward import integer_forward
        x = np.asarray(calibration)
        if x.ndim == 2:
            x = x[None]
        try:
            ref = integer_forward(net_with([MAX_BITS] * (len(layers) - 1)), x)
        except ValueError as e:
            raise NIRError(f"calibration inputs: {e}") from None
        if v_bits is None:
            widths = []
            for d, l in enumerate(layers[1:], 1):
                v = ref.v[d]
                lo = int(v.min()) if v.numel() else 0
                hi = int(v.max()) if v.numel() else 0
                widths.append(signed_bits(lo, max(hi, (l.threshold or 0))) + 1)
            while True:
                got = integer_forward(net_with(widths), x)
                diff = [d for d in range(1, len(layers))
                        if not _same(ref, got, d, layers[d].threshold is not None)]
                if not diff or all(widths[d - 1] >= MAX_BITS for d in diff):
                    break
                for d in diff:
                    widths[d - 1] = min(MAX_BITS, widths[d - 1] + 1)
            notes.append(f"membrane widths sized on {x.shape[0]} calibration sample(s) of "
                         f"{x.shape[1]} steps: no saturation changes a spike or membrane")
        else:
            got = integer_forward(net_with(widths), x)
            for d in range(1, len(layers)):
                if not _same(ref, got, d, layers[d].threshold is not None):
                    notes.append(f"{chain[d]}: --v-bits {v_bits} saturates on the "
                                 "calibration inputs and changes the run")
    else:
        notes.append("membrane widths from the worst-case bound (no calibration inputs; "
                     "pass --calibration to size them on data)")
    for info, w in zip(infos, widths):
        info["v_bits"] = w
    return net_with(widths)


def _same(a, b, d, spiking) -> bool:
    import torch
    if spiking and not torch.equal(a.spikes[d], b.spikes[d]):
        return False
    return torch.equal(a.v[d], b.v[d])


def from_nir(graph, *, file: str | None = None, dt: float | None = None,
             w_bits: int | None = None, v_bits: int | None = None, in_bits: int | None = None,
             leak_bits: int | None = None, calibration=None, name: str | None = None,
             requantise: bool = False) -> tuple[Network, ImportReport]:
    """A NIR graph as an IR :class:`~model.ir.Network`, with the report of how it was made.

    ``dt`` is the Euler step in seconds (default: the graph's own, else :data:`DT`);
    ``w_bits`` the signed weight width (8); ``v_bits`` the membrane width (default: sized on
    ``calibration``, a ``(B, T, n0)`` or ``(T, n0)`` integer array, or from the worst case);
    ``in_bits`` the input width (1: spikes); ``leak_bits`` the leak's ``beta_shift`` (12).
    A graph exported by polychrony comes back exactly, with its own widths and step, unless
    ``requantise``.
    """
    md = node_meta(graph) or {}
    ours = md.get("format") == FORMAT and not requantise
    given = {k: v for k, v in (("dt", dt), ("w_bits", w_bits), ("v_bits", v_bits),
                               ("in_bits", in_bits), ("leak_bits", leak_bits),
                               ("name", name)) if v is not None}
    if ours:
        dt = float(md["dt"])
    elif dt is None:
        dt = float(md.get("dt", DT)) if md.get("format") == FORMAT else DT
    w_bits = 8 if w_bits is None else w_bits
    in_bits = 1 if in_bits is None else in_bits
    leak_bits = 12 if leak_bits is None else leak_bits
    if not (np.isfinite(dt) and dt > 0):
        raise NIRError(f"dt must be a positive number of seconds, got {dt!r}", file=file)
    if not 1 <= w_bits <= MAX_BITS:
        raise NIRError(f"w_bits must be in 1..{MAX_BITS}, got {w_bits}", file=file)
    if v_bits is not None and not 2 <= v_bits <= MAX_BITS:
        raise NIRError(f"v_bits must be in 2..{MAX_BITS}, got {v_bits}", file=file)
    if not 1 <= in_bits <= 16:
        raise NIRError(f"in_bits must be in 1..16, got {in_bits}", file=file)
    if not 0 <= leak_bits <= min(MAX_BETA_SHIFT, 63 - MAX_BITS):
        raise NIRError(f"leak_bits must be in 0..{min(MAX_BETA_SHIFT, 63 - MAX_BITS)}, "
                       f"got {leak_bits}", file=file)
    try:
        g, sizes, inp, raws, biases, notes = reduce_graph(graph, dt)
        chain = _chain(g, inp, raws)
        report = ImportReport(mode="exact" if ours else "quantised", dt=dt, notes=notes)
        if ours:
            net = _exact(md, g, chain, raws, biases, file)
            report.layers = [{"layer": i, "node": k} for i, k in enumerate(chain[1:], 1)]
            if given:
                report.notes.append(
                    "a polychrony export keeps its own " + ", ".join(sorted(given))
                    + ": the options given apply only with requantise (--requantise)")
            return net, report
        default = name or (Path(file).stem if file else "nir")
        net, infos = _quantised(g, chain, raws, biases, sizes, report.notes, dt=dt,
                                w_bits=w_bits, v_bits=v_bits, in_bits=in_bits,
                                leak_bits=leak_bits, calibration=calibration, name=default)
    except NIRError as e:
        raise e.in_file(file) if file and not e.file else e
    report.layers = infos
    report.notes.insert(0, f"inputs taken as {in_bits}-bit unsigned integers"
                           + (" (spikes)" if in_bits == 1 else ""))
    meta = {"source": "nir", "file": Path(file).name if file else None, "dt": dt,
            "import": json.loads(json.dumps(report.to_json()))}
    net = Network(layers=net.layers, projections=net.projections, max_delay=net.max_delay,
                  name=net.name, meta=meta)
    return net, report


def read_nir(path: str | Path, **kw) -> tuple[Network, ImportReport]:
    """:func:`from_nir` of a NIR file."""
    return from_nir(read_graph(path), file=str(path), **kw)
