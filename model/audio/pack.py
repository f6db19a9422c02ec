"""The embedded synthetic digits: their compact pack format, and unpacking them on first use.

The pack (LEB128 gaps, xz) is ``model/audio/synth-digits-v1.npz`` (package data, so that an
installed wheel has it too); :func:`default_data` checks it and unpacks it into SHD files in
:func:`cache_dir`.
"""

from __future__ import annotations

import hashlib
import lzma
import os
from pathlib import Path

import numpy as np

from model.audio.shd import DataError, SpikeSet, write_shd

__all__ = ["DATA_DIR", "DEFAULT_PACK", "default_data", "cache_dir", "pack", "unpack",
           "save_pack"]


DATA_DIR = Path(__file__).resolve().parent   # package data: installed with the wheel too
DEFAULT_PACK = DATA_DIR / "synth-digits-v1.npz"
DEFAULT_PACK_SHA256 = "4edd27c629de48b2e24cc50c11bdf4140778618b0cb0f20324e5ef1423fad5fa"


def _leb128(values: np.ndarray) -> bytes:
    """Unsigned LEB128 bytes of non-negative integers (vectorised)."""
    v = np.asarray(values, dtype=np.uint64)
    nbytes = np.ones(v.size, dtype=np.int64)
    for k in range(1, 10):
        nbytes += v >= (np.uint64(1) << np.uint64(7 * k))
    out = np.empty(int(nbytes.sum()), dtype=np.uint8)
    start = np.concatenate([[0], np.cumsum(nbytes)[:-1]])
    for k in range(int(nbytes.max(initial=1))):
        has = nbytes > k
        byte = (v[has] >> np.uint64(7 * k)) & np.uint64(0x7F)
        more = (nbytes[has] > k + 1).astype(np.uint64) << np.uint64(7)
        out[start[has] + k] = (byte | more).astype(np.uint8)
    return out.tobytes()


def _unleb128(data: bytes) -> np.ndarray:
    """Integers of unsigned LEB128 ``data`` (inverse of :func:`_leb128`)."""
    b = np.frombuffer(data, dtype=np.uint8).astype(np.uint64)
    if b.size == 0:
        return np.zeros(0, dtype=np.uint64)
    end = (b & np.uint64(0x80)) == 0
    first = np.concatenate([[0], np.nonzero(end)[0][:-1] + 1])
    group = np.cumsum(end) - end                         # values completed before each byte
    shift = (np.arange(b.size) - first[group]).astype(np.uint64) * np.uint64(7)
    return np.add.reduceat((b & np.uint64(0x7F)) << shift, first)


def pack(spikes: SpikeSet, *, dt: float = 1e-3) -> dict[str, np.ndarray]:
    """Compact arrays of a set whose times are frame centres (k + 1/2) dt (see :func:`unpack`).

    Times may be rounded (float16 is within 0.49 ms of a 1 ms frame centre below 2 s).

    Each sample's spikes become indices ``unit * frames + k`` in increasing order, stored as
    LEB128 gaps and compressed with xz (``lzma``; the size per spike is in docs/audio-data.md).
    """
    gaps, frames, counts = [], [], []
    for i, (t, u) in enumerate(zip(spikes.times, spikes.units)):
        t = np.asarray(t, dtype=np.float64)
        k = np.round(t / dt - 0.5).astype(np.int64)       # nearest frame centre
        if k.size and (k.min() < 0 or np.abs(t - (k + 0.5) * dt).max() >= 0.499 * dt):
            raise DataError(f"{spikes.path or 'spikes'}: sample {i}: times are not on the "
                            f"(k + 1/2) * {dt} s grid")
        n = int(k.max()) + 1 if k.size else 0
        idx = np.sort(np.asarray(u, dtype=np.int64) * n + k)
        if np.any(np.diff(idx) == 0):
            raise DataError(f"{spikes.path or 'spikes'}: sample {i}: two spikes of one unit "
                            f"in one frame")
        gaps.append(np.diff(idx, prepend=-1))
        frames.append(n)
        counts.append(k.size)
    code = lzma.compress(_leb128(np.concatenate(gaps) if gaps else np.zeros(0)),
                         preset=9 | lzma.PRESET_EXTREME)
    return {"code": np.frombuffer(code, dtype=np.uint8), "frames": np.array(frames, np.uint32),
            "counts": np.array(counts, np.uint32), "labels": spikes.labels.astype(np.uint8),
            "speakers": spikes.speakers.astype(np.uint16), "dt": np.float64(dt)}


def unpack(arrays: dict[str, np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Times (s, float64) and units (uint16) per sample from :func:`pack`'s arrays."""
    gaps = _unleb128(lzma.decompress(np.asarray(arrays["code"]).tobytes())).astype(np.int64)
    counts = np.asarray(arrays["counts"], dtype=np.int64)
    if gaps.size != counts.sum():
        raise DataError(f"packed spikes: {gaps.size} codes for {counts.sum()} spikes")
    dt = float(arrays["dt"])
    idx = np.cumsum(gaps) if gaps.size else gaps
    times, units = [], []
    start = 0
    for n, m in zip(np.asarray(arrays["frames"], dtype=np.int64), counts):
        # gaps restart at each sample (the first gap counts from -1)
        j = idx[start:start + m] - (idx[start - 1] if start else 0) - 1
        u, k = np.divmod(j, max(int(n), 1))
        order = np.lexsort((u, k))
        times.append((k[order] + 0.5) * dt)
        units.append(u[order].astype(np.uint16))
        start += m
    return times, units


def save_pack(path, splits: dict[str, SpikeSet], *, note: str = "") -> str:
    """Write ``splits`` (e.g. ``{"train": ..., "test": ...}``) packed into one ``.npz``.

    The zip is byte-for-byte deterministic (fixed entry dates). Returns the file's SHA-256,
    which :func:`default_data` checks (``DEFAULT_PACK_SHA256``).
    """
    import io
    import zipfile
    arrays = {}
    for split, spikes in splits.items():
        for k, v in pack(spikes).items():
            arrays[f"{split}/{k}"] = np.asarray(v)
        arrays[f"{split}/digest"] = np.array(_spike_digest(spikes.times, spikes.units))
    arrays["note"] = np.array(note)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, a in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, a, allow_pickle=False)
            z.writestr(zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0)),
                       buf.getvalue())
    return _sha256(path)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_dir() -> Path:
    """Where unpacked data goes: ``$POLYCHRONY_CACHE`` or ``~/.cache/polychrony``."""
    return Path(os.environ.get("POLYCHRONY_CACHE", Path.home() / ".cache" / "polychrony"))


def default_data() -> tuple[Path, Path]:
    """Paths of the embedded synthetic digits, ``(train.h5, test.h5)`` in the SHD layout.

    The first call checks ``model/audio/synth-digits-v1.npz`` against its SHA-256, unpacks it into
    :func:`cache_dir` and checks the spike digest stored in it; later calls reuse the files.
    """
    from model.audio.synth import KEYS, speaker_meta
    if not DEFAULT_PACK.is_file():
        raise DataError(f"{DEFAULT_PACK}: the embedded data set is missing")
    digest = _sha256(DEFAULT_PACK)
    if digest != DEFAULT_PACK_SHA256:
        raise DataError(f"{DEFAULT_PACK}: SHA-256 {digest} differs from the recorded "
                        f"{DEFAULT_PACK_SHA256}")
    out = cache_dir() / f"synth-digits-{digest[:16]}"
    paths = out / "train.h5", out / "test.h5"
    stamp = out / "ok"
    if stamp.is_file() and all(p.is_file() for p in paths):
        return paths
    out.mkdir(parents=True, exist_ok=True)
    with np.load(DEFAULT_PACK, allow_pickle=False) as z:
        arrays = dict(z)
    for split, path in zip(("train", "test"), paths):
        part = {k[len(split) + 1:]: v for k, v in arrays.items() if k.startswith(split + "/")}
        times, units = unpack(part)
        if _spike_digest(times, units) != str(part["digest"]):
            raise DataError(f"{DEFAULT_PACK}: '{split}' spikes do not match their digest")
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        write_shd(tmp, times, units, part["labels"], part["speakers"], list(KEYS),
                  meta=speaker_meta())
        os.replace(tmp, path)
    stamp.write_text(digest + "\n")
    return paths


def _spike_digest(times, units) -> str:
    """SHA-256 over every sample's spike frames (1 ms) and units."""
    h = hashlib.sha256()
    for t, u in zip(times, units):
        h.update(np.floor(np.asarray(t, dtype=np.float64) * 1000).astype("<i4").tobytes())
        h.update(np.asarray(u, dtype="<u2").tobytes())
        h.update(b"|")
    return h.hexdigest()
