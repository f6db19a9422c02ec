"""The IR file: one .npz (a zip of .npy entries) whose entry "header" is UTF-8 JSON stored as
uint8 and whose other entries are the integer arrays the header names. ``docs/ir.md`` is the
reference for other tools. :func:`load` never unpickles and names the file, rule and field of
every problem."""

from __future__ import annotations

import io
import json
import math
import os
import re
import zipfile
import zlib
from pathlib import Path

import numpy as np

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
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed entry time stamps: the same net gives the same bytes



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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{id(entries):x}.tmp")
    f = open(tmp, "xb")
    try:
        with f, zipfile.ZipFile(f, "w") as zf:
            for name, a in entries.items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.create_system = 3  # Unix, whatever the host: same bytes everywhere
                info.external_attr = 0o644 << 16
                with zf.open(info, "w", force_zip64=a.nbytes > 1 << 30) as entry:
                    np.lib.format.write_array(entry, a, allow_pickle=False)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _no_duplicate_keys(pairs):
    keys = [k for k, _ in pairs]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise ValueError(f"duplicate key(s) {dup}")
    return dict(pairs)


def _no_constant(name):
    raise ValueError(f"{name} is not allowed")


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


class _Archive:
    """The .npy entries of a zip file, read without ever unpickling."""

    def __init__(self, path: Path, file: str):
        self.file = file
        try:
            self.zip = zipfile.ZipFile(path)
        except FileNotFoundError:
            raise IRError("no such file", rule="file", file=file) from None
        except zipfile.BadZipFile:
            raise IRError("not a zip archive (an IR file is an .npz: a zip of .npy entries)",
                          rule="file", file=file) from None
        except (OSError, ValueError, EOFError) as e:
            raise IRError(f"cannot be read ({e})", rule="file", file=file) from None
        self.entries: dict[str, zipfile.ZipInfo] = {}
        for info in self.zip.infolist():
            name = info.filename
            if not name.endswith(".npy") or name[:-4] in self.entries:
                self.zip.close()
                what = "duplicate" if name.endswith(".npy") else "non-.npy"
                raise IRError(f"{what} archive entry {name!r}", rule="format", where="archive",
                              file=file)
            self.entries[name[:-4]] = info

    def close(self):
        self.zip.close()

    def read(self, name: str, where: str, *, widen: bool = True) -> np.ndarray:
        """Return entry ``name`` (without ``.npy``), an integer array, as int64 if ``widen``.

        Any other dtype is refused from the .npy header, before the data is read.
        """
        file = self.file
        if name not in self.entries:
            raise IRError(f"array {name!r} is missing from the archive", rule="missing-field",
                          where=where, file=file)
        info = self.entries[name]
        try:
            with self.zip.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                elif version in ((2, 0), (3, 0)):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                else:
                    raise ValueError(f"unsupported .npy version {version}")
            if dtype.hasobject or dtype.kind not in "iu":
                raise IRError(f"array {name!r} must hold integers, got dtype {dtype}"
                              + (" (object arrays would need unpickling; they are never read)"
                                 if dtype.hasobject else ""),
                              rule="integer-dtype", where=where, file=file)
            if math.prod(shape) * dtype.itemsize > info.file_size:
                raise ValueError(f"shape {shape} needs more data than the entry holds")
            data = self.zip.read(info)  # the whole entry, so that its CRC is checked
            a = np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
        except IRError:
            raise
        except (ValueError, zipfile.BadZipFile, zlib.error, EOFError, OSError,
                MemoryError) as e:
            raise IRError(f"array {name!r} cannot be read ({e})", rule="file", where=where,
                          file=file) from None
        if not widen:
            return a
        if a.dtype.kind == "u" and a.size and int(a.max()) > np.iinfo(np.int64).max:
            raise IRError(f"array {name!r} holds a value that does not fit int64",
                          rule="integer-range", where=where, file=file)
        return a.astype(np.int64)


def _read_header(archive: _Archive, file: str) -> dict:
    if "header" not in archive.entries:
        raise IRError("missing 'header' entry", rule="missing-field", where="header", file=file)
    raw = archive.read("header", "header", widen=False)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise IRError(f"entry 'header' must be a 1-D uint8 array, got {raw.dtype} with shape "
                      f"{raw.shape}", rule="format", where="header", file=file)
    try:
        header = json.loads(raw.tobytes().decode("utf-8"), object_pairs_hook=_no_duplicate_keys,
                            parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise IRError(f"header is not valid UTF-8 JSON ({e})", rule="format", where="header",
                      file=file) from None
    if not isinstance(header, dict):
        raise IRError("header must be a JSON object", rule="format", where="header", file=file)
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
    archive = _Archive(path, file)
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
