"""Test-vector bundles: a stimulus and its expected trace, saved as one pickle-free .npz file.

One bundle feeds every verification level (Amaranth units, the network core, cocotb). The file
holds integer arrays ``x``, ``forced.<layer>``, ``spikes.<layer>``, ``v.<layer>`` and a
``header`` entry: UTF-8 JSON stored as uint8, with the network digest, the prediction, the
number of steps and the layer lists.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.ir import Network
from sim.randnet import random_stimulus
from model.ir import Mismatch, Trace
from sim.reference import simulate

__all__ = ["Bundle", "make_bundle", "save_bundle", "load_bundle", "FORMAT", "VERSION"]

FORMAT = "polychrony-vectors"
VERSION = 1


@dataclass
class Bundle:
    """Inputs and expected outputs for the network whose IR digest is ``digest``."""

    digest: str
    x: np.ndarray
    forced: dict[int, np.ndarray]
    trace: Trace

    @property
    def steps(self) -> int:
        return int(self.x.shape[0])

    def replay(self, net: Network) -> Mismatch | None:
        """Re-simulate on ``net`` and return the first mismatch against the stored trace."""
        if net.digest != self.digest:
            raise ValueError(f"bundle is for network {self.digest}, got {net.digest}")
        return self.trace.first_mismatch(simulate(net, self.x, self.forced))


def make_bundle(net: Network, steps: int, seed: int, *, rate: float | None = None) -> Bundle:
    """Draw a random stimulus (see :func:`sim.randnet.random_stimulus`) and simulate it."""
    x, forced = random_stimulus(net, steps, seed, rate=rate)
    return Bundle(digest=net.digest, x=x, forced=forced, trace=simulate(net, x, forced))


def save_bundle(b: Bundle, path: str | Path) -> Path:
    """Write ``b`` to ``path`` as a compressed .npz (integer arrays only)."""
    path = Path(path)
    header = {"format": FORMAT, "version": VERSION, "digest": b.digest,
              "prediction": b.trace.prediction, "steps": b.steps,
              "forced_layers": sorted(int(l) for l in b.forced),
              "spike_layers": sorted(int(l) for l in b.trace.spikes),
              "v_layers": sorted(int(l) for l in b.trace.v)}
    arrays = {"header": np.frombuffer(json.dumps(header).encode(), np.uint8),
              "x": np.asarray(b.x, np.int64)}
    arrays.update({f"forced.{l}": np.asarray(f, np.uint8) for l, f in b.forced.items()})
    arrays.update({f"spikes.{l}": np.asarray(s, np.uint8) for l, s in b.trace.spikes.items()})
    arrays.update({f"v.{l}": np.asarray(v, np.int64) for l, v in b.trace.v.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)
    return path


def load_bundle(path: str | Path) -> Bundle:
    """Read a bundle written by :func:`save_bundle`; never unpickles."""
    path = Path(path)
    try:
        npz = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise ValueError(f"{path}: not a readable vector bundle ({e or 'empty file'})") \
            from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: a single .npy array, not a vector bundle (the .npz "
                         "that sim.vectors.save_bundle writes); input frames go to --inputs")
    with npz:
        names = set(npz.files)

        def get(name: str, dtype) -> np.ndarray:
            if name not in names:
                raise ValueError(f"{path}: array {name!r} is missing")
            a = npz[name]
            if a.dtype.kind not in "iu":
                raise ValueError(f"{path}: array {name!r} must hold integers, got {a.dtype}")
            return a.astype(dtype)

        try:
            header = json.loads(bytes(get("header", np.uint8)).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: header is not UTF-8 JSON ({e})") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ValueError(f"{path}: not a {FORMAT} file")
        if header.get("version") != VERSION:
            raise ValueError(f"{path}: unknown version {header.get('version')!r}; "
                             f"this polychrony reads version {VERSION}")
        x = get("x", np.int64)
        forced = {int(l): get(f"forced.{l}", np.uint8) for l in header["forced_layers"]}
        spikes = {int(l): get(f"spikes.{l}", np.uint8) for l in header["spike_layers"]}
        v = {int(l): get(f"v.{l}", np.int64) for l in header["v_layers"]}
    steps = header["steps"]
    for name, a in [("x", x), *((f"forced.{l}", f) for l, f in forced.items()),
                    *((f"spikes.{l}", s) for l, s in spikes.items()),
                    *((f"v.{l}", a) for l, a in v.items())]:
        if a.ndim != 2 or a.shape[0] != steps:
            raise ValueError(f"{path}: array {name!r} must have {steps} rows, got {a.shape}")
    for a in (*spikes.values(), *v.values()):
        a.setflags(write=False)
    trace = Trace(spikes=spikes, v=v, prediction=header["prediction"])
    return Bundle(digest=header["digest"], x=x, forced=forced, trace=trace)
