"""2D loss landscapes: the test functions of the optimizer playground.

Each landscape is one elementwise formula ``fn(x, y, xp)``, written once for any array
namespace ``xp`` (``torch`` or ``numpy``), so there is a single definition to trust:

* :meth:`Landscape.loss` evaluates it in torch on a batch of points ``(..., 2)``
  (differentiable); :meth:`Landscape.grad` takes the gradient by autograd;
* :meth:`Landscape.grad_numpy` gives the same gradient to the vectorised simulator in
  :mod:`sema_demo.trajectories` by the *complex-step derivative*: for a real-analytic
  f, Im f(x + ih) / h = f'(x) + O(h²) with no cancellation, so h = 1e-20 yields the
  derivative to machine precision at the price of one complex evaluation.  Every
  formula here is analytic (polynomials, exp, cos), and the tests compare both
  gradients with autograd and with finite differences.

Each landscape states its domain, its known minima (refined by Newton's method to
machine precision, with their sharpness = the largest Hessian eigenvalue), a default
start and a learning rate and gradient noise that suit it.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["Minimum", "Landscape", "LANDSCAPES", "get_landscape"]

COMPLEX_STEP = 1e-20


@dataclass(frozen=True)
class Minimum:
    """A known local minimum: where it is, its loss, how sharp it is, and its basin radius."""

    name: str                   # "sharp", "flat", "global", "(1, -2)"
    point: tuple[float, float]
    loss: float
    sharpness: float            # largest Hessian eigenvalue: large = sharp, small = flat
    radius: float               # an end point closer than this counts as "in this minimum"
    labelled: bool = True       # annotate it on plots (Rastrigin's 120 local minima are not)


@dataclass(frozen=True)
class Landscape:
    """A 2D loss surface with everything the playground needs to show it."""

    key: str
    name: str
    formula: str                                  # LaTeX, shown on the page
    description: str                              # one or two plain sentences
    fn: Callable                                  # fn(x, y, xp) -> loss, elementwise
    domain: tuple[float, float, float, float]     # (xmin, xmax, ymin, ymax)
    minima: tuple[Minimum, ...]
    start: tuple[float, float]                    # default start point
    lr: float                                     # a learning rate that trains well here
    noise: float                                  # a gradient noise σ that shows jitter
    log_scale: bool = False                       # losses span decades: plot them on a log scale

    def loss(self, points: torch.Tensor) -> torch.Tensor:
        """Loss at a batch of points ``(..., 2)`` → ``(...)``; differentiable."""
        return self.fn(points[..., 0], points[..., 1], torch)

    def grad(self, points: torch.Tensor) -> torch.Tensor:
        """Gradient at a batch of points ``(..., 2)`` → ``(..., 2)``, by autograd."""
        with torch.enable_grad():
            p = points.detach().clone().requires_grad_(True)
            (g,) = torch.autograd.grad(self.loss(p).sum(), p)
        return g

    def hessian(self, point) -> torch.Tensor:
        """2×2 Hessian at one point, by autograd (float64)."""
        return _hessian(self.fn, point)

    def loss_numpy(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self.fn(x, y, np)

    def grad_numpy(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Gradient ``(2, *x.shape)`` at real points, by the complex-step derivative."""
        h = COMPLEX_STEP
        xs = np.stack([x + 1j * h, x.astype(complex)])
        ys = np.stack([y.astype(complex), y + 1j * h])
        return self.fn(xs, ys, np).imag * (1.0 / h)

    def grid(self, resolution: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(xs, ys, Z) with Z[i, j] the loss at (xs[j], ys[i]): the picture behind the paths."""
        xmin, xmax, ymin, ymax = self.domain
        xs, ys = np.linspace(xmin, xmax, resolution), np.linspace(ymin, ymax, resolution)
        gx, gy = np.meshgrid(xs, ys)
        return xs, ys, self.loss_numpy(gx, gy)

    def clamp(self, point) -> tuple[tuple[float, float], bool]:
        """The point moved into the domain, and whether it had to move."""
        xmin, xmax, ymin, ymax = self.domain
        x, y = float(point[0]), float(point[1])
        if not (math.isfinite(x) and math.isfinite(y)):
            return self.start, True
        clamped = (min(max(x, xmin), xmax), min(max(y, ymin), ymax))
        return clamped, clamped != (x, y)

    def nearest_minimum(self, points: np.ndarray) -> np.ndarray:
        """Index into ``minima`` of the minimum each point ``(..., 2)`` lies in; -1 for none."""
        centres = np.array([m.point for m in self.minima])
        radii = np.array([m.radius for m in self.minima])
        dist = np.linalg.norm(points[..., None, :] - centres, axis=-1)
        nearest = dist.argmin(axis=-1)
        inside = np.take_along_axis(dist, nearest[..., None], axis=-1)[..., 0] <= radii[nearest]
        return np.where(inside, nearest, -1)

    def minimum_names(self, index: np.ndarray) -> np.ndarray:
        names = np.array([m.name for m in self.minima] + ["no minimum"], dtype=object)
        return names[np.asarray(index)]

    @property
    def span(self) -> float:
        xmin, xmax, ymin, ymax = self.domain
        return max(xmax - xmin, ymax - ymin)


def _hessian(fn: Callable, point) -> torch.Tensor:
    p = torch.as_tensor(point, dtype=torch.float64)
    return torch.autograd.functional.hessian(lambda q: fn(q[0], q[1], torch), p)


def _gradient(fn: Callable, point) -> torch.Tensor:
    p = torch.as_tensor(point, dtype=torch.float64)
    return torch.autograd.functional.jacobian(lambda q: fn(q[0], q[1], torch), p)


def _minimum(fn: Callable, name: str, guess, radius: float, labelled: bool = True) -> Minimum:
    """A nominal minimum refined by Newton's method to machine precision, with its sharpness."""
    p = torch.tensor(guess, dtype=torch.float64)
    for _ in range(30):
        step = torch.linalg.solve(_hessian(fn, p), _gradient(fn, p))
        p = p - step
        if step.abs().max() < 1e-15:
            break
    point = (float(p[0]), float(p[1]))
    sharpness = float(torch.linalg.eigvalsh(_hessian(fn, p)).max())
    return Minimum(name, point, float(fn(p[0], p[1], torch)), sharpness, radius, labelled)


# --- Two basins: a deep but narrow minimum next to a slightly shallower, wide one -------------
# Two Gaussian wells on a gentle bowl.  The sharp well is a little deeper but 3× narrower, so
# its curvature is ~10× larger: a sharp minimum with the lower loss next to a wide, flat one.
SHARP_CENTRE, SHARP_DEPTH, SHARP_WIDTH = (-1.2, 1.0), 1.0, 0.4
FLAT_CENTRE, FLAT_DEPTH, FLAT_WIDTH = (1.0, -0.8), 0.85, 1.2


def _two_basins(x, y, xp):
    sharp = SHARP_DEPTH * xp.exp(-((x - SHARP_CENTRE[0]) ** 2 + (y - SHARP_CENTRE[1]) ** 2)
                                 / (2 * SHARP_WIDTH ** 2))
    flat = FLAT_DEPTH * xp.exp(-((x - FLAT_CENTRE[0]) ** 2 + (y - FLAT_CENTRE[1]) ** 2)
                               / (2 * FLAT_WIDTH ** 2))
    return 1.0 - sharp - flat + 0.03 * (x ** 2 + y ** 2)


# --- An ill-conditioned quadratic: a long valley (condition number 25) ---------------------
def _valley(x, y, xp):
    return 0.5 * (x ** 2 + 25.0 * y ** 2)


def _rosenbrock(x, y, xp):
    return (1 - x) ** 2 + 100.0 * (y - x ** 2) ** 2


def _himmelblau(x, y, xp):
    return (x ** 2 + y - 11) ** 2 + (x + y ** 2 - 7) ** 2


def _rastrigin(x, y, xp):
    return 20.0 + x ** 2 - 10.0 * xp.cos(2 * math.pi * x) + y ** 2 - 10.0 * xp.cos(2 * math.pi * y)


def _rastrigin_minima() -> tuple[Minimum, ...]:
    """The lattice of local minima: the global one at 0 and one near every integer pair.

    Rastrigin is separable, so each coordinate's minima solve the 1D equation
    2x + 20π·sin(2πx) = 0 near an integer k (Newton), and the 2D minima are all pairs.
    """
    ks = np.arange(-5, 6, dtype=float)
    x = ks.copy()
    for _ in range(30):
        x = x - (2 * x + 20 * math.pi * np.sin(2 * math.pi * x)) / (2 + 40 * math.pi ** 2 * np.cos(2 * math.pi * x))
    one_d = x ** 2 - 10 * np.cos(2 * math.pi * x) + 10
    curvature = 2 + 40 * math.pi ** 2 * np.cos(2 * math.pi * x)
    minima = []
    for i, j in sorted(((i, j) for i in range(len(ks)) for j in range(len(ks))),
                       key=lambda ij: ks[ij[0]] ** 2 + ks[ij[1]] ** 2):
        is_global = ks[i] == 0 and ks[j] == 0
        minima.append(Minimum("global" if is_global else f"({ks[i]:.0f}, {ks[j]:.0f})",
                              (float(x[i]), float(x[j])), float(one_d[i] + one_d[j]),
                              float(max(curvature[i], curvature[j])), 0.5, labelled=is_global))
    return tuple(minima)


LANDSCAPES: dict[str, Landscape] = {
    "two_basins": Landscape(
        key="two_basins", name="Two basins: sharp vs flat",
        formula=(r"1 - e^{-\|p - c_s\|^2 / 2 \cdot 0.4^2} - 0.85\, e^{-\|p - c_f\|^2 / 2 \cdot 1.2^2}"
                 r" + 0.03\,\|p\|^2"),
        description="A deep but narrow (sharp) minimum at the upper left and a slightly shallower, "
                    "wide (flat) minimum at the lower right.",
        fn=_two_basins, domain=(-3.0, 3.0, -3.0, 3.0),
        minima=(_minimum(_two_basins, "sharp", SHARP_CENTRE, 0.7),
                _minimum(_two_basins, "flat", FLAT_CENTRE, 1.5)),
        start=(-2.4, 2.6), lr=0.02, noise=1.2,
    ),
    "valley": Landscape(
        key="valley", name="Ill-conditioned valley",
        formula=r"\tfrac12 \left(x^2 + 25\, y^2\right)",
        description="A quadratic 25× steeper across than along: the optimizer zig-zags across the "
                    "valley while crawling along it, where momentum and averaging matter.",
        fn=_valley, domain=(-4.0, 4.0, -4.0, 4.0),
        minima=(_minimum(_valley, "global", (0.0, 0.0), 0.5),),
        start=(-3.6, 2.5), lr=0.01, noise=3.0, log_scale=True,
    ),
    "rosenbrock": Landscape(
        key="rosenbrock", name="Rosenbrock banana",
        formula=r"(1 - x)^2 + 100\,(y - x^2)^2",
        description="A curved, flat-bottomed banana valley: easy to fall into, slow to follow to "
                    "the minimum at (1, 1).",
        fn=_rosenbrock, domain=(-2.0, 2.0, -1.0, 3.0),
        minima=(_minimum(_rosenbrock, "global", (1.0, 1.0), 0.3),),
        start=(-1.5, 2.5), lr=1e-3, noise=5.0, log_scale=True,
    ),
    "himmelblau": Landscape(
        key="himmelblau", name="Himmelblau (four minima)",
        formula=r"(x^2 + y - 11)^2 + (x + y^2 - 7)^2",
        description="Four equally deep minima: which one a run ends in depends on the start and "
                    "the noise.",
        fn=_himmelblau, domain=(-5.0, 5.0, -5.0, 5.0),
        minima=tuple(_minimum(_himmelblau, name, guess, 1.0) for name, guess in (
            ("(3, 2)", (3.0, 2.0)), ("(-2.81, 3.13)", (-2.805118, 3.131312)),
            ("(-3.78, -3.28)", (-3.779310, -3.283186)), ("(3.58, -1.85)", (3.584428, -1.848126)))),
        start=(-0.3, -0.8), lr=2e-3, noise=20.0, log_scale=True,
    ),
    "rastrigin": Landscape(
        key="rastrigin", name="Rastrigin (many local minima)",
        formula=r"20 + x^2 - 10\cos 2\pi x + y^2 - 10 \cos 2\pi y",
        description="An egg-crate of local minima on a bowl: only noise carries a run from one "
                    "cup to the next, down towards the global minimum at (0, 0).",
        fn=_rastrigin, domain=(-5.12, 5.12, -5.12, 5.12),
        minima=_rastrigin_minima(),
        start=(3.6, -2.6), lr=2e-3, noise=25.0,
    ),
}


def get_landscape(key: str) -> Landscape:
    try:
        return LANDSCAPES[key]
    except KeyError:
        raise ValueError(f"landscape must be one of {tuple(LANDSCAPES)}, got {key!r}") from None
