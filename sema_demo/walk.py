"""A one-parameter noisy walk: the smallest picture of SGD, EMA and SEMA.

The loss is ½·h·θ²; each step adds Gaussian noise to the gradient (the same draws for
every method of a seed).  It runs the real averagers of :mod:`sema_demo.averaging`, so the
Home page shows exactly what the library does.  Many seeds run at once: the module's one
weight is a vector with one coordinate per seed (the loss is a sum of independent ½·h·θᵢ²,
so every coordinate is its own walk, and SGD, EMA and SEMA act coordinate by coordinate).

The walk is also the noisy quadratic model of :mod:`sema_demo.theory` in one dimension
(:func:`walk_model`), so its expected loss is known exactly: the Home page's presets and
their "why" come from that model, the seeds show the spread around it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .averaging import EMA, SwitchEMA
from .theory import NQM

SERIES = ("sgd", "ema", "sema_theta", "sema_phi")


@dataclass
class Walk:
    """One seed's path.  Arrays are (steps + 1,), or (steps + 1, seeds) in :class:`Walks`."""

    step: np.ndarray          # 0 … steps
    sgd: np.ndarray           # θ of plain SGD
    ema: np.ndarray           # φ of EMA (its θ is the SGD path)
    sema_theta: np.ndarray    # θ of SEMA: jumps to φ at every switch
    sema_phi: np.ndarray      # φ of SEMA (the weights SEMA evaluates)
    switch_steps: np.ndarray  # steps after which SEMA switched


@dataclass
class Walks(Walk):
    """Many seeds at once: every weight array is (steps + 1, seeds), column i is seed seeds[i]."""

    seeds: np.ndarray = None          # the seed of each column
    curvature: float = 1.0
    pre_switch: np.ndarray = None     # (switches, seeds): SEMA θ after the optimizer step, just before θ ← φ

    def run(self, i: int = 0) -> Walk:
        """The path of column i (the same as ``noisy_walk(seed=seeds[i], …)``)."""
        return Walk(self.step, *(getattr(self, s)[:, i] for s in SERIES), self.switch_steps)

    def loss(self, series: str) -> np.ndarray:
        """½·h·w² per step and seed, (steps + 1, seeds)."""
        return 0.5 * self.curvature * getattr(self, series) ** 2


def _vector_model(start: float, n: int) -> nn.Module:
    model = nn.Module()
    model.theta = nn.Parameter(torch.full((n,), float(start), dtype=torch.float64))
    return model


def noisy_walks(seeds: int = 50, steps: int = 300, lr: float = 0.1, curvature: float = 1.0, noise: float = 2.0,
                momentum: float = 0.95, steps_per_epoch: int = 50, start: float = 4.0, seed: int = 0) -> Walks:
    """Simulate SGD, EMA and SEMA on ½·h·θ² with noisy gradients for seeds seed, seed + 1, ….

    Seed s draws its noise from its own generator, so a column does not depend on how many
    other seeds run beside it."""
    draws = torch.stack([torch.randn(steps, generator=torch.Generator().manual_seed(seed + i), dtype=torch.float64)
                         for i in range(seeds)], dim=1) * noise
    sgd, sema_model = _vector_model(start, seeds), _vector_model(start, seeds)
    ema, sema = EMA(sgd, momentum), SwitchEMA(sema_model, momentum, switch_every=steps_per_epoch)
    opts = [torch.optim.SGD(m.parameters(), lr=lr) for m in (sgd, sema_model)]
    rows = torch.empty((steps + 1, 4, seeds), dtype=torch.float64)
    rows[0] = start
    switches, pre_switch = [], []
    with torch.no_grad():
        for t in range(steps):
            for model, opt in zip((sgd, sema_model), opts):
                model.theta.grad = curvature * model.theta.detach() + draws[t]
                opt.step()
            ema.update()
            before, theta = sema.num_switches, sema_model.theta.detach().clone()
            sema.update()
            if sema.num_switches > before:
                switches.append(t + 1)
                pre_switch.append(theta)
            rows[t + 1, 0], rows[t + 1, 1] = sgd.theta, ema.module.theta
            rows[t + 1, 2], rows[t + 1, 3] = sema_model.theta, sema.module.theta
    a = rows.numpy()
    pre = torch.stack(pre_switch).numpy() if pre_switch else np.empty((0, seeds))
    return Walks(np.arange(steps + 1), a[:, 0], a[:, 1], a[:, 2], a[:, 3], np.array(switches, dtype=int),
                 seeds=np.arange(seed, seed + seeds), curvature=curvature, pre_switch=pre)


def noisy_walk(steps: int = 300, lr: float = 0.1, curvature: float = 1.0, noise: float = 2.0,
               momentum: float = 0.95, steps_per_epoch: int = 50, start: float = 4.0,
               seed: int = 0) -> Walk:
    """One seed of :func:`noisy_walks`."""
    return noisy_walks(1, steps, lr, curvature, noise, momentum, steps_per_epoch, start, seed).run(0)


def walk_model(momentum: float, steps_per_epoch: int, noise: float, steps: int = 300, lr: float = 0.1,
               curvature: float = 1.0, start: float = 4.0) -> NQM:
    """The walk as the theory module's noisy quadratic: one coordinate, no optimizer momentum,
    gradient noise variance σ² (= h / batch size), so that its exact expected loss is known."""
    batch = curvature / noise ** 2 if noise > 0 else math.inf
    return NQM(dim=1, condition=1.0, batch_size=batch, lr=lr, beta=0.0, alpha=momentum,
               switch_every=steps_per_epoch, steps=steps, start=start)


# ------------------------------------------------------------------------ summaries

@dataclass(frozen=True)
class WalkSummary:
    """The numbers Home words its sentences from, all from the seeds of one :class:`Walks`."""

    window: tuple[int, int]             # steps whose loss is averaged per seed: first … last
    per_seed: dict[str, np.ndarray]     # series -> mean loss over the window, one value per seed
    lag_step: int                       # the first step where SGD's mean loss is within 2× of its window level
    lag_ratio: float                    # EMA φ's mean loss ÷ SGD θ's there (well above 1: EMA trails θ)
    jump: float                         # switches in the window, all seeds: SEMA θ's mean loss after ÷ before θ ← φ
    first_jump: tuple[float, float]     # column 0's SEMA θ just before and after the first switch (NaN: none)


def summarize_walks(walks: Walks, window: float = 1 / 3) -> WalkSummary:
    """Per-seed mean losses over the last `window` of the run, EMA's lag and what a switch does."""
    steps = len(walks.step) - 1
    first = max(1, steps - int(round(window * steps)) + 1)
    per_seed = {s: walks.loss(s)[first:].mean(axis=0) for s in SERIES}
    sgd_mean, ema_mean = walks.loss("sgd").mean(axis=1), walks.loss("ema").mean(axis=1)
    lag_step = int(np.argmax(sgd_mean <= 2 * sgd_mean[first:].mean()))
    lag_ratio = float(ema_mean[lag_step] / sgd_mean[lag_step]) if sgd_mean[lag_step] > 0 else math.nan
    late = walks.switch_steps >= first
    jump, first_jump = math.nan, (math.nan, math.nan)
    if late.any():
        before = 0.5 * walks.curvature * walks.pre_switch[late] ** 2
        after = walks.loss("sema_theta")[walks.switch_steps[late]]
        jump = float(after.mean() / before.mean()) if before.mean() > 0 else math.nan
    if walks.switch_steps.size:
        first_jump = (float(walks.pre_switch[0, 0]), float(walks.sema_theta[walks.switch_steps[0], 0]))
    return WalkSummary((first, steps), per_seed, lag_step, lag_ratio, jump, first_jump)
