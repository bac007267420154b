"""A one-parameter noisy walk: the smallest picture of SGD, EMA and SEMA.

The loss is ½·h·θ²; each step adds Gaussian noise to the gradient (the same draws for
every method).  It runs the real averagers of :mod:`sema_demo.averaging` on a
one-parameter module, so the Home page shows exactly what the library does.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .averaging import EMA, SwitchEMA


@dataclass
class Walk:
    step: np.ndarray          # 0 … steps
    sgd: np.ndarray           # θ of plain SGD
    ema: np.ndarray           # φ of EMA (its θ is the SGD path)
    sema_theta: np.ndarray    # θ of SEMA: jumps to φ at every switch
    sema_phi: np.ndarray      # φ of SEMA
    switch_steps: np.ndarray  # steps after which SEMA switched


def _scalar_model(start: float) -> nn.Module:
    model = nn.Module()
    model.theta = nn.Parameter(torch.tensor([start], dtype=torch.float64))
    return model


def noisy_walk(steps: int = 300, lr: float = 0.1, curvature: float = 1.0, noise: float = 2.0,
               momentum: float = 0.95, steps_per_epoch: int = 50, start: float = 4.0,
               seed: int = 0) -> Walk:
    """Simulate SGD, EMA and SEMA on ½·h·θ² with noisy gradients."""
    gen = torch.Generator().manual_seed(seed)
    draws = torch.randn(steps, generator=gen, dtype=torch.float64) * noise
    sgd, sema_model = _scalar_model(start), _scalar_model(start)
    ema, sema = EMA(sgd, momentum), SwitchEMA(sema_model, momentum, switch_every=steps_per_epoch)
    opts = [torch.optim.SGD(m.parameters(), lr=lr) for m in (sgd, sema_model)]
    rows = [(start, start, start, start)]
    switches = []
    for t in range(steps):
        for model, opt in zip((sgd, sema_model), opts):
            model.theta.grad = curvature * model.theta.detach() + draws[t]
            opt.step()
        ema.update()
        before = sema.num_switches
        sema.update()
        if sema.num_switches > before:
            switches.append(t + 1)
        rows.append((sgd.theta.item(), ema.module.theta.item(),
                     sema_model.theta.item(), sema.module.theta.item()))
    a = np.array(rows)
    return Walk(np.arange(steps + 1), a[:, 0], a[:, 1], a[:, 2], a[:, 3], np.array(switches, dtype=int))
