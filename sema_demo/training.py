"""The one training engine behind every comparison (toy 2D data and images alike).

    trainer = Trainer(data, lambda: mlp(2, (64, 64)), TrainConfig(methods=("sgd", "ema", "sema"), seeds=(0, 1)))
    while not trainer.done:
        rows = trainer.run_epoch()        # one more epoch for every (method, seed); pause = stop calling
    frame = pandas.DataFrame(trainer.history)

Fair comparison, by construction: every (method, seed) of one seed starts from the
same weights (``torch.manual_seed(seed)`` then ``model_fn()``), sees the same batch
order and the same augmentation draws, so differences come from the method alone.
Metrics are those of the *evaluated* weights: φ for EMA, SEMA, SWA and Lookahead,
θ for the plain optimizer.  SEMA switches θ ← φ at the end of every
``switch_epochs``-th epoch; the optimizer state is kept.

Two paths train the same thing:

- the generic path: one ``nn.Module``, ``torch.optim`` optimizer and
  ``sema_demo.averaging`` averager per run, for any network (CNNs, ResNets);
  on CUDA, 4D inputs train in channels_last with bf16 autocast;
- the batched path, picked automatically for a plain MLP (``nn.Sequential`` of
  ``Linear`` and tanh/ReLU/GELU/sigmoid): the weights of all runs are stacked
  into one flat tensor, forward and backward are batched matmuls written out by
  hand, and optimizer and averager are a few fused ops over the stack.  All
  methods × seeds cost about as much as one network trained alone.  The tests
  check that it gives the same numbers as the generic path.

A run whose weights θ or buffers become non-finite (as the weights do at once when the
loss does), or whose evaluated train or test loss does, is marked diverged at that epoch
and stops; the others continue.
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .averaging import METHODS, WARMUPS, make_averager, warmup_momentum
from .device import pick_device
from .paths import PathRecorder, state_vector

__all__ = ["TrainConfig", "Variant", "Data", "Trainer", "OPTIMIZERS", "SCHEDULES", "HISTORY_COLUMNS",
           "is_plain_mlp", "batch_order", "learning_rate", "grid_points"]

OPTIMIZERS = ("sgd", "momentum", "adam")
SCHEDULES = ("constant", "cosine")
HISTORY_COLUMNS = ("epoch", "method", "seed", "train_loss", "train_acc", "test_loss", "test_acc",
                   "switched", "diverged", "seconds")
ADAM_BETA2, ADAM_EPS = 0.999, 1e-8
EVAL_CHUNK = 4096      # examples per forward pass when evaluating a network
EVAL_ELEMENTS = 2**17  # batched MLPs: activation elements per evaluation chunk (all runs together)
EPOCH_GATHER_ELEMENTS = 2**22   # batched MLPs: gather a whole epoch's inputs of every run at once up to this size
MAX_SEED = 2**63 - 1   # torch.manual_seed takes 64-bit seeds; larger ones overflow


@dataclass(frozen=True)
class Variant:
    """A run of its own setting beside the config's methods: one averaging method with its own α
    and/or SEMA switch interval (e.g. the cells of a map over α × switch interval in ONE run)."""

    method: str                          # the averaging method it runs (averaging.METHODS)
    ema_momentum: float | None = None    # its α (None: the config's ema_momentum)
    switch_epochs: int | None = None     # its SEMA switch interval in epochs (None: the config's)


@dataclass
class TrainConfig:
    methods: tuple[str, ...] = ("sgd", "ema", "sema")   # names from averaging.METHODS
    seeds: tuple[int, ...] = (0,)
    epochs: int = 30
    batch_size: int = 32             # clamped to the training-set size
    optimizer: str = "momentum"      # "sgd" | "momentum" (heavy ball) | "adam"
    lr: float = 0.05
    beta: float = 0.9                # optimizer momentum β (Adam's β1); NOT the EMA momentum
    weight_decay: float = 0.0        # L2 added to the gradient, as torch.optim does
    schedule: str = "constant"       # "constant" | "cosine" (per step, down to 0 at the last step)
    ema_momentum: float = 0.99       # α, the EMA decay, for EMA and SEMA: horizon ≈ 1/(1 − α) steps
    ema_warmup: str | None = None    # "linear" | "power" | None: ramp α up at the start (averaging.warmup_momentum)
    ema_warmup_epochs: float = 5.0   # the ramp's length in epochs (used only with ema_warmup)
    switch_epochs: int = 1           # SEMA switches θ ← φ every this many epochs
    swa_start: int = 0               # SWA: first averaged epoch (0-based)
    lookahead_k: int = 5
    lookahead_alpha: float = 0.5
    device: str = "auto"             # "auto" | "cpu" | "cuda" | "mps"
    grid_resolution: int = 0         # > 0: per-epoch class-probability grid for 2D inputs
    train_eval_size: int = 10_000    # train metrics on at most this many training examples (0: skip)
    variants: dict[str, Variant] = field(default_factory=dict)   # extra names usable in `methods`
    record_paths: bool = False       # keep every run's weight path (Trainer.recorder, sema_demo.paths)

    def __post_init__(self):
        self.methods, self.seeds = tuple(self.methods), tuple(int(s) for s in self.seeds)
        problems = []
        known = set(METHODS) | set(self.variants)
        if not self.methods:
            problems.append(f"pick at least one method from {', '.join(METHODS)}")
        elif not set(self.methods) <= known or len(set(self.methods)) < len(self.methods):
            problems.append(f"methods must be distinct names from {METHODS} or the variants, got {self.methods}")
        for name, v in self.variants.items():
            if name in METHODS or v.method not in METHODS or not 0 <= self.momentum_of(name) < 1 \
                    or not isinstance(self.switch_of(name), int) or self.switch_of(name) < 1:
                problems.append(f"variant {name!r} must be a new name running one of {METHODS} with α in [0, 1) "
                                f"and an integer switch interval >= 1, got {v}")
        if not self.seeds or len(set(self.seeds)) < len(self.seeds):
            problems.append(f"seeds must be distinct integers, at least one, got {self.seeds}")
        elif not all(0 <= s <= MAX_SEED for s in self.seeds):
            problems.append(f"seeds must lie in 0..2**63 - 1, got {self.seeds}")
        for name in ("epochs", "batch_size", "switch_epochs", "lookahead_k"):
            value = getattr(self, name)   # bool is an int to Python, but epochs=True is a mistake
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                problems.append(f"{name} must be an integer >= 1, got {value!r}")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            problems.append(f"lr must be a positive number, got {self.lr!r}")
        if not 0 <= self.beta < 1:
            problems.append(f"beta (the optimizer momentum) must be in [0, 1), got {self.beta!r}")
        if not 0 <= self.ema_momentum < 1:
            problems.append(f"ema_momentum α must be in [0, 1) (the EMA decay), got {self.ema_momentum!r}")
        if self.ema_warmup is not None and self.ema_warmup not in WARMUPS:
            problems.append(f"ema_warmup must be None or one of {WARMUPS}, got {self.ema_warmup!r}")
        if (isinstance(self.ema_warmup_epochs, bool) or not isinstance(self.ema_warmup_epochs, (int, float))
                or not (math.isfinite(self.ema_warmup_epochs) and self.ema_warmup_epochs > 0)):
            problems.append(f"ema_warmup_epochs must be a positive number, got {self.ema_warmup_epochs!r}")
        if not 0 < self.lookahead_alpha <= 1:
            problems.append(f"lookahead_alpha must be in (0, 1], got {self.lookahead_alpha!r}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            problems.append(f"weight_decay must be a finite number >= 0, got {self.weight_decay!r}")
        if self.swa_start < 0 or self.grid_resolution < 0 or self.train_eval_size < 0:
            problems.append("swa_start, grid_resolution and train_eval_size must be >= 0")
        if problems:
            raise ValueError("; ".join(problems))

    # ---- what a name in `methods` runs: a method of its own, or a variant with its own α / K
    def method_of(self, name: str) -> str:
        return self.variants[name].method if name in self.variants else name

    def momentum_of(self, name: str) -> float:
        value = self.variants[name].ema_momentum if name in self.variants else None
        return self.ema_momentum if value is None else value

    def switch_of(self, name: str) -> int:
        value = self.variants[name].switch_epochs if name in self.variants else None
        return self.switch_epochs if value is None else value


@dataclass
class Data:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    name: str = ""
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None  # batch-wise, seeded
    extent: tuple[float, float, float, float] | None = None   # 2D data: (xmin, xmax, ymin, ymax) for grids

    def check(self) -> None:
        """Raise ValueError naming the first inconsistency."""
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if len(x) != len(y) or y.dim() != 1:
                raise ValueError(f"x_{split} has {len(x)} rows but y_{split} has shape {tuple(y.shape)}")
            if len(y) and (int(y.min()) < 0 or int(y.max()) >= self.n_classes):
                raise ValueError(f"y_{split} labels must lie in 0..{self.n_classes - 1}")
        if len(self.x_train) == 0:
            raise ValueError("the training set is empty")
        if self.x_train.shape[1:] != self.x_test.shape[1:] and len(self.x_test):
            raise ValueError(f"train and test inputs differ in shape: {tuple(self.x_train.shape[1:])} "
                             f"vs {tuple(self.x_test.shape[1:])}")


def switches_at(config: TrainConfig, name: str, epoch: int) -> bool:
    """Does the run `name` switch θ ← φ at the end of (0-based) `epoch`?"""
    return config.method_of(name) == "sema" and (epoch + 1) % config.switch_of(name) == 0


def learning_rate(config: TrainConfig, step: int, total_steps: int) -> float:
    """The learning rate of optimizer step ``step`` (0-based) out of ``total_steps``."""
    if config.schedule == "cosine":
        return config.lr * 0.5 * (1 + math.cos(math.pi * step / total_steps))
    return config.lr


def batch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled example order of one epoch: a function of (seed, epoch) only, so pausing,
    resuming and the choice of training path cannot change it."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(_mix(seed, epoch)))


def _mix(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7_919 + 12_345) % (2**63)


def grid_points(extent: tuple[float, float, float, float], resolution: int) -> torch.Tensor:
    """(resolution², 2) points; row i·resolution + j is (x_j, y_i), y ascending."""
    xmin, xmax, ymin, ymax = extent
    ys, xs = torch.meshgrid(torch.linspace(ymin, ymax, resolution), torch.linspace(xmin, xmax, resolution),
                            indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1)


def data_extent(data: Data, margin: float = 0.15) -> tuple[float, float, float, float]:
    x = torch.cat([data.x_train, data.x_test]).double()
    lo, hi = x.min(0).values, x.max(0).values
    pad = (hi - lo).clamp_min(1e-6) * margin
    return float(lo[0] - pad[0]), float(hi[0] + pad[0]), float(lo[1] - pad[1]), float(hi[1] + pad[1])


# ------------------------------------------------------------------------------------- the engine


class Trainer:
    """Trains every (method, seed) of ``config`` on ``data``, one epoch per ``run_epoch()``.

    Attributes besides the contract: ``data``, ``model_fn``, ``config``, ``device``, ``batched``
    (the fast MLP path is used), ``batch_size`` (after clamping), ``batch_clamped``, ``steps_per_epoch``, ``total_steps``,
    ``extent`` (2D data) and ``stopped``.
    ``batched=None`` picks the fast path for plain MLPs; ``True``/``False`` force it
    (``True`` raises ValueError when the model is not a plain MLP on flat inputs).
    """

    def __init__(self, data: Data, model_fn: Callable[[], nn.Module], config: TrainConfig,
                 *, batched: bool | None = None):
        data.check()
        self.data, self.model_fn, self.config = data, model_fn, config
        self.device = pick_device(config.device)
        self.runs = [(m, s) for m in config.methods for s in config.seeds]
        self.epoch = 0
        self.stopped = False
        self.history: list[dict] = []
        self.diverged: dict[tuple[str, int], int] = {}
        self._grids: dict[tuple[str, int], np.ndarray] = {}
        self._grids_epoch = -1

        initial = {}
        for seed in config.seeds:
            with torch.random.fork_rng(devices=[]):   # seed the weights without touching the caller's RNG
                torch.manual_seed(seed)
                initial[seed] = model_fn()
        first = initial[config.seeds[0]]
        if not isinstance(first, nn.Module) or next(first.parameters(), None) is None:
            raise ValueError(f"model_fn() must return an nn.Module with parameters to train; got "
                             f"{type(first).__name__} with none")
        dtype = next(first.parameters()).dtype
        # On CUDA, image batches run channels_last under bf16 autocast (tensor cores).
        images_on_cuda = self.device.type == "cuda" and data.x_train.dim() == 4
        layout = torch.channels_last if images_on_cuda else torch.contiguous_format
        self.x_train = _to(data.x_train, self.device, dtype).contiguous(memory_format=layout)
        self.x_test = _to(data.x_test, self.device, dtype).contiguous(memory_format=layout)
        self.y_train, self.y_test = data.y_train.to(self.device).long(), data.y_test.to(self.device).long()
        self.augment = data.augment
        n = len(self.x_train)
        self.batch_size = min(config.batch_size, n)
        self.batch_clamped = config.batch_size > n
        self.steps_per_epoch = math.ceil(n / self.batch_size)
        self.total_steps = self.steps_per_epoch * config.epochs
        # Train metrics on a fixed, evenly spaced subset (exact for small sets, cheap for big ones),
        # evaluated together with the test set in one pass.
        self._n_train_eval = min(n, config.train_eval_size)
        subset = torch.linspace(0, n - 1, self._n_train_eval).long().to(self.device)
        self._eval_x = torch.cat([self.x_train[subset], self.x_test])
        self._eval_y = torch.cat([self.y_train[subset], self.y_test])

        plain = self.x_train.dim() == 2 and is_plain_mlp(first)
        if batched and not plain:
            raise ValueError("the batched path needs a plain MLP (nn.Sequential of Linear and "
                             "tanh/ReLU/GELU/sigmoid) on flat inputs")
        self.batched = plain if batched is None else batched
        engine = _BatchedMLP if self.batched else _PerRun
        self._engine = engine(self.runs, initial, config, self.device, images_on_cuda,
                              warmup_steps=ema_warmup_steps(config, self.steps_per_epoch))
        self.recorder = PathRecorder(self.runs, state_vector(first).numel(), self.steps_per_epoch, config.epochs,
                                     config.switch_epochs) if config.record_paths else None
        if self.recorder:
            self.recorder.record(self._engine, "start")

        self.extent = None
        if self.x_train.dim() == 2 and self.x_train.shape[1] == 2:
            self.extent = tuple(data.extent) if data.extent is not None else data_extent(data)
        self._grid = None
        if config.grid_resolution and self.extent is not None:
            self._grid = grid_points(self.extent, config.grid_resolution).to(self.device, dtype)

    # ---- the contract
    @property
    def done(self) -> bool:
        return self.stopped or self.epoch >= self.config.epochs or len(self.diverged) == len(self.runs)

    def run_epoch(self) -> list[dict]:
        """Train one more epoch for every live (method, seed); return this epoch's metric rows."""
        if self.done:
            return []
        start = time.perf_counter()
        live = [r for r in self.runs if r not in self.diverged]
        engine, e = self._engine, self.epoch
        engine.start_epoch(live)
        recorder = self.recorder
        due = recorder.due(self.steps_per_epoch) if recorder else ()
        for k, (lr, x, y) in enumerate(self._batches(e), 1):
            engine.step(x, y, lr)
            if k in due:
                recorder.record_step(engine, k)
        self.epoch = e + 1
        if recorder:
            recorder.advance(self.steps_per_epoch)
            recorder.record(engine, "epoch")        # θ just before a switch
        engine.end_epoch(e)
        if recorder and any(switches_at(self.config, m, e) for m in self.config.methods):
            # θ just after it (= φ): taken from the epoch end's snapshot where the switch was all
            # that changed since (no SWA average moved at this epoch end)
            if any(self.config.method_of(m) == "swa" for m in self.config.methods):
                recorder.record(engine, "switch")
            else:
                recorder.record_switch(engine, [i for i, (m, s) in enumerate(self.runs) if (m, s) in live
                                                and self.config.method_of(m) == "sema" and switches_at(self.config, m, e)])
        # Divergence: non-finite live weights or buffers (a non-finite training loss makes the
        # weights so at once; BatchNorm's running_var can overflow under finite weights), or a
        # non-finite train/test loss of the evaluated weights.  Checked and fetched with the
        # metrics in ONE device sync.
        metrics = self._metrics(live)
        measured = [i for i, n in ((0, self._n_train_eval), (2, len(self.x_test))) if n]   # empty parts are NaN
        healthy = engine.finite(live) & metrics[:, measured].isfinite().all(1)
        values = torch.cat([healthy[:, None].to(metrics.dtype), metrics], dim=1).cpu()
        rows = []
        seconds = time.perf_counter() - start
        for r, (finite, *metrics) in zip(live, values.tolist()):
            if not finite:
                self.diverged[r] = self.epoch
                metrics = [math.nan] * 4
            train_loss, train_acc, test_loss, test_acc = metrics
            rows.append({"epoch": self.epoch, "method": r[0], "seed": r[1], "train_loss": train_loss,
                         "train_acc": train_acc, "test_loss": test_loss, "test_acc": test_acc,
                         "switched": switches_at(self.config, r[0], e), "diverged": r in self.diverged,
                         "seconds": seconds})
        self.history.extend(rows)
        return rows

    def _batches(self, epoch: int):
        """(lr, x, y) per step. ``x[i]``, ``y[i]`` are the batch of ``config.seeds[i]`` (on the batched
        path: of row ``runs[i]``, see ``_BatchedMLP.rows``): every method of a seed gets the same
        examples in the same order and the same augmentation draws."""
        seeds, n, b = self.config.seeds, len(self.x_train), self.batch_size
        orders = torch.stack([batch_order(n, s, epoch) for s in seeds]).to(self.device)
        lrs = [learning_rate(self.config, epoch * self.steps_per_epoch + k, self.total_steps)
               for k in range(self.steps_per_epoch)]
        rows = self._engine.rows if self.batched else None
        if rows is not None and self.augment is None \
                and len(self.runs) * self.x_train[:1].numel() * n <= EPOCH_GATHER_ELEMENTS:
            # small flat data: the whole epoch's batches of every row in one gather, sliced per step
            x, y = rows(self.x_train[orders], self.y_train[orders])
            for k, lr in enumerate(lrs):
                yield lr, x[:, k * b:(k + 1) * b], y[:, k * b:(k + 1) * b]
            return
        rngs = [torch.Generator(device=self.device).manual_seed(_mix(s, epoch) + 1) for s in seeds]
        for k, lr in enumerate(lrs):
            idx = orders[:, k * b:(k + 1) * b]
            x = self.x_train[idx]                       # (seeds, batch, …): one gather for all seeds
            if self.augment is not None:
                x = [self.augment(xs, rng) for xs, rng in zip(x, rngs)]
            yield (lr, *rows(x, self.y_train[idx])) if rows else (lr, x, self.y_train[idx])

    def run(self, callback: Callable[[list[dict]], bool | None] | None = None) -> pd.DataFrame:
        """Train the remaining epochs; ``callback(rows)`` returning False pauses (call again to resume)."""
        while not self.done:
            rows = self.run_epoch()
            if callback is not None and callback(rows) is False:
                break
        return self.frame()

    @property
    def grids(self) -> dict[tuple[str, int], np.ndarray]:
        """Class probabilities (resolution, resolution, n_classes) of each run's evaluated weights
        on a grid over ``extent`` (row i is y_i, ascending), at the current epoch (0: untrained).
        Computed when read, so a page pays only for the frames it draws; a diverged run keeps
        the grid last computed for it.  Empty unless ``grid_resolution`` > 0 and the inputs are 2D."""
        if self._grid is not None and self._grids_epoch != self.epoch:
            self._update_grids([r for r in self.runs if r not in self.diverged])
            self._grids_epoch = self.epoch
        return self._grids

    def models(self) -> dict[tuple[str, int], nn.Module]:
        """The evaluated network of every run: φ for EMA/SEMA/SWA/Lookahead, θ for the plain optimizer."""
        return self._engine.models()

    # ---- conveniences
    def stop(self) -> None:
        """Cancel: ``done`` becomes True and ``run_epoch`` does nothing more."""
        self.stopped = True

    def apply(self, fn: Callable, *args, **kwargs):
        """``fn(self, *args, **kwargs)``: a question asked of the run where it lives.  Here, in this
        process; the engine's mirror of a run on a Dask worker (``engine.RemoteTrainer``) asks it
        there and brings back only the answer (``charts.live.tick_figures``: a live page's tick)."""
        return fn(self, *args, **kwargs)

    def frame(self) -> pd.DataFrame:
        """The history as a DataFrame (the contract's columns, also when empty)."""
        return pd.DataFrame(self.history, columns=list(HISTORY_COLUMNS))

    def switch_epochs(self) -> list[int]:
        """The epochs (1-based, up to ``config.epochs``) at whose end SEMA switches θ ← φ."""
        k = self.config.switch_epochs
        return list(range(k, self.config.epochs + 1, k))

    # ---- internals
    def _metrics(self, runs) -> torch.Tensor:
        """(runs, 4): train loss, train acc, test loss, test acc of each run's evaluated weights,
        left on the device (an empty part, e.g. train_eval_size=0, gives NaN)."""
        loss, hit = _loss_and_hits(_at_least_float32(self._engine.logits(runs, self._eval_x)), self._eval_y)
        hit = hit.to(loss.dtype)
        k = self._n_train_eval
        return torch.stack([loss[:, :k].mean(1), hit[:, :k].mean(1), loss[:, k:].mean(1), hit[:, k:].mean(1)], dim=1)

    def _update_grids(self, runs) -> None:
        if not runs:
            return
        res = self.config.grid_resolution
        probs = _at_least_float32(self._engine.logits(runs, self._grid)).softmax(-1)
        for r, p in zip(runs, probs.float().cpu().numpy()):
            self._grids[r] = p.reshape(res, res, -1)


def ema_warmup_steps(config: TrainConfig, steps_per_epoch: int) -> int:
    """The warm-up ramp's length T in optimizer steps (at least 1)."""
    return max(1, round(config.ema_warmup_epochs * steps_per_epoch))


def _to(x: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    return x.to(device, dtype) if x.is_floating_point() else x.to(device)


def _at_least_float32(t: torch.Tensor) -> torch.Tensor:
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def _class_first(logits: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(tensor, class dim) for (R, N, C) logits: the (R, C, N) view and 1 when that view is contiguous
    (the batched path computes a narrow last layer transposed), else the logits and 2.  Softmax and
    reductions over the classes are several times faster along the layout the memory has."""
    t = logits.mT
    return (t, 1) if t.is_contiguous() else (logits, 2)


def _loss_and_hits(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(R, N) cross-entropy and (R, N) hits (argmax == y, ties to the first class as argmax does) of
    logits (R, N, C) against the labels y (N,), computed along the classes' memory layout."""
    z, dim = _class_first(logits)
    if dim == 2 and z.shape[1] > z.shape[2]:            # class-last: work on a class-first copy, faster
        z, dim = z.mT.contiguous(), 1
    index = y.view(1, 1, -1) if dim == 1 else y.view(1, -1, 1)
    index = index.expand(*(z.shape[:dim] + (1,) + z.shape[dim + 1:]))
    loss = z.log_softmax(dim).gather(dim, index).neg_().squeeze(dim)
    zy = z.gather(dim, index)
    classes = torch.arange(z.shape[dim], device=z.device).view((1, -1, 1) if dim == 1 else (1, 1, -1))
    before = classes < index                               # the classes argmax would prefer in a tie
    hit = torch.where(before, z < zy, z <= zy).all(dim)
    return loss, hit


def _make_optimizer(params, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, betas=(config.beta, ADAM_BETA2), eps=ADAM_EPS,
                                weight_decay=config.weight_decay)
    momentum = config.beta if config.optimizer == "momentum" else 0.0
    return torch.optim.SGD(params, lr=config.lr, momentum=momentum, weight_decay=config.weight_decay)


# ------------------------------------------------------------------- generic path: one module per run


@dataclass
class _Run:
    model: nn.Module
    optimizer: torch.optim.Optimizer
    averager: object


def _flatten_in_place(tensors: list[torch.Tensor]) -> torch.Tensor:
    """One flat tensor holding ``tensors`` one after the other, each of them made a view of it
    (``t.data = ...``: the same tensor objects, values, shapes and dtypes)."""
    flat = torch.cat([t.detach().reshape(-1) for t in tensors])
    at = 0
    with torch.no_grad():
        for t in tensors:
            t.data = flat[at:at + t.numel()].view(t.shape)
            at += t.numel()
    return flat


class _PerRun:
    """Any network: a module, a torch.optim optimizer and a real averager per (method, seed)."""

    def __init__(self, runs, initial: dict[int, nn.Module], config: TrainConfig, device: torch.device,
                 images_on_cuda: bool, warmup_steps: int):
        self.config = config
        self.seed_pos = {s: i for i, s in enumerate(config.seeds)}
        self.layout = torch.channels_last if images_on_cuda else torch.contiguous_format
        self.autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if images_on_cuda else nullcontext
        self.runs: dict[tuple[str, int], _Run] = {}
        for method, seed in runs:
            model = copy.deepcopy(initial[seed]).to(device, memory_format=self.layout)
            # switch_every=None: SEMA switches when the engine calls on_epoch_end (every switch_epochs).
            averager = make_averager(config.method_of(method), model, momentum=config.momentum_of(method),
                                     switch_every=None,
                                     swa_start=config.swa_start, lookahead_k=config.lookahead_k,
                                     lookahead_alpha=config.lookahead_alpha,
                                     warmup=config.ema_warmup, warmup_steps=warmup_steps)
            self.runs[(method, seed)] = _Run(model, _make_optimizer(model.parameters(), config), averager)
        self.live: list[tuple[str, int]] = []
        self._path_flats: tuple[list[int], list[torch.Tensor]] | None = None   # path_source's, once made

    def start_epoch(self, live) -> None:
        self.live = live
        self._path_copy = None                                   # path_writer lists the tensors afresh
        for r in live:
            self.runs[r].model.train()

    def step(self, x, y, lr: float) -> None:
        for r in self.live:
            run, i = self.runs[r], self.seed_pos[r[1]]
            if self.config.schedule != "constant":
                for group in run.optimizer.param_groups:
                    group["lr"] = lr
            xi = x[i] if self.layout is torch.contiguous_format else x[i].contiguous(memory_format=self.layout)
            with self.autocast():
                loss = F.cross_entropy(run.model(xi), y[i])
            loss.backward()
            run.optimizer.step()
            run.optimizer.zero_grad(set_to_none=True)
            run.averager.update()

    def end_epoch(self, epoch: int) -> None:
        """Epoch-end hooks: SEMA runs switch on their own epochs, every other averager every epoch."""
        for method, seed in self.live:
            if self.config.method_of(method) != "sema" or switches_at(self.config, method, epoch):
                self.runs[(method, seed)].averager.on_epoch_end()

    def finite(self, runs) -> torch.Tensor:
        """(runs,) bool on the device: are all live weights θ and the floating buffers (BatchNorm
        running statistics) of each run finite?"""
        # The largest |value| (NaN propagates); a sum of squares would overflow at finite 1e20.
        return torch.stack([torch.stack(torch._foreach_norm(self._floating_state(r), math.inf)).amax().isfinite()
                            for r in runs])

    def _floating_state(self, r) -> list[torch.Tensor]:
        model = self.runs[r].model
        return [*model.parameters(), *(b for b in model.buffers() if b.is_floating_point())]

    @torch.no_grad()
    def logits(self, runs, x: torch.Tensor) -> torch.Tensor:
        """(runs, examples, classes) from each run's evaluated network."""
        modules = [self.runs[r].averager.module for r in runs]
        modes = [m.training for m in modules]
        for m in modules:
            m.eval()
        with self.autocast():
            out = [torch.stack([m(chunk) for m in modules]) for chunk in x.split(EVAL_CHUNK)]
        for m, mode in zip(modules, modes):
            m.train(mode)
        return out[0] if len(out) == 1 else torch.cat(out, dim=1)

    def models(self):
        return {r: run.averager.module for r, run in self.runs.items()}

    def state_rows(self, average: bool) -> torch.Tensor:
        """(runs, n): each run's flat state (parameters, floating buffers) of θ, or of φ if ``average``."""
        return torch.stack([state_vector(run.averager.module if average else run.model) for run in self.runs.values()])

    # ---- path recording (sema_demo.paths.PathRecorder): θ of every run, then φ of the averaged rows
    def path_layout(self, averaged: list[int]) -> list[tuple[int, list[int]]]:
        return [(len(self.runs) + len(averaged), [state_vector(next(iter(self.runs.values())).model).numel()])]

    def path_device(self) -> torch.device:
        return next(next(iter(self.runs.values())).model.parameters()).device

    def path_source(self, averaged: list[int]) -> list[torch.Tensor] | None:
        """θ of every run, then φ of the runs ``averaged``, each module's state as one flat tensor,
        read in place by the recorder (no copy per snapshot: copying the CNN's 135 tensors was
        three quarters of its recording's cost).  The first call makes each module's parameters
        and floating buffers views of a flat tensor of its own (:func:`_flatten_in_place`: values,
        dtypes and tensor objects stay, so the optimizer and the averagers go on as they were).
        None, and nothing changed, where a module is not the same one all run long (SWA's evaluated
        module is its live one until the first average) or not one contiguous float32 state
        (channels_last on CUDA); the recorder then copies (``path_writer``)."""
        if self._path_flats is not None:
            return self._path_flats[1] if self._path_flats[0] == averaged else None
        runs = list(self.runs.values())
        if any(self.config.method_of(m) == "swa" for m, _ in self.runs):
            return None
        modules = [run.model for run in runs] + [runs[i].averager.module for i in averaged]
        states = [[*m.parameters(), *(b for b in m.buffers() if b.is_floating_point())] for m in modules]
        if len({id(m) for m in modules}) != len(modules) or not all(
                t.dtype == torch.float32 and t.is_contiguous() and t.device == states[0][0].device
                for state in states for t in state):
            return None
        flats = [_flatten_in_place(state) for state in states]
        self._path_flats = (list(averaged), flats)
        return flats

    def path_writer(self, out: torch.Tensor, averaged: list[int]):
        """A function writing each run's :func:`state_vector` of θ, then of φ for the rows ``averaged``,
        into ``out``: one fused copy (the tensors are listed again after every ``start_epoch``)."""
        def write() -> None:
            if self._path_copy is None:
                runs = list(self.runs.values())
                modules = [run.model for run in runs] + [runs[i].averager.module for i in averaged]
                sources = [t.detach() for m in modules
                           for t in (*m.parameters(), *(b for b in m.buffers() if b.is_floating_point()))]
                # contiguous targets: a channels_last source is copied in state_vector's (logical) order
                targets = [v.view(t.shape) for v, t in zip(out.split([t.numel() for t in sources]), sources)]
                self._path_copy = (targets, sources)
            torch._foreach_copy_(*self._path_copy)
        self._path_copy = None
        return write


# ----------------------------------------------------------- batched path: every run of an MLP at once


def _fast_tanh_(z2: torch.Tensor, minus_one: torch.Tensor) -> torch.Tensor:
    """tanh(z) = 2·σ(2z) − 1 from ``z2`` = 2z (the layer's product already scaled by 2, exactly),
    in place: on CPU PyTorch's sigmoid kernel is several times faster than its tanh, and tanh's
    backward needs only the output, not z.  Two ops: σ, then one fused −1 + 2·σ."""
    return torch.add(minus_one, z2.sigmoid_(), alpha=2, out=z2)


# Activation backward passes, given the upstream gradient g, the pre-activation z and the output h,
# written into g (a workspace of the engine's own).  Only GELU's needs z: the others run in place.
_aten = torch.ops.aten
_ACTIVATION_BACKWARD = {
    nn.Tanh: lambda g, z, h, act: _aten.tanh_backward.grad_input(g, h, grad_input=g),
    nn.Sigmoid: lambda g, z, h, act: _aten.sigmoid_backward.grad_input(g, h, grad_input=g),
    nn.ReLU: lambda g, z, h, act: _aten.threshold_backward.grad_input(g, h, 0, grad_input=g),
    nn.GELU: lambda g, z, h, act: _aten.gelu_backward.grad_input(g, z, approximate=act.approximate, grad_input=g),
}
_ACTIVATION_IN_PLACE = {nn.Tanh: lambda z, h: z.tanh_(), nn.Sigmoid: lambda z, h: z.sigmoid_(),
                        nn.ReLU: lambda z, h: z.relu_()}


def _gelu_into(z: torch.Tensor, h: torch.Tensor, approximate: str) -> torch.Tensor:
    return _aten.gelu.out(z, approximate=approximate, out=h)


@dataclass
class _Layer:
    """A layer's reused buffers in ``_BatchedMLP``: its output z (R, B, out) (a ``.mT`` view when the
    layer is computed transposed), ``out`` the tensor its product writes (z, or that contiguous zᵀ),
    its activation's output h (z itself, overwritten in place, except for GELU, whose backward needs
    z), the gradient dh of its input (training, not the first layer), and ``operand``: h as the
    next layer's product reads it."""

    z: torch.Tensor
    out: torch.Tensor
    h: torch.Tensor
    dh: torch.Tensor | None
    operand: torch.Tensor | None = None


def _mlp_layers(model: nn.Module) -> list[tuple[nn.Linear, nn.Module | None]] | None:
    """[(Linear, activation or None), …] for a plain MLP, else None."""
    if type(model) is not nn.Sequential or list(model.buffers()):
        return None
    layers: list[list] = []
    for child in model:
        if type(child) is nn.Linear and child.bias is not None:
            layers.append([child, None])
        elif type(child) in _ACTIVATION_BACKWARD and layers and layers[-1][1] is None:
            layers[-1][1] = child
        else:
            return None
    if not layers or not all(p.requires_grad for p in model.parameters()):
        return None
    return [tuple(layer) for layer in layers]


def is_plain_mlp(model: nn.Module) -> bool:
    """True for an ``nn.Sequential`` of biased ``Linear`` layers, each optionally followed by
    one tanh / ReLU / GELU / sigmoid: the models the batched path trains."""
    return _mlp_layers(model) is not None


# The methods that never write their average into the live weights: their θ is, step for step, the plain
# optimizer's θ of the same seed (bit for bit), so the batched engine trains it once.
_PLAIN_THETA = ("sgd", "ema", "swa")


class _BatchedMLP:
    """All (method, seed) runs of one MLP as stacked weights.

    θ, the gradient and the optimizer state are each ONE flat tensor holding every run,
    and φ one holding every run that averages (θ and φ are one tensor, θ first); each
    layer's (runs, out, in) weight is a view into it.  So the optimizer step and the
    averager are a handful of fused ops whatever the number of runs.  The averager is one
    fused ``lerp`` with a per-row weight, 0 where a method does not average at this step.

    Row i is ``runs[i]``, an order of the engine's own: first the ``trained`` rows whose θ
    the step computes (forward, backward), then the rows whose θ is another's (EMA and SWA
    follow the plain optimizer of their seed: ``_PLAIN_THETA``), copied from it after every
    optimizer step.  Everything read from outside (``models``, ``logits``, ``state_rows``,
    the path snapshots) is in the caller's order, ``trainer_runs``.
    """

    def __init__(self, runs, initial: dict[int, nn.Module], config: TrainConfig, device: torch.device,
                 images_on_cuda: bool, warmup_steps: int):
        self.config, self.trainer_runs = config, list(runs)
        leader, first = {}, {}
        for r in self.trainer_runs:
            shared = config.method_of(r[0]) in _PLAIN_THETA
            leader[r] = first.setdefault(("plain", r[1]) if shared else r, r)
        # Row order: the trained rows first (the plain optimizer's, then the averaging ones), then the
        # rows that copy a leader's θ (averaging ones first): the trained rows are a prefix, and the
        # rows with an average φ (all but the plain optimizer's) one block.
        averages = {r: config.method_of(r[0]) != "sgd" for r in self.trainer_runs}
        self.runs = sorted(self.trainer_runs, key=lambda r: (leader[r] != r, averages[r] != (leader[r] != r)))
        self.trained = len(first)
        self.row = {r: i for i, r in enumerate(self.runs)}
        averaged = [i for i, r in enumerate(self.runs) if averages[r]]
        self._a0, self._na = (averaged[0] if averaged else 0), len(averaged)   # φ's rows: [a0, a0 + na)
        assert averaged == list(range(self._a0, self._a0 + self._na))
        self.template = initial[config.seeds[0]]
        self.layers = _mlp_layers(self.template)
        # Each layer's activation, applied in place (act(z, h)); CPU tanh layers run as 2·σ(2z) − 1,
        # their product scaled by 2 inside the matmul (exact).  See _forward.
        self.activations = [None if act is None else _fast_tanh_ if type(act) is nn.Tanh and device.type == "cpu"
                            else partial(_gelu_into, approximate=act.approximate) if type(act) is nn.GELU
                            else _ACTIVATION_IN_PLACE[type(act)] for _, act in self.layers]
        self.scale = [2 if act is _fast_tanh_ else 1 for act in self.activations]
        # a layer with few outputs (the logits) is computed transposed: zᵀ = W·hᵀ + b (see _forward)
        self.transposed = [linear.out_features < linear.in_features for linear, _ in self.layers]
        # Every activation, gradient and scratch tensor of the hot loop lives in a workspace reused
        # step after step: fresh ones of this size cost page faults that took longer than the maths.
        self._work: dict[tuple[int, int, bool], list[_Layer]] = {}
        self._scratch: list[torch.Tensor] = []
        params = {s: [p.detach() for p in model.parameters()] for s, model in initial.items()}
        stacked = [torch.stack([params[s][i] for _, s in self.runs]) for i in range(len(params[config.seeds[0]]))]
        self.shapes = [t.shape for t in stacked]          # (R, out, in) and (R, out) per layer
        self.phi_shapes = [torch.Size((self._na, *t.shape[1:])) for t in stacked]   # φ: the averaged rows only
        a0, na = self._a0, self._na
        flat = torch.cat([t.reshape(-1) for t in stacked]
                         + [t[a0:a0 + na].reshape(-1) for t in stacked]).to(device)
        n = sum(math.prod(shape) for shape in self.shapes)
        # θ then φ in one tensor: a path snapshot (θ of every run, φ of the averaged ones) is all of it
        self._store = flat
        self.theta, self.phi = self._store[:n], self._store[n:]
        self.grad = torch.zeros_like(self.theta)
        self.theta_views, self.grad_views = self._views(self.theta), self._views(self.grad)
        self.phi_views = self._views(self.phi, self.phi_shapes)
        self._phi_list = [t for layer in self.phi_views for t in layer]
        self._theta_averaged = [t[a0:a0 + na] for layer in self.theta_views for t in layer]   # φ's θ rows
        # the trained rows' views, and the copies that give every other row its leader's θ
        u = self.trained
        self._trained_theta = [(w[:u], b[:u]) for w, b in self.theta_views]
        self._trained_grad = [(w[:u], b[:u]) for w, b in self.grad_views]
        blocks: list[list[int]] = []                        # [first row, its leader's row, count]
        for i in range(u, len(self.runs)):
            source = self.row[leader[self.runs[i]]]
            if blocks and blocks[-1][0] + blocks[-1][2] == i and blocks[-1][1] + blocks[-1][2] == source:
                blocks[-1][2] += 1
            else:
                blocks.append([i, source, 1])
        views = [t for layer in self.theta_views for t in layer]
        self._follow = ([t[i:i + k] for t in views for i, _, k in blocks],
                        [t[j:j + k] for t in views for _, j, k in blocks]) if blocks else None
        n_state = {"sgd": 0, "momentum": 1, "adam": 2}[config.optimizer]
        self.state = [torch.zeros_like(self.theta) for _ in range(n_state)]
        self.num_steps = 0
        self.swa_count = 0                                # epoch-end weights averaged so far by SWA
        self.seed_row = torch.tensor([config.seeds.index(s) for _, s in self.runs], device=device)
        methods = [config.method_of(m) for m, _ in self.runs[a0:a0 + na]]    # of φ's rows
        self.warmup_steps = warmup_steps
        # Per weight of φ (rows may differ): α, in float64 so that 1 − α is exact before the cast to
        # θ's dtype; the EMA weight 1 − α_t, 0 on rows that do not average every step.
        self.ema_momentum = self._per_row([config.momentum_of(m) for m, _ in self.runs[a0:a0 + na]], torch.float64)
        self.ema_rows = self._per_row([float(m in ("ema", "sema")) for m in methods], torch.float64)
        self._set_ema_weight(0)
        self.lookahead_weight = self._per_row([config.lookahead_alpha if m == "lookahead" else 0.0 for m in methods])
        self.mask = {m: self._per_row([float(x == m) for x in methods]).bool() for m in set(methods)}
        self._minus_one = torch.tensor(-1, dtype=self.theta.dtype, device=device)
        self._minus_ones = torch.zeros(u, 1, 0, dtype=self.theta.dtype, device=device)   # see step()
        self._theta_plan = self._plan(self._trained_theta)
        # The evaluated weights (θ for the plain optimizer and SWA before its first average, φ for the
        # others), in the caller's order: one gather from θ and φ into a reused buffer (see _evaluated).
        in_theta = [[config.method_of(m) == "sgd" or (first_swa and config.method_of(m) == "swa")
                     for m, _ in self.trainer_runs] for first_swa in (False, True)]
        self._evaluated_index = [self._gather_index([self._pick(r, not t) for t, r in zip(use, self.trainer_runs)])
                                 for use in in_theta]
        self._evaluated_weights = torch.empty_like(self.theta)
        self._switch_masks: dict[tuple[bool, ...], torch.Tensor] = {}
        self._evaluated_plan = self._plan(self._views(self._evaluated_weights))

    # ---- layout helpers
    def _views(self, flat: torch.Tensor, shapes=None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """[(W, b), …] per layer as views of a flat stack (of θ's shapes, or ``shapes``)."""
        views, offset = [], 0
        for shape in shapes or self.shapes:
            size = math.prod(shape)
            views.append(flat[offset:offset + size].view(shape))
            offset += size
        return list(zip(views[0::2], views[1::2]))

    def _pick(self, run, average: bool) -> tuple[bool, int]:
        """Where a run's weights are: (in φ, its row there) for its average, else (False, its θ row).
        A run without an average (the plain optimizer) is read from θ either way."""
        row = self.row[run]
        in_phi = average and self._a0 <= row < self._a0 + self._na
        return in_phi, row - self._a0 if in_phi else row

    def _gather_index(self, picks: list[tuple[bool, int]]) -> torch.Tensor:
        """Indices into ``_store`` (θ then φ) re-laying, layer by layer, the rows ``picks`` (each
        ``_pick``: in φ?, row), in that order: a flat stack holding just those rows."""
        in_phi = torch.tensor([p for p, _ in picks])
        rows = torch.tensor([r for _, r in picks])
        index, theta_at, phi_at = [], 0, self.theta.numel()
        for shape, phi_shape in zip(self.shapes, self.phi_shapes):
            size = math.prod(shape[1:])
            base = torch.where(in_phi, phi_at, theta_at)
            index.append((base[:, None] + rows[:, None] * size + torch.arange(size)).reshape(-1))
            theta_at, phi_at = theta_at + size * shape[0], phi_at + size * phi_shape[0]
        return torch.cat(index).to(self.theta.device)

    def _per_row(self, values: list[float], dtype: torch.dtype | None = None) -> torch.Tensor:
        """A flat tensor shaped like φ holding ``values[j]`` at every weight of φ's row j."""
        rows = torch.tensor(values, dtype=dtype or self.theta.dtype, device=self.theta.device)
        return torch.cat([rows.repeat_interleave(math.prod(s[1:])) for s in self.phi_shapes])

    def _phi_like(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """A flat tensor shaped like φ as one view per layer tensor (for the fused ops on φ)."""
        return [t for layer in self._views(flat, self.phi_shapes) for t in layer]

    def _workspace(self, rows: int, batch: int, training: bool) -> list[_Layer]:
        """Reused buffers for ``rows`` runs on ``batch`` examples, one ``_Layer`` per layer.  A few batch
        and chunk sizes occur (the last batch of an epoch, the evaluation chunks): cached."""
        key = (rows, batch, training)
        if key not in self._work:
            if len(self._work) >= 8:
                self._work.clear()
            new = partial(torch.empty, dtype=self.theta.dtype, device=self.theta.device)
            work = []
            for i, ((linear, act), transposed) in enumerate(zip(self.layers, self.transposed)):
                z = new(rows, linear.out_features, batch).mT if transposed else new(rows, batch, linear.out_features)
                h = new(rows, batch, linear.out_features) if type(act) is nn.GELU else z
                dh = new(rows, batch, linear.in_features) if training and i else None
                work.append(_Layer(z, z.mT if transposed else z, h, dh))
            for layer, transposed in zip(work, self.transposed[1:]):
                layer.operand = layer.h.mT if transposed else layer.h      # how the next product reads h
            self._work[key] = work
        return self._work[key]

    def _plan(self, weights) -> list[tuple[torch.Tensor, torch.Tensor, int]]:
        """Per layer the bias and weight operands of its product and its scale (views made once)."""
        return [(b.unsqueeze(2), w, s) if t else (b.unsqueeze(1), w.mT, s)
                for (w, b), t, s in zip(weights, self.transposed, self.scale)]

    # ---- forward and backward, written out (micrograd-style: each backward beside its forward)
    def _forward(self, plan, x: torch.Tensor, work: list[_Layer]) -> torch.Tensor:
        """x: (R, B, in) → logits (R, B, classes), through the weight operands ``plan`` (``_plan``) and
        the buffers ``work`` (``_workspace``), which keep each layer's output for the backward.

        A layer with few outputs (the logits) is computed transposed, zᵀ = W·hᵀ + b, because a
        narrow product is slow in BLAS: its output is then a ``.mT`` view of a contiguous
        (R, out, B) tensor (see ``_class_first``).  A CPU tanh layer gets 2z from its product
        (exact) and computes 2·σ(2z) − 1 in place."""
        h = x
        for i, ((bias, w, scale), layer) in enumerate(zip(plan, work)):
            if self.transposed[i]:
                torch.baddbmm(bias, w, h.mT if i == 0 else h, beta=scale, alpha=scale, out=layer.out)
            else:
                torch.baddbmm(bias, h, w, beta=scale, alpha=scale, out=layer.out)   # z = h·Wᵀ + b, all runs
            act = self.activations[i]
            if act is _fast_tanh_:
                _fast_tanh_(layer.z, self._minus_one)          # (z overwritten: the backward needs only h)
            elif act is not None:
                act(layer.z, layer.h)
            h = layer.operand
        return work[-1].h

    def _backward(self, dlogits: torch.Tensor, x: torch.Tensor, work: list[_Layer]) -> None:
        """Writes dLoss/dθ of every layer into ``self.grad`` in place."""
        dz = dlogits
        for i in reversed(range(len(self.layers))):
            h_in = work[i - 1].h if i else x
            dw, db = self._trained_grad[i]
            if dw.shape[2] < dw.shape[1]:                       # few inputs (the first layer): as in _forward
                dw.copy_(torch.bmm(h_in.mT, dz).mT)             # dW = (h_inᵀ · dz)ᵀ
            else:
                torch.bmm(dz.mT, h_in, out=dw)                  # dW = dzᵀ · h_in
            torch.sum(dz, dim=1, out=db)                        # db = Σ_batch dz
            if i == 0:
                break
            dz = torch.bmm(dz, self._trained_theta[i][0], out=work[i].dh)   # dh_in = dz · W
            act = self.layers[i - 1][1]
            if act is not None:                                  # dz_in = dh_in · act'(z_in), in place
                _ACTIVATION_BACKWARD[type(act)](dz, work[i - 1].z, h_in, act)

    # ---- one training step of every run
    def start_epoch(self, live) -> None:
        """Nothing to prepare: a diverged row keeps computing NaNs in its own row only and is
        simply no longer reported."""

    def rows(self, x, y) -> tuple[torch.Tensor, torch.Tensor]:
        """Seed-level batches (seeds, B, …) (or a list of augmented ones) → one per trained row
        (trained, B, …): a stride-0 view when there is one seed, else one gather."""
        if isinstance(x, list):                  # augmented: one batch per seed
            x = torch.stack(x)
        if len(self.config.seeds) == 1:          # every row sees the same batch: no copy
            return x.expand(self.trained, *x.shape[1:]), y.expand(self.trained, *y.shape[1:])
        rows = self.seed_row[:self.trained]
        return x[rows], y[rows]

    @torch.no_grad()
    def step(self, x, y, lr: float) -> None:
        """One step of every run on its row's batch: x (trained, B, in), y (trained, B) (see ``rows``)."""
        batch = y.shape[1]
        work = self._workspace(self.trained, batch, True)
        logits = self._forward(self._theta_plan, x, work)
        # d(mean cross-entropy)/dlogits = (softmax − onehot) / batch, the softmax taken along the
        # classes' layout in memory (a class-last softmax over 2 classes is 10× slower)
        if self._minus_ones.shape[-1] < batch:            # the source of −1s: any batch up to its width
            self._minus_ones = torch.full((self.trained, 1, batch), -1, dtype=logits.dtype, device=logits.device)
        if self.transposed[-1]:
            dlogits = work[-1].out.softmax(1).scatter_add_(1, y.unsqueeze(1), self._minus_ones).mT
        else:
            dlogits = logits.softmax(2).scatter_add_(2, y.unsqueeze(2), self._minus_ones.mT)
        dlogits.div_(batch)
        self._backward(dlogits, x, work)
        self._optimizer_step(lr)
        if self._follow:                         # the rows that share a leader's θ get it
            torch._foreach_copy_(*self._follow)
        self._average_step()

    def _optimizer_step(self, lr: float) -> None:
        """torch.optim.SGD / Adam (single-tensor versions), op for op, on the flat stack."""
        c, g, theta = self.config, self.grad, self.theta
        self.num_steps += 1
        if c.weight_decay:
            g = torch.add(g, theta, alpha=c.weight_decay, out=self._scratch_tensor(0))
        if c.optimizer == "sgd":
            theta.add_(g, alpha=-lr)
        elif c.optimizer == "momentum":
            buf, = self.state
            buf.mul_(c.beta).add_(g)
            theta.add_(buf, alpha=-lr)
        else:
            m, v = self.state
            m.lerp_(g, 1 - c.beta)
            v.mul_(ADAM_BETA2).addcmul_(g, g, value=1 - ADAM_BETA2)
            step_size = lr / (1 - c.beta ** self.num_steps)
            denom = torch.sqrt(v, out=self._scratch_tensor(1)).div_(math.sqrt(1 - ADAM_BETA2 ** self.num_steps))
            denom.add_(ADAM_EPS)
            theta.addcdiv_(m, denom, value=-step_size)

    def _scratch_tensor(self, i: int) -> torch.Tensor:
        """The ``i``-th reused scratch tensor shaped like θ."""
        while len(self._scratch) <= i:
            self._scratch.append(torch.empty_like(self.theta))
        return self._scratch[i]

    def _set_ema_weight(self, step: int) -> None:
        """1 − α_t per weight of φ for the update at 0-based ``step``: the averagers' own schedule."""
        momentum = warmup_momentum(self.ema_momentum, step, self.config.ema_warmup, self.warmup_steps)
        self.ema_weight = ((1 - momentum) * self.ema_rows).to(self.theta.dtype)
        self._ema_weights = self._phi_like(self.ema_weight)

    def _average_step(self) -> None:
        """φ ← φ + w·(θ − φ) per row: w = 1 − α_t for EMA/SEMA; Lookahead's slow step every k steps."""
        step = self.num_steps - 1                        # this step's 0-based index
        if self.config.ema_warmup is not None and step <= self.warmup_steps:
            self._set_ema_weight(step)                   # constant again once the ramp is over
        if "lookahead" in self.mask and self.num_steps % self.config.lookahead_k == 0:
            weight = self._phi_like(self.ema_weight + self.lookahead_weight)
            torch._foreach_lerp_(self._phi_list, self._theta_averaged, weight)
            self._write_back(self.mask["lookahead"])     # the fast weights restart from the slow ones
        elif "ema" in self.mask or "sema" in self.mask:
            torch._foreach_lerp_(self._phi_list, self._theta_averaged, self._ema_weights)

    def _write_back(self, mask: torch.Tensor) -> None:
        """θ ← φ on the rows where ``mask`` (shaped like φ) holds, in place (the optimizer state stays)."""
        for m, phi, theta in zip(self._phi_like(mask), self._phi_list, self._theta_averaged):
            torch.where(m, phi, theta, out=theta)

    @torch.no_grad()
    def end_epoch(self, epoch: int) -> None:
        c = self.config
        due = tuple(switches_at(c, name, epoch) for name, _ in self.runs[self._a0:self._a0 + self._na])
        if any(due):
            if due not in self._switch_masks:            # (a few patterns: kept)
                self._switch_masks[due] = self._per_row(list(due), torch.bool)
            self._write_back(self._switch_masks[due])   # θ ← φ
        if "swa" in self.mask and epoch >= c.swa_start:
            # the equal average of the epoch-end weights: φ ← φ + (θ − φ)/(n + 1)
            weight = self._phi_like(self.mask["swa"].to(self.phi.dtype) / (self.swa_count + 1))
            torch._foreach_lerp_(self._phi_list, self._theta_averaged, weight)
            self.swa_count += 1

    def finite(self, runs) -> torch.Tensor:
        """(runs,) bool: are all live weights θ of each run finite?  (A NaN or ∞ anywhere makes
        the row's sum non-finite.)"""
        rows = torch.tensor([self.row[r] for r in runs], device=self.theta.device)
        sums = sum(v.flatten(1).sum(1) for layer in self.theta_views for v in layer)
        return sums[rows].isfinite()

    # ---- evaluation
    def _evaluated(self) -> torch.Tensor:
        """The flat weights each run is judged by, rows in ``trainer_runs`` order: θ for the plain
        optimizer (and for SWA before its first average), φ for the others."""
        index = self._evaluated_index[int(self.swa_count == 0)]
        return torch.index_select(self._store, 0, index, out=self._evaluated_weights)

    @torch.no_grad()
    def logits(self, runs, x: torch.Tensor) -> torch.Tensor:
        """(runs, examples, classes) from each run's evaluated weights."""
        weights = self._views(self._evaluated())
        if list(runs) != self.trainer_runs:
            rows = torch.tensor([self.trainer_runs.index(r) for r in runs], device=x.device)
            weights = [(w[rows], b[rows]) for w, b in weights]
            plan = self._plan(weights)
        else:
            plan = self._evaluated_plan
        # Chunks small enough that every activation stays in cache.
        widest = max(w.shape[1] for w, _ in weights)
        chunk = max(16, EVAL_ELEMENTS // (len(runs) * widest))
        classes, opts = weights[-1][0].shape[1], dict(dtype=self.theta.dtype, device=x.device)
        out = torch.empty(len(runs), classes, len(x), **opts).mT if self.transposed[-1] \
            else torch.empty(len(runs), len(x), classes, **opts)
        for start in range(0, len(x), chunk):
            c = x[start:start + chunk]
            logits = self._forward(plan, c.expand(len(runs), *c.shape), self._workspace(len(runs), len(c), False))
            out[:, start:start + len(c)].copy_(logits)       # (a product written into a slice runs per matrix)
        return out

    def models(self):
        """Each run's evaluated weights in a fresh copy of the MLP."""
        out = {}
        layers = self._views(self._evaluated())
        for row, r in enumerate(self.trainer_runs):
            model = copy.deepcopy(self.template).to(self.theta.device)
            tensors = [t[row] for layer in layers for t in layer]
            with torch.no_grad():
                for p, t in zip(model.parameters(), tensors):
                    p.copy_(t)
            out[r] = model
        return out

    def state_rows(self, average: bool) -> torch.Tensor:
        """(runs, n): each run's flat weights θ, or φ if ``average`` (θ for the plain optimizer, which
        has no average), row i is ``trainer_runs[i]``."""
        flat = self._store[self._gather_index([self._pick(r, average) for r in self.trainer_runs])]
        return torch.cat([t.reshape(len(self.trainer_runs), -1) for layer in self._views(flat) for t in layer], dim=1)

    # ---- path recording (sema_demo.paths.PathRecorder): θ flat as stored, then φ of the averaged rows
    def path_layout(self, averaged: list[int]) -> list[tuple[int, list[int]]]:
        sizes = [math.prod(s[1:]) for s in self.shapes]
        return [(len(self.runs), sizes)] + ([(len(averaged), sizes)] if averaged else [])

    def path_device(self) -> torch.device:
        return self.theta.device

    def _path_phi_picks(self, averaged: list[int]) -> list[tuple[bool, int]]:
        """φ of the runs ``averaged`` (indices into ``trainer_runs``) as a snapshot holds them: in the
        engine's row order."""
        return sorted((self._pick(self.trainer_runs[i], True) for i in averaged), key=lambda p: (not p[0], p[1]))

    def path_source(self, averaged: list[int]) -> torch.Tensor | None:
        """The engine's own θ-then-φ tensor when it is exactly a snapshot (φ held for just the runs
        ``averaged``): the recorder then reads it in place, no copy.  Else None (``path_writer``)."""
        return self._store if self._path_phi_picks(averaged) == [(True, j) for j in range(self._na)] else None

    def path_order(self, averaged: list[int]) -> list[int]:
        """For θ of each of ``trainer_runs``, then φ of each of ``averaged``, its row in a snapshot."""
        picks = self._path_phi_picks(averaged)
        return ([self.row[r] for r in self.trainer_runs]
                + [len(self.runs) + picks.index(self._pick(self.trainer_runs[i], True)) for i in averaged])

    def path_writer(self, out: torch.Tensor, averaged: list[int]):
        """A function writing θ as stored, then φ of the runs ``averaged`` in the engine's order (θ for
        a plain optimizer's), layer by layer (``path_layout``, ``path_order``), into ``out``."""
        n, theta = self.theta.numel(), self.theta
        live, average = out[:n], out[n:]
        if not averaged:
            return lambda: live.copy_(theta)
        index, store = self._gather_index(self._path_phi_picks(averaged)), self._store
        if out.dtype == store.dtype:
            return lambda: (live.copy_(theta), torch.index_select(store, 0, index, out=average))
        return lambda: (live.copy_(theta), average.copy_(store[index]))
