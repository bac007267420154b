"""Weight averagers: EMA, Switch EMA (SEMA), SWA and Lookahead.

Conventions (shared by the whole project, see docs/ARCHITECTURE.md):

    θ  live ("fast") weights, trained by the optimizer
    φ  averaged ("slow") weights
    α  EMA momentum = the *decay*: φ ← α·φ + (1 − α)·θ after every optimizer step.
       0.999 keeps 99.9 % of the old average; the horizon is ≈ 1/(1 − α) steps.

SEMA is EMA plus one line: every epoch (or every ``switch_every`` updates) the
average is copied back into the live model, θ ← φ, in place.  The optimizer keeps
its state (momentum buffers, Adam moments) because the live tensors are the same
objects before and after.  φ keeps its value and keeps averaging.

Usage::

    sema = SwitchEMA(model, momentum=0.999)
    for epoch in range(epochs):
        for x, y in loader:
            loss_fn(model(x), y).backward()
            optimizer.step(); optimizer.zero_grad()
            sema.update()              # after every optimizer step
        sema.switch()                  # the one line that makes EMA SEMA
        evaluate(sema.module)          # the averaged nn.Module

All four averagers share one small interface so a training engine can treat them
alike: ``update()`` after every optimizer step, ``on_epoch_end()`` at the end of
every epoch, ``module`` is the network to evaluate, and ``state_dict()`` /
``load_state_dict()`` resume exactly.

Distributed training (DDP): build the averager from the *unwrapped* module
(``ddp_model.module``) on every rank.  After the gradient all-reduce the live
weights are identical on all ranks, so each rank's φ stays identical too; there is
no rank-0-only logic and nothing to broadcast.
"""
from __future__ import annotations

import copy
from collections import defaultdict
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, update_bn

__all__ = ["EMA", "SwitchEMA", "SWA", "Lookahead", "NoAverage", "make_averager", "METHODS",
           "METHOD_LABELS", "BUFFER_POLICIES", "WARMUPS", "warmup_momentum"]

BUFFER_POLICIES = ("copy", "average")
WARMUPS = ("linear", "power")


def warmup_momentum(momentum, step: int, warmup: str | None, warmup_steps: int,
                    ratio: float = 0.9, power: float = 2 / 3):
    """α_t, the decay of the update at 0-based step ``step``: a float, or a tensor of α values.

    Without warm-up φ starts as the initial weights, which after n updates still weigh αⁿ
    (0.68 after 390 steps at α = 0.999), so an early switch pulls θ back toward its start.

    - ``"linear"`` (the official SEMA configs): α_t = (1 − (1 − t/T)(1 − r))·α, from r·α up;
    - ``"power"`` (ema-pytorch, diffusers): α_t = 1 − (1 + t/γ)^(−p), from 0 up, with γ chosen
      so that the ramp reaches α at t = T: γ = T / ((1 − α)^(−1/p) − 1);
    - from t = T on (and with ``warmup=None``), α_t = α.
    """
    if warmup is None or step >= warmup_steps:
        return momentum
    progress = step / warmup_steps
    if warmup == "linear":
        return (1 - (1 - progress) * (1 - ratio)) * momentum
    return 1 - (1 + progress * ((1 - momentum) ** (-1 / power) - 1)) ** (-power)


def _check_momentum(momentum: float) -> float:
    if isinstance(momentum, bool) or not isinstance(momentum, (int, float)):
        raise ValueError(f"momentum must be a number in [0, 1), got {momentum!r}")
    momentum = float(momentum)
    if not 0.0 <= momentum < 1.0:
        raise ValueError(
            f"momentum must be in [0, 1) (the EMA decay α: 0.999 keeps 99.9 % of the "
            f"old average), got {momentum}"
        )
    return momentum


def _check_positive_int(name: str, value: Any, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def _check_warmup(warmup, steps, ratio, power) -> tuple:
    if warmup is None:
        return None, steps, float(ratio), float(power)
    if warmup not in WARMUPS:
        raise ValueError(f"warmup must be None or one of {WARMUPS}, got {warmup!r}")
    steps = _check_positive_int("warmup_steps", steps)
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio <= 1:
        raise ValueError(f"warmup_ratio must be a number in [0, 1], got {ratio!r}")
    if isinstance(power, bool) or not isinstance(power, (int, float)) or not power > 0:
        raise ValueError(f"warmup_power must be a positive number, got {power!r}")
    return warmup, steps, float(ratio), float(power)


def _check_model(model: nn.Module) -> list[nn.Parameter]:
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    params = list(model.parameters())
    if not params:
        raise ValueError("model has no parameters: there is nothing to average")
    return params


def _grouped(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> list[tuple[list, list]]:
    """Group (averaged, live) tensor pairs by (device, dtype) so every foreach call is fused."""
    groups: dict[tuple, tuple[list, list]] = defaultdict(lambda: ([], []))
    for avg, live in pairs:
        key = (avg.device, avg.dtype, live.device, live.dtype)
        groups[key][0].append(avg)
        groups[key][1].append(live)
    return list(groups.values())


class _TensorPairs:
    """The averaged copy of a model and its tensors paired with the live ones."""

    def __init__(self, model: nn.Module, buffers: str):
        if buffers not in BUFFER_POLICIES:
            raise ValueError(f"buffers must be one of {BUFFER_POLICIES}, got {buffers!r}")
        _check_model(model)
        self.model = model
        self.module = copy.deepcopy(model)
        self.module.requires_grad_(False)
        live_buffers = dict(model.named_buffers())
        params = list(zip(self.module.parameters(), model.parameters()))
        float_bufs, other_bufs = [], []
        for name, buf in self.module.named_buffers():
            live = live_buffers[name]
            (float_bufs if buf.is_floating_point() else other_bufs).append((buf, live))
        averaged = params + (float_bufs if buffers == "average" else [])
        copied = other_bufs + (float_bufs if buffers == "copy" else [])
        # φ tensors averaged with a lerp / switched back; and tensors copied from θ.
        self.averaged = _grouped(averaged)
        self.copied = _grouped(copied)

    @torch.no_grad()
    def lerp(self, weight: float) -> None:
        """φ ← φ + weight·(θ − φ) on all averaged tensors, one fused call per group."""
        for avg, live in self.averaged:
            torch._foreach_lerp_(avg, live, weight)
        self.copy_buffers()

    @torch.no_grad()
    def copy_buffers(self) -> None:
        for avg, live in self.copied:
            torch._foreach_copy_(avg, live)

    @torch.no_grad()
    def write_back(self) -> None:
        """θ ← φ in place: the live tensors stay the same objects for the optimizer."""
        for avg, live in self.averaged:
            torch._foreach_copy_(live, avg)


class EMA:
    """Exponential moving average of a model's weights.

    Args:
        model: the live network θ, already on its device and in its dtype.
        momentum: α, the decay; φ ← α·φ + (1 − α)·θ. Horizon ≈ 1/(1 − α) steps.
        buffers: "copy" (φ takes θ's BatchNorm statistics) or "average" (floating
            buffers are averaged like parameters). Integer buffers are always copied.
        warmup: None, "linear" or "power": ramp α up over the first ``warmup_steps``
            updates (see :func:`warmup_momentum`), so that the initial weights fade fast.
        warmup_steps: T, the length of the ramp in ``update()`` calls.
        warmup_ratio: r, where the linear ramp starts (α_0 = r·α).
        warmup_power: p of the power ramp.
    """

    def __init__(self, model: nn.Module, momentum: float = 0.999, buffers: str = "copy", *,
                 warmup: str | None = None, warmup_steps: int | None = None,
                 warmup_ratio: float = 0.9, warmup_power: float = 2 / 3):
        self.momentum = _check_momentum(momentum)      # α, the decay
        self.buffers = buffers                          # buffer policy
        self.warmup, self.warmup_steps, self.warmup_ratio, self.warmup_power = _check_warmup(
            warmup, warmup_steps, warmup_ratio, warmup_power)   # the α ramp, if any
        self._pairs = _TensorPairs(model, buffers)      # φ, paired with θ
        self.num_updates = 0                            # update() calls so far: the warm-up's t

    @property
    def module(self) -> nn.Module:
        """The averaged network φ: evaluate this one."""
        return self._pairs.module

    @property
    def horizon(self) -> float:
        """≈ how many recent steps the average remembers: 1 / (1 − α)."""
        return 1.0 / (1.0 - self.momentum)

    @property
    def current_momentum(self) -> float:
        """α_t, the decay the next ``update()`` uses (α itself once the warm-up is over)."""
        return warmup_momentum(self.momentum, self.num_updates, self.warmup, self.warmup_steps,
                               self.warmup_ratio, self.warmup_power)

    def update(self) -> None:
        """φ ← α_t·φ + (1 − α_t)·θ. Call after every optimizer step."""
        self._pairs.lerp(1.0 - self.current_momentum)
        self.num_updates += 1

    def on_epoch_end(self) -> None:
        """EMA does nothing at the end of an epoch."""

    def state_dict(self) -> dict[str, Any]:
        return {
            "module": self.module.state_dict(),
            "momentum": self.momentum,
            "buffers": self.buffers,
            "num_updates": self.num_updates,
            "warmup": self.warmup,
            "warmup_steps": self.warmup_steps,
            "warmup_ratio": self.warmup_ratio,
            "warmup_power": self.warmup_power,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("buffers", self.buffers) != self.buffers:
            raise ValueError(
                f"state was saved with buffers={state['buffers']!r}, this averager uses {self.buffers!r}"
            )
        self.module.load_state_dict(state["module"])
        self.momentum = _check_momentum(state["momentum"])
        self.num_updates = int(state["num_updates"])
        if "warmup" in state:
            self.warmup, self.warmup_steps, self.warmup_ratio, self.warmup_power = _check_warmup(
                state["warmup"], state["warmup_steps"], state["warmup_ratio"], state["warmup_power"])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(momentum={self.momentum}, buffers={self.buffers!r})"


class SwitchEMA(EMA):
    """Switch EMA (SEMA): an EMA that is copied back into the live model now and then.

    Args:
        model: the live network θ, already on its device and in its dtype.
        momentum: α, the decay; φ ← α·φ + (1 − α)·θ. Horizon ≈ 1/(1 − α) steps.
        switch_every: switch by itself after every N-th ``update()``. ``None`` (the
            default) switches at every ``on_epoch_end()`` or when you call ``switch()``.
        buffers: "copy" or "average", as for :class:`EMA`. With "average" the
            averaged floating buffers are switched into the live model too.
        **options: ``warmup``, ``warmup_steps``, … as for :class:`EMA`.
    """

    def __init__(
        self,
        model: nn.Module,
        momentum: float = 0.999,
        switch_every: int | None = None,
        buffers: str = "copy",
        **options,
    ):
        super().__init__(model, momentum, buffers, **options)
        self.switch_every = _check_positive_int("switch_every", switch_every, allow_none=True)
        self.num_switches = 0                           # how many times θ ← φ happened

    def update(self) -> None:
        super().update()
        if self.switch_every is not None and self.num_updates % self.switch_every == 0:
            self.switch()

    def switch(self) -> None:
        """θ ← φ, in place. φ keeps its value; the optimizer state is untouched."""
        self._pairs.write_back()
        self.num_switches += 1

    def on_epoch_end(self) -> None:
        """Switch at the end of every epoch unless switching is counted in updates."""
        if self.switch_every is None:
            self.switch()

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "switch_every": self.switch_every,
                "num_switches": self.num_switches}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.switch_every = _check_positive_int("switch_every", state["switch_every"], allow_none=True)
        self.num_switches = int(state["num_switches"])

    def __repr__(self) -> str:
        return (f"SwitchEMA(momentum={self.momentum}, switch_every={self.switch_every}, "
                f"buffers={self.buffers!r})")


class SWA:
    """Stochastic Weight Averaging: the equal average of the weights at epoch ends.

    Built on :class:`torch.optim.swa_utils.AveragedModel`.  From epoch ``start`` on
    (0-based, counted by ``on_epoch_end()``), the live weights are added to the
    equal average at the end of every epoch.  Until the first average exists,
    ``module`` is the live model itself.  After training, re-estimate BatchNorm
    statistics with :meth:`update_bn`.

    Args:
        model: the live network θ.
        start: the first epoch whose end weights enter the average.
    """

    def __init__(self, model: nn.Module, start: int = 0):
        _check_model(model)
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise ValueError(f"start must be an integer epoch >= 0, got {start!r}")
        self.model = model
        self.start = start                              # first epoch that is averaged
        self.averaged = AveragedModel(model)            # equal average of θ at epoch ends
        self.averaged.requires_grad_(False)
        self.epoch = 0                                  # epochs seen so far
        self.num_updates = 0

    @property
    def module(self) -> nn.Module:
        return self.averaged.module if self.num_averaged > 0 else self.model

    @property
    def num_averaged(self) -> int:
        return int(self.averaged.n_averaged.item())

    def update(self) -> None:
        """SWA averages per epoch, not per step: this only counts steps."""
        self.num_updates += 1

    def on_epoch_end(self) -> None:
        if self.epoch >= self.start:
            self.averaged.update_parameters(self.model)
            for avg, live in zip(self.averaged.module.buffers(), self.model.buffers()):
                avg.copy_(live)  # until update_bn, use the live statistics
        self.epoch += 1

    def update_bn(self, loader, device: torch.device | str | None = None) -> None:
        """Recompute BatchNorm running statistics of the average on ``loader``."""
        update_bn(loader, self.averaged.module, device=device)

    def state_dict(self) -> dict[str, Any]:
        return {"averaged": self.averaged.state_dict(), "start": self.start,
                "epoch": self.epoch, "num_updates": self.num_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.averaged.load_state_dict(state["averaged"])
        self.start, self.epoch = int(state["start"]), int(state["epoch"])
        self.num_updates = int(state["num_updates"])

    def __repr__(self) -> str:
        return f"SWA(start={self.start})"


class Lookahead:
    """Lookahead (Zhang et al. 2019) on top of any optimizer.

    Every ``k`` updates the slow weights move toward the fast ones,
    φ ← φ + alpha·(θ − φ), and the fast weights restart from them, θ ← φ.
    Note the side: ``alpha`` is the step *toward the fast weights* (0.5 is
    the paper's default), i.e. an EMA decay of 1 − alpha applied every k steps.

    Args:
        model: the live (fast) network θ.
        k: number of fast steps between two slow steps.
        alpha: slow step size in (0, 1].
    """

    def __init__(self, model: nn.Module, k: int = 5, alpha: float = 0.5):
        self.k = _check_positive_int("k", k)                # fast steps per slow step
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1] (the slow step toward the fast weights), got {alpha!r}")
        self.alpha = float(alpha)                          # slow step size
        self._pairs = _TensorPairs(model, "copy")          # slow weights φ
        self.num_updates = 0

    @property
    def module(self) -> nn.Module:
        return self._pairs.module

    def update(self) -> None:
        self.num_updates += 1
        if self.num_updates % self.k == 0:
            self._pairs.lerp(self.alpha)
            self._pairs.write_back()
        else:
            self._pairs.copy_buffers()

    def on_epoch_end(self) -> None:
        """Lookahead does nothing at the end of an epoch."""

    def state_dict(self) -> dict[str, Any]:
        return {"module": self.module.state_dict(), "k": self.k, "alpha": self.alpha,
                "num_updates": self.num_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.k, self.alpha = int(state["k"]), float(state["alpha"])
        self.num_updates = int(state["num_updates"])

    def __repr__(self) -> str:
        return f"Lookahead(k={self.k}, alpha={self.alpha})"


class NoAverage:
    """The plain optimizer as an averager: evaluates the live weights, averages nothing."""

    def __init__(self, model: nn.Module):
        _check_model(model)
        self.model = model
        self.num_updates = 0

    @property
    def module(self) -> nn.Module:
        return self.model

    def update(self) -> None:
        self.num_updates += 1

    def on_epoch_end(self) -> None:
        """Nothing to do."""

    def state_dict(self) -> dict[str, Any]:
        return {"num_updates": self.num_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.num_updates = int(state["num_updates"])


# The comparison methods by their short names, as used by the engine, pages and CLI.
METHODS = ("sgd", "ema", "sema", "swa", "lookahead")
METHOD_LABELS = {"sgd": "SGD (plain optimizer)", "ema": "EMA", "sema": "SEMA",
                 "swa": "SWA", "lookahead": "Lookahead"}


def make_averager(
    method: str,
    model: nn.Module,
    *,
    momentum: float = 0.999,
    switch_every: int | None = None,
    swa_start: int = 0,
    lookahead_k: int = 5,
    lookahead_alpha: float = 0.5,
    buffers: str = "copy",
    warmup: str | None = None,
    warmup_steps: int | None = None,
):
    """Build the averager for one comparison method ("sgd" is the plain optimizer).

    ``switch_every`` counts ``update()`` calls; ``None`` switches SEMA at every epoch end.
    ``warmup`` / ``warmup_steps`` ramp EMA's and SEMA's α (see :func:`warmup_momentum`).
    """
    if method == "sgd":
        return NoAverage(model)
    if method == "ema":
        return EMA(model, momentum, buffers, warmup=warmup, warmup_steps=warmup_steps)
    if method == "sema":
        return SwitchEMA(model, momentum, switch_every, buffers, warmup=warmup, warmup_steps=warmup_steps)
    if method == "swa":
        return SWA(model, swa_start)
    if method == "lookahead":
        return Lookahead(model, lookahead_k, lookahead_alpha)
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")
