"""The IR file: one .npz (a zip of .npy entries) whose entry "header" is UTF-8 JSON stored as
uint8 and whose other entries are the integer arrays the header names. ``docs/ir.md`` is the
reference for other tools. :func:`load` never unpickles and names the file, rule and field of
every problem."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from .archive import Archive, write_archive
from .canonical import FORMAT, VERSION, arrays_of, content_digest, header_of
from .layers import InputLayer, IRError, LIFLayer, Projection
from .network import Network

__all__ = ["save", "load"]

_NONE = type(None)
_TOP_FIELDS = {"format": str, "version": int, "name": str, "max_delay": int, "layers": list,
               "projections": list, "meta": dict, "digest": str}
_INPUT_FIELDS = {"kind": str, "name": str, "n": int, "in_bits": int}
_LIF_FIELDS = {"kind": str, "name": str, "n": int, "v_bits": int, "acc_bits": int, "beta": int,
               "beta_shift": int, "threshold": (int, _NONE), "reset": str, "forced": bool,
               "bias": str}
_PROJ_FIELDS = {"kind": str, "src": int, "dst": int, "w_bits": int, "weight": str,
                "delay": str}



def _storage_dtype(a: np.ndarray) -> np.dtype:
    if a.size == 0:
        return np.dtype("<i1")
    lo, hi = int(a.min()), int(a.max())
    for dt in ("<i1", "<i2", "<i4", "<i8"):
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return np.dtype(dt)
    raise AssertionError("unreachable: arrays are int64")


def save(net: Network, path: str | Path) -> Path:
    """Write ``net`` to ``path`` (.npz, deflated) and return the path.

    Arrays are stored in the narrowest signed integer type that holds them. The same network
    always gives the same bytes (fixed zip time stamps); the file is replaced atomically.
    """
    path = Path(path)
    header = header_of(net)
    arrays = arrays_of(net)
    header["digest"] = content_digest(header, arrays)
    text = json.dumps(header, indent=1, allow_nan=False)
    entries = {"header": np.frombuffer(text.encode("utf-8"), dtype=np.uint8)}
    entries.update({k: v.astype(_storage_dtype(v)) for k, v in arrays.items()})
    write_archive(path, entries)
    return path


def _fields(d, spec: dict, where: str, file: str) -> dict:
    """``d`` checked against ``spec`` (field -> type): nothing missing, unknown or mistyped."""
    if not isinstance(d, dict):
        raise IRError("must be a JSON object", rule="field-type", where=where, file=file)
    for key, types in spec.items():
        if key not in d:
            raise IRError(f"missing field {key!r}", rule="missing-field", where=where,
                          file=file)
        v = d[key]
        types = types if isinstance(types, tuple) else (types,)
        if not isinstance(v, types) or (isinstance(v, bool) and bool not in types):
            want = " or ".join("null" if t is _NONE else t.__name__ for t in types)
            raise IRError(f"field {key!r} must be {want}, got {type(v).__name__} {v!r}"[:200],
                          rule="field-type", where=where, file=file)
    extra = sorted(set(d) - set(spec))
    if extra:
        raise IRError(f"unknown field(s) {extra} (version {VERSION} has exactly "
                      f"{sorted(spec)})", rule="unknown-field", where=where, file=file)
    return d


def _read_header(archive: Archive, file: str) -> dict:
    header = archive.read_json("header")
    if header.get("format") != FORMAT:
        raise IRError(f"field 'format' must be {FORMAT!r}, got {header.get('format')!r}",
                      rule="format", where="header.format", file=file)
    version = header.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version != VERSION:
        raise IRError(f"unknown version {version!r}; this polychrony reads version {VERSION}",
                      rule="version", where="header.version", file=file)
    _fields(header, _TOP_FIELDS, "header", file)
    for i, lh in enumerate(header["layers"]):
        where = f"layers[{i}]"
        kind = lh.get("kind") if isinstance(lh, dict) else None
        spec = {"input": _INPUT_FIELDS, "lif": _LIF_FIELDS}.get(kind)
        if spec is None:
            if not isinstance(lh, dict):
                raise IRError("must be a JSON object", rule="field-type", where=where,
                              file=file)
            raise IRError(f"unknown layer kind {kind!r} (must be 'input' or 'lif')",
                          rule="format", where=f"{where}.kind", file=file)
        _fields(lh, spec, where, file)
        if kind == "lif" and lh["bias"] != f"layer{i}.bias":
            raise IRError(f"field 'bias' must name the entry 'layer{i}.bias', got "
                          f"{lh['bias']!r}", rule="format", where=f"{where}.bias", file=file)
    for k, ph in enumerate(header["projections"]):
        where = f"projections[{k}]"
        _fields(ph, _PROJ_FIELDS, where, file)
        for f in ("weight", "delay"):
            if ph[f] != f"proj{k}.{f}":
                raise IRError(f"field {f!r} must name the entry 'proj{k}.{f}', got {ph[f]!r}",
                              rule="format", where=f"{where}.{f}", file=file)
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", header["digest"]):
        raise IRError(f"field 'digest' must be 'sha256:' and 64 lowercase hex digits, got "
                      f"{header['digest']!r}"[:200], rule="format", where="header.digest",
                      file=file)
    return header


def load(path: str | Path) -> Network:
    """Read and check an IR file. Never unpickles; every problem raises :class:`IRError`.

    Order: container, header fields, array dtypes, content digest, then the design rules.
    """
    path = Path(path)
    file = str(path)
    archive = Archive(path, file)
    try:
        header = _read_header(archive, file)
        arrays = {}
        for i, lh in enumerate(header["layers"]):
            if lh["kind"] == "lif":
                arrays[lh["bias"]] = archive.read(lh["bias"], f"layers[{i}].bias")
        for k, ph in enumerate(header["projections"]):
            for f in ("weight", "delay"):
                arrays[ph[f]] = archive.read(ph[f], f"projections[{k}].{f}")
        extra = sorted(set(archive.entries) - set(arrays) - {"header"})
        if extra:
            raise IRError(f"archive entries {extra} are not named by the header",
                          rule="unknown-field", where="archive", file=file)
    finally:
        archive.close()
    stored = header["digest"]
    actual = content_digest(header, arrays)
    if actual != stored:
        raise IRError(f"content digest mismatch: header says {stored}, contents hash to "
                      f"{actual} (the file was changed after it was written)",
                      rule="digest", where="header.digest", file=file)
    try:
        layers = []
        for i, lh in enumerate(header["layers"]):
            if lh["kind"] == "input":
                layers.append(InputLayer(n=lh["n"], in_bits=lh["in_bits"], name=lh["name"]))
            else:
                layers.append(LIFLayer(
                    n=lh["n"], v_bits=lh["v_bits"], acc_bits=lh["acc_bits"], beta=lh["beta"],
                    beta_shift=lh["beta_shift"], threshold=lh["threshold"], reset=lh["reset"],
                    forced=lh["forced"], bias=arrays[lh["bias"]], name=lh["name"]))
        projections = [Projection(kind=ph["kind"], src=ph["src"], dst=ph["dst"],
                                  w_bits=ph["w_bits"], weight=arrays[ph["weight"]],
                                  delay=arrays[ph["delay"]])
                       for ph in header["projections"]]
        net = Network(layers=layers, projections=projections, max_delay=header["max_delay"],
                      name=header["name"], meta=header["meta"])
    except IRError as e:
        raise e.in_file(file) from None
    if net.digest != stored:  # cannot happen for a file that passed the checks above
        raise IRError("the header is not in canonical form (its digest differs from the "
                      "network's)", rule="digest", where="header", file=file)
    return net
