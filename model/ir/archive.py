"""The container both polychrony file formats share (the IR and the workload): a zip of .npy
entries, written byte-for-byte the same for the same contents and read without ever unpickling.

:func:`write_archive` writes the entries atomically with fixed time stamps; :class:`Archive`
reads integer entries (every other dtype is refused from the .npy header, before any data is
read) and a JSON entry stored as UTF-8 bytes (:meth:`Archive.read_json`). Every problem raises
:class:`~model.ir.layers.IRError` naming the file, the rule and the field.
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .layers import IRError

__all__ = ["Archive", "write_archive"]

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed entry time stamps: the same contents, the same bytes
#: The largest JSON entry (the header) read, uncompressed: far above any real header, far below
#: what a crafted file (a few kB deflating to gigabytes) would cost.
MAX_JSON_BYTES = 16 << 20
#: The largest array entry read, uncompressed (2 GiB: an int8 array of 2**31 weights).
MAX_ENTRY_BYTES = 2 << 30


def write_archive(path: Path, entries: dict[str, np.ndarray]) -> Path:
    """Write ``entries`` (name -> array, no pickles) to ``path`` as a deflated zip of .npy
    files, replacing it atomically; the same entries always give the same bytes."""
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


class Archive:
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

    def read(self, name: str, where: str, *, widen: bool = True,
             max_bytes: int = MAX_ENTRY_BYTES) -> np.ndarray:
        """Return entry ``name`` (without ``.npy``), an integer array, as int64 if ``widen``.

        Any other dtype, and an entry whose uncompressed size exceeds ``max_bytes``, is
        refused before the data is read (zipfile never inflates past the declared size).
        """
        file = self.file
        if name not in self.entries:
            raise IRError(f"array {name!r} is missing from the archive", rule="missing-field",
                          where=where, file=file)
        info = self.entries[name]
        if info.file_size > max_bytes:
            raise IRError(f"entry {name!r} inflates to {info.file_size:,} bytes, more than the "
                          f"{max_bytes:,} polychrony reads", rule="file", where=where,
                          file=file)
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

    def read_json(self, name: str) -> dict:
        """Entry ``name``: a 1-D uint8 array holding a UTF-8 JSON object (no duplicate keys,
        no NaN or Infinity)."""
        file = self.file
        if name not in self.entries:
            raise IRError(f"missing {name!r} entry", rule="missing-field", where=name, file=file)
        raw = self.read(name, name, widen=False, max_bytes=MAX_JSON_BYTES)
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise IRError(f"entry {name!r} must be a 1-D uint8 array, got {raw.dtype} with "
                          f"shape {raw.shape}", rule="format", where=name, file=file)
        try:
            d = json.loads(raw.tobytes().decode("utf-8"), object_pairs_hook=_no_duplicate_keys,
                           parse_constant=_no_constant)
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            raise IRError(f"{name} is not valid UTF-8 JSON ({e})", rule="format", where=name,
                          file=file) from None
        if not isinstance(d, dict):
            raise IRError(f"{name} must be a JSON object", rule="format", where=name, file=file)
        return d
