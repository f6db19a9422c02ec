"""A network's workload: the stimulus that represents its job, kept in a file beside its IR.

Training writes one next to the IR (:func:`workload_path`: ``wm.npz`` -> ``wm.workload.npz``);
``estimate``, ``build``, ``cosim``, ``run`` and the demo replay it instead of random stimulus,
and ``run`` scores what it lets them score. Three kinds:

* ``recall`` (working memory) — per trial, the raster forced onto the network's forced layer:
  ``pre`` steps of noise, the cue (the first ``d`` steps of a stored pattern), then nothing, so
  that the network recalls the rest on its own; and the pattern itself (``targets``). Score:
  micro-F1 of the layer's own spikes against the pattern after the cue (:func:`score_recall`).
* ``classify`` (audio) — input frames ``x`` and their ``labels``. Score: accuracy of the
  trace's prediction (:func:`model.ir.prediction`).
* ``stimulus`` — inputs and/or forced rasters only; nothing to score.

The file (format ``polychrony-workload``, version 1; ``docs/ir.md`` describes it) is a zip of
.npy entries like the IR (:mod:`model.ir.archive`): ``header`` (UTF-8 JSON as uint8: ``format``,
``version``, ``kind``, ``network`` — the IR digest it was made for —, ``samples``, ``steps``,
and for ``recall`` ``layer``, ``d``, ``pre``), ``x`` ``(S, T, n0)`` when the network has inputs,
``forced.<l>`` ``(S, T, n_l)`` 0/1 per forced layer, ``labels`` ``(S,)`` for ``classify``,
``targets`` ``(S, n_l, T_p)`` 0/1 for ``recall``. It never holds pickles and is never
unpickled; :func:`load_workload` names the file and field of every problem.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .archive import Archive, write_archive
from .layers import IRError
from .network import Network
from .trace import Trace, validate_inputs

__all__ = ["Workload", "KINDS", "WORKLOAD_FORMAT", "WORKLOAD_VERSION", "workload_path",
           "save_workload", "load_workload", "find_workload", "f1_from_counts",
           "score_recall"]

WORKLOAD_FORMAT = "polychrony-workload"
WORKLOAD_VERSION = 1

#: The kinds of workload and what each scores.
KINDS = {"recall": "F1", "classify": "accuracy", "stimulus": None}

_HEADER_FIELDS = {"format": str, "version": int, "kind": str, "network": str, "samples": int,
                  "steps": int}
_RECALL_FIELDS = {"layer": int, "d": int, "pre": int}


def f1_from_counts(tp: int, fp: int, fn: int) -> float:
    """``F1 = 2 tp / (2 tp + fp + fn)``; defined as 1.0 when ``2 tp + fp + fn = 0``.

    The all-silent case (no target spikes and no recalled spikes) is perfect agreement, so it
    scores 1.0, as precision and recall both tend to 1 there.
    """
    den = 2 * tp + fp + fn
    return 1.0 if den == 0 else 2.0 * tp / den


def score_recall(targets: np.ndarray, spikes: np.ndarray, d: int, *,
                 pre: int) -> tuple[float, np.ndarray]:
    """Score recall: micro-F1 of ``target[:, :, d:T]`` against own spikes at steps
    ``pre + d .. pre + T - 1``.

    ``targets`` is ``(m, n, T)``; ``spikes`` the network's own spikes ``s(t)`` (forced spikes
    excluded), ``(m, steps >= pre + T, n)``. Returns the micro-F1 (counts summed over patterns,
    neurons and steps) and the per-pattern F1s, float64 ``(m,)``.
    """
    x = np.asarray(targets, dtype=bool)
    m, n, t = x.shape
    s = np.asarray(spikes).astype(bool)
    if s.shape[0] != m or s.shape[2] != n or s.shape[1] < pre + t:
        raise ValueError(f"spikes must have shape ({m}, >= {pre + t}, {n}), got {s.shape}")
    want = x[:, :, d:].transpose(0, 2, 1)
    got = s[:, pre + d:pre + t]
    tp = (want & got).sum((1, 2))
    fp = (~want & got).sum((1, 2))
    fn = (want & ~got).sum((1, 2))
    per = np.array([f1_from_counts(*c) for c in zip(tp, fp, fn)], dtype=np.float64)
    return f1_from_counts(int(tp.sum()), int(fp.sum()), int(fn.sum())), per


@dataclass(frozen=True)
class Workload:
    """Samples that represent a network's job (see the module docstring)."""

    kind: str                                   # a key of KINDS
    network: str                                # the IR digest it was made for
    x: np.ndarray | None = None                 # (S, T, n0) integers, or None (no inputs)
    forced: dict[int, np.ndarray] = field(default_factory=dict)   # layer -> (S, T, n) bool
    labels: np.ndarray | None = None            # (S,) for "classify"
    targets: np.ndarray | None = None           # (S, n, T_p) bool for "recall"
    layer: int = 0                              # "recall": the layer whose spikes are scored
    d: int = 0                                  # "recall": cue steps
    pre: int = 0                                # "recall": steps before the cue

    @property
    def samples(self) -> int:
        if self.x is not None:
            return int(self.x.shape[0])
        return int(next(iter(self.forced.values())).shape[0]) if self.forced else 0

    @property
    def steps(self) -> int:
        if self.x is not None:
            return int(self.x.shape[1])
        return int(next(iter(self.forced.values())).shape[1]) if self.forced else 0

    @property
    def metric(self) -> str | None:
        """What :meth:`score` measures: ``"F1"``, ``"accuracy"`` or None."""
        return KINDS[self.kind]

    def head(self, k: int) -> "Workload":
        """The first ``k`` samples (all of them when ``k`` is at least :attr:`samples`)."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        cut = (lambda a: None if a is None else a[:k])
        return dataclasses.replace(self, x=cut(self.x), labels=cut(self.labels),
                                   targets=cut(self.targets),
                                   forced={l: f[:k] for l, f in self.forced.items()})

    def sample(self, i: int) -> tuple[np.ndarray | None, dict[int, np.ndarray]]:
        """``(x, forced)`` of sample ``i``, as :func:`sim.reference.simulate` takes them."""
        x = None if self.x is None else self.x[i]
        return x, {l: f[i] for l, f in self.forced.items()}

    def score(self, traces: list[Trace]) -> dict:
        """The score of one trace per sample: ``{"metric", "value", "per_sample"}`` (value
        None for a ``stimulus`` workload)."""
        if len(traces) != self.samples:
            raise ValueError(f"need one trace per sample ({self.samples}), got {len(traces)}")
        if self.kind == "recall":
            spikes = np.stack([t.spikes[self.layer] for t in traces])
            value, per = score_recall(self.targets, spikes, self.d, pre=self.pre)
            return {"metric": "F1", "value": float(value), "per_sample": per.tolist()}
        if self.kind == "classify":
            hits = [int(t.prediction == int(y)) for t, y in zip(traces, self.labels)]
            return {"metric": "accuracy", "value": float(np.mean(hits)), "per_sample": hits}
        return {"metric": None, "value": None, "per_sample": []}

    def describe(self) -> str:
        """One line for people: kind, samples, steps and what it scores."""
        what = {"recall": f"cued recall of {self.samples} stored patterns (layer {self.layer}, "
                          f"{self.pre} steps of noise, {self.d}-step cue), scored by F1",
                "classify": f"{self.samples} labelled samples "
                            f"({len(np.unique(self.labels))} classes), scored by accuracy",
                "stimulus": f"{self.samples} samples of stimulus, nothing to score"}[self.kind]
        return f"{what}; {self.steps} steps each"

    def check(self, net: Network, file: str = "") -> None:
        """Raise :class:`IRError` naming the field unless this workload fits ``net``."""
        if self.network != net.digest:
            raise IRError(f"the workload was made for IR {self.network[:19]}…, not for this "
                          f"network ({net.digest[:19]}…)", rule="workload-network",
                          where="header.network", file=file)
        for i in range(self.samples):
            x, forced = self.sample(i)
            try:
                validate_inputs(net, x, forced, self.steps)
            except (ValueError, IRError) as e:
                raise IRError(f"sample {i}: {e}", rule="workload-shape", where="x/forced",
                              file=file) from None
        if self.kind == "recall":
            n = net.layers[self.layer].n if 0 < self.layer < len(net.layers) else None
            if n is None:
                raise IRError(f"layer {self.layer} is not a LIF layer of the network",
                              rule="workload-shape", where="header.layer", file=file)
            t = self.targets
            if t.ndim != 3 or t.shape[:2] != (self.samples, n) or \
                    self.pre + t.shape[2] > self.steps or not 1 <= self.d < t.shape[2]:
                raise IRError(f"targets must be (samples={self.samples}, n={n}, T) with "
                              f"1 <= d={self.d} < T and pre + T <= steps={self.steps}, got "
                              f"{t.shape}", rule="workload-shape", where="targets", file=file)


def workload_path(ir_path: str | Path) -> Path:
    """Where the workload of the IR at ``ir_path`` lives: ``net.npz`` -> ``net.workload.npz``."""
    p = Path(ir_path)
    stem = p.name[:-4] if p.name.endswith(".npz") else p.name
    return p.with_name(f"{stem}.workload.npz")


def save_workload(w: Workload, path: str | Path) -> Path:
    """Write ``w`` (pickle-free, the same bytes for the same workload) and return the path."""
    if w.kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}, got {w.kind!r}")
    header = {"format": WORKLOAD_FORMAT, "version": WORKLOAD_VERSION, "kind": w.kind,
              "network": w.network, "samples": w.samples, "steps": w.steps}
    if w.kind == "recall":
        header.update(layer=int(w.layer), d=int(w.d), pre=int(w.pre))
    entries = {"header": np.frombuffer(json.dumps(header, indent=1).encode(), np.uint8)}
    if w.x is not None:
        entries["x"] = np.asarray(w.x, np.int64)
    for l in sorted(w.forced):
        entries[f"forced.{l}"] = np.asarray(w.forced[l], np.uint8)
    if w.kind == "classify":
        entries["labels"] = np.asarray(w.labels, np.int64)
    if w.kind == "recall":
        entries["targets"] = np.asarray(w.targets, np.uint8)
    return write_archive(Path(path), entries)


def _fields(d: dict, spec: dict, file: str) -> None:
    for key, typ in spec.items():
        if key not in d:
            raise IRError(f"missing field {key!r}", rule="missing-field", where="header",
                          file=file)
        if not isinstance(d[key], typ) or isinstance(d[key], bool):
            raise IRError(f"field {key!r} must be {typ.__name__}, got {d[key]!r}"[:200],
                          rule="field-type", where=f"header.{key}", file=file)


def _binary(a: np.ndarray, name: str, file: str) -> np.ndarray:
    if a.size and (a.min() < 0 or a.max() > 1):
        raise IRError(f"array {name!r} must hold 0 or 1, got values in [{a.min()}, {a.max()}]",
                      rule="integer-range", where=name, file=file)
    return a.astype(bool)


def load_workload(path: str | Path, net: Network | None = None) -> Workload:
    """Read a workload file (never unpickling) and, given ``net``, check that it fits it;
    every problem raises :class:`IRError` naming the file and field."""
    file = str(path)
    archive = Archive(Path(path), file)
    try:
        header = archive.read_json("header")
        if header.get("format") != WORKLOAD_FORMAT:
            raise IRError(f"field 'format' must be {WORKLOAD_FORMAT!r}, got "
                          f"{header.get('format')!r}", rule="format", where="header.format",
                          file=file)
        if header.get("version") != WORKLOAD_VERSION:
            raise IRError(f"unknown version {header.get('version')!r}; this polychrony reads "
                          f"version {WORKLOAD_VERSION}", rule="version",
                          where="header.version", file=file)
        _fields(header, _HEADER_FIELDS, file)
        kind = header["kind"]
        if kind not in KINDS:
            raise IRError(f"field 'kind' must be one of {sorted(KINDS)}, got {kind!r}",
                          rule="format", where="header.kind", file=file)
        spec = dict(_HEADER_FIELDS, **(_RECALL_FIELDS if kind == "recall" else {}))
        _fields(header, spec, file)
        extra = sorted(set(header) - set(spec))
        if extra:
            raise IRError(f"unknown field(s) {extra}", rule="unknown-field", where="header",
                          file=file)
        names = set(archive.entries) - {"header"}
        allowed = {"x", *{"classify": ["labels"], "recall": ["targets"]}.get(kind, [])} | \
            {n for n in names if n.startswith("forced.")}
        if names - allowed:
            raise IRError(f"unknown archive entries {sorted(names - allowed)} (a {kind!r} "
                          f"workload has {sorted(allowed)})", rule="unknown-field",
                          where="archive", file=file)
        x = archive.read("x", "x") if "x" in names else None
        forced = {}
        for name in sorted(n for n in names if n.startswith("forced.")):
            try:
                l = int(name.split(".", 1)[1])
            except ValueError:
                raise IRError(f"entry {name!r}: expected forced.<layer index>",
                              rule="format", where=name, file=file) from None
            forced[l] = _binary(archive.read(name, name), name, file)
        need = {"classify": ["labels"], "recall": ["targets"]}.get(kind, [])
        for name in need:
            if name not in names:
                raise IRError(f"a {kind!r} workload needs the array {name!r}",
                              rule="missing-field", where=name, file=file)
        labels = archive.read("labels", "labels") if kind == "classify" else None
        targets = _binary(archive.read("targets", "targets"), "targets", file) \
            if kind == "recall" else None
    finally:
        archive.close()
    if x is None and not forced:
        raise IRError("a workload needs 'x' or at least one 'forced.<layer>' array",
                      rule="missing-field", where="archive", file=file)
    samples, steps = header["samples"], header["steps"]
    for name, a in [("x", x), *[(f"forced.{l}", f) for l, f in forced.items()]]:
        if a is not None and (a.ndim != 3 or a.shape[:2] != (samples, steps)):
            raise IRError(f"array {name!r} must be (samples={samples}, steps={steps}, n), got "
                          f"shape {a.shape}", rule="workload-shape", where=name, file=file)
    if labels is not None and labels.shape != (samples,):
        raise IRError(f"array 'labels' must be (samples={samples},), got shape {labels.shape}",
                      rule="workload-shape", where="labels", file=file)
    w = Workload(kind=kind, network=header["network"], x=x, forced=forced, labels=labels,
                 targets=targets, layer=header.get("layer", 0), d=header.get("d", 0),
                 pre=header.get("pre", 0))
    if kind == "recall" and (targets.ndim != 3 or targets.shape[0] != samples):
        raise IRError(f"array 'targets' must be (samples={samples}, n, T), got shape "
                      f"{targets.shape}", rule="workload-shape", where="targets", file=file)
    if net is not None:
        w.check(net, file)
    return w


def find_workload(ir_path: str | Path, net: Network) -> Workload | None:
    """The workload beside the IR at ``ir_path`` (:func:`workload_path`), checked against
    ``net``; None when there is none."""
    p = workload_path(ir_path)
    return load_workload(p, net) if p.exists() else None
