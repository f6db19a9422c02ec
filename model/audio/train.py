"""Train DelRec / ConvDelRec on binned spike counts, fine-tune quantisation-aware, export the IR.

:func:`train_audio` runs the whole recipe from one :class:`AudioConfig`: data, float training
(AdamW + OneCycle for the weights, Adam + cosine for the delays, the delay kernel's width
annealed per epoch), optional quantisation-aware fine-tuning, export to the integer IR and the
float and integer test accuracy. Started under ``torchrun`` it trains data-parallel
(DistributedDataParallel, gloo, CPU); rank 0 validates, checkpoints and exports.

Over 600 lines because it is one recipe: its phases share the configuration, the model, the
optimisers and the checkpoint state.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..progress import progress

from model.audio.cochlea import CochleaParams
from model.audio.delrec import DelRecNet, ModelConfig, parameter_counts, to_network
from model.int_forward import integer_forward
from model.ir import Network, Workload

__all__ = ["AudioConfig", "AudioData", "AudioResult", "data_paths", "load_audio",
           "cochlea_meta", "random_counts", "train_audio", "evaluate", "integer_accuracy",
           "sigma_at", "teacher_logits"]


#: Test samples (the first ones) kept with their labels as the network's workload.
WORKLOAD_SAMPLES = 16


@dataclass
class AudioConfig:
    """Everything one training run depends on; the same config and seed give the same run."""

    # model (see model.audio.delrec.ModelConfig)
    arch: str = "dense"
    hidden: int = 256
    kernel: int = 5
    dmax: int = 31
    beta: int = 12
    beta_shift: int = 8
    out_beta: int = 243
    out_beta_shift: int = 8
    batchnorm: bool = True
    dropout: float = 0.4
    rec_dropout: float = 0.0
    w_bits: int = 8
    self_max: float | None = 0.9
    delay_init: tuple = (1 / 3, 1.0)   # fractions of dmax - 1 (dmax=31: DelRec's 10..30)
    tonotopic: float = 0.0        # >0: local init of fc1/fc2 (see DelRecNet._tonotopic_)
    layers: int = 2               # hidden LIF layers, all but the first recurrent
    # data
    data: str = "synthetic"       # "synthetic" (model.audio.pack.default_data()), "random",
                                  # or a path
    steps: int | None = None      # frames per sample (default: the longest sample)
    in_bits: int | None = None    # default: the fewest bits that hold every count
    clip_inputs: bool = False     # clip counts above 2**in_bits - 1 instead of an error
    val_fraction: float = 0.2
    augment: int = 1              # >1: DelRec's augmentation, this many copies per epoch
    spike_aug: bool = False       # a fresh model.audio.shd.spike_augment draw every epoch
                                  # (channel shift, time stretch, dropout)
    spike_aug_off: tuple = ()     # parts of it switched off (model.audio.shd.SPIKE_AUGS)
    limit: int | None = None      # use at most this many training samples (quick runs)
    fold: str | None = None       # a many-voice corpus' measurement (model.audio.corpus.
                                  # protocol): "unseen voices", "without festival", ...
    # optimisation
    epochs: int = 40
    batch: int = 64               # global batch (split over ranks under torchrun)
    lr: float | None = None       # peak weight lr; None: 1e-2 dense, 5e-3 conv (measured)
    lr_rec: float | None = None   # peak lr of the recurrent weights (float phase); None: lr
    lr_delay: float = 5e-2
    weight_decay: float = 1e-5
    sigma0: float = 10.0          # delay kernel: sigma(e) = sigma0 (0.95**(100/epochs))**e
    swa: int = 0                  # >0: also try the average of the last swa float epochs
    qat_epochs: int = 0
    qat_lr: float = 1e-3
    # distillation: soft targets from a trained network's IR file (its integer read-out)
    teacher: str | None = None
    distill: float = 0.5          # weight of the soft-target term (1 - distill: the labels)
    distill_temp: float = 2.0     # temperature of both softmaxes (the term is scaled by T^2)
    seed: int = 0
    threads: int = 1
    # output
    checkpoint: str | None = None
    resume: bool = True
    progress: bool = True
    dump_state: str | None = None  # write each rank's final state_dict to this "{rank}" path

    @property
    def peak_lr(self) -> float:
        """The weights' peak learning rate: ``lr``, or 1e-2 for dense (better than DelRec's
        5e-3 on a subset of the synthetic digits) and 5e-3 for conv (its one shared kernel
        moves every neuron at once; see docs/audio.md)."""
        if self.lr is not None:
            return self.lr
        return 1e-2 if self.arch == "dense" else 5e-3

    def model_config(self, n_in: int, n_out: int) -> ModelConfig:
        d = {f.name: getattr(self, f.name) for f in fields(ModelConfig)
             if hasattr(self, f.name)}
        return ModelConfig(**{**d, "n_in": n_in, "n_out": n_out})

    @classmethod
    def from_dict(cls, d: dict) -> "AudioConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class AudioData:
    """Count tensors (uint8, ``(S, T, n_in)``) and int64 labels of each split."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    in_bits: int
    n_classes: int
    source: str
    speakers_test: np.ndarray | None = None
    #: The cochlea that encoded the data (that of the files; the defaults for random counts).
    cochlea: CochleaParams = CochleaParams()

    @property
    def n_in(self) -> int:
        return int(self.x_train.shape[2])

    @property
    def steps(self) -> int:
        return int(self.x_train.shape[1])


@dataclass
class AudioResult:
    """What :func:`train_audio` returns (``net`` is ``None`` on ranks other than 0)."""

    config: dict
    model: DelRecNet
    net: Network | None
    float_acc: float | None
    int_acc: float | None
    val_acc: float | None
    params: dict
    history: list = field(default_factory=list)
    seconds: float = 0.0
    seconds_per_epoch: float = 0.0
    #: The first :data:`WORKLOAD_SAMPLES` test samples with their labels, to save beside the IR
    #: (``None`` on ranks other than 0).
    workload: Workload | None = None
    #: The model's state after the float phase, whose test accuracy is ``float_acc``, to save
    #: with :func:`model.audio.floatckpt.save_float` (``None`` on ranks other than 0, and when
    #: the run resumed from a quantisation-phase checkpoint written before it was kept).
    float_state: dict | None = None

    def float_meta(self) -> dict:
        """What a float checkpoint of this run records (:mod:`model.audio.floatckpt`): how to
        load its test split again, and the accuracies to reproduce (rank 0 only)."""
        c = self.config
        return {"arch": c["arch"], "seed": c["seed"], "data": c["data"],
                "source": self.net.meta["data"], "fold": c["fold"],
                "steps": self.net.meta["steps"], "limit": c["limit"],
                "in_bits": self.net.input.in_bits, "clip_inputs": c["clip_inputs"],
                "float_test_acc": self.float_acc, "int_test_acc": self.int_acc,
                "ir_digest": self.net.digest}

    def summary(self) -> dict:
        return {"arch": self.config["arch"], "hidden": self.config["hidden"],
                "float_acc": self.float_acc, "int_acc": self.int_acc, "val_acc": self.val_acc,
                "params": self.params, "seconds": round(self.seconds, 1),
                "seconds_per_epoch": round(self.seconds_per_epoch, 2)}


# --------------------------------------------------------------------------------------------
# Data

def random_counts(n: int, steps: int, n_in: int, n_classes: int, *, seed: int,
                  max_count: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(x, y)``: ``n`` random count rasters ``(n, steps, n_in)`` uint8 and labels.

    Each class has a template (a few channel bands, each active in its own time window); a
    sample is Poisson counts of its class's template plus background, clipped to
    ``max_count``. Learnable, for tests and smoke runs.
    """
    rng = np.random.default_rng([seed, 0xA0D10])
    rates = np.full((n_classes, steps, n_in), 0.05)
    for c in range(n_classes):
        for _ in range(3):
            ch = rng.integers(0, n_in)
            t0 = rng.integers(0, max(1, steps - steps // 3))
            width = max(1, n_in // 10)
            rates[c, t0:t0 + steps // 3, max(0, ch - width):ch + width] += 1.5
    y = rng.integers(0, n_classes, n)
    x = np.minimum(rng.poisson(rates[y]), max_count).astype(np.uint8)
    return x, y.astype(np.int64)


def _split(n: int, spikes, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train/validation indices: whole speakers held out (``model.audio.shd.speaker_split``)
    when the file names them, else a random split."""
    if fraction <= 0:
        return np.arange(n), np.arange(0)
    from model.audio import shd
    if spikes is not None and (np.asarray(spikes.speakers) >= 0).all() \
            and len(np.unique(spikes.speakers)) >= 2:
        return shd.speaker_split(spikes, fraction, seed)
    return shd.random_split(n, fraction, seed) if spikes is not None else \
        _random_split(n, fraction, seed)


def _random_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng([seed, 0x5B17]).permutation(n)
    k = int(round(fraction * n))
    return np.sort(perm[k:]), np.sort(perm[:k])


def data_paths(data: str) -> tuple[Path, Path]:
    """The train and test files ``data`` names (see :class:`AudioConfig`)."""
    from model.audio.pack import default_data
    if data in ("synthetic", "default", ""):
        train, test = default_data()
        return Path(train), Path(test)
    p = Path(data)
    if p.is_dir():
        for a, b in (("shd_train.h5", "shd_test.h5"), ("train.h5", "test.h5")):
            if (p / a).exists() and (p / b).exists():
                return p / a, p / b
        raise FileNotFoundError(f"{p}: no shd_train.h5/shd_test.h5 (or train.h5/test.h5)")
    if p.is_file():
        test = p.with_name(p.name.replace("train", "test"))
        if test == p or not test.exists():
            raise FileNotFoundError(f"{p}: no matching test file {test.name} beside it")
        return p, test
    raise FileNotFoundError(f"{data}: no such file or directory")


def cochlea_meta(cochlea: CochleaParams) -> dict:
    """What the IR's ``meta`` records of the front end that encoded the training data:
    ``{"cochlea": every field}`` when it is not the default cochlea, else nothing (a network
    without the entry was trained on the defaults). :func:`model.audio.wav.cochlea_for`
    reads it back."""
    return {} if cochlea == CochleaParams() else {"cochlea": cochlea.to_dict()}


def _fit_steps(x: np.ndarray, steps: int) -> np.ndarray:
    if x.shape[1] >= steps:
        return x[:, :steps]
    return np.pad(x, ((0, 0), (0, steps - x.shape[1]), (0, 0)))


def load_audio(cfg: AudioConfig) -> AudioData:
    """Load, bin and split the data named by ``cfg.data``; choose or check ``in_bits``."""
    speakers_test = None
    cochlea = CochleaParams()
    if cfg.data == "random":
        steps = cfg.steps or 40
        n = cfg.limit or 400
        x, y = random_counts(n + n // 4, steps, 140, 20, seed=cfg.seed)
        x_tr, y_tr, x_te, y_te = x[:n], y[:n], x[n:], y[n:]
        tr = None
        source = "random"
    else:
        from model.audio import shd
        train_path, test_path = data_paths(cfg.data)
        tr, te = shd.load(train_path), shd.load(test_path)
        if tr.cochlea != te.cochlea:
            a, b = tr.cochlea.to_dict(), te.cochlea.to_dict()
            diff = ", ".join(f"{k} {a[k]} vs {b[k]}" for k in a if a[k] != b[k])
            raise shd.DataError(f"{train_path} and {test_path} were encoded by different "
                                f"cochleas (attribute 'cochlea': {diff}): train and test "
                                f"need the same front end")
        cochlea = tr.cochlea
        if cfg.fold:
            from model.audio.corpus import protocol
            folds = protocol(tr, te)
            if cfg.fold not in folds:
                raise ValueError(f"fold {cfg.fold!r}: the folds are {', '.join(folds)}")
            tri, tei, _ = folds[cfg.fold]
            if not len(tri) or not len(tei):
                raise ValueError(f"{test_path}: fold {cfg.fold!r} has {len(tri)} training and "
                                 f"{len(tei)} test samples: is this a --corpus voices pair?")
            tr, te = tr.subset(tri), te.subset(tei)
        if cfg.limit and cfg.limit < len(tr):
            keep = np.sort(np.random.default_rng([cfg.seed, 0x11]).permutation(len(tr))
                           [:cfg.limit])
            tr = tr.subset(keep)
        if cfg.steps:
            # The caller asked for this window; say how many samples it cuts short.
            for name, spk in (("training", tr), ("test", te)):
                cut = sum(1 for t in spk.times
                          if t.size and int(np.floor(float(t[-1]) / 0.01)) + 1 > cfg.steps)
                if cut:
                    warnings.warn(f"steps={cfg.steps}: {cut} of {len(spk)} {name} samples are "
                                  f"longer and lose their late spikes", stacklevel=2)
            x_tr = shd.bin_counts(tr, steps=cfg.steps, truncate=True).x
            x_te = shd.bin_counts(te, steps=cfg.steps, truncate=True).x
        else:
            x_tr, x_te = shd.bin_counts(tr).x, shd.bin_counts(te).x
            steps = max(x_tr.shape[1], x_te.shape[1])
            x_tr, x_te = _fit_steps(x_tr, steps), _fit_steps(x_te, steps)
        y_tr, y_te = np.asarray(tr.labels, np.int64), np.asarray(te.labels, np.int64)
        speakers_test = np.asarray(te.speakers)
        source = f"{train_path} | {test_path}"
    tr_idx, va_idx = _split(len(y_tr), tr, cfg.val_fraction, cfg.seed)
    top = int(max(x_tr.max(initial=0), x_te.max(initial=0)))
    in_bits = cfg.in_bits or max(1, top.bit_length())
    hi = (1 << in_bits) - 1
    if top > hi:
        if not cfg.clip_inputs:
            raise ValueError(f"counts reach {top} but in_bits={in_bits} holds at most {hi}; "
                             "raise in_bits or ask to clip (clip_inputs / --clip-inputs)")
        x_tr, x_te = np.minimum(x_tr, hi), np.minimum(x_te, hi)
    u8 = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.uint8))
    i64 = lambda a: torch.from_numpy(np.asarray(a, np.int64))
    n_classes = int(max(y_tr.max(initial=0), y_te.max(initial=0))) + 1
    if tr is not None:
        n_classes = max(n_classes, tr.n_classes)   # the file's class names, all of them
    return AudioData(u8(x_tr[tr_idx]), i64(y_tr[tr_idx]), u8(x_tr[va_idx]), i64(y_tr[va_idx]),
                     u8(x_te), i64(y_te), in_bits, max(n_classes, 2), source, speakers_test,
                     cochlea)


def _augment(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, copies: int
             ) -> tuple[np.ndarray, np.ndarray]:
    from model.audio import shd
    return shd.augment(x, y, rng, copies=copies)


# --------------------------------------------------------------------------------------------
# Evaluation

def sigma_at(epoch: int, epochs: int, sigma0: float) -> float:
    """The delay kernel's extra half-width at ``epoch``: ``sigma0 (0.95**(100/epochs))**e``."""
    return sigma0 * (0.95 ** (100.0 / max(epochs, 1))) ** epoch


@torch.no_grad()
def evaluate(model: DelRecNet, x: torch.Tensor, y: torch.Tensor, *, mode: str = "float",
             batch: int = 256) -> tuple[float, float]:
    """Return ``(accuracy, mean loss)`` in eval mode (integer delays, running statistics);
    the prediction is ``argmax sum_t v(t)``, the IR's rule."""
    was = model.training
    model.eval()
    correct, loss = 0, 0.0
    for i in range(0, len(y), batch):
        out = model(x[i:i + batch].float(), mode=mode)
        loss += F.cross_entropy(out.logits, y[i:i + batch], reduction="sum").item()
        correct += int((out.v.sum(1).argmax(1) == y[i:i + batch]).sum())
    model.train(was)
    n = max(len(y), 1)
    return correct / n, loss / n


def integer_accuracy(net: Network, x: torch.Tensor, y: torch.Tensor, *, batch: int = 256,
                     clip: bool = False) -> float:
    """Accuracy of the integer network (``model.int_forward``, equal to ``sim.reference``)."""
    correct = 0
    for i in range(0, len(y), batch):
        tr = integer_forward(net, x[i:i + batch].to(torch.int64), clip=clip, record=False)
        correct += int((tr.prediction == y[i:i + batch]).sum())
    return correct / max(len(y), 1)


# --------------------------------------------------------------------------------------------
# Distributed helpers

def _dist() -> tuple[int, int]:
    """``(rank, world)``; initialises gloo when started by torchrun with several processes."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group("gloo")
    return dist.get_rank(), dist.get_world_size()


def _sync_from_rank0(model: torch.nn.Module, world: int) -> None:
    if world > 1:
        import torch.distributed as dist
        for t in list(model.parameters()) + list(model.buffers()):
            dist.broadcast(t.data, 0)


def _barrier(world: int) -> None:
    if world > 1:
        import torch.distributed as dist
        dist.barrier()


def _wrap(model: DelRecNet, world: int):
    if world <= 1:
        return model
    from torch.nn.parallel import DistributedDataParallel
    return DistributedDataParallel(model)


# --------------------------------------------------------------------------------------------
# Training

def state_copy(model: torch.nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def teacher_logits(path: str | Path, data: AudioData, *, batch: int = 128) -> torch.Tensor:
    """Soft targets for distillation: the time-mean read-out membrane of a trained network
    (an IR file, e.g. a DelRec written by ``train_audio``) on every training sample, in its
    float units (the integer membrane over the read-out's weight scale), ``(S, classes)``.

    The teacher runs as the integer network it is (``model.int_forward``, equal to
    ``sim.reference``). Raises ``ValueError`` naming the file when it does not fit the data.
    """
    from model import ir
    net = ir.load(path)
    where = f"teacher {path}"
    out = net.layers[-1]
    if net.meta.get("kind") != "audio-delrec" or out.threshold is not None:
        raise ValueError(f"{where}: not an audio network with a non-spiking read-out "
                         f"(meta.kind={net.meta.get('kind')!r})")
    if net.input.n != data.n_in:
        raise ValueError(f"{where}: layer 0 has n={net.input.n} inputs, the data "
                         f"{data.n_in} channels")
    if out.n != data.n_classes:
        raise ValueError(f"{where}: read-out has n={out.n} neurons, the data "
                         f"{data.n_classes} classes")
    if net.input.in_bits < data.in_bits:
        raise ValueError(f"{where}: in_bits={net.input.in_bits} holds counts up to "
                         f"{(1 << net.input.in_bits) - 1}, the data need in_bits="
                         f"{data.in_bits}")
    from model.audio.wav import cochlea_for
    if cochlea_for(net) != data.cochlea:
        raise ValueError(f"{where}: trained on spikes of another cochlea (meta 'cochlea' "
                         f"{cochlea_meta(cochlea_for(net)).get('cochlea', 'default')}) than "
                         f"the data ({cochlea_meta(data.cochlea).get('cochlea', 'default')})")
    scale = float(net.meta["scales"][-1])
    rows = []
    for i in range(0, len(data.y_train), batch):
        tr = integer_forward(net, data.x_train[i:i + batch].to(torch.int64), record=True)
        rows.append(tr.v[len(net.layers) - 1].to(torch.float64).mean(1) / scale)
    return torch.cat(rows).to(torch.float32) if rows else torch.zeros(0, out.n)


def _loss(cfg: AudioConfig, logits: torch.Tensor, y: torch.Tensor,
          soft: torch.Tensor | None) -> torch.Tensor:
    """Cross-entropy on the labels, mixed with the teacher's soft targets when given."""
    hard = F.cross_entropy(logits, y)
    if soft is None:
        return hard
    t = cfg.distill_temp
    kd = F.kl_div(F.log_softmax(logits / t, 1), F.log_softmax(soft / t, 1),
                  reduction="batchmean", log_target=True) * t * t
    return (1 - cfg.distill) * hard + cfg.distill * kd


def weight_groups(cfg: AudioConfig, model: DelRecNet) -> tuple[list, float | list[float]]:
    """The float phase's weight parameters and their OneCycle peak(s): one group at
    ``peak_lr``, or, with ``lr_rec``, the recurrent weights in a group of their own."""
    if cfg.lr_rec is None:
        return model.weight_parameters(), cfg.peak_lr
    rec = model.rec_weights()
    rest = [p for p in model.weight_parameters() if all(p is not w for w in rec)]
    return ([{"params": rest, "lr": cfg.peak_lr}, {"params": rec, "lr": cfg.lr_rec}],
            [cfg.peak_lr, cfg.lr_rec])


def _run_phase(cfg: AudioConfig, model: DelRecNet, data: AudioData, *, phase: str,
               epochs: int, rank: int, world: int, ckpt: dict, history: list,
               bar: tqdm | None, extra: dict) -> tuple[dict, float]:
    """Train ``epochs`` epochs of ``phase`` ("float" or "quant"); return the best state (by
    validation accuracy in that phase's mode) and its accuracy."""
    mode = phase
    quant = phase == "quant"
    for d in model.delays():
        d.requires_grad_(not quant)
    net = _wrap(model, world)
    n = len(data.y_train) * max(cfg.augment, 1)
    per_rank = max(1, cfg.batch // world)
    # every rank runs the same number of batches (DDP needs it): drop the remainder
    batches = max(1, math.ceil((n // world) / per_rank))
    total = max(1, epochs * batches)
    if quant:
        opt_w = torch.optim.AdamW(model.weight_parameters(), lr=cfg.qat_lr,
                                  weight_decay=cfg.weight_decay)
        sched_w = torch.optim.lr_scheduler.CosineAnnealingLR(opt_w, T_max=total)
        opt_d = sched_d = None
    else:
        params, peaks = weight_groups(cfg, model)
        opt_w = torch.optim.AdamW(params, lr=cfg.peak_lr, weight_decay=cfg.weight_decay)
        sched_w = torch.optim.lr_scheduler.OneCycleLR(opt_w, max_lr=peaks, total_steps=total)
        opt_d = torch.optim.Adam(model.delays(), lr=cfg.lr_delay)
        sched_d = torch.optim.lr_scheduler.CosineAnnealingLR(opt_d, T_max=total)
    best_state, best_acc, start = state_copy(model), -1.0, 0
    if ckpt.get("phase") == phase:
        model.load_state_dict(ckpt["model"])
        opt_w.load_state_dict(ckpt["opt_w"])
        sched_w.load_state_dict(ckpt["sched_w"])
        if opt_d is not None:
            opt_d.load_state_dict(ckpt["opt_d"])
            sched_d.load_state_dict(ckpt["sched_d"])
        best_state, best_acc, start = ckpt["best"], ckpt["best_acc"], ckpt["epoch"] + 1
        if ckpt.get("swa"):
            extra["swa"] = ckpt["swa"]
    elif quant and rank == 0 and len(data.y_val):
        # no fine-tuning at all is a candidate too: QAT never ends worse on validation
        best_acc, vloss = evaluate(model, data.x_val, data.y_val, mode="quant")
        history.append({"phase": phase, "epoch": -1, "val_acc": best_acc, "val_loss": vloss})
    model.train()
    for epoch in range(start, epochs):
        t0 = time.monotonic()
        if not quant:
            model.sigma.fill_(sigma_at(epoch, epochs, cfg.sigma0))
        rng = np.random.default_rng([cfg.seed, epoch, int(quant)])
        torch.manual_seed(cfg.seed * 100003 + epoch * 101 + rank + 7919 * int(quant))
        x_ep, y_ep = data.x_train, data.y_train
        if cfg.augment > 1:
            xa, ya = _augment(data.x_train.numpy(), data.y_train.numpy(), rng, cfg.augment)
            hi = (1 << data.in_bits) - 1  # blends can exceed the widest count: clip them
            x_ep = torch.from_numpy(np.minimum(xa, hi).astype(np.uint8))
            y_ep = torch.from_numpy(np.asarray(ya, np.int64))
        if cfg.spike_aug and not quant:
            from model.audio.shd import spike_augment, spike_augment_options
            hi = (1 << data.in_bits) - 1  # frames that land together can exceed it: clip
            x_ep = torch.from_numpy(np.minimum(spike_augment(
                x_ep.numpy(), rng, **spike_augment_options(cfg.spike_aug_off)), hi)
                .astype(np.uint8))
        perm = torch.from_numpy(rng.permutation(len(y_ep)))
        perm = perm[:len(perm) - len(perm) % world][rank::world]
        tot_loss, seen = 0.0, 0
        inner = progress(range(batches), desc=f"{phase} epoch {epoch + 1}/{epochs}", leave=False,
                     disable=bar is None, dynamic_ncols=True)
        for b in inner:
            idx = perm[b * per_rank:(b + 1) * per_rank]
            if len(idx) == 0:
                continue
            out = net(x_ep[idx].float(), mode=mode)
            soft = extra.get("teacher")
            loss = _loss(cfg, out.logits, y_ep[idx], None if soft is None else soft[idx])
            opt_w.zero_grad(set_to_none=True)
            if opt_d is not None:
                opt_d.zero_grad(set_to_none=True)
            loss.backward()
            opt_w.step()
            sched_w.step()
            model.clamp_self_()
            if opt_d is not None:
                opt_d.step()
                sched_d.step()
                model.clamp_delays_()
            tot_loss += loss.item() * len(idx)
            seen += len(idx)
            inner.set_postfix(loss=f"{tot_loss / seen:.3f}")
        train_s = time.monotonic() - t0
        rec = {"phase": phase, "epoch": epoch, "train_loss": tot_loss / max(seen, 1),
               "sigma": float(model.sigma), "train_seconds": round(train_s, 2)}
        if rank == 0:
            if len(data.y_val):
                acc, vloss = evaluate(model, data.x_val, data.y_val, mode=mode)
                rec.update(val_acc=acc, val_loss=vloss)
            else:
                acc = -rec["train_loss"]
            if acc > best_acc:
                best_acc, best_state = acc, state_copy(model)
            if not quant and cfg.swa and epoch >= epochs - cfg.swa:
                k = epoch - (epochs - cfg.swa)       # epochs averaged so far
                cur, avg = state_copy(model), extra.get("swa")
                extra["swa"] = cur if k == 0 else {
                    n: avg[n] + (v - avg[n]) / (k + 1) if v.is_floating_point() else v
                    for n, v in cur.items()}
            rec["seconds"] = round(time.monotonic() - t0, 2)
            history.append(rec)
            if bar is not None:
                bar.update(1)
                bar.set_postfix({k: (f"{v:.3f}" if isinstance(v, float) else v)
                                 for k, v in rec.items() if k in ("train_loss", "val_acc")})
            if cfg.checkpoint:
                _save_ckpt(cfg, {"phase": phase, "epoch": epoch, "model": state_copy(model),
                                 "opt_w": opt_w.state_dict(), "sched_w": sched_w.state_dict(),
                                 "opt_d": opt_d.state_dict() if opt_d else {},
                                 "sched_d": sched_d.state_dict() if sched_d else {},
                                 "best": best_state, "best_acc": best_acc,
                                 "float_test_acc": extra.get("float_test_acc", -1.0),
                                 # the float phase's model, for the float checkpoint
                                 **({"float_state": extra["float_state"]}
                                    if quant and "float_state" in extra else {}),
                                 "swa": extra.get("swa", {}),
                                 "history": json.dumps(history), "config": json.dumps(
                                     asdict(cfg))})
        else:
            history.append(rec)
        _barrier(world)
    if not quant and cfg.swa and rank == 0 and "swa" in extra:
        best_state, best_acc = try_average(model, data, extra.pop("swa"), best_state,
                                            best_acc, epochs, history)
    for d in model.delays():
        d.requires_grad_(True)
    return best_state, best_acc


@torch.no_grad()
def try_average(model: DelRecNet, data: AudioData, avg: dict, best_state: dict,
                 best_acc: float, epochs: int, history: list) -> tuple[dict, float]:
    """Weight averaging over the last float epochs (SWA, Izmailov et al. 2018) as one more
    candidate for the best model: load the average, recompute the BatchNorm statistics with one
    pass over the training data (the averaged weights' own), and keep it only if its
    validation accuracy beats the best single epoch (without validation data there is nothing
    to judge it by, and the best single epoch stays)."""
    if not len(data.y_val):
        return best_state, best_acc
    model.load_state_dict(avg)
    x = data.x_train
    torch.optim.swa_utils.update_bn((x[i:i + 256].float() for i in range(0, len(x), 256)),
                                    model)
    state = state_copy(model)
    acc, vloss = evaluate(model, data.x_val, data.y_val)
    history.append({"phase": "float", "epoch": epochs, "swa": True, "val_acc": acc,
                    "val_loss": vloss})
    return (state, acc) if acc > best_acc else (best_state, best_acc)


def _save_ckpt(cfg: AudioConfig, state: dict) -> None:
    path = Path(cfg.checkpoint)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _load_ckpt(cfg: AudioConfig) -> dict:
    if not cfg.checkpoint or not cfg.resume or not Path(cfg.checkpoint).exists():
        return {}
    ckpt = torch.load(cfg.checkpoint, weights_only=True)
    saved = json.loads(ckpt["config"])
    mine = asdict(cfg)
    keep = ("checkpoint", "resume", "progress", "dump_state", "threads")
    if cfg.arch == "dense":
        keep += ("kernel",)   # the conv taps: no part of a dense network
    # a setting added after the checkpoint was written has its default there
    default = asdict(AudioConfig())
    diff = {k for k in mine if k not in keep and json.dumps(saved.get(k, default[k]))
            != json.dumps(mine[k])}
    if diff:
        raise ValueError(f"checkpoint {cfg.checkpoint} was made with other settings "
                         f"({sorted(diff)}); use another path or resume=False")
    return ckpt


def train_audio(cfg: AudioConfig, data: AudioData | None = None) -> AudioResult:
    """Train, fine-tune (``qat_epochs``), quantise and test; see the module docstring.

    The returned model holds the best weights (by validation accuracy; in the
    quantisation-aware phase that accuracy is the integer network's, and "no fine-tuning" is
    a candidate). ``float_acc`` is the test accuracy of the best float model (integer delays,
    before fine-tuning), ``float_state`` that model's state (kept in the checkpoints of the
    quantisation-aware phase, so that a resumed run has it too), ``int_acc`` the integer
    network's (all three on rank 0 only).
    """
    if cfg.lr_rec is not None and not cfg.lr_rec > 0:
        raise ValueError(f"lr_rec={cfg.lr_rec}: the recurrent weights' learning rate must be "
                         f"> 0 (or None: the same as the other weights)")
    if cfg.spike_aug_off:
        from model.audio.shd import spike_augment_options
        if not cfg.spike_aug:
            raise ValueError(f"spike_aug_off={list(cfg.spike_aug_off)} switches parts of the "
                             f"spike augmentation off: it needs spike_aug=True")
        spike_augment_options(cfg.spike_aug_off)      # names checked before any work
    if not 0 <= cfg.swa <= cfg.epochs:
        raise ValueError(f"swa={cfg.swa}: the epochs to average must be between 0 and "
                         f"epochs={cfg.epochs}")
    t_start = time.monotonic()
    torch.set_num_threads(cfg.threads)
    rank, world = _dist()
    data = data or load_audio(cfg)
    torch.manual_seed(cfg.seed)
    model = DelRecNet(cfg.model_config(data.n_in, data.n_classes))
    _sync_from_rank0(model, world)
    ckpt = _load_ckpt(cfg) if rank == 0 else {}
    if world > 1:  # every rank resumes from rank 0's checkpoint
        import torch.distributed as dist
        box = [ckpt]
        dist.broadcast_object_list(box, 0)
        ckpt = box[0]
    history = json.loads(ckpt["history"]) if ckpt else []
    show = cfg.progress and rank == 0
    bar = progress(total=cfg.epochs + cfg.qat_epochs, desc=f"train {cfg.arch}", disable=not show,
               dynamic_ncols=True, initial=len([h for h in history if "val_acc" in h]))
    if not show:
        bar = None
    phases = [("float", cfg.epochs)] + ([("quant", cfg.qat_epochs)] if cfg.qat_epochs else [])
    best_acc = None
    extra = {}  # the float model's test accuracy, kept across the QAT phase's checkpoints
    if cfg.teacher:
        if not (0.0 <= cfg.distill <= 1.0 and cfg.distill_temp > 0):
            raise ValueError(f"teacher {cfg.teacher}: distill={cfg.distill} must lie in [0, 1] "
                             f"and distill_temp={cfg.distill_temp} be > 0")
        if cfg.augment > 1:
            raise ValueError(f"teacher {cfg.teacher}: distillation needs augment=1 (its soft "
                             f"targets are of the training samples as they are), got "
                             f"augment={cfg.augment}")
        extra["teacher"] = teacher_logits(cfg.teacher, data)
    if ckpt.get("phase") == "quant":
        extra["float_test_acc"] = ckpt["float_test_acc"]
        if "float_state" in ckpt:
            extra["float_state"] = ckpt["float_state"]
        elif rank == 0:
            warnings.warn(f"checkpoint {cfg.checkpoint} was written before the float model "
                          f"was kept in it: this run has no float state (no float checkpoint "
                          f"beside the IR)", stacklevel=2)
    for phase, epochs in phases:
        if ckpt.get("phase") == "quant" and phase == "float":
            continue
        best, best_acc = _run_phase(cfg, model, data, phase=phase, epochs=epochs, rank=rank,
                                    world=world, ckpt=ckpt, history=history, bar=bar,
                                    extra=extra)
        if rank == 0:
            model.load_state_dict(best)
            if phase == "float":
                extra["float_test_acc"], _ = evaluate(model, data.x_test, data.y_test)
                extra["float_state"] = state_copy(model)
        _sync_from_rank0(model, world)
        ckpt = {}
    if bar is not None:
        bar.close()
    if cfg.dump_state:
        torch.save(state_copy(model), cfg.dump_state.format(rank=rank))
    epochs_run = [h for h in history if "train_seconds" in h]
    per_epoch = float(np.mean([h["train_seconds"] for h in epochs_run])) if epochs_run else 0.0
    params = parameter_counts(model)
    result = AudioResult(config=asdict(cfg), model=model, net=None, float_acc=None,
                         int_acc=None, val_acc=best_acc, params=params, history=history,
                         seconds_per_epoch=per_epoch)
    if rank == 0:
        float_acc = extra["float_test_acc"]
        meta = {"data": data.source, "steps": data.steps, "seed": cfg.seed,
                **({"fold": cfg.fold} if cfg.fold else {}),
                **cochlea_meta(data.cochlea),
                "float_test_acc": float_acc, "val_acc": best_acc,
                "qat_epochs": cfg.qat_epochs, "epochs": cfg.epochs, "params": params,
                "prediction": "argmax_i sum_t v_i(t) over the padded window of steps"}
        net = to_network(model, in_bits=data.in_bits, meta=meta)
        result.net = net
        result.float_acc = float_acc
        result.float_state = extra.get("float_state")
        result.int_acc = integer_accuracy(net, data.x_test, data.y_test)
        result.net = dataclasses.replace(net, meta={**net.meta, "int_test_acc": result.int_acc})
        k = min(WORKLOAD_SAMPLES, len(data.y_test))
        result.workload = Workload(kind="classify", network=result.net.digest,
                                   x=data.x_test[:k].numpy().astype(np.int64),
                                   labels=data.y_test[:k].numpy().astype(np.int64))
    _barrier(world)
    result.seconds = time.monotonic() - t_start
    return result
