"""Float checkpoints of DelRec / ConvDelRec: the float model beside its IR, written without pickles.

A training run (``polychrony train shd --out NET.npz``) writes ``NET.float.npz``
(:func:`float_path`): the model as it was after the float phase, before quantisation-aware
fine-tuning, whose test accuracy is the IR's ``meta["float_test_acc"]``. The file is an
``.npz`` (a zip of ``.npy`` files, :func:`model.ir.archive.write_archive`: deflated, no
pickles, written atomically), read with ``allow_pickle=False``:

* one entry per tensor of the model's ``state_dict``, under its key (``fc1.weight``,
  ``bn1.running_mean``, ``w_rec``, ``delay``, ``more.0.fc.weight``, ...): float32, except the
  integer buffers (BatchNorm's ``num_batches_tracked``), int64. No optimiser state;
* ``__config__``: a JSON string ``{"format": "polychrony-float-checkpoint", "version": 1,
  "model": {...}, "meta": {...}}``. ``model`` holds the fields of
  :class:`~model.audio.delrec.ModelConfig` (``DelRecNet(ModelConfig(**model))`` rebuilds the
  network); ``meta`` says how it was trained and on which test split: ``arch``, ``seed``,
  ``data`` (as given: ``synthetic``, ``random`` or a path), ``source`` (the files read),
  ``fold``, ``steps`` (the window), ``limit``, ``in_bits``, ``clip_inputs``,
  ``float_test_acc``, and beside an IR its ``int_test_acc`` and ``ir_digest``.

:func:`load_float` checks the file against the model its config describes before it allocates
the model, and raises ``ValueError`` naming the file and the entry or field. :func:`evaluate_float`
reproduces the float test accuracy, and the integer one of the IR beside the file.
"""

from __future__ import annotations

import errno
import json
import math
import os
import zipfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch

from model.audio.delrec import DelRecNet, ModelConfig
from model.ir.archive import write_archive

__all__ = ["FLOAT_FORMAT", "FLOAT_VERSION", "CONFIG_ENTRY", "FloatCheckpoint", "Reproduced",
           "float_path", "ir_beside", "save_float", "load_float", "evaluate_float"]

FLOAT_FORMAT = "polychrony-float-checkpoint"
FLOAT_VERSION = 1
#: The entry holding the JSON config (no state-dict key of the network can be this name).
CONFIG_ENTRY = "__config__"
#: The model fields a version-1 file must give (fields added to ModelConfig later default).
_V1_MODEL_FIELDS = ("arch", "n_in", "hidden", "n_out", "kernel", "dmax", "beta", "beta_shift",
                    "out_beta", "out_beta_shift", "threshold", "batchnorm", "dropout",
                    "rec_dropout", "alpha", "w_bits", "self_max", "delay_init", "tonotopic",
                    "layers")
#: The largest config entry read (far above any real one).
_MAX_CONFIG_BYTES = 1 << 20
#: Room for an .npy entry's header beyond its data.
_NPY_HEADER_SLACK = 4096


@dataclass
class FloatCheckpoint:
    """A loaded float checkpoint: the rebuilt ``model`` (eval mode), its ``config`` and
    ``meta``."""

    model: DelRecNet
    config: ModelConfig
    meta: dict


@dataclass
class Reproduced:
    """What :func:`evaluate_float` measured: the float model's test accuracy, and the integer
    one of the IR beside the checkpoint (``ir`` its path, ``None`` when there is none), with
    what training recorded (the checkpoint's ``meta``, the IR's ``int_test_acc``)."""

    float_acc: float
    samples: int
    meta: dict
    ir: Path | None = None
    int_acc: float | None = None
    int_recorded: float | None = None
    #: ``False`` when the IR beside the file is not the one the checkpoint was written with.
    ir_matches: bool | None = None


def float_path(ir_path: str | Path) -> Path:
    """Where the float checkpoint of the IR at ``ir_path`` lives: ``net.npz`` ->
    ``net.float.npz`` (as :func:`model.ir.workload_path` places the workload)."""
    p = Path(ir_path)
    stem = p.name[:-4] if p.name.endswith(".npz") else p.name
    return p.with_name(f"{stem}.float.npz")


def ir_beside(path: str | Path) -> Path:
    """The IR a float checkpoint belongs to: ``net.float.npz`` -> ``net.npz``."""
    p = Path(path)
    stem = p.name[:-len(".float.npz")] if p.name.endswith(".float.npz") else p.stem
    return p.with_name(f"{stem}.npz")


def _model_config(model: dict, where: str) -> ModelConfig:
    """``model`` (the config's ``model`` object) as a ModelConfig: every version-1 field given,
    no unknown one, values ModelConfig accepts."""
    if not isinstance(model, dict):
        raise ValueError(f"{where}: field 'model' must be a JSON object, got "
                         f"{type(model).__name__}")
    names = {f.name for f in fields(ModelConfig)}
    unknown = sorted(set(model) - names)
    if unknown:
        raise ValueError(f"{where}: model field {unknown[0]!r} is no setting of the network "
                         f"(model.audio.delrec.ModelConfig)")
    missing = [k for k in _V1_MODEL_FIELDS if k not in model]
    if missing:
        raise ValueError(f"{where}: model field {missing[0]!r} is missing")
    for k in ("n_in", "hidden", "n_out", "kernel", "dmax", "w_bits", "layers"):
        v = model[k]
        if not isinstance(v, int) or isinstance(v, bool):
            raise ValueError(f"{where}: model field {k!r} must be an integer, got {v!r}")
    try:
        return ModelConfig(**model)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: model config: {e}") from None


def _shapes(cfg: ModelConfig) -> dict[str, tuple[tuple, torch.dtype]]:
    """Each state-dict key of the network ``cfg`` describes, with its shape and dtype, found
    without allocating it (on torch's meta device)."""
    with torch.device("meta"):
        m = DelRecNet(cfg)
    return {k: (tuple(v.shape), v.dtype) for k, v in m.state_dict().items()}


def _check_state(shapes: dict, got: dict[str, tuple], where: str) -> None:
    """``got`` (key -> shape) against ``shapes``: no unknown, missing or misshapen entry."""
    for k in got:
        if k not in shapes:
            raise ValueError(f"{where}: entry {k!r} is no parameter or buffer of the network "
                             f"its config describes")
    for k, (shape, _) in shapes.items():
        if k not in got:
            raise ValueError(f"{where}: entry {k!r} is missing (the network its config "
                             f"describes has it, shape {shape})")
        if tuple(got[k]) != shape:
            raise ValueError(f"{where}: entry {k!r} has shape {tuple(got[k])}, the network its "
                             f"config describes needs {shape}")


def save_float(path: str | Path, state: dict, config: ModelConfig | dict, meta: dict) -> Path:
    """Write the float model ``state`` (a ``state_dict``) with its ``config`` and ``meta`` to
    ``path`` (see the module docstring), replacing it atomically; return the path.

    Raises ``ValueError`` when ``state`` does not fit ``config`` (the file would not load).
    """
    path = Path(path)
    model = asdict(config) if isinstance(config, ModelConfig) else dict(config)
    model = json.loads(json.dumps(model))         # tuples as lists, as they are read back
    cfg = _model_config(model, f"{path}: __config__")
    if CONFIG_ENTRY in state:
        raise ValueError(f"{path}: state key {CONFIG_ENTRY!r} is reserved for the config")
    _check_state(_shapes(cfg), {k: tuple(v.shape) for k, v in state.items()}, f"{path}: state")
    arrays = {}
    for k, v in state.items():
        v = v.detach().cpu()
        arrays[k] = v.numpy().astype(np.float32 if v.is_floating_point() else np.int64)
    try:
        text = json.dumps({"format": FLOAT_FORMAT, "version": FLOAT_VERSION, "model": model,
                           "meta": meta}, indent=1, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: meta must be plain JSON (numbers, strings, lists, "
                         f"objects): {e}") from None
    arrays[CONFIG_ENTRY] = np.array(text)
    return write_archive(path, arrays)


def _entry(npz, name: str, where: str, limit: int) -> np.ndarray:
    """Entry ``name`` of ``npz``, refused unread when the zip says it is over ``limit`` bytes."""
    size = npz.zip.getinfo(f"{name}.npy").file_size
    if size > limit:
        raise ValueError(f"{where}: entry {name!r} is {size} bytes, more than the {limit} its "
                         f"shape allows")
    try:
        return npz[name]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"{where}: entry {name!r} cannot be read: {e}") from None


def load_float(path: str | Path) -> FloatCheckpoint:
    """Read the float checkpoint at ``path`` and rebuild its model (in eval mode).

    Raises ``ValueError`` naming the file and the entry or field when it is not a float
    checkpoint: not an .npz, no ``__config__`` entry or a bad one, an entry the network does
    not have, a missing one, a wrong shape or dtype, values that are not finite.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
    where = str(path)
    try:
        npz = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"{where}: not a float checkpoint (.npz): {e}") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ValueError(f"{where}: not a float checkpoint: a single .npy array, not an .npz")
    with npz:
        names = [n[:-4] for n in npz.zip.namelist() if n.endswith(".npy")]
        if CONFIG_ENTRY not in names:
            hint = " (this is an IR file: its float checkpoint is NAME.float.npz)" \
                if "header" in names else ""
            raise ValueError(f"{where}: no {CONFIG_ENTRY!r} entry: not a float checkpoint{hint}")
        raw = _entry(npz, CONFIG_ENTRY, where, _MAX_CONFIG_BYTES)
        if raw.dtype.kind != "U" or raw.ndim != 0:
            raise ValueError(f"{where}: entry {CONFIG_ENTRY!r} must be one JSON string, got "
                             f"{raw.dtype} of shape {raw.shape}")
        try:
            head = json.loads(str(raw[()]))
        except ValueError as e:
            raise ValueError(f"{where}: entry {CONFIG_ENTRY!r} is not JSON: {e}") from None
        if not isinstance(head, dict):
            raise ValueError(f"{where}: entry {CONFIG_ENTRY!r} must be a JSON object")
        for key in ("format", "version", "model", "meta"):
            if key not in head:
                raise ValueError(f"{where}: {CONFIG_ENTRY} field {key!r} is missing")
        if head["format"] != FLOAT_FORMAT:
            raise ValueError(f"{where}: {CONFIG_ENTRY} field 'format' is {head['format']!r}, "
                             f"not {FLOAT_FORMAT!r}")
        if head["version"] != FLOAT_VERSION:
            raise ValueError(f"{where}: {CONFIG_ENTRY} field 'version' is {head['version']!r}; "
                             f"this polychrony reads version {FLOAT_VERSION}")
        if not isinstance(head["meta"], dict):
            raise ValueError(f"{where}: {CONFIG_ENTRY} field 'meta' must be a JSON object")
        cfg = _model_config(head["model"], f"{where}: {CONFIG_ENTRY}")
        shapes = _shapes(cfg)
        got = {}
        for k in names:
            if k == CONFIG_ENTRY:
                continue
            if k not in shapes:
                raise ValueError(f"{where}: entry {k!r} is no parameter or buffer of the "
                                 f"network its config describes")
            shape, _ = shapes[k]
            limit = math.prod(shape) * 8 + _NPY_HEADER_SLACK
            got[k] = _entry(npz, k, where, limit)
        _check_state(shapes, {k: a.shape for k, a in got.items()}, where)
        state = {}
        for k, a in got.items():
            _, dtype = shapes[k]
            want = "f" if dtype.is_floating_point else "iu"
            if a.dtype.kind not in want:
                raise ValueError(f"{where}: entry {k!r} is {a.dtype}, the network needs "
                                 f"{'floats' if want == 'f' else 'integers'}")
            state[k] = torch.from_numpy(np.ascontiguousarray(a)).to(dtype)
            if want == "f" and not torch.isfinite(state[k]).all():
                raise ValueError(f"{where}: entry {k!r} holds NaN or infinity (as {dtype})")
    with torch.device("meta"):
        model = DelRecNet(cfg)
    model.to_empty(device="cpu")           # every tensor is overwritten just below
    model.load_state_dict(state)
    model.eval()
    return FloatCheckpoint(model, cfg, head["meta"])


def _meta(meta: dict, key: str, kind: type, where: str, *, optional: bool = False):
    """``meta[key]``, which must be a ``kind`` (or, if ``optional``, missing or null)."""
    if meta.get(key) is None and optional:
        return None
    if key not in meta:
        raise ValueError(f"{where}: meta field {key!r} is missing (it names the test split; "
                         f"give it on the command line)")
    v = meta[key]
    if not isinstance(v, kind) or isinstance(v, bool) and kind is not bool:
        raise ValueError(f"{where}: meta field {key!r} must be {kind.__name__}, got {v!r}")
    return v


def evaluate_float(path: str | Path, *, data: str | None = None, fold: str | None = None,
                   steps: int | None = None, in_bits: int | None = None,
                   clip_inputs: bool | None = None, ir_path: str | Path | None = None
                   ) -> Reproduced:
    """Reproduce the accuracies of the float checkpoint at ``path`` without training.

    Loads the test split as training did (:func:`model.audio.train.load_audio`), with the
    data, fold, window (``steps``), seed, sample limit and input width the checkpoint's meta
    recorded unless given here, and evaluates the float model with
    :func:`model.audio.train.evaluate`. The IR at ``ir_path`` (default: :func:`ir_beside`, when
    it exists) is run as the integer network (:func:`model.audio.train.integer_accuracy`).
    """
    from model import ir
    from model.audio.train import AudioConfig, evaluate, integer_accuracy, load_audio

    ck = load_float(path)
    where, meta = str(path), ck.meta
    cfg = AudioConfig(
        arch=ck.config.arch,
        data=data if data is not None else _meta(meta, "data", str, where),
        steps=steps if steps is not None else _meta(meta, "steps", int, where),
        fold=fold if fold is not None else _meta(meta, "fold", str, where, optional=True),
        seed=_meta(meta, "seed", int, where),
        limit=_meta(meta, "limit", int, where, optional=True),
        in_bits=in_bits if in_bits is not None else _meta(meta, "in_bits", int, where,
                                                          optional=True),
        clip_inputs=bool(clip_inputs) or bool(_meta(meta, "clip_inputs", bool, where,
                                                    optional=True)),
        progress=False)
    d = load_audio(cfg)
    if d.n_in != ck.config.n_in or d.n_classes != ck.config.n_out:
        raise ValueError(f"{where}: the network has n_in={ck.config.n_in} inputs and "
                         f"n_out={ck.config.n_out} classes, the data ({d.source}) "
                         f"{d.n_in} channels and {d.n_classes} classes")
    acc, _ = evaluate(ck.model, d.x_test, d.y_test)
    res = Reproduced(float_acc=acc, samples=len(d.y_test), meta=meta)
    beside = Path(ir_path) if ir_path is not None else ir_beside(path)
    if ir_path is not None or (beside != Path(path) and beside.is_file()):
        net = ir.load(beside)
        res.ir = beside
        res.int_acc = integer_accuracy(net, d.x_test, d.y_test)
        res.int_recorded = net.meta.get("int_test_acc")
        if "ir_digest" in meta:
            res.ir_matches = net.digest == meta["ir_digest"]
    return res
