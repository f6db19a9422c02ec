"""Reading a NIR file safely and reducing its graph to polychrony's shape: a chain of neuron
layers, each fed by projections from the layer before it or from itself.

Every path of synapse nodes (Linear, Affine, Scale, Conv1d, Flatten, Delay) from one neuron
node (or the graph's input) to the next is linear, so it is reduced to a map ``{delay in steps:
matrix}`` with ``out(t) = sum_d M_d @ in(t - d)``; paths between the same two layers add.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .convention import NAMESPACE, NIRError

__all__ = ["read_graph", "Graph", "DMap", "RawProjection", "reduce_graph", "node_meta", "MAX_ELEMENTS"]

#: The most array elements a NIR file may hold (all datasets together) before it is refused
#: unread: 2**27 values (1 GiB of float64).
MAX_ELEMENTS = 1 << 27
NEURONS = ("LIF", "IF", "LI", "I")
SYNAPSES = ("Linear", "Affine", "Scale", "Conv1d", "Flatten", "Delay")
_REFUSED = {
    "CubaLIF": "its synaptic current (tau_syn) is a second state per neuron that polychrony's "
               "LIF layer does not have; fold it into a LIF (tau_syn -> 0) before export",
    "CubaLI": "its synaptic current (tau_syn) is a second state per neuron that polychrony's "
              "read-out layer does not have",
    "Threshold": "a bare threshold without a membrane is not a polychrony layer",
    "Conv2d": "polychrony's layers are 1-D vectors; 2-D convolutions are not supported",
    "SumPool2d": "polychrony's layers are 1-D vectors; pooling is not supported",
    "AvgPool2d": "polychrony's layers are 1-D vectors; pooling is not supported",
}


def node_meta(node) -> dict | None:
    """polychrony's metadata of a node (a JSON object), or None."""
    md = getattr(node, "metadata", None) or {}
    raw = md.get(NAMESPACE) if isinstance(md, dict) else None
    if raw is None:
        return None
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    try:
        out = json.loads(str(raw))
    except ValueError:
        return None
    return out if isinstance(out, dict) else None


def _scan(path: Path, file: str) -> None:
    """Refuse, before reading any array, a file that is not HDF5, holds no NIR graph, or holds
    more than :data:`MAX_ELEMENTS` values or data types other than numbers and strings."""
    import h5py
    if not path.exists():
        raise NIRError("no such file", file=file)
    if not path.is_file():
        raise NIRError("not a file", file=file)
    if not h5py.is_hdf5(path):
        raise NIRError("not an HDF5 file (a NIR graph is an HDF5 file written by nir.write)",
                       file=file)
    total = 0
    bad: list[str] = []
    with h5py.File(path, "r") as f:
        if "node" not in f or not isinstance(f["node"], h5py.Group) or "type" not in f["node"]:
            raise NIRError("HDF5 file without a NIR graph (no 'node' group with a 'type')",
                           file=file)

        def visit(name, obj):
            nonlocal total
            if isinstance(obj, h5py.Dataset):
                total += int(obj.size or 0)
                if obj.dtype.kind not in "biufSOU" or (obj.dtype.kind == "O" and
                                                       h5py.check_string_dtype(obj.dtype)
                                                       is None):
                    bad.append(f"{name} ({obj.dtype})")
        f.visititems(visit)
        kind = f["node"]["type"][()]
    if bad:
        raise NIRError(f"dataset {bad[0]} is neither numbers nor text", file=file)
    if total > MAX_ELEMENTS:
        raise NIRError(f"holds {total:,} array values, more than the {MAX_ELEMENTS:,} "
                       "polychrony reads", file=file)
    if (kind.decode() if isinstance(kind, bytes) else str(kind)) != "NIRGraph":
        raise NIRError(f"the top node is a {kind!r}, not a NIRGraph", file=file)


def read_graph(path: str | Path):
    """Read a NIR file (``nir.read``) after :func:`_scan`; every failure is a :class:`NIRError`
    naming the file."""
    import nir
    path = Path(path)
    file = str(path)
    _scan(path, file)
    try:
        return nir.read(path, type_check=False)
    except NIRError:
        raise
    except Exception as e:  # nir.read asserts, KeyErrors and ValueErrors on malformed graphs
        msg = str(e) or type(e).__name__
        raise NIRError(f"not a valid NIR graph ({type(e).__name__}: {msg})", file=file) \
            from None


@dataclass
class Graph:
    """A NIR graph with its subgraphs inlined: ``nodes``, ``edges`` and the keys of the
    pass-through nodes (a subgraph's own Input and Output)."""

    nodes: dict
    edges: list
    passthrough: set = field(default_factory=set)
    metadata: dict | None = None


def flatten(graph, prefix: str = "") -> Graph:
    """Inline nested ``NIRGraph`` nodes (a writer may put a recurrent layer in one)."""
    nodes, edges, through = {}, [], set()
    into, outof = {}, {}
    for key, node in graph.nodes.items():
        full = prefix + str(key)
        if type(node).__name__ == "NIRGraph":
            sub = flatten(node, full + ".")
            ins = [k for k, n in node.nodes.items() if type(n).__name__ == "Input"]
            outs = [k for k, n in node.nodes.items() if type(n).__name__ == "Output"]
            if len(ins) != 1 or len(outs) != 1:
                raise NIRError(f"a subgraph needs one Input and one Output, has {len(ins)} "
                               f"and {len(outs)}", node=full)
            nodes.update(sub.nodes)
            edges += sub.edges
            through |= sub.passthrough | {f"{full}.{ins[0]}", f"{full}.{outs[0]}"}
            into[full], outof[full] = f"{full}.{ins[0]}", f"{full}.{outs[0]}"
        else:
            nodes[full] = node
    for a, b in graph.edges:
        a, b = prefix + str(a), prefix + str(b)
        edges.append((outof.get(a, a), into.get(b, b)))
    for a, b in edges:
        for k in (a, b):
            if k not in nodes:
                raise NIRError(f"an edge ({a!r}, {b!r}) names a node that does not exist",
                               node=k)
    return Graph(nodes, list(dict.fromkeys(edges)), through, getattr(graph, "metadata", None))


# --- linear maps with delays -----------------------------------------------------------------

def conv1d_matrix(node, n_in: int, key: str) -> tuple[np.ndarray, int]:
    """The dense matrix of a Conv1d node on an input of ``n_in = C_in * L`` values, and its
    output size (channel-major, as Flatten lays it out)."""
    w = np.asarray(node.weight, dtype=np.float64)
    if w.ndim != 3:
        raise NIRError(f"Conv1d weight must be (C_out, C_in/groups, K), got {w.shape}", node=key)
    co, cig, k = w.shape
    groups = int(np.asarray(node.groups).reshape(-1)[0])
    stride = int(np.asarray(node.stride).reshape(-1)[0])
    dil = int(np.asarray(node.dilation).reshape(-1)[0])
    ci = cig * groups
    if groups < 1 or co % groups or n_in % ci or stride < 1 or dil < 1:
        raise NIRError(f"Conv1d with {ci} input channels, groups={groups}, stride={stride}, "
                       f"dilation={dil} does not match an input of {n_in} values", node=key)
    length = n_in // ci
    pad = node.padding
    if isinstance(pad, (bytes, str)):
        pad = pad.decode() if isinstance(pad, bytes) else pad
        if pad == "same":
            if stride != 1:
                raise NIRError("padding 'same' needs stride 1", node=key)
            pad = dil * (k - 1) // 2
        elif pad == "valid":
            pad = 0
        else:
            raise NIRError(f"padding {pad!r} is not 'same', 'valid' or a number", node=key)
    pad = int(np.asarray(pad).reshape(-1)[0])
    out_len = (length + 2 * pad - dil * (k - 1) - 1) // stride + 1
    if out_len < 1:
        raise NIRError(f"Conv1d leaves no output from an input of length {length}", node=key)
    m = np.zeros((co * out_len, ci * length))
    per = co // groups
    for c in range(co):
        g = c // per
        for cl in range(cig):
            cin = g * cig + cl
            for kk in range(k):
                for o in range(out_len):
                    pos = o * stride - pad + kk * dil
                    if 0 <= pos < length:
                        m[c * out_len + o, cin * length + pos] += w[c, cl, kk]
    return m, co * out_len


def _is_simple_conv(node) -> bool:
    """A single-channel, stride-1, undilated, odd-kernel "same" Conv1d: polychrony's conv."""
    w = np.asarray(node.weight)
    one = lambda v: int(np.asarray(v).reshape(-1)[0]) == 1  # noqa: E731
    if w.ndim != 3 or w.shape[:2] != (1, 1) or w.shape[2] % 2 == 0:
        return False
    pad = node.padding
    pad = pad.decode() if isinstance(pad, bytes) else pad
    same = pad == "same" or (not isinstance(pad, str) and
                             int(np.asarray(pad).reshape(-1)[0]) == (w.shape[2] - 1) // 2)
    return one(node.stride) and one(node.dilation) and one(node.groups) and same


class DMap:
    """A linear map with delays, ``out(t) = sum_d maps[d] @ in(t - d)``, kept in the axonal
    form ``out(t) = sum_j m[:, j] in_j(t - dpre[j])`` (one delay per input) while it is one."""

    def __init__(self, m=None, dpre=None, maps=None):
        self.m, self.dpre, self.maps = m, dpre, maps

    @classmethod
    def identity(cls, n: int) -> "DMap":
        return cls(np.eye(n), np.zeros(n, np.int64))

    @property
    def n_out(self) -> int:
        if self.maps is not None:
            return next(iter(self.maps.values())).shape[0] if self.maps else 0
        return self.m.shape[0]

    def general(self) -> dict:
        if self.maps is not None:
            return self.maps
        return {int(v): np.where((self.dpre == v)[None, :], self.m, 0.0)
                for v in np.unique(self.dpre)}

    def left(self, a: np.ndarray) -> "DMap":
        """``a @ self``: a mixing node after the path."""
        if self.maps is not None:
            return DMap(maps={d: a @ m for d, m in self.maps.items()})
        return DMap(a @ self.m, self.dpre)

    def delayed(self, steps: np.ndarray) -> "DMap":
        """The path followed by a Delay of ``steps[i]`` on output ``i``."""
        if self.maps is None and (steps.size == 0 or (steps == steps[0]).all()):
            return DMap(self.m, self.dpre + (int(steps[0]) if steps.size else 0))
        if (self.maps is None and self.m.shape[0] == self.m.shape[1]
                and not (self.m - np.diag(np.diag(self.m))).any()):
            return DMap(self.m, self.dpre + steps)
        out: dict = {}
        for v in np.unique(steps):
            rows = (steps == v)[:, None]
            for d, m in self.general().items():
                out[d + int(v)] = out.get(d + int(v), 0.0) + np.where(rows, m, 0.0)
        return DMap(maps=out)

    def total(self) -> np.ndarray:
        """The map without its delays (what a constant input sees)."""
        if self.maps is None:
            return self.m
        return sum(self.maps.values())

    def __add__(self, other: "DMap") -> "DMap":
        if (self.maps is None and other.maps is None
                and np.array_equal(self.dpre, other.dpre)):
            return DMap(self.m + other.m, self.dpre)
        out = dict(self.general())
        for d, m in other.general().items():
            out[d] = out.get(d, 0.0) + m
        return DMap(maps=out)


@dataclass
class RawProjection:
    """A linear path from a source node to a neuron node."""

    src: str
    dst: str
    dmap: DMap
    meta: dict | None     # polychrony's metadata of the path's weight node
    conv: bool            # the path's one mixing node is a "same" Conv1d (or an exported conv)
    nodes: tuple          # keys of the synapse nodes on the path


class _Reducer:
    def __init__(self, g: Graph, dt: float, sizes: dict):
        self.g, self.dt, self.sizes = g, dt, sizes
        self.out = {}
        for a, b in g.edges:
            self.out.setdefault(a, []).append(b)
        self.delay_rounding = 0.0
        self.delayed_biases: list[str] = []

    def kind(self, key):
        return "passthrough" if key in self.g.passthrough else type(self.g.nodes[key]).__name__

    def apply(self, key: str, dm: DMap, n: int) -> tuple[DMap, int]:
        node = self.g.nodes[key]
        kind = self.kind(key)
        if kind in ("passthrough", "Flatten"):
            return dm, n
        if kind in ("Linear", "Affine"):
            w = np.asarray(node.weight, dtype=np.float64)
            if w.ndim != 2:
                raise NIRError(f"{kind} weight must be 2-D (out, in), got shape {w.shape}",
                               node=key)
            if w.shape[1] != n:
                raise NIRError(f"{kind} takes {w.shape[1]} inputs but receives {n}", node=key)
            _finite(w, key, "weight")
            return dm.left(w), w.shape[0]
        if kind == "Scale":
            s = np.asarray(node.scale, dtype=np.float64).reshape(-1)
            if s.size not in (1, n):
                raise NIRError(f"Scale has {s.size} values for {n} inputs", node=key)
            _finite(s, key, "scale")
            return dm.left(np.diag(np.broadcast_to(s, (n,)))), n
        if kind == "Conv1d":
            c, n_out = conv1d_matrix(node, n, key)
            _finite(c, key, "weight")
            return dm.left(c), n_out
        if kind == "Delay":
            return dm.delayed(self.steps_of(node, n, key)), n
        raise NIRError(f"{kind} cannot sit between two layers", node=key)

    def steps_of(self, node, n: int, key: str) -> np.ndarray:
        d = np.asarray(node.delay, dtype=np.float64).reshape(-1)
        _finite(d, key, "delay")
        if d.size == 1:
            d = np.full(n, d[0])
        if d.size != n:
            raise NIRError(f"Delay has {d.size} values for {n} inputs", node=key)
        if (d < 0).any():
            raise NIRError(f"delays must be >= 0, got {float(d.min()):.6g} s", node=key)
        steps = d / self.dt
        r = np.rint(steps)
        self.delay_rounding = max(self.delay_rounding, float(np.abs(steps - r).max(initial=0)))
        return r.astype(np.int64)

    def walk(self, src: str, n: int) -> list[RawProjection]:
        """Every path of synapse nodes from ``src`` to a neuron node, reduced."""
        found = []

        def go(key, dm, n_cur, path):
            for nxt in self.out.get(key, []):
                kind = self.kind(nxt)
                if kind in NEURONS:
                    mixers = [p for p in path if self.kind(p) in ("Linear", "Affine", "Conv1d")]
                    metas = [node_meta(self.g.nodes[p]) for p in mixers]
                    meta = metas[-1] if metas else None
                    conv = len(mixers) == 1 and (
                        (self.kind(mixers[0]) == "Conv1d"
                         and _is_simple_conv(self.g.nodes[mixers[0]]))
                        or (meta or {}).get("kind") == "conv")
                    found.append(RawProjection(src, nxt, dm, meta, conv, tuple(path)))
                    continue
                if kind in ("Output", "Input"):
                    continue
                # (unsupported and unknown node types were refused by reduce_graph already)
                if nxt in path:
                    raise NIRError("a cycle through synapse nodes only ("
                                   + " -> ".join(path[path.index(nxt):] + [nxt])
                                   + ") has no neuron to carry its state", node=nxt)
                dm2, n2 = self.apply(nxt, dm, n_cur)
                go(nxt, dm2, n2, path + [nxt])

        go(src, DMap.identity(n), n, [])
        return found

    def biases(self):
        """``{neuron key: bias vector}`` from every Affine (and Conv1d) bias, pushed through
        the linear nodes after it."""
        out: dict = {}
        for key, node in self.g.nodes.items():
            kind = self.kind(key)
            if kind not in ("Affine", "Conv1d"):
                continue
            b = np.asarray(node.bias, dtype=np.float64).reshape(-1)
            _finite(b, key, "bias")
            if not b.any():
                continue
            if kind == "Conv1d":
                n_out = self.sizes.get(key)
                if n_out is None or n_out % b.size:
                    raise NIRError("cannot place the Conv1d bias", node=key)
                b = np.repeat(b, n_out // b.size)
            elif b.size != np.asarray(node.weight).shape[0]:
                raise NIRError(f"Affine bias has {b.size} values for "
                               f"{np.asarray(node.weight).shape[0]} outputs", node=key)
            for rp in self.walk(key, b.size):
                if rp.dmap.maps is not None or rp.dmap.dpre.any():
                    self.delayed_biases.append(key)
                out[rp.dst] = out.get(rp.dst, 0.0) + rp.dmap.total() @ b
        return out


def _finite(a: np.ndarray, key: str, name: str) -> None:
    if not np.isfinite(a).all():
        raise NIRError(f"{name} holds NaN or infinite values", node=key)


def _sizes(g: Graph) -> dict:
    """Output size of every node (values, whatever the NIR shape), by propagation from the
    Input nodes; neuron nodes with one value per parameter take the size that reaches them."""
    sizes: dict = {}
    for key, node in g.nodes.items():
        kind = type(node).__name__
        if kind == "Input" and key not in g.passthrough:
            shape = np.asarray(node.input_type["input"]).reshape(-1)
            sizes[key] = int(np.prod(shape)) if shape.size else 0
        elif kind in ("Linear", "Affine"):
            w = np.asarray(node.weight)
            if w.ndim == 2:
                sizes[key] = int(w.shape[0])
        elif kind in NEURONS:
            for p in ("v_threshold", "tau", "r"):
                a = getattr(node, p, None)
                if a is not None and np.size(a) > 1:
                    sizes[key] = int(np.size(a))
                    break
    preds: dict = {}
    for a, b in g.edges:
        preds.setdefault(b, []).append(a)
    for _ in range(len(g.nodes) + 1):
        changed = False
        for key in g.nodes:
            if key in sizes:
                continue
            kind = "passthrough" if key in g.passthrough else type(g.nodes[key]).__name__
            ins = [sizes[p] for p in preds.get(key, []) if p in sizes]
            if not ins:
                continue
            if kind == "Conv1d":
                try:
                    _, sizes[key] = conv1d_matrix(g.nodes[key], ins[0], key)
                except NIRError:
                    continue
            elif kind != "Output":
                sizes[key] = ins[0]
            changed = True
        if not changed:
            break
    return sizes


def reduce_graph(graph, dt: float):
    """``(Graph, sizes, input key, [RawProjection], {neuron: bias}, notes)`` of a NIR graph."""
    g = flatten(graph)
    inputs = [k for k, n in g.nodes.items()
              if type(n).__name__ == "Input" and k not in g.passthrough]
    if len(inputs) != 1:
        raise NIRError(f"the graph must have exactly one Input node, has {len(inputs)}")
    for key, node in g.nodes.items():
        kind = type(node).__name__
        if kind in _REFUSED:
            raise NIRError(f"{kind} is not supported: {_REFUSED[kind]}", node=key)
        if kind not in NEURONS + SYNAPSES + ("Input", "Output"):
            raise NIRError(f"unknown node type {kind}", node=key)
    sizes = _sizes(g)
    red = _Reducer(g, dt, sizes)
    raws = red.walk(inputs[0], sizes[inputs[0]])
    for key, node in g.nodes.items():
        if type(node).__name__ in NEURONS:
            if key not in sizes:
                raise NIRError("no layer feeds this neuron node, so its size is unknown",
                               node=key)
            raws += red.walk(key, sizes[key])
    for rp in raws:
        if rp.dmap.n_out != sizes[rp.dst]:
            raise NIRError(f"receives {rp.dmap.n_out} values from {rp.src!r} but has "
                           f"{sizes[rp.dst]} neurons", node=rp.dst)
    biases = red.biases()
    notes = []
    if red.delay_rounding > 1e-6:
        notes.append(f"delays rounded to whole steps of dt = {dt:.6g} s: largest change "
                     f"{red.delay_rounding:.3g} steps")
    if red.delayed_biases:
        notes.append("a bias behind a Delay node is taken as constant from step 0 "
                     f"({', '.join(sorted(set(red.delayed_biases)))})")
    return g, sizes, inputs[0], raws, biases, notes
