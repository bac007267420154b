"""Flatness vs sharpness: loss-landscape slices and sharpness measures of a trained network.

The paper's geometric claim — the optimizer finds *deep* (low-loss, sharp) minima, EMA
finds *flat* ones, SEMA gets both — made measurable.  Everything here probes one
:class:`LossSurface`: the mean loss of a trained network on fixed data, as a function
of its weights.

    surface = LossSurface(model, x_train, y_train)          # F.cross_entropy by default
    d1, d2 = random_directions(surface.params, count=2, seed=0)
    grid = slice_2d(surface, d1, d2, torch.linspace(-1, 1, 41))   # (41, 41) losses
    top_eigenvalue(surface).value, hessian_trace(surface).value

Conventions
-----------
* **Evaluation mode.** The network is evaluated in ``eval()`` mode, so BatchNorm uses
  its running statistics and the loss is a fixed function of the weights.  Slices
  around a solution keep the solution's running statistics at every point (they are
  not recomputed).  :func:`interpolate` moves parameters *and* floating buffers
  (BatchNorm running mean/var) linearly from one solution to the other; integer
  buffers (``num_batches_tracked``) are taken from the first.
* **Filter-normalised directions** (Li et al., 2018, "Visualizing the Loss Landscape of
  Neural Nets"): a Gaussian direction whose every filter (row of a Linear weight,
  output channel of a Conv weight) is rescaled to the norm of the same filter of the
  weights.  Offsets are therefore *relative*: offset 0.1 moves every filter by 10 % of
  its own norm, which makes networks of different weight scale comparable.  1-D
  tensors (biases, BatchNorm weight/bias) get a zero direction — Li et al.'s
  ``ignore="biasbn"`` — so they keep their trained values.  The Gaussian draws depend
  only on the seed and the parameter shapes, so every method of one architecture is
  probed along the *same* seeded directions (each normalised to its own filters).
* **Batched evaluation.** Many weight points are evaluated at once with
  ``torch.func.functional_call`` under ``torch.vmap`` (no Python loop over points).  A plain
  MLP (an ``nn.Sequential`` of Linear layers and Tanh/ReLU/Sigmoid) takes a direct path
  instead: one ``baddbmm`` per layer over all points of a pass, activations in place, tanh as
  2·σ(2x) − 1 (the same function to float rounding, ≈ 5× cheaper than ``torch.tanh`` on a
  CPU, where the slice is activation-bound).  Adaptive average pooling to 1×1 is evaluated as
  a mean over H and W (the same numbers; vmap has no batching rule for the former).
* **Hessian.** Hessian-vector products by double backpropagation (Pearlmutter, 1994),
  summed over data chunks; the top eigenvalue comes from power iteration, the trace
  from Hutchinson's estimator with Rademacher vectors.  Written here from the
  textbook algorithms (PyHessian is GPL).
"""
from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, vmap

from .stats import mean_std

__all__ = ["LossSurface", "filter_normalize", "random_directions", "slice_1d", "slices_1d", "slice_2d", "interpolate",
           "top_eigenvalue", "hessian_trace", "perturbation_sharpness", "crossing_radius", "flat_width",
           "SharpnessSettings", "Measures", "measure", "Estimate", "Eigen", "Width", "MEASURE_COLUMNS",
           "Comparison", "compare_methods", "interpolation_frame", "summary_table", "flatness_summary"]

State = dict[str, Tensor]
LossFn = Callable[[Tensor, Tensor], Tensor]   # (outputs, targets) -> mean loss
# Floats in the widest activation of one pass: on a CPU small enough (1 MiB) that a pass's activations stay
# in the L2 cache and its buffers are reused instead of being paged in afresh (larger passes ran slower than
# the point-by-point loop, benchmarks/bench_sharpness.py; for the Image page's CNN, whose pass is then one
# point, 2 or 4 points per pass through vmap's grouped convolutions took 1.3-1.7x as long on the 21x21
# surface of benchmarks/bench_paths.py); large on an accelerator, where fewer, bigger kernels win.
ACTIVATION_BUDGET = {"cpu": 2 ** 18, "accelerator": 2 ** 25}


class LossSurface:
    """The mean loss of a trained network on fixed data, as a function of its weights.

    Args:
        model: the trained network (copied; the original is never modified).
        x, y: the data the loss is measured on (moved to the model's device).
        loss_fn: ``loss_fn(outputs, targets)`` returning the *mean* loss of a batch.
        batch_size: data rows per forward pass (the loss is the mean over all rows);
            ``None`` picks as many as fit the device's ``ACTIVATION_BUDGET`` (at most 4096).
        points_per_pass: weight points evaluated together by ``vmap``; ``None`` picks as
            many as fit ``ACTIVATION_BUDGET`` (at most 256).
    """

    def __init__(self, model: nn.Module, x: Tensor, y: Tensor, loss_fn: LossFn = F.cross_entropy,
                 batch_size: int | None = None, points_per_pass: int | None = None):
        if len(x) == 0 or len(x) != len(y):
            raise ValueError(f"need the same, non-zero number of inputs and targets, got {len(x)} and {len(y)}")
        self.model = copy.deepcopy(model).eval()
        self.model.requires_grad_(False)
        _swap_global_pools(self.model)
        self._plan = _mlp_plan(self.model)
        device = next(self.model.parameters()).device
        self.loss_fn = loss_fn
        self.n = len(x)
        widest = _widest_activation(self.model, x[:1].to(device))
        budget = ACTIVATION_BUDGET["cpu" if device.type == "cpu" else "accelerator"]
        batch_size = batch_size or int(min(4096, max(1, budget // widest)))
        # oneDNN's convolutions and max-pooling on CPU run about twice as fast on channels-last tensors (the
        # Image page's CNN surface: 12 → 6 ms a point, benchmarks/bench_paths.py); a convolution's output takes
        # that layout when its weight has it, so each point's 4-D weights are laid out so (see ``_laid_out``).
        has_conv = any(isinstance(m, nn.modules.conv._ConvNd) for m in self.model.modules())
        self._channels_last = device.type == "cpu" and has_conv and x.dim() == 4
        if self._channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        self.chunks = list(zip(x.to(device).split(batch_size), y.to(device).split(batch_size)))
        self.params: State = dict(self.model.named_parameters())
        buffers = dict(self.model.named_buffers())
        # The "state" is what a point in weight space may change: parameters and floating buffers.
        self.state: State = {**self.params, **{k: b for k, b in buffers.items() if b.is_floating_point()}}
        self.fixed: State = {k: b for k, b in buffers.items() if k not in self.state}
        rows = len(self.chunks[0][0])
        self.points_per_pass = points_per_pass or int(max(1, min(256, budget // (widest * rows))))

    def _laid_out(self, state: State) -> State:
        if not self._channels_last:
            return state
        return {n: t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t for n, t in state.items()}

    def _mean_loss(self, state: State, fixed: State | None = None) -> Tensor:
        state = {**(self.fixed if fixed is None else fixed), **state}
        if len(self.chunks) == 1:   # the common case: no running sum to build
            xb, yb = self.chunks[0]
            return self.loss_fn(functional_call(self.model, state, (xb,)), yb)
        total = 0.0
        for xb, yb in self.chunks:
            total = total + self.loss_fn(functional_call(self.model, state, (xb,)), yb) * len(xb)
        return total / self.n

    def loss(self) -> float:
        """The loss at the solution itself (the "depth")."""
        with torch.no_grad():
            return float(self._mean_loss(self._laid_out(self.state)))

    def losses(self, coords: Tensor, directions: Sequence[State], origin: State | None = None) -> Tensor:
        """Losses at ``origin + Σ_j coords[:, j] · directions[j]`` for every row of ``coords``.

        ``directions`` are dicts over (a subset of) the state names, all with the same
        keys; names they leave out keep the origin's value.  Points are built chunk by
        chunk, so a 41×41 grid of a large network never sits in memory at once.
        """
        origin = self.state if origin is None else origin
        names = list(directions[0])
        device = next(iter(origin.values())).device
        # All moved tensors side by side in one row, so one addmm builds every point of a chunk.
        basis = torch.stack([torch.cat([d[n].reshape(-1) for n in names]) for d in directions]).to(device)
        start = torch.cat([origin[n].reshape(-1) for n in names]).to(basis)
        sizes = [origin[n].numel() for n in names]
        fixed = {**self.fixed, **{n: t for n, t in origin.items() if n not in names}}
        coords = coords.to(basis).reshape(len(coords), -1)
        batched = vmap(lambda point: self._mean_loss(point, fixed))
        out, buffers = [], {}
        with torch.no_grad():
            for chunk in coords.split(self.points_per_pass):
                flat = torch.addmm(start, chunk, basis)
                points = {n: piece.view(len(chunk), *origin[n].shape)
                          for n, piece in zip(names, flat.split(sizes, dim=1))}
                if self._plan is not None:
                    out.append(self._mlp_losses({**fixed, **points}, len(chunk), buffers))
                elif len(chunk) == 1:   # one point a pass (a CNN on CPU): plain kernels, no vmap around them
                    point = self._laid_out({n: t[0] for n, t in points.items()})
                    out.append(self._mean_loss(point, fixed).reshape(1))
                else:
                    out.append(batched(points))
        return torch.cat(out).cpu()

    def _mlp_losses(self, state: State, count: int, buffers: dict) -> Tensor:
        """The mean loss at ``count`` points of a plain MLP (see ``_mlp_plan``): tensors of ``state``
        with a leading dimension of ``count`` are per point, the others shared."""
        if self.loss_fn is F.cross_entropy:
            # Logits as (points, classes, rows): the loss's softmax then runs along the rows,
            # where it vectorises, not along a handful of classes (it was a third of the time).
            def per_point(xb, yb):
                logits = _mlp_forward(self._plan, state, xb, count, classes_first=True, buffers=buffers)
                return F.cross_entropy(logits, yb.expand(count, -1), reduction="none").mean(dim=1)
        else:
            def per_point(xb, yb):
                outputs = _mlp_forward(self._plan, state, xb, count, buffers=buffers)
                return vmap(self.loss_fn, in_dims=(0, None))(outputs, yb)
        if len(self.chunks) == 1:
            return per_point(*self.chunks[0])
        total = 0.0
        for xb, yb in self.chunks:
            total = total + per_point(xb, yb) * len(xb)
        return total / self.n

    def hvp(self, vectors: Tensor) -> Tensor:
        """Hessian-vector products H·v of the loss w.r.t. the parameters, for rows v of ``vectors``.

        Double backpropagation (Pearlmutter's trick), one data chunk at a time: the
        gradient's graph is built once per chunk and differentiated again for every v.
        """
        single = vectors.dim() == 1
        vectors = vectors.reshape(-1, self.n_params).to(next(iter(self.params.values())))
        params = {n: p.detach().requires_grad_(True) for n, p in self.params.items()}
        leaves = list(params.values())
        total = torch.zeros_like(vectors)
        with torch.enable_grad():
            for xb, yb in self.chunks:
                outputs = functional_call(self.model, {**self.fixed, **self.state, **params}, (xb,))
                loss = self.loss_fn(outputs, yb) * (len(xb) / self.n)
                grads = torch.autograd.grad(loss, leaves, create_graph=True)
                live = [k for k, g in enumerate(grads) if g.requires_grad]   # constant gradients have H·v = 0
                for row, v in enumerate(vectors):
                    pieces = list(_unflat(v, params).values())
                    hv = torch.autograd.grad([grads[k] for k in live], leaves, [pieces[k] for k in live],
                                             retain_graph=row < len(vectors) - 1, materialize_grads=True)
                    total[row] += torch.cat([h.reshape(-1) for h in hv])
        return total[0] if single else total

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.params.values())


class _GlobalMean(nn.Module):
    """``AdaptiveAvgPool2d(1)`` as a mean over H and W: the same numbers, and vmap batches it
    (for the pooling op it has no batching rule and falls back on a loop over points)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.mean(dim=(-2, -1), keepdim=True)


def _swap_global_pools(model: nn.Module) -> None:
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if type(child) is nn.AdaptiveAvgPool2d and child.output_size in (1, (1, 1)):
                setattr(parent, name, _GlobalMean())


def _tanh_(h: Tensor) -> Tensor:
    """tanh in place, for a tensor already doubled: 2·σ(h) − 1 = tanh(h/2)."""
    return h.sigmoid_().mul_(2).sub_(1)


_ELEMENTWISE = {nn.ReLU: (1.0, torch.relu_), nn.Sigmoid: (1.0, torch.sigmoid_), nn.Tanh: (2.0, _tanh_)}


def _mlp_plan(model: nn.Module) -> list[tuple[str, float, Callable | None]] | None:
    """For an ``nn.Sequential`` of Linear layers, each followed by at most one Tanh/ReLU/Sigmoid:
    (Linear's name, the scale its output gets, the in-place activation or None) per layer; else None.

    The scale folds tanh's inner doubling (tanh x = 2·σ(2x) − 1) into the layer's matmul.
    """
    if type(model) is not nn.Sequential:
        return None
    plan: list[tuple[str, float, Callable | None]] = []
    for name, module in model.named_children():
        if type(module) is nn.Linear:
            plan.append((name, 1.0, None))
        elif type(module) in _ELEMENTWISE and plan and plan[-1][2] is None:
            plan[-1] = (plan[-1][0], *_ELEMENTWISE[type(module)])
        else:
            return None
    return plan or None


def _mlp_forward(plan, state: State, x: Tensor, count: int, classes_first: bool = False,
                 buffers: dict | None = None) -> Tensor:
    """Outputs (count, rows, classes) of a plain MLP at ``count`` weight points, one ``baddbmm`` per layer;
    (count, classes, rows) with ``classes_first``.

    ``buffers`` (a dict kept across the passes of one slice) holds each layer's output buffer, so a pass
    writes into memory the previous pass already touched instead of freshly mapped pages.
    """
    buffers = {} if buffers is None else buffers

    def buffer(key, shape):
        buf = buffers.get(key)
        if buf is None or buf.shape[1:] != shape[1:] or len(buf) < shape[0]:
            buf = buffers[key] = torch.empty(shape, dtype=x.dtype, device=x.device)
        return buf[:shape[0]]

    h = x
    for k, (name, scale, activation) in enumerate(plan):
        w, b = state[f"{name}.weight"], state.get(f"{name}.bias")
        if w.dim() == 2 and b is not None and b.dim() == 2:   # shared weight, per-point bias
            w = w.expand(count, *w.shape)
        if classes_first and k == len(plan) - 1:    # the last layer as W·hᵀ + b
            w = w if w.dim() == 3 else w.expand(count, *w.shape)
            h = h.expand(count, *h.shape) if h.dim() == 2 else h
            out = buffer((k, h.shape[1]), (count, w.shape[1], h.shape[1]))
            if b is None:
                h = torch.bmm(w, h.transpose(1, 2), out=out).mul_(scale)
            else:
                h = torch.baddbmm(b.unsqueeze(-1), w, h.transpose(1, 2), beta=scale, alpha=scale, out=out)
        elif w.dim() == 3:                    # per-point weights (count, out, in)
            h = h.expand(count, *h.shape) if h.dim() == 2 else h
            out = buffer((k, h.shape[1]), (count, h.shape[1], w.shape[1]))
            if b is None:
                h = torch.bmm(h, w.transpose(1, 2), out=out).mul_(scale)
            else:
                h = torch.baddbmm(b.unsqueeze(-2), h, w.transpose(1, 2), beta=scale, alpha=scale, out=out)
        else:                                 # shared weights: one matmul over all points and rows
            flat = h.reshape(-1, h.shape[-1])
            flat = (torch.addmm(b, flat, w.t(), beta=scale, alpha=scale) if b is not None
                    else torch.mm(flat, w.t()).mul_(scale))
            h = flat.view(*h.shape[:-1], w.shape[0])
        if activation is not None:
            h = activation(h)
    return h if h.dim() == 3 else h.expand(count, *h.shape)


def _widest_activation(model: nn.Module, x1: Tensor) -> int:
    """The largest output size (per input row) of any leaf module."""
    sizes = [x1.numel()]
    hooks = [m.register_forward_hook(lambda _m, _i, out: sizes.append(out.numel() if torch.is_tensor(out) else 0))
             for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model(x1)
    finally:
        for h in hooks:
            h.remove()
    return max(sizes)


def _unflat(vector: Tensor, like: State) -> State:
    out, start = {}, 0
    for name, t in like.items():
        out[name] = vector[start:start + t.numel()].view_as(t)
        start += t.numel()
    return out


# ---------------------------------------------------------------- directions and slices

def filter_normalize(direction: State, weights: State) -> State:
    """Li et al.'s filter normalisation: each filter of ``direction`` gets the norm of the weight's filter.

    A filter is a slice along dim 0 (a row of a Linear weight, an output channel of a
    Conv weight).  1-D tensors (biases, BatchNorm weight/bias) get a zero direction.
    """
    out = {}
    for name, w in weights.items():
        d = direction[name]
        if w.dim() <= 1:
            out[name] = torch.zeros_like(w)
            continue
        w_norm = w.reshape(len(w), -1).norm(dim=1)
        d_norm = d.reshape(len(d), -1).norm(dim=1)
        scale = w_norm / (d_norm + 1e-10)
        out[name] = d * scale.view(-1, *[1] * (d.dim() - 1))
    return out


def random_directions(weights: State, count: int, seed: int = 0) -> list[State]:
    """``count`` seeded Gaussian directions, each filter-normalised to ``weights``.

    The draws come from a CPU generator in parameter order, so the same seed gives the
    same directions on every device and for every network of the same shapes.
    """
    gen = torch.Generator().manual_seed(seed)
    directions = []
    for _ in range(count):
        raw = {n: torch.randn(w.shape, generator=gen, dtype=torch.float32).to(w) for n, w in weights.items()}
        directions.append(filter_normalize(raw, weights))
    return directions


def slice_1d(surface: LossSurface, direction: State, offsets: Tensor) -> Tensor:
    """Losses at θ + t·d for every offset t (a 1-D slice through the solution)."""
    return surface.losses(offsets.reshape(-1, 1), [direction])


def slices_1d(surface: LossSurface, directions: Sequence[State], offsets: Tensor) -> Tensor:
    """One 1-D slice per direction, all evaluated in one batch: shape (len(directions), len(offsets))."""
    coords = torch.block_diag(*[offsets.reshape(-1, 1)] * len(directions))   # slice k moves along d_k only
    return surface.losses(coords, directions).view(len(directions), len(offsets))


def slice_2d(surface: LossSurface, d1: State, d2: State, offsets: Tensor) -> Tensor:
    """Losses at θ + a·d1 + b·d2 on the square grid offsets × offsets; row i is a = offsets[i]."""
    a, b = torch.meshgrid(offsets, offsets, indexing="ij")
    coords = torch.stack([a.reshape(-1), b.reshape(-1)], dim=1)
    return surface.losses(coords, [d1, d2]).view(len(offsets), len(offsets))


def interpolate(model_a: nn.Module, model_b: nn.Module, x: Tensor, y: Tensor, ts: Tensor,
                loss_fn: LossFn = F.cross_entropy) -> Tensor:
    """Losses along (1 − t)·a + t·b (t = 0 is ``model_a``, t = 1 is ``model_b``).

    Parameters and floating buffers (BatchNorm running mean/var) are interpolated
    linearly, so at t = 0 and t = 1 each network is evaluated exactly as trained;
    integer buffers come from ``model_a``.
    """
    surface = LossSurface(model_a, x, y, loss_fn)
    target = {n: t.detach() for n, t in [*model_b.named_parameters(), *model_b.named_buffers()]}
    if set(target) - set(surface.fixed) != set(surface.state) or any(
            target[n].shape != t.shape for n, t in surface.state.items()):
        raise ValueError("interpolate needs two networks of the same architecture")
    direction = {n: target[n].to(t) - t for n, t in surface.state.items()}
    return surface.losses(ts.reshape(-1, 1), [direction])


# ---------------------------------------------------------------- sharpness measures

@dataclass
class Eigen:
    value: float        # the eigenvalue of largest magnitude (the top one at a minimum)
    hvps: int           # Hessian-vector products used
    converged: bool     # the relative change fell below the tolerance


@dataclass
class Estimate:
    value: float
    stderr: float       # standard error of a Monte-Carlo mean (0 when exact)


def top_eigenvalue(surface: LossSurface, max_hvps: int = 50, tol: float = 1e-4, seed: int = 0) -> Eigen:
    """Power iteration on Hessian-vector products; the Rayleigh quotient vᵀHv is the estimate.

    Stops when the estimate changes by less than ``tol`` (relative) or after
    ``max_hvps`` products.  Power iteration finds the eigenvalue of largest *magnitude*;
    at a minimum that is the top (sharpest) curvature.
    """
    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(surface.n_params, generator=gen)
    v = v / v.norm()
    value, previous = math.nan, None
    for used in range(1, max_hvps + 1):
        hv = surface.hvp(v).cpu().float()
        value = float(v @ hv)
        norm = hv.norm()
        if not math.isfinite(value) or norm == 0:
            return Eigen(value, used, False)
        v = hv / norm
        if previous is not None and abs(value - previous) <= tol * abs(value):
            return Eigen(value, used, True)
        previous = value
    return Eigen(value, max_hvps, False)


def hessian_trace(surface: LossSurface, samples: int = 32, seed: int = 0) -> Estimate:
    """Hutchinson's estimator tr(H) = E[vᵀHv] with Rademacher v (entries ±1)."""
    gen = torch.Generator().manual_seed(seed)
    vs = (torch.randint(0, 2, (samples, surface.n_params), generator=gen) * 2 - 1).float()
    quad = (vs * surface.hvp(vs).cpu().float()).sum(dim=1).double()
    stderr = float(quad.std() / math.sqrt(samples)) if samples > 1 else math.nan
    return Estimate(float(quad.mean()), stderr)


def perturbation_sharpness(surface: LossSurface, rho: float, samples: int = 16, seed: int = 0,
                           base: float | None = None) -> tuple[float, float]:
    """Mean and worst loss increase at ``samples`` random points of radius ρ around the solution.

    Each point is θ + ρ·d with d a filter-normalised random direction, so ρ is relative:
    ρ = 0.05 moves every filter by 5 % of its norm.
    """
    base = surface.loss() if base is None else base
    directions = random_directions(surface.params, samples, seed)
    increase = surface.losses(rho * torch.eye(samples), directions) - base
    return float(increase.mean()), float(increase.max())


def _first_crossing(xs: np.ndarray, ys: np.ndarray, threshold: float) -> float:
    """Walking outwards from xs[0]: |x| where ys first reaches ``threshold`` (interpolated), else inf."""
    for i in range(1, len(xs)):
        if ys[i] >= threshold:
            if ys[i - 1] >= threshold:
                return abs(xs[i - 1])
            if not math.isfinite(ys[i]):
                return abs(xs[i])
            frac = (threshold - ys[i - 1]) / (ys[i] - ys[i - 1])
            return abs(xs[i - 1] + frac * (xs[i] - xs[i - 1]))
    return math.inf


def crossing_radius(offsets: np.ndarray, losses: np.ndarray, threshold: float) -> tuple[float, float]:
    """Distance from offset 0 at which a 1-D slice first reaches ``threshold``: (leftwards, rightwards).

    Linear interpolation between grid points; ``inf`` where the slice stays below the
    threshold; non-finite losses count as above it.
    """
    offsets = np.asarray(offsets, float)
    losses = np.nan_to_num(np.asarray(losses, float), nan=np.inf)
    centre = int(np.argmin(np.abs(offsets)))
    return (_first_crossing(offsets[centre::-1], losses[centre::-1], threshold),
            _first_crossing(offsets[centre:], losses[centre:], threshold))


@dataclass
class Width:
    radius: float       # mean over directions and both sides; sides that never rose count as the span
    censored: int       # sides on which the loss never rose by the set amount within the span
    sides: int


def flat_width(offsets: np.ndarray, curves: np.ndarray, base: float, rise: float) -> Width:
    """The "width" of a minimum: how far along the slices the loss rises by ``rise``."""
    span = float(np.max(np.abs(offsets)))
    radii = [r for curve in np.atleast_2d(curves) for r in crossing_radius(offsets, curve, base + rise)]
    censored = sum(not math.isfinite(r) for r in radii)
    return Width(float(np.mean([min(r, span) for r in radii])), censored, len(radii))


# ---------------------------------------------------------------- everything for one trained network

@dataclass(frozen=True)
class SharpnessSettings:
    seed: int = 0                  # seeds every random direction and probe vector (the same for all methods)
    span: float = 1.0              # slices reach ±span (filter-normalised units)
    steps_1d: int = 41             # points along each 1-D slice
    steps_2d: int = 21             # points per axis of the 2-D slice
    n_directions: int = 2          # 1-D slices for the width; the first two span the 2-D plane
    rise: float = 0.1              # width = radius at which the loss has risen by this much
    rho: float = 0.05              # radius of the random perturbations (relative, like the offsets)
    n_perturbations: int = 16
    hutchinson_samples: int = 16
    max_hvps: int = 50             # power-iteration budget


@dataclass
class Measures:
    depth: float                   # loss at the solution
    width: Width
    top_eigenvalue: Eigen
    trace: Estimate
    perturb_mean: float
    perturb_worst: float
    offsets_1d: np.ndarray
    slices_1d: np.ndarray          # (n_directions, steps_1d)
    offsets_2d: np.ndarray
    slice_2d: np.ndarray | None    # (steps_2d, steps_2d), or None when not asked for

    def row(self) -> dict:
        """The scalar measures as one table row (names in MEASURE_COLUMNS)."""
        return {"depth": self.depth, "width": self.width.radius, "width_censored": self.width.censored,
                "lambda_max": self.top_eigenvalue.value, "lambda_hvps": self.top_eigenvalue.hvps,
                "trace": self.trace.value, "trace_stderr": self.trace.stderr,
                "perturb_mean": self.perturb_mean, "perturb_worst": self.perturb_worst}


MEASURE_COLUMNS = {   # column -> (short label, plain-words meaning)
    "depth": ("Depth (loss)", "the training loss at the trained weights; lower = deeper"),
    "width": ("Width (radius to +Δ)", "how far along the slices the loss rises by Δ; larger = flatter"),
    "lambda_max": ("λ_max (top Hessian eigenvalue)", "curvature along the sharpest direction; smaller = flatter"),
    "trace": ("Hessian trace", "total curvature over all directions; smaller = flatter"),
    "perturb_mean": ("Mean rise at ρ", "average loss increase at random points of radius ρ"),
    "perturb_worst": ("Worst rise at ρ", "largest loss increase among those random points"),
}


def measure(surface: LossSurface, settings: SharpnessSettings = SharpnessSettings(), with_2d: bool = True) -> Measures:
    """Depth, width, λ_max, trace, perturbation sharpness, and the slices to plot."""
    s = settings
    depth = surface.loss()
    directions = random_directions(surface.params, max(s.n_directions, 2 if with_2d else 1), s.seed)
    offsets_1d = torch.linspace(-s.span, s.span, s.steps_1d)
    slices = slices_1d(surface, directions[:s.n_directions], offsets_1d).numpy()
    offsets_2d = torch.linspace(-s.span, s.span, s.steps_2d)
    grid = slice_2d(surface, directions[0], directions[1], offsets_2d).numpy() if with_2d else None
    mean_up, worst_up = perturbation_sharpness(surface, s.rho, s.n_perturbations, s.seed + 1, base=depth)
    return Measures(
        depth=depth,
        width=flat_width(offsets_1d.numpy(), slices, depth, s.rise),
        top_eigenvalue=top_eigenvalue(surface, s.max_hvps, seed=s.seed),
        trace=hessian_trace(surface, s.hutchinson_samples, s.seed),
        perturb_mean=mean_up, perturb_worst=worst_up,
        offsets_1d=offsets_1d.numpy(), slices_1d=slices, offsets_2d=offsets_2d.numpy(), slice_2d=grid,
    )


# ---------------------------------------------------------------- several trained networks side by side

@dataclass
class Comparison:
    rows: pd.DataFrame               # one row per (method, seed): method, seed and the measures
    curves: pd.DataFrame             # the 1-D slices: method, seed, direction, offset, loss
    grids: dict[str, np.ndarray]     # method -> 2-D slice around its first seed's solution
    offsets_2d: np.ndarray
    skipped: list[tuple[str, int]]   # (method, seed) left out because their weights are not finite


def compare_methods(models: dict[tuple[str, int], nn.Module], x: Tensor, y: Tensor,
                    settings: SharpnessSettings = SharpnessSettings(), loss_fn: LossFn = F.cross_entropy,
                    progress: Callable[[int, int, str], None] | None = None) -> Comparison:
    """:func:`measure` every trained network; the 2-D slice only for each method's first seed.

    All networks are probed along the same seeded directions and on the same data.
    ``progress(done, total, label)`` is called before each network.
    """
    rows, curves, grids, skipped = [], [], {}, []
    offsets_2d = np.linspace(-settings.span, settings.span, settings.steps_2d)
    for i, ((method, seed), model) in enumerate(models.items()):
        if progress:
            progress(i, len(models), f"{method} · seed {seed}")
        if not all(torch.isfinite(p).all() for p in model.parameters()):
            skipped.append((method, seed))
            continue
        m = measure(LossSurface(model, x, y, loss_fn), settings, with_2d=method not in grids)
        rows.append({"method": method, "seed": seed, **m.row()})
        for k, curve in enumerate(m.slices_1d):
            curves.append(pd.DataFrame({"method": method, "seed": seed, "direction": k,
                                        "offset": m.offsets_1d, "loss": curve}))
        if m.slice_2d is not None:
            grids[method] = m.slice_2d
    curve_frame = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(
        columns=["method", "seed", "direction", "offset", "loss"])
    return Comparison(pd.DataFrame(rows), curve_frame, grids, offsets_2d, skipped)


def interpolation_frame(models: dict[tuple[str, int], nn.Module], start: str, end: str, x: Tensor, y: Tensor,
                        ts: Tensor, loss_fn: LossFn = F.cross_entropy) -> pd.DataFrame:
    """Losses from ``start``'s to ``end``'s solution of every seed both have (columns seed, t, loss).

    The two runs of one seed started from the same initial weights, so the straight
    line between them is a meaningful path; non-finite networks are left out.
    """
    frames = []
    for (method, seed), a in models.items():
        b = models.get((end, seed))
        if method != start or b is None or not all(torch.isfinite(p).all() for m in (a, b) for p in m.parameters()):
            continue
        losses = interpolate(a, b, x, y, ts, loss_fn)
        frames.append(pd.DataFrame({"seed": seed, "t": ts.numpy(), "loss": losses.numpy()}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["seed", "t", "loss"])


def summary_table(rows: pd.DataFrame, names: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per method: each measure as "mean ± std" over seeds (3 significant digits).

    A width some of whose slices never rose by Δ within the span is a lower bound, shown "≥".
    """
    names = names or {}
    table = []
    for method, group in rows.groupby("method", sort=False):
        entry = {"Method": names.get(method, method), "Seeds": len(group)}
        for column, (label, _) in MEASURE_COLUMNS.items():
            mean, std = mean_std(group[column])
            prefix = "≥ " if column == "width" and group["width_censored"].sum() > 0 else ""
            entry[label] = f"{prefix}{mean:.3g} ± {std:.2g}" if math.isfinite(mean) else "n/a"
        table.append(entry)
    return pd.DataFrame(table)


def flatness_summary(rows: pd.DataFrame, baseline: str = "sgd", names: dict[str, str] | None = None) -> list[str]:
    """Plain-words comparisons of each other method with ``baseline``, from the measured numbers.

    ``rows`` has one row per (method, seed) with the MEASURE_COLUMNS; ``names`` maps
    method keys to display names.  A difference smaller than the seed-to-seed spread
    (the larger of the two standard deviations) is called "within seed spread", so
    noise is not reported as a finding — and a method that is not flatter is said to be.
    """
    names = names or {}
    groups = rows.groupby("method")
    means, stds = groups.mean(numeric_only=True), groups.std(numeric_only=True).fillna(0.0)
    if baseline not in means.index:
        return []
    # (column, label, word when the method's value is lower, word when higher)
    measures = (("lambda_max", "λ_max", "flatter", "sharper"), ("trace", "trace", "flatter", "sharper"),
                ("width", "width", "sharper", "flatter"), ("depth", "loss", "deeper", "shallower"))
    lines = []
    for method in [m for m in dict.fromkeys(rows["method"]) if m != baseline]:
        parts, words = [], []
        for column, label, lower, higher in measures:
            m, b = means.loc[method, column], means.loc[baseline, column]
            spread = max(stds.loc[method, column], stds.loc[baseline, column])
            word = "within seed spread" if abs(m - b) <= spread else lower if m < b else higher
            parts.append(f"{label} {m:.3g} vs {b:.3g} ({word})")
            words.append(word)
        flatter, sharper = words[:3].count("flatter"), words[:3].count("sharper")
        verdict = ("flatter on all three measures" if flatter == 3 else
                   f"not flatter on any measure{f' (sharper on {sharper})' if sharper else ''}" if flatter == 0 else
                   f"flatter on {flatter} of 3 measures{f', sharper on {sharper}' if sharper else ''}")
        lines.append(f"**{names.get(method, method)}** vs {names.get(baseline, baseline)}: {verdict} — "
                     + ", ".join(parts) + ".")
    return lines
