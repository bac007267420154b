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

Real training (see the README's recipes):

- ``warmup="linear"`` ramps α up over the first updates, so the random initial weights fade
  before the first switch; ``dtype=torch.float32`` keeps φ in float32 for bf16/fp16 weights;
  ``update_every=k`` averages every k-th call with α^k; ``with sema.swap():`` puts φ into the
  live model for evaluation or checkpointing and restores θ exactly.
- DDP: build the averager on every rank, from the model or its DDP wrapper.  φ's parameters
  stay identical on all ranks by themselves; φ's floating buffers (BatchNorm statistics,
  which every rank updates from its own batch) are averaged over the ranks at every
  ``switch()`` and in ``swap()`` / ``sync_buffers()``: call those on every rank.
- FSDP2: an averager of a ``fully_shard``-ed model keeps φ as this rank's local shards and
  never communicates for them; evaluate with ``swap()`` (there is no gathered ``module``).
- Checkpoint keys carry no ``module.`` / ``_orig_mod.`` prefix, and loading pairs tensors
  by name, so a state saved with or without DDP or torch.compile loads into either.

An averager is not thread-safe: two threads calling ``update()`` on one averager lose
updates.  Give each thread its own (the app never shares one between sessions).
"""
from __future__ import annotations

import copy
import numbers
import warnings
import weakref
from collections import defaultdict
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, update_bn

from .distributed import all_reduce_mean_, is_sharded, local_tensor, strip_prefixes, unwrap

__all__ = ["EMA", "SwitchEMA", "SWA", "Lookahead", "NoAverage", "make_averager", "METHODS",
           "METHOD_LABELS", "BUFFER_POLICIES", "WARMUPS", "warmup_momentum"]

BUFFER_POLICIES = ("copy", "average")
WARMUPS = ("linear", "power")
STALL_EPS_FACTOR = 100   # warn when 1 − α is below this many roundings (eps) of φ's dtype …
STALL_GAP = 0.01         # … or below this (16-bit φ: 100 eps is more than 1 − α ever is)
MIXED_CHUNK = 1 << 22    # elements converted at once when φ and θ differ in dtype (off the CPU)
# On the CPU the update is split into flat pieces below PyTorch's parallel grain, so every piece runs
# on one thread: an update this size is memory-bound, gains little from a second thread, and on a
# busy machine waiting for one costs milliseconds.  A float32 φ of bf16/fp16 weights converts θ in
# runs of pieces that fit in the L2 cache, so the converted copy never leaves it.
CPU_PIECE = 32_768       # elements per piece (torch's internal GRAIN_SIZE)
CPU_MIXED_CHUNK = 1 << 17    # elements converted at once on the CPU (512 KB of float32)


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


# ------------------------------------------------------------------------------ argument checks


def _is_real(value: Any) -> bool:
    """A real number, numpy scalars included; bools are not numbers here (numpy's bool is not
    registered as numbers.Real in the first place)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_momentum(momentum: Any) -> float:
    if not _is_real(momentum):
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
    if not (isinstance(value, numbers.Integral) and _is_real(value)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _check_count(name: str, value: Any) -> int:
    if not (isinstance(value, numbers.Integral) and _is_real(value)) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def _check_lookahead_alpha(alpha: Any) -> float:
    if not _is_real(alpha) or not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1] (the slow step toward the fast weights), got {alpha!r}")
    return float(alpha)


def _check_warmup(warmup, steps, ratio, power) -> tuple:
    if warmup is None:
        return None, steps, float(ratio), float(power)
    if warmup not in WARMUPS:
        raise ValueError(f"warmup must be None or one of {WARMUPS}, got {warmup!r}")
    steps = _check_positive_int("warmup_steps", steps)
    if not _is_real(ratio) or not 0 <= ratio <= 1:
        raise ValueError(f"warmup_ratio must be a number in [0, 1], got {ratio!r}")
    if not _is_real(power) or not power > 0:
        raise ValueError(f"warmup_power must be a positive number, got {power!r}")
    return warmup, steps, float(ratio), float(power)


def _check_dtype(dtype: Any) -> torch.dtype | None:
    if dtype is None:
        return None
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype.removeprefix("torch."), dtype)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating torch.dtype such as torch.float32, got {dtype!r}")
    return dtype


def _check_model(model: nn.Module) -> list[nn.Parameter]:
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    params = list(model.parameters())
    if not params:
        raise ValueError("model has no parameters: there is nothing to average")
    return params


def _require(state: dict, keys: tuple[str, ...], kind: str) -> None:
    if not isinstance(state, dict):
        raise ValueError(f"a {kind} state must be a dict (from {kind}.state_dict()), got {type(state).__name__}")
    missing = [k for k in keys if k not in state]
    if missing:
        raise ValueError(f"not a {kind} state: it lacks {', '.join(missing)} "
                         f"(was it saved by another averager?)")


def _warn_if_stalling(momentum: float, dtype: torch.dtype) -> None:
    """With 1 − α near the rounding of φ's dtype, a slowly drifting θ no longer moves φ."""
    eps = torch.finfo(dtype).eps
    if 1 - momentum < min(STALL_EPS_FACTOR * eps, STALL_GAP):
        wider = "torch.float64" if dtype == torch.float32 else "torch.float32"
        warnings.warn(
            f"momentum {momentum} with a {dtype} average: each update moves φ by only "
            f"1 − α = {1 - momentum:.2g} of its distance to θ, close to {dtype}'s rounding "
            f"({eps:.2g}), so the average can stall. Pass dtype={wider} or use a smaller momentum.",
            RuntimeWarning, stacklevel=4)


# ------------------------------------------------------------------------- the averaging core


def _grouped(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> list[tuple[list, list]]:
    """Group (averaged, live) tensor pairs by (device, dtype) so every foreach call is fused."""
    groups: dict[tuple, tuple[list, list]] = defaultdict(lambda: ([], []))
    for avg, live in pairs:
        key = (avg.device, avg.dtype, live.device, live.dtype)
        groups[key][0].append(avg)
        groups[key][1].append(live)
    return list(groups.values())


def _pieces(avg: list, live: list) -> tuple[list, list]:
    """The pairs as flat pieces of at most CPU_PIECE elements (a pair that is not contiguous on
    both sides stays whole): the same elements, so a fused op on the pieces is the same op."""
    out_avg, out_live = [], []
    for a, t in zip(avg, live):
        if a.numel() > CPU_PIECE and a.is_contiguous() and t.is_contiguous():
            out_avg.extend(a.view(-1).split(CPU_PIECE))
            out_live.extend(t.view(-1).split(CPU_PIECE))
        else:
            out_avg.append(a)
            out_live.append(t)
    return out_avg, out_live


def _chunks(avg: list, live: list, limit: int = MIXED_CHUNK) -> list[tuple[list, list]]:
    """Split a mixed-dtype group into runs of at most ``limit`` elements (or one big tensor)."""
    out, start, size = [], 0, 0
    for i, t in enumerate(live):
        if size and size + t.numel() > limit:
            out.append((avg[start:i], live[start:i]))
            start, size = i, 0
        size += t.numel()
    out.append((avg[start:], live[start:]))
    return out


_WATCHES: "weakref.WeakKeyDictionary[nn.Module, weakref.WeakSet]" = weakref.WeakKeyDictionary()


def _on_registration(module, *_):
    """A parameter, buffer or submodule was (re)assigned on some module: flag its watchers."""
    for watch in _WATCHES.get(module, ()):
        watch.changed = True


def _on_load(module, _incompatible):
    for watch in _WATCHES.get(module, ()):
        watch.loaded = True


_registration_hooks = []    # the three global hooks, registered by the first averager


class _Watch:
    """Notices, in O(1) per update, what makes the live tensors differ from those φ was paired
    with: ``load_state_dict`` into the live model, and parameters, buffers or submodules
    assigned on it.  (dtype, device and shape changes surface as the fused lerp's error.)
    Only weak references: no averager is kept alive, and deep copies of the model (which
    copy its hooks along) do not count."""

    def __init__(self, model: nn.Module):
        self.loaded = self.changed = False
        if not _registration_hooks:
            mod = torch.nn.modules.module
            _registration_hooks.extend(hook(_on_registration) for hook in (
                mod.register_module_parameter_registration_hook, mod.register_module_buffer_registration_hook,
                mod.register_module_module_registration_hook))
        for m in model.modules():
            if m not in _WATCHES:
                _WATCHES[m] = weakref.WeakSet()
                m.register_load_state_dict_post_hook(_on_load)   # once per module, ever
            _WATCHES[m].add(self)

    @property
    def alarm(self) -> bool:
        return self.loaded or self.changed


class _TensorPairs:
    """φ, a copy of the averaged tensors, paired by name with the live tensors θ.

    A plain, DDP-wrapped or compiled model: φ is a deep copy of the unwrapped module
    (``module``).  A ``fully_shard``-ed (FSDP2) model: φ is a copy of this rank's local shards
    and there is no ``module``.  ``dtype`` casts φ's floating tensors (e.g. float32 for bf16 θ).
    """

    def __init__(self, model: nn.Module, buffers: str, dtype: torch.dtype | None = None):
        if buffers not in BUFFER_POLICIES:
            raise ValueError(f"buffers must be one of {BUFFER_POLICIES}, got {buffers!r}")
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = unwrap(model)
        _check_model(self.model)
        self.buffers, self.dtype = buffers, dtype
        self.sharded = is_sharded(self.model)
        self.seed()

    def seed(self) -> None:
        """(Re)build φ as a copy of θ now, paired tensor by tensor."""
        self.live = [*self.model.parameters(), *self.model.buffers()]   # what update() checks
        self.signature = [(t.dtype, t.shape) for t in self.live]
        live_params = {n: local_tensor(p) for n, p in self.model.named_parameters()}
        live_buffers = dict(self.model.named_buffers())
        if self.sharded:
            self.module = None
            cast = (lambda t: t.to(self.dtype) if t.is_floating_point() and self.dtype else t)
            self.phi = {n: cast(t.detach().clone()) for n, t in {**live_params, **live_buffers}.items()}
        else:
            self.module = copy.deepcopy(self.model)
            self.module.requires_grad_(False)
            if self.dtype is not None:
                self.module.to(self.dtype)
            self.phi = {**dict(self.module.named_parameters()), **dict(self.module.named_buffers())}
        self.watch = _Watch(self.model)              # after the deep copy: the copy is not watched
        params = [(self.phi[n], t) for n, t in live_params.items()]
        float_bufs = [(self.phi[n], t) for n, t in live_buffers.items() if t.is_floating_point()]
        other_bufs = [(self.phi[n], t) for n, t in live_buffers.items() if not t.is_floating_point()]
        # φ tensors averaged with a lerp / switched back; and tensors copied from θ.
        self.averaged = _grouped(params + (float_bufs if self.buffers == "average" else []))
        self.copied = _grouped(other_bufs + (float_bufs if self.buffers == "copy" else []))
        self.float_buffers = [avg for avg, _ in float_bufs]
        self.devices = [live[0].device for _, live in self.averaged]
        self.live_dtypes = [live[0].dtype for _, live in self.averaged]
        self.scratch: dict[tuple, torch.Tensor] = {}
        self._plan()

    @torch.no_grad()
    def _plan(self) -> None:
        """What lerp() runs, made once: per group (φ, θ, scratch views or None), CPU groups in
        pieces (see CPU_PIECE); mixed-dtype groups in runs converted through one scratch buffer."""
        self.plan, self.pieces = [], []
        for avg, live in self.averaged:
            cpu = avg[0].device.type == "cpu" and live[0].device.type == "cpu"
            if cpu:
                avg, live = _pieces(avg, live)
            self.pieces.append((avg, live))
            if avg[0].dtype == live[0].dtype:
                self.plan.append((avg, live, None))
                continue
            chunks = _chunks(avg, live, CPU_MIXED_CHUNK if cpu else MIXED_CHUNK)
            self._scratch_views(max((a for a, _ in chunks), key=lambda c: sum(t.numel() for t in c)))  # sized once
            for avg_chunk, live_chunk in chunks:
                self.plan.append((avg_chunk, live_chunk, self._scratch_views(avg_chunk)))
        split = any(len(a) != len(b) for (a, _), (b, _) in zip(self.averaged, self.pieces))
        self.storage = [t.data_ptr() for _, live in self.averaged for t in live] if split else None

    def check_live(self) -> None:
        """Raise ValueError when θ's tensors are no longer the ones φ was paired with (the full
        check: a walk over the model, so update() runs it only when the watch has noticed something)."""
        if self.watch.loaded:
            raise ValueError(
                "the live model's weights were loaded (load_state_dict) after this averager was "
                "built, so φ still holds the old weights and the next switch would write them back. "
                "Build the averager after loading, call .reset() to re-seed φ from the live model, "
                "or load the averager's own state too (.load_state_dict)")
        current = [*self.model.parameters(), *self.model.buffers()]
        if len(current) != len(self.live) or any(a is not b for a, b in zip(current, self.live)):
            raise ValueError(
                "the live model's parameters or buffers were replaced after this averager was built "
                "(a new layer, a new nn.Parameter, .to(...) on buffers), so they are not averaged. "
                "Build the averager after changing the model, or call .reset() to re-seed φ from it")
        if any(t.dtype != d or t.shape != s for t, (d, s) in zip(current, self.signature)) or any(
                live[0].device != d for (_, live), d in zip(self.averaged, self.devices)):
            raise ValueError(
                "the live model's tensors changed dtype, device or shape after this averager was built "
                "(e.g. model.double(), model.half() or model.to(device)). Build the averager after "
                "converting the model, or call .reset() to re-seed φ from it")
        self.watch.changed = False                   # a registration that replaced nothing

    def check_quickly(self) -> None:
        """check_live() when the watch noticed something or a group's first tensor changed dtype or
        device (as a whole-model conversion does); O(groups), not O(tensors)."""
        if self.watch.alarm or any(live[0].dtype != dt or live[0].device != dev for (_, live), dt, dev
                                   in zip(self.averaged, self.live_dtypes, self.devices)):
            self.check_live()

    @torch.no_grad()
    def lerp(self, weight: float) -> None:
        """φ ← φ + weight·(θ − φ) on all averaged tensors, one fused call per group."""
        self.check_quickly()
        if self.storage is not None:
            self._check_storage()
        try:
            for avg, live, converted in self.plan:
                if converted is None:
                    torch._foreach_lerp_(avg, live, weight)
                else:                                # lerp needs one dtype: convert θ chunk by chunk
                    torch._foreach_copy_(converted, live)
                    torch._foreach_lerp_(avg, converted, weight)
        except RuntimeError:
            self.check_live()                        # a clear message if θ changed dtype, device or shape
            raise
        self._copy_buffers()

    def _check_storage(self) -> None:
        if self.storage != [t.data_ptr() for _, live in self.averaged for t in live]:
            self._plan()                             # θ's storage was swapped (``p.data = …``): new pieces

    def _scratch_views(self, like: list[torch.Tensor]) -> list[torch.Tensor]:
        """Views of one reused buffer shaped like ``like`` (φ's dtype and device)."""
        total = sum(t.numel() for t in like)
        key = (like[0].device, like[0].dtype)
        if key not in self.scratch or self.scratch[key].numel() < total:
            self.scratch[key] = torch.empty(total, dtype=like[0].dtype, device=like[0].device)
        flat, views, offset = self.scratch[key], [], 0
        for t in like:
            views.append(flat[offset:offset + t.numel()].view(t.shape))
            offset += t.numel()
        return views

    @torch.no_grad()
    def copy_buffers(self) -> None:
        self._copy_buffers()

    def _copy_buffers(self) -> None:
        for avg, live in self.copied:
            torch._foreach_copy_(avg, live)

    @torch.no_grad()
    def write_back(self) -> None:
        """θ ← φ in place (cast to θ's dtype): the live tensors stay the same objects for the optimizer."""
        self._write_back()

    def _write_back(self) -> None:
        if self.storage is not None:
            self._check_storage()
        for avg, live in self.pieces:
            torch._foreach_copy_(live, avg)

    @torch.no_grad()
    def switch(self) -> None:
        """SEMA's switch, in one no-grad scope (a tiny model's switch is mostly Python): φ's floating
        buffers averaged over the ranks, then θ ← φ."""
        self.check_quickly()
        if self.float_buffers:
            all_reduce_mean_(self.float_buffers)
        self._write_back()

    @torch.no_grad()
    def sync_buffers(self) -> None:
        """φ's floating buffers ← their mean over all ranks (nothing on one process)."""
        all_reduce_mean_(self.float_buffers)

    @contextmanager
    def swapped(self):
        """θ and φ exchanged in place for the body, buffers included; restored bit-identically after.

        Same dtypes: a true exchange, one tensor's temporary at a time.  φ in another dtype than
        θ: θ is kept in a temporary copy (in θ's dtype) while the body runs."""
        self.check_quickly()
        pairs = [(a, b) for avg, live in self.averaged + self.copied for a, b in zip(avg, live)]
        with torch.no_grad():
            same = [(a, b) for a, b in pairs if a.dtype == b.dtype]
            mixed = [(a, b) for a, b in pairs if a.dtype != b.dtype]
            for avg, live in same:
                _exchange(avg, live)
            saved = [live.clone() for _, live in mixed]
            for avg, live in mixed:
                live.copy_(avg)
        try:
            yield
        finally:
            with torch.no_grad():
                for avg, live in same:
                    _exchange(avg, live)
                for (_, live), old in zip(mixed, saved):
                    live.copy_(old)

    def state(self) -> dict[str, torch.Tensor]:
        """φ's tensors by (unprefixed) name."""
        return self.module.state_dict() if self.module is not None else dict(self.phi)

    def check_state(self, state: Any) -> dict[str, torch.Tensor]:
        """The tensors of a saved φ, renamed to ours, after checking names and shapes; raises
        ValueError before anything is written."""
        if not isinstance(state, dict):
            raise ValueError(f"the saved average must be a dict of tensors, got {type(state).__name__}")
        ours = self.state()
        renamed = {strip_prefixes(k, ours): v for k, v in state.items()}
        missing, unexpected = sorted(set(ours) - set(renamed)), sorted(set(renamed) - set(ours))
        if missing or unexpected:
            raise ValueError(f"the saved average does not fit this model: missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]}")
        for name, t in renamed.items():
            if not isinstance(t, torch.Tensor) or t.shape != ours[name].shape:
                shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                raise ValueError(f"the saved average's {name} has shape {shape}, "
                                 f"this model's has {tuple(ours[name].shape)}")
        return renamed

    @torch.no_grad()
    def load(self, renamed: dict[str, torch.Tensor]) -> None:
        ours = self.state()
        for name, t in renamed.items():
            ours[name].copy_(t)
        self.watch.loaded = False


def _exchange(a: torch.Tensor, b: torch.Tensor) -> None:
    tmp = a.clone()
    a.copy_(b)
    b.copy_(tmp)


# ------------------------------------------------------------------------------- the averagers


class EMA:
    """Exponential moving average of a model's weights.

    Args:
        model: the live network θ (plain, DDP-wrapped, compiled or fully_shard-ed), already
            on its device and in its dtype. Build the averager AFTER loading its weights.
        momentum: α, the decay; φ ← α·φ + (1 − α)·θ. Horizon ≈ 1/(1 − α) steps.
        buffers: "copy" (φ takes θ's BatchNorm statistics) or "average" (floating
            buffers are averaged like parameters). Integer buffers are always copied.
        warmup: None, "linear" or "power": ramp α up over the first ``warmup_steps``
            updates (see :func:`warmup_momentum`), so that the initial weights fade fast.
        warmup_steps: T, the length of the ramp in ``update()`` calls.
        warmup_ratio: r, where the linear ramp starts (α_0 = r·α).
        warmup_power: p of the power ramp.
        update_every: average on every k-th ``update()`` call only, with α_t^k, so that the
            horizon in steps stays the same (a cheaper update, as Composer does); "copy"
            buffers are taken on those calls.
        dtype: φ's floating dtype, e.g. torch.float32 for bf16/fp16 weights (whose own
            rounding stalls an average); ``None`` keeps θ's. Cast back on switch.
    """

    def __init__(self, model: nn.Module, momentum: float = 0.999, buffers: str = "copy", *,
                 warmup: str | None = None, warmup_steps: int | None = None,
                 warmup_ratio: float = 0.9, warmup_power: float = 2 / 3,
                 update_every: int = 1, dtype: torch.dtype | None = None):
        self.momentum = _check_momentum(momentum)      # α, the decay
        self.buffers = buffers                          # buffer policy
        self.warmup, self.warmup_steps, self.warmup_ratio, self.warmup_power = _check_warmup(
            warmup, warmup_steps, warmup_ratio, warmup_power)   # the α ramp, if any
        self.update_every = _check_positive_int("update_every", update_every)   # average every k-th call
        self.dtype = _check_dtype(dtype)                # φ's dtype (None: θ's)
        self._pairs = _TensorPairs(model, buffers, self.dtype)   # φ, paired with θ by name
        self.num_updates = 0                            # update() calls so far: the warm-up's t
        _warn_if_stalling(self.momentum, self._phi_dtype())

    @property
    def module(self) -> nn.Module:
        """The averaged network φ: evaluate this one (for FSDP2 use :meth:`swap`)."""
        if self._pairs.module is None:
            raise RuntimeError("φ of a fully_shard (FSDP2) model is kept as local shards, with no "
                               "module of its own: evaluate it with `with averager.swap(): ...`")
        return self._pairs.module

    @property
    def model(self) -> nn.Module:
        """The live network θ (unwrapped from DDP / torch.compile)."""
        return self._pairs.model

    @property
    def horizon(self) -> float:
        """≈ how many recent steps the average remembers: 1 / (1 − α)."""
        return 1.0 / (1.0 - self.momentum)

    @property
    def current_momentum(self) -> float:
        """α_t, the decay of the next ``update()`` call (α itself once the warm-up is over)."""
        return warmup_momentum(self.momentum, self.num_updates, self.warmup, self.warmup_steps,
                               self.warmup_ratio, self.warmup_power)

    def update(self) -> None:
        """φ ← α_t·φ + (1 − α_t)·θ. Call after every optimizer step."""
        if (self.num_updates + 1) % self.update_every == 0:
            self._pairs.lerp(1.0 - self.current_momentum ** self.update_every)
        self.num_updates += 1

    def on_epoch_end(self) -> None:
        """EMA does nothing at the end of an epoch."""

    def reset(self) -> None:
        """Re-seed φ from the live model as it is now (after loading weights into it, replacing
        layers or converting it), and restart the warm-up and ``switch_every`` counting.
        ``module`` is a new copy afterwards: read it again."""
        self._pairs.seed()
        self.num_updates = 0

    def sync_buffers(self) -> None:
        """DDP: average φ's floating buffers over the ranks (call on every rank before
        evaluating; ``switch()`` and ``swap()`` do it themselves). Nothing on one process."""
        self._pairs.sync_buffers()

    @contextmanager
    def swap(self, sync: bool = True):
        """``with averager.swap(): evaluate(model)``: φ inside the live model, θ restored after.

        No copy is kept beyond the body (and none at all while φ and θ share a dtype); the
        optimizer state is untouched. Under DDP call it on every rank, or pass ``sync=False``.
        """
        if sync:
            self.sync_buffers()
        with self._pairs.swapped():
            yield self.model

    def _phi_dtype(self) -> torch.dtype:
        floating = [avg[0].dtype for avg, _ in self._pairs.averaged if avg[0].is_floating_point()]
        return min(floating, key=lambda d: torch.finfo(d).bits) if floating else torch.float32

    _STATE_KEYS = ("module", "momentum", "buffers", "num_updates")

    def state_dict(self) -> dict[str, Any]:
        return {
            "kind": type(self).__name__,
            "module": self._pairs.state(),
            "momentum": self.momentum,
            "buffers": self.buffers,
            "num_updates": self.num_updates,
            "warmup": self.warmup,
            "warmup_steps": self.warmup_steps,
            "warmup_ratio": self.warmup_ratio,
            "warmup_power": self.warmup_power,
            "update_every": self.update_every,
        }

    def _checked(self, state: dict[str, Any]) -> dict[str, Any]:
        """Every setting of ``state`` validated, before anything is written (all or nothing)."""
        kind = type(self).__name__
        _require(state, (), kind)
        saved_kind = state.get("kind", kind)
        if saved_kind != kind:
            raise ValueError(f"this state was saved by {saved_kind}, not {kind}: load it into a {saved_kind}")
        _require(state, self._STATE_KEYS, kind)
        if state["buffers"] != self.buffers:
            raise ValueError(
                f"state was saved with buffers={state['buffers']!r}, this averager uses {self.buffers!r}")
        num_updates = _check_count("num_updates", state["num_updates"])
        warmup = _check_warmup(state.get("warmup"), state.get("warmup_steps"),
                               state.get("warmup_ratio", 0.9), state.get("warmup_power", 2 / 3))
        return {"module": self._pairs.check_state(state["module"]),
                "momentum": _check_momentum(state["momentum"]), "num_updates": num_updates,
                "warmup": warmup,
                "update_every": _check_positive_int("update_every", state.get("update_every", 1))}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume exactly; a state that does not fit raises ValueError and changes nothing."""
        self._apply(self._checked(state))

    def _apply(self, checked: dict[str, Any]) -> None:
        self._pairs.load(checked["module"])
        self.momentum, self.num_updates = checked["momentum"], checked["num_updates"]
        self.warmup, self.warmup_steps, self.warmup_ratio, self.warmup_power = checked["warmup"]
        self.update_every = checked["update_every"]

    def _repr_head(self) -> str:
        return f"momentum={self.momentum}"

    def __repr__(self) -> str:
        extras = "".join(f", {k}={getattr(self, k)!r}" for k, default in
                         (("warmup", None), ("warmup_steps", None), ("update_every", 1), ("dtype", None))
                         if getattr(self, k) != default)
        return f"{type(self).__name__}({self._repr_head()}, buffers={self.buffers!r}{extras})"


class SwitchEMA(EMA):
    """Switch EMA (SEMA): an EMA that is copied back into the live model now and then.

    Args:
        model: the live network θ, already on its device and in its dtype.
        momentum: α, the decay; φ ← α·φ + (1 − α)·θ. Horizon ≈ 1/(1 − α) steps.
        switch_every: switch by itself after every N-th ``update()``. ``None`` (the
            default) switches at every ``on_epoch_end()`` or when you call ``switch()``.
        buffers: "copy" or "average", as for :class:`EMA`. With "average" the
            averaged floating buffers are switched into the live model too.
        **options: ``warmup``, ``warmup_steps``, ``warmup_ratio``, ``warmup_power``,
            ``update_every`` and ``dtype``, as for :class:`EMA`.
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
        """θ ← φ, in place. φ keeps its value; the optimizer state is untouched.
        Under DDP call it on every rank: φ's floating buffers are averaged over the ranks first."""
        self._pairs.switch()
        self.num_switches += 1

    def on_epoch_end(self) -> None:
        """Switch at the end of every epoch unless switching is counted in updates."""
        if self.switch_every is None:
            self.switch()

    _STATE_KEYS = EMA._STATE_KEYS + ("switch_every", "num_switches")

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "switch_every": self.switch_every,
                "num_switches": self.num_switches}

    def _checked(self, state: dict[str, Any]) -> dict[str, Any]:
        checked = super()._checked(state)
        return {**checked, "switch_every": _check_positive_int("switch_every", state["switch_every"], allow_none=True),
                "num_switches": _check_count("num_switches", state["num_switches"])}

    def _apply(self, checked: dict[str, Any]) -> None:
        super()._apply(checked)
        self.switch_every, self.num_switches = checked["switch_every"], checked["num_switches"]

    def _repr_head(self) -> str:
        return f"momentum={self.momentum}, switch_every={self.switch_every}"


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
        self.model = model
        self.start = _check_count("start", start)                             # first epoch that is averaged
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
        """Resume exactly; a state that does not fit raises ValueError and changes nothing."""
        _require(state, ("averaged", "start", "epoch", "num_updates"), "SWA")
        start, epoch, num_updates = (_check_count(k, state[k]) for k in ("start", "epoch", "num_updates"))
        averaged = state["averaged"]
        ours = self.averaged.state_dict()
        if not isinstance(averaged, dict) or set(averaged) != set(ours) or any(
                not isinstance(v, torch.Tensor) or v.shape != ours[k].shape for k, v in averaged.items()):
            raise ValueError("the saved SWA average does not fit this model (other names or shapes)")
        self.averaged.load_state_dict(averaged)
        self.start, self.epoch, self.num_updates = start, epoch, num_updates

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
        self.alpha = _check_lookahead_alpha(alpha)         # slow step size
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
        """Resume exactly; a state that does not fit raises ValueError and changes nothing."""
        _require(state, ("module", "k", "alpha", "num_updates"), "Lookahead")
        k, alpha = _check_positive_int("k", state["k"]), _check_lookahead_alpha(state["alpha"])
        num_updates = _check_count("num_updates", state["num_updates"])
        self._pairs.load(self._pairs.check_state(state["module"]))
        self.k, self.alpha, self.num_updates = k, alpha, num_updates

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
        _require(state, ("num_updates",), "NoAverage")
        self.num_updates = _check_count("num_updates", state["num_updates"])


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
