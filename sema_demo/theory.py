"""The noisy quadratic model (NQM): SGD, EMA and SEMA computed exactly and simulated.

The loss is L(θ) = ½ Σᵢ hᵢ θᵢ², one independent coordinate per curvature hᵢ
(hᵢ = i^(−p), p chosen so that h_max / h_min is the condition number; the default
100 dimensions with condition number 100 give hᵢ = 1/i).  A minibatch gradient is
hᵢθᵢ + ξᵢ with ξᵢ ~ N(0, cᵢ), cᵢ = hᵢ / batch size (Zhang et al., 2019,
"Which algorithmic choices matter at which batch sizes?").

Per coordinate the state x = (θ, v, φ) moves by one linear step plus noise
(heavy-ball momentum written as torch.optim.SGD does it):

    v ← β·v + h·θ + ξ
    θ ← θ − η·v
    φ ← α·φ + (1 − α)·θ          (α is the EMA decay, as everywhere in sema_demo)

that is x ← A·x + b·ξ with

        ⎡ 1 − ηh        −ηβ        0 ⎤          ⎡ −η          ⎤
    A = ⎢ h              β          0 ⎥,    b =  ⎢ 1           ⎥.
        ⎣ (1−α)(1−ηh)  −(1−α)ηβ    α ⎦          ⎣ −(1 − α)·η  ⎦

SEMA's switch θ ← φ after every K-th step is linear too, x ← S·x with S the
identity whose θ row is replaced by the φ row.  The velocity v is *kept*, as the
library's SwitchEMA keeps the optimizer state.  The mean m and covariance C of x
therefore follow exact recurrences,

    m ← A·m,    C ← A·C·Aᵀ + c·b·bᵀ,    and at a switch  m ← S·m,  C ← S·C·Sᵀ,

and the expected loss of θ (or φ) is ½ Σᵢ hᵢ (mᵢ² + Cᵢ): a *bias* part from the mean
and a *variance* part from the noise.  :func:`exact_curves` evaluates them for every
step at once (powers of A by doubling, no Python loop over steps);
:func:`monte_carlo` simulates the same model with sampled noise as an independent
check and to show the spread of single runs.

Series names: "sgd" is θ of plain SGD (EMA's θ is the same path), "ema" is EMA's φ,
"sema" is SEMA's φ (the weights SEMA evaluates) and "sema_theta" is SEMA's θ.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np
import pandas as pd

SERIES = ("sgd", "ema", "sema", "sema_theta")
SERIES_NAMES = {"sgd": "SGD θ", "ema": "EMA φ", "sema": "SEMA φ", "sema_theta": "SEMA θ"}
DIVERGENCE_FACTOR = 1e6   # a run counts as diverged once its loss exceeds this × its start
PLAIN_CHUNK = 128         # steps per period for runs without switches (see exact_curves)
BLOCK = 2_000_000         # array elements per block of work: bounds memory for any size

# Learning-rate schedules: "constant" η; "step" η, then η/10 from half the run and η/100 from
# three quarters (the usual CIFAR recipe); "cosine" η·½(1 + cos(π·t/steps)), from η down to ≈ 0.
SCHEDULES = ("constant", "step", "cosine")
STEP_MILESTONES = (0.5, 0.75)

# θ ← φ, v kept, φ kept: the switch as a matrix acting on (θ, v, φ).
SWITCH = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
_THETA, _PHI = 0, 2       # so x[::2] is (θ, φ)


@dataclass(frozen=True)
class NQM:
    """One noisy quadratic problem and one choice of optimizer and averaging settings."""

    dim: int = 100                 # number of coordinates (curvatures)
    condition: float = 100.0       # h_max / h_min; h_max = 1
    batch_size: float = 16.0       # gradient noise variance cᵢ = hᵢ / batch size (inf: no noise)
    lr: float = 0.5                # η, the learning rate
    beta: float = 0.9              # heavy-ball momentum β of the optimizer (not the EMA's)
    alpha: float = 0.95            # α, the EMA decay: φ ← α·φ + (1 − α)·θ
    switch_every: int = 10         # K: SEMA switches θ ← φ after every K-th step
    steps: int = 1000              # length of the run
    start: float = 1.0             # θ₀ in every coordinate (v₀ = 0, φ₀ = θ₀)
    schedule: str = "constant"     # learning-rate schedule over the run: one of SCHEDULES

    def __post_init__(self):
        if self.schedule not in SCHEDULES:
            raise ValueError(f"the schedule must be one of {', '.join(SCHEDULES)}")
        if self.dim < 1 or self.steps < 1 or self.switch_every < 1:
            raise ValueError("dim, steps and switch_every must be at least 1")
        if not self.condition >= 1:
            raise ValueError("the condition number must be at least 1")
        if not self.batch_size > 0:
            raise ValueError("the batch size must be positive")
        if not 0 <= self.alpha < 1 or not 0 <= self.beta < 1:
            raise ValueError("α and β must lie in [0, 1)")
        if not self.lr >= 0:
            raise ValueError("the learning rate must be non-negative")

    @property
    def curvatures(self) -> np.ndarray:
        """hᵢ = i^(−p) with p = log(condition) / log(dim): from 1 down to 1/condition."""
        i = np.arange(1, self.dim + 1, dtype=float)
        power = math.log(self.condition) / math.log(self.dim) if self.dim > 1 else 0.0
        return i ** -power

    @property
    def noise(self) -> np.ndarray:
        """cᵢ, the variance of the minibatch gradient noise in each coordinate."""
        return self.curvatures / self.batch_size

    def learning_rates(self) -> np.ndarray:
        """η_t of steps 1 … steps (η at the start; see SCHEDULES)."""
        t = np.arange(self.steps) / self.steps                    # fraction of the run done before the step
        if self.schedule == "step":
            return self.lr * 0.1 ** ((t >= STEP_MILESTONES[0]).astype(float) + (t >= STEP_MILESTONES[1]))
        if self.schedule == "cosine":
            return self.lr * 0.5 * (1 + np.cos(np.pi * t))
        return np.full(self.steps, float(self.lr))

    @property
    def max_stable_lr(self) -> float:
        """Heavy ball is stable exactly when 0 < η·h < 2(1 + β) for every curvature."""
        return 2 * (1 + self.beta) / self.curvatures.max()

    @property
    def stable(self) -> bool:
        return self.lr < self.max_stable_lr

    @property
    def start_loss(self) -> float:
        return 0.5 * float(self.curvatures.sum()) * self.start ** 2


def step_matrices(cfg: NQM, lr: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A (dim, 3, 3) and b (dim, 3) of the one-step map x ← A·x + b·ξ, x = (θ, v, φ) (at rate `lr`, default η)."""
    h, eta, beta, alpha = cfg.curvatures, cfg.lr if lr is None else lr, cfg.beta, cfg.alpha
    A = np.zeros((cfg.dim, 3, 3))
    A[:, 0, 0], A[:, 0, 1] = 1 - eta * h, -eta * beta
    A[:, 1, 0], A[:, 1, 1] = h, beta
    A[:, 2] = (1 - alpha) * A[:, 0]
    A[:, 2, 2] = alpha
    b = np.tile([-eta, 1.0, -(1 - alpha) * eta], (cfg.dim, 1))
    return A, b


# ---------------------------------------------------------------------------- exact

@dataclass
class Curves:
    """Expected loss per step (index = step, 0 … steps), split into bias and variance."""

    bias: dict[str, np.ndarray]          # series -> ½ Σ h·mean²
    variance: dict[str, np.ndarray]      # series -> ½ Σ h·variance
    diverged: dict[str, int] = field(default_factory=dict)   # series -> step its loss blew up

    @property
    def steps(self) -> np.ndarray:
        return np.arange(len(self.bias["sgd"]))

    def total(self, series: str) -> np.ndarray:
        return self.bias[series] + self.variance[series]


def _left_powers(M: np.ndarray, X0: np.ndarray, count: int) -> np.ndarray:
    """Mʲ·X0 for j < count, as an array (D, 3, count, w); M is (D, 3, 3), X0 is (D, 3, w).

    Doubling: the second half is Mⁿ times the first half, so 1,000 steps take 10
    batched matrix products instead of 1,000.
    """
    D, n3, w = X0.shape
    out = np.empty((D, n3, count, w))
    out[:, :, 0] = X0
    n, power = 1, M
    while n < count:
        m = min(n, count - n)
        out[:, :, n:n + m] = (power @ out[:, :, :m].reshape(D, n3, m * w)).reshape(D, n3, m, w)
        power, n = power @ power, n + m
    return out


def _transpose(M: np.ndarray) -> np.ndarray:
    return np.swapaxes(M, -1, -2)


def _kron(P: np.ndarray) -> np.ndarray:
    """P⊗P per coordinate: vec(P·C·Pᵀ) = (P⊗P)·vec(C), (D, 9, 9)."""
    return (P[:, :, None, :, None] * P[:, None, :, None, :]).reshape(len(P), 9, 9)


def _outer(x: np.ndarray) -> np.ndarray:
    """x·xᵀ for x (D, 3, N), flattened to (D, 9, N)."""
    return (x[:, :, None] * x[:, None, :]).reshape(len(x), 9, -1)


def _accumulated_noise(A: np.ndarray, W: np.ndarray, K: int) -> tuple[np.ndarray, np.ndarray]:
    """Σ_{j<K} Aʲ·W·Aʲᵀ (the covariance K noisy steps add) and A^K, by binary doubling."""
    total, shift = np.zeros_like(W), np.broadcast_to(np.eye(3), A.shape).copy()
    block_sum, block_power = W, A          # Σ_{j<2ᵏ} Aʲ·W·Aʲᵀ and A^(2ᵏ)
    while K:
        if K & 1:
            total = total + shift @ block_sum @ _transpose(shift)
            shift = shift @ block_power
        block_sum = block_sum + block_power @ block_sum @ _transpose(block_power)
        block_power, K = block_power @ block_power, K >> 1
    return total, shift


def _period_starts(Q: np.ndarray, noise: np.ndarray, m0: np.ndarray, periods: int):
    """Mean (D, 3, N) and flattened covariance (D, 9, N) at the first N period starts:
    m ← Q·m, C ← Q·C·Qᵀ + noise, C₀ = 0.  Doubling again: C_{n+i} = Qⁿ·Cᵢ·Qⁿᵀ + Cₙ."""
    means = _left_powers(Q, m0[..., None], periods)[..., 0]
    covs = np.zeros((len(Q), 9, periods))
    n, power = 1, Q
    while n < periods:
        m = min(n, periods - n)
        cov_n = _kron(Q) @ covs[:, :, n - 1:n] + noise.reshape(-1, 9, 1)
        covs[:, :, n:n + m] = _kron(power) @ covs[:, :, :m] + cov_n
        power, n = power @ power, n + m
    return means, covs


def _period_start_blocks(Q: np.ndarray, noise: np.ndarray, m0: np.ndarray, periods: int, size: int):
    """The period-start moments in blocks of `size` periods: (first period, means, covs).

    Block b is the first block moved on by b·size periods: m ↦ Qᴮ·m, C ↦ Qᴮ·C·Qᴮᵀ + C_B,
    so memory stays bounded however many periods there are.
    """
    means, covs = _period_starts(Q, noise, m0, min(size, periods))
    B = means.shape[-1]
    step = np.linalg.matrix_power(Q, B)
    cov_step = _kron(Q) @ covs[:, :, -1:] + noise.reshape(-1, 9, 1)        # C_B
    shift, cov_shift = np.broadcast_to(np.eye(3), Q.shape), np.zeros_like(cov_step)
    for first in range(0, periods, B):
        count = min(B, periods - first)
        yield first, shift @ means[:, :, :count], _kron(shift) @ covs[:, :, :count] + cov_shift
        shift, cov_shift = step @ shift, _kron(step) @ cov_shift + cov_step


def _quadratic_forms(rows: np.ndarray, mats: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Σ_d w_d · r·M·rᵀ for the θ and φ rows r of every step j and every matrix n: (N, K, 2).

    rows (D, 3, K, 2) hold the rows as columns; mats (D, 9, N) are flattened 3×3 matrices.
    One BLAS product over (coordinate, entry) pairs.
    """
    D, _, K, _ = rows.shape
    outer = (rows[:, :, None] * rows[:, None, :]) * weights[:, None, None, None, None]
    out = mats.reshape(D * 9, -1).T @ outer.reshape(D * 9, K * 2)
    return np.maximum(out, 0.0).reshape(-1, K, 2)   # squares and variances: clip round-off below zero


def _period_outputs(cfg: NQM, A: np.ndarray, b: np.ndarray, K: int, switch: bool, starts, periods: int):
    """Bias and variance (periods, K, 2) of θ and φ at steps 1 … K of every period.

    `starts()` yields blocks (first period, means, covs) of the moments at period starts.
    Inside a period, step j has mean Aʲ·mₙ and covariance Aʲ·Cₙ·Aʲᵀ + Σ_{i<j} c·Aⁱb·(Aⁱb)ᵀ,
    of which only the θ and φ rows Rⱼ of Aʲ are needed; they are made in blocks of j.
    """
    D, half_h, c = cfg.dim, 0.5 * cfg.curvatures, cfg.noise
    bias, variance = np.empty((periods, K, 2)), np.empty((periods, K, 2))
    rows_at = np.broadcast_to(np.eye(3)[:, ::2], (D, 3, 2))                # R₀, θ and φ rows as columns
    noise_so_far = np.zeros((D, 2))
    size = max(1, BLOCK // (18 * D))
    for j0 in range(0, K, size):
        n = min(size, K - j0)
        rows = _left_powers(_transpose(A), rows_at, n + 1)                  # R_{j0} … R_{j0+n}
        gains = (rows[:, :, :n] * b[:, :, None, None]).sum(axis=1)          # Rᵢ·b: (D, n, 2)
        noise_in = noise_so_far[:, None] + np.cumsum(c[:, None, None] * gains ** 2, axis=1)
        rows_at, noise_so_far = rows[:, :, -1], noise_in[:, -1]
        added = np.tensordot(half_h, noise_in, axes=(0, 0))                 # at steps j0 + 1 … j0 + n
        for first, means, covs in starts():
            count = means.shape[-1]
            second = _quadratic_forms(rows[:, :, 1:], np.concatenate([_outer(means), covs], axis=2), half_h)
            bias[first:first + count, j0:j0 + n] = second[:count]
            variance[first:first + count, j0:j0 + n] = second[count:] + added
    if switch:  # the output at a switch step is taken after θ ← φ
        bias[:, -1, 0], variance[:, -1, 0] = bias[:, -1, 1], variance[:, -1, 1]
    return bias, variance


def _whole_period(cfg: NQM, A: np.ndarray, b: np.ndarray, K: int, switch: bool):
    """Q, the map of one whole period of K steps (switch included), and Ñ, the noise it adds."""
    step_noise = cfg.noise[:, None, None] * b[:, :, None] * b[:, None, :]
    noise, power = _accumulated_noise(A, step_noise, K)
    if switch:
        return SWITCH @ power, SWITCH @ noise @ SWITCH.T
    return power, noise


def _moment_curves(cfg: NQM, A: np.ndarray, b: np.ndarray, period: int, switch: bool):
    """Bias and variance of θ and φ at steps 1 … steps, (steps, 2) each, for periods of K steps.

    At period starts the moments follow the whole-period map Q plus the noise Ñ it adds.
    """
    periods = -(-cfg.steps // period)
    Q, noise = _whole_period(cfg, A, b, period, switch)
    m0 = np.tile([cfg.start, 0.0, cfg.start], (cfg.dim, 1))
    size = max(1, BLOCK // (18 * cfg.dim))
    bias, variance = _period_outputs(cfg, A, b, period, switch,
                                     lambda: _period_start_blocks(Q, noise, m0, periods, size), periods)
    return bias.reshape(-1, 2)[:cfg.steps], variance.reshape(-1, 2)[:cfg.steps]


def _mark_divergence(curves: Curves, cap: float) -> None:
    """Cut every series at the first step whose loss is not finite or above `cap`."""
    for s in SERIES:
        bad = ~(curves.total(s) <= cap)
        if bad.any():
            step = int(np.argmax(bad))
            curves.diverged[s] = step
            curves.bias[s][step + 1:] = np.nan
            curves.variance[s][step + 1:] = np.nan
            if not np.isfinite(curves.total(s)[step]):
                curves.bias[s][step] = curves.variance[s][step] = np.nan


def _scheduled_moments(cfg: NQM):
    """Bias and variance of θ and φ, (steps, 2) each, for the plain and the switched run, with a
    learning rate that changes every step: the recurrence itself, one step at a time (the step
    map changes, so there are no powers to share), vectorised over coordinates and the two runs."""
    half_h, c = 0.5 * cfg.curvatures, cfg.noise
    m = np.tile([cfg.start, 0.0, cfg.start], (2, cfg.dim, 1))          # run 0 plain, run 1 switched
    C = np.zeros((2, cfg.dim, 3, 3))
    bias, variance = np.empty((cfg.steps, 2, 2)), np.empty((cfg.steps, 2, 2))   # step, run, (θ, φ)
    for t, eta in enumerate(cfg.learning_rates()):
        A, b = step_matrices(cfg, float(eta))
        m = np.einsum("dij,rdj->rdi", A, m)
        C = A @ C @ _transpose(A) + c[:, None, None] * b[:, :, None] * b[:, None, :]
        if (t + 1) % cfg.switch_every == 0:
            m[1], C[1] = m[1] @ SWITCH.T, SWITCH @ C[1] @ SWITCH.T
        bias[t] = (m[..., ::2] ** 2).transpose(0, 2, 1) @ half_h
        variance[t] = np.diagonal(C, axis1=-2, axis2=-1)[..., ::2].transpose(0, 2, 1) @ half_h
    return (bias[:, 0], variance[:, 0]), (bias[:, 1], variance[:, 1])


def exact_curves(cfg: NQM) -> Curves:
    """Expected loss of SGD θ, EMA φ, SEMA φ and SEMA θ at every step, from the moment recurrence."""
    if cfg.schedule != "constant":
        with np.errstate(over="ignore", invalid="ignore"):
            plain, switched = _scheduled_moments(cfg)
        return _assemble(cfg, plain, switched)
    A, b = step_matrices(cfg)
    # Without switches any period length is exact: short ones keep the tables small.
    chunk, K = min(PLAIN_CHUNK, cfg.steps), min(cfg.switch_every, cfg.steps)
    with np.errstate(over="ignore", invalid="ignore"):
        plain = _moment_curves(cfg, A, b, chunk, switch=False)
        switches = cfg.switch_every <= cfg.steps
        switched = _moment_curves(cfg, A, b, K, switch=True) if switches else plain
    return _assemble(cfg, plain, switched)


def _assemble(cfg: NQM, plain, switched) -> Curves:
    """The four series from the (bias, variance) of the plain and the switched run, step 0 prepended."""
    first_bias = np.full(1, cfg.start_loss)
    parts = {"sgd": (plain, 0), "ema": (plain, 1), "sema": (switched, 1), "sema_theta": (switched, 0)}
    bias = {s: np.concatenate([first_bias, run[0][:, col]]) for s, (run, col) in parts.items()}
    variance = {s: np.concatenate([[0.0], run[1][:, col]]) for s, (run, col) in parts.items()}
    curves = Curves(bias, variance)
    with np.errstate(over="ignore", invalid="ignore"):
        _mark_divergence(curves, DIVERGENCE_FACTOR * cfg.start_loss)
    return curves


# ----------------------------------------------------------------------- steady state

def _solve_lyapunov(M: np.ndarray, N: np.ndarray) -> np.ndarray:
    """C with C = M·C·Mᵀ + N, per coordinate: (I − M⊗M)·vec C = vec N."""
    return np.linalg.solve(np.eye(9) - _kron(M), N.reshape(-1, 9, 1)).reshape(-1, 3, 3)


def steady_state(cfg: NQM) -> dict[str, float]:
    """Long-run expected loss: SGD θ and EMA φ from the stationary Lyapunov equation, SEMA
    φ and θ averaged over one switch period of its periodic steady state.  Empty if unstable, and
    for a changing learning rate (there is no steady state to settle into)."""
    A, b = step_matrices(cfg)
    if cfg.schedule != "constant" or spectral_radius(A) >= 1:
        return {}
    h = cfg.curvatures
    stationary = _solve_lyapunov(A, cfg.noise[:, None, None] * b[:, :, None] * b[:, None, :])
    risk = {"sgd": 0.5 * float(h @ stationary[:, _THETA, _THETA]),
            "ema": 0.5 * float(h @ stationary[:, _PHI, _PHI])}
    K = cfg.switch_every
    Q, noise = _whole_period(cfg, A, b, K, switch=True)
    if spectral_radius(Q) >= 1:
        return risk
    start = _solve_lyapunov(Q, noise)                      # covariance right after a switch
    one_period = lambda: iter([(0, np.zeros((cfg.dim, 3, 1)), start.reshape(-1, 9, 1))])  # noqa: E731
    _, variance = _period_outputs(cfg, A, b, K, True, one_period, 1)
    # Steps 1 … K after a switch; the K-th is the next switch, the same as step 0.
    risk["sema_theta"], risk["sema"] = (float(v) for v in variance[0].mean(axis=0))
    return risk


def sgd_steady_state_closed_form(cfg: NQM) -> float:
    """½ Σ h·Var θ with Var θ = η·c·(1 + β) / (h·(1 − β)·(2(1 + β) − η·h)) (heavy ball)."""
    h, c, eta, beta = cfg.curvatures, cfg.noise, cfg.lr, cfg.beta
    var = eta * c * (1 + beta) / (h * (1 - beta) * (2 * (1 + beta) - eta * h))
    return 0.5 * float(h @ var)


def ema_steady_state_closed_form(cfg: NQM) -> float:
    """For β = 0: Var φ = Var θ · (1 − α)(1 + αr) / ((1 + α)(1 − αr)), r = 1 − η·h."""
    if cfg.beta != 0:
        raise ValueError("the EMA closed form is for plain SGD (β = 0); use steady_state()")
    h, c, eta, alpha = cfg.curvatures, cfg.noise, cfg.lr, cfg.alpha
    r = 1 - eta * h
    var_theta = eta * c / (h * (2 - eta * h))
    var_phi = var_theta * (1 - alpha) * (1 + alpha * r) / ((1 + alpha) * (1 - alpha * r))
    return 0.5 * float(h @ var_phi)


def spectral_radius(M: np.ndarray) -> float:
    """The largest |eigenvalue| over all coordinates: per-step growth of the mean."""
    return float(np.abs(np.linalg.eigvals(M)).max())


def growth_per_step(cfg: NQM) -> dict[str, float]:
    """How much the mean's worst coordinate is multiplied by per step (≥ 1: no convergence)."""
    A, _ = step_matrices(cfg)
    plain = spectral_radius(A)
    K = min(cfg.switch_every, cfg.steps)
    switched = spectral_radius(SWITCH @ np.linalg.matrix_power(A, K)) ** (1 / K)
    return {"sgd": plain, "ema": plain, "sema": switched, "sema_theta": switched}


# ------------------------------------------------------------------------ simulated

@dataclass
class MonteCarlo:
    """Sampled loss per step (index = step): mean, standard error and a spread band."""

    samples: int
    mean: dict[str, np.ndarray]
    stderr: dict[str, np.ndarray]
    low: dict[str, np.ndarray]           # lower quantile of single-run losses
    high: dict[str, np.ndarray]          # upper quantile
    quantiles: tuple[float, float]


def monte_carlo(cfg: NQM, samples: int = 200, seed: int = 0, quantiles: tuple[float, float] = (0.1, 0.9),
                bands: bool = True) -> MonteCarlo:
    """Simulate `samples` independent runs at once (numpy, vectorised over runs and coordinates).

    The same steps as the exact recurrence, with sampled noise instead of moments.  EMA
    and SEMA see the same noise draws (their θ agree until the first switch).  A series
    whose loss passes the divergence cap in any run is NaN from then on.  With
    ``bands=False`` only means and standard errors are kept (less memory).
    """
    rng = np.random.default_rng(seed)
    h, rates, beta, alpha, K = cfg.curvatures, cfg.learning_rates(), cfg.beta, cfg.alpha, cfg.switch_every
    noise_std, half_h = np.sqrt(cfg.noise), 0.5 * cfg.curvatures
    theta = np.full((2, samples, cfg.dim), cfg.start)     # axis 0: plain run, switched run
    velocity, phi = np.zeros_like(theta), theta.copy()
    draws = np.empty((samples, cfg.dim))
    cap = DIVERGENCE_FACTOR * cfg.start_loss
    sums = np.full((cfg.steps + 1, 4), np.nan)
    squares = np.full((cfg.steps + 1, 4), np.nan)
    losses = np.full((cfg.steps + 1, 4, samples), np.nan, dtype=np.float32) if bands else None
    alive = np.ones(4, dtype=bool)

    def record(t: int) -> None:
        now = np.stack([theta[0] ** 2 @ half_h, phi[0] ** 2 @ half_h,
                        phi[1] ** 2 @ half_h, theta[1] ** 2 @ half_h])   # SERIES order
        alive[:] &= np.all(now <= cap, axis=1)
        now[~alive] = np.nan
        sums[t], squares[t] = now.sum(axis=1), (now ** 2).sum(axis=1)
        if bands:
            losses[t] = now

    with np.errstate(over="ignore", invalid="ignore"):
        record(0)
        for t in range(1, cfg.steps + 1):
            rng.standard_normal(out=draws)
            velocity *= beta
            velocity += h * theta + noise_std * draws
            theta -= rates[t - 1] * velocity
            phi *= alpha
            phi += (1 - alpha) * theta
            if t % K == 0:
                theta[1] = phi[1]
            record(t)
            if not alive.any():
                break
        mean = sums / samples
        stderr = np.sqrt(np.maximum(squares / samples - mean ** 2, 0.0) / max(samples - 1, 1))
        low, high = np.quantile(losses, quantiles, axis=2) if bands else (np.full_like(mean, np.nan),) * 2
    as_dict = lambda a: {s: a[:, i] for i, s in enumerate(SERIES)}  # noqa: E731
    return MonteCarlo(samples, as_dict(mean), as_dict(stderr), as_dict(low), as_dict(high), quantiles)


# ------------------------------------------------------------------------ summaries

@dataclass
class Summary:
    """The numbers the page words its "What to notice" from."""

    final: dict[str, float]              # expected loss at the last step, per series (NaN: diverged)
    bias_share: dict[str, float]         # bias / expected loss at the last step
    level: float                         # 2 × the lowest final loss of SGD, EMA and SEMA
    reach: dict[str, int | None]         # first step at or below `level` (None: never)
    steady: dict[str, float]             # long-run loss (steady_state), empty if unstable


def first_step_below(curve: np.ndarray, level: float) -> int | None:
    """The first step at which `curve` is at or below `level` (None if never)."""
    hits = np.flatnonzero(curve <= level)
    return int(hits[0]) if hits.size else None


def summarize(curves: Curves, steady: dict[str, float]) -> Summary:
    final = {s: float(curves.total(s)[-1]) for s in SERIES}
    share = {s: float(curves.bias[s][-1] / final[s]) if final[s] > 0 else math.nan for s in SERIES}
    finite = [final[s] for s in ("sgd", "ema", "sema") if math.isfinite(final[s])]
    level = 2 * min(finite) if finite else math.nan
    reach = {s: first_step_below(curves.total(s), level) for s in SERIES}
    return Summary(final, share, level, reach, steady)


def curves_frame(curves: Curves, mc: MonteCarlo | None = None) -> pd.DataFrame:
    """Long table: one row per (step, series) with total, bias, variance (and Monte-Carlo columns)."""
    frames = []
    for s in SERIES:
        part = {"step": curves.steps, "series": SERIES_NAMES[s], "expected_loss": curves.total(s),
                "bias": curves.bias[s], "variance": curves.variance[s]}
        if mc is not None:
            part |= {"mc_mean": mc.mean[s], "mc_stderr": mc.stderr[s],
                     f"mc_q{mc.quantiles[0]:g}": mc.low[s], f"mc_q{mc.quantiles[1]:g}": mc.high[s]}
        frames.append(pd.DataFrame(part))
    return pd.concat(frames, ignore_index=True)


# ------------------------------------------------------------------------------ maps

# The second moments E[x·xᵀ] of x = (θ, v, φ) follow the same recurrence as the covariance,
# X ← A·X·Aᵀ + c·b·bᵀ (the mean needs no separate path: E[x·xᵀ] = C + m·mᵀ).  A map keeps
# the six entries of the symmetric X plus a constant 1, so that one step is ONE 7×7 matrix
# and the noise rides along: x̂ ← Ĝ·x̂ with Ĝ = [[G, g], [0, 1]].
_PAIRS = np.array([(0, 0), (0, 1), (1, 1), (0, 2), (1, 2), (2, 2)])
_THETA2, _PHI2 = 0, 5     # where E[θ²] and E[φ²] sit among the six entries


def _moment_map(M: np.ndarray) -> np.ndarray:
    """(D, 6, 6): X ↦ M·X·Mᵀ on the upper-triangle entries of a symmetric 3×3 X."""
    (i, j), (k, l) = _PAIRS.T[:, :, None], _PAIRS.T[:, None, :]
    return M[:, i, k] * M[:, j, l] + (k != l) * M[:, i, l] * M[:, j, k]


def _homogeneous(G: np.ndarray, g: np.ndarray) -> np.ndarray:
    """(D, 7, 7) [[G, g], [0, 1]]: an affine map of the six entries as one matrix."""
    out = np.zeros((len(G), 7, 7))
    out[:, :6, :6], out[:, :6, 6], out[:, 6, 6] = G, g, 1.0
    return out


MAP_SERIES = ("sgd", "ema", "sema")
MAP_BLOCK = 4_000_000     # array elements per block of map cells
MAP_DTYPE = np.float32


@dataclass
class GridCurves:
    """Expected loss per step of SGD θ, EMA φ and SEMA φ for a grid of (α, K) cells."""

    base: NQM                           # every setting but α and K
    alpha: np.ndarray                   # (rows, cols) the EMA decay of each cell
    switch_every: np.ndarray            # (cols,) K of each column
    loss: dict[str, np.ndarray]         # MAP_SERIES -> (rows, cols, steps + 1); NaN after a divergence

    def final(self, series: str) -> np.ndarray:
        return self.loss[series][..., -1]


def grid_curves(base: NQM, alpha: np.ndarray, switch_every) -> GridCurves:
    """The exact expected loss of every cell of an (α, K) grid, every step, in one vectorised pass.

    ``alpha`` is (rows, cols), ``switch_every`` (cols,): cell (r, c) is ``base`` with
    α = alpha[r, c] and K = switch_every[c].  It equals :func:`exact_curves` at every cell
    (tests/test_theory.py), only much faster: per column the cells share one block of
    powers of the 7×7 step map, and the loss of every step is one batched matrix product.
    SGD θ depends on neither α nor K: it is computed once.
    """
    alpha = np.asarray(alpha, dtype=float)
    ks = [int(k) for k in np.ravel(switch_every)]
    if alpha.ndim != 2 or alpha.shape[1] != len(ks):
        raise ValueError("alpha must be (rows, cols) with one switch interval per column")
    if not np.all((alpha >= 0) & (alpha < 1)) or min(ks) < 1:
        raise ValueError("every α must lie in [0, 1) and every K be at least 1")
    if base.schedule != "constant":
        raise ValueError("the map is computed for a constant learning rate (schedule 'constant')")
    rows, steps = alpha.shape[0], base.steps
    loss = {s: np.empty((rows, len(ks), steps + 1)) for s in MAP_SERIES}
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        sgd = _moment_curves(base, *step_matrices(base), min(PLAIN_CHUNK, steps), switch=False)
        loss["sgd"][:] = np.r_[base.start_loss, sgd[0][:, 0] + sgd[1][:, 0]]
        for col, K in enumerate(ks):
            # α = 0 (the map's cells whose horizon is under one step): φ = θ after every step and a
            # switch copies θ onto itself, so EMA and SEMA are SGD exactly: its curve, not computed again
            zero = alpha[:, col] == 0
            loss["ema"][zero, col] = loss["sema"][zero, col] = loss["sgd"][0, 0]
            rows = np.flatnonzero(~zero)
            _grid_column(base, alpha[rows, col], K, loss["ema"][:, col], loss["sema"][:, col], rows)
        cap = DIVERGENCE_FACTOR * base.start_loss
        for curve in loss.values():
            blown = np.maximum.accumulate(~(curve <= cap), axis=-1)
            curve[blown] = np.nan
    return GridCurves(base, alpha, np.array(ks), loss)


class _Squares:
    """M, M², M⁴, … of a stack (D, 7, 7), each made once: the doublings of a column share them."""

    def __init__(self, M: np.ndarray, base: "_Squares | None" = None, offset: int = 0):
        self.squares, self.base, self.offset = [M], base, offset

    def __getitem__(self, k: int) -> np.ndarray:
        if self.base is not None:
            return self.base[k + self.offset]
        while len(self.squares) <= k:
            self.squares.append(self.squares[-1] @ self.squares[-1])
        return self.squares[k]

    def of_power(self, n: int) -> "_Squares":
        """The squares of Mⁿ: for n a power of two, a view of these squares (nothing made twice)."""
        if n & (n - 1) == 0:
            return _Squares(self[n.bit_length() - 1], self, n.bit_length() - 1)
        return _Squares(self.power(n))

    def power(self, n: int) -> np.ndarray:
        """Mⁿ from the binary digits of n."""
        out, k = None, 0
        while n:
            if n & 1:
                out = self[k] if out is None else out @ self[k]
            n, k = n >> 1, k + 1
        return out if out is not None else np.broadcast_to(np.eye(7, dtype=self.squares[0].dtype), self.squares[0].shape)


def _right_powers(X0: np.ndarray, R: _Squares, count: int) -> np.ndarray:
    """X0·Rʲ for j < count as (cells, count, w, dim, 7); X0 is (cells, w, dim, 7) rows, and
    R's stack (D, 7, 7) runs over (cell, coordinate), D = cells · dim.

    Doubling, like :func:`_left_powers`.  The rows are laid out as the final product reads
    them (a step's row of every coordinate of a cell side by side), so it needs no transposed
    copy: every product is one batched matrix product writing straight into its place.
    """
    cells, w, dim, _ = X0.shape
    out = np.empty((cells, count * w, dim, 7), dtype=X0.dtype)
    rows = out.transpose(0, 2, 1, 3)                  # (cells, dim, count · w, 7): one matrix per coordinate
    rows[:, :, :w] = X0.transpose(0, 2, 1, 3)
    n, k = 1, 0
    while n < count:
        m = min(n, count - n)
        np.matmul(rows[:, :, :m * w], R[k].reshape(cells, dim, 7, 7), out=rows[:, :, n * w:(n + m) * w])
        n, k = n + m, k + 1
    return out.reshape(cells, count, w, dim, 7)


def _column_powers(X0: np.ndarray, M: _Squares, count: int) -> np.ndarray:
    """Mʲ·X0 for j < count as (D, 7, count, w); X0 is (D, 7, w) columns.

    The same doubling with the squares of M, on columns, so that the moments come out in the
    layout of the final product (coordinates and entries along one axis) without a copy.
    """
    D, n7, w = X0.shape
    out = np.empty((D, n7, count * w), dtype=X0.dtype)      # (j, column) along the last axis
    out[:, :, :w] = X0
    n, k = 1, 0
    while n < count:
        m = min(n, count - n)
        np.matmul(M[k], out[:, :, :m * w], out=out[:, :, n * w:(n + m) * w])
        n, k = n + m, k + 1
    return out.reshape(D, n7, count, w)


def _phi_loss(step: _Squares, switch: np.ndarray | None, K: int, steps: int, read: np.ndarray,
              start: np.ndarray, cells: int, shared: dict | None = None) -> np.ndarray:
    """½ Σ h·E[φ²] at steps 1 … steps of each cell, (cells, steps), switching θ ← φ after
    every K-th step (``switch`` the switch as row indices: S·M = M[switch]; None: never);
    ``step`` holds the powers of Ĝ.

    Step τ of a block read from the moments x̂ at the block start is r·x̂ with r the φ row
    of the map from the block start to τ.  Both are made by doubling, and a block is about
    √steps long, so that neither the rows (one per step of a block) nor the block starts
    (one per block) are many:

    - K ≤ √steps (and no switch): blocks of L whole periods, rows r_{qK+i} = r_i·(S·Ĝᴷ)^q;
    - K > √steps: the period is cut into sub-blocks of B steps, starts Ĝ^(mB)·(S·Ĝᴷ)ⁿ·x̂₀.

    Rows are (cells, rows, dim · 7) and starts columns (D, 7, starts): the loss of every
    (start, row) pair of a cell is then one matrix product over (coordinate, entry).

    The rows r·Ĝʲ, j = 1 … B, are the same for EMA and SEMA of one column: ``shared`` (a dict
    passed to both calls) keeps them for the second call.
    """
    D = len(read)
    dim = D // cells
    B = 1 << (max(1, steps).bit_length() // 2)          # ≈ √steps; powers of two make Ĝᴮ and (S·Ĝᴷ)ᴸ squares
    shared = {} if shared is None else shared
    if "rows" not in shared:                                  # r·Ĝʲ, j = 1 … B: (cells, B, dim, 7)
        shared["rows"] = _right_powers(read.reshape(cells, 1, dim, 7), step, B + 1)[:, 1:, 0]
    base = shared["rows"]
    if switch is None or K <= B:
        period = step.of_power(B) if switch is None else _Squares(step.power(K)[:, switch])   # Ĝᴮ or S·Ĝᴷ
        K = B if switch is None else K
        L = 1 << (-(-B // K) - 1).bit_length()
        rows = base if K == B and L == 1 else _right_powers(base[:, :K], period, L)
        right = rows.reshape(cells, L * K, dim * 7)
        starts = _column_powers(start, period.of_power(L), -(-steps // (L * K)))[..., 0]
        order, keep = (0, 2, 1), slice(0, steps)                  # (cells, starts, rows): time order
    else:
        M, periods = -(-K // B), -(-steps // K)
        right = base.reshape(cells, B, dim * 7)
        outer = _column_powers(start, _Squares(step.power(K)[:, switch]), periods)[..., 0]
        starts = _column_powers(outer, step.of_power(B), M).reshape(D, 7, M * periods)    # (m, n)
        offset = (np.arange(M)[:, None] * B + np.arange(1, B + 1)[None, :]).ravel()     # within a period
        keep = np.flatnonzero(np.tile(offset <= K, periods))[:steps]
        order = None
    out = right @ starts.reshape(cells, dim * 7, -1)                                    # (cells, rows, starts)
    if order is None:                                                                   # starts were (m, n)
        out = out.reshape(cells, B, M, periods).transpose(0, 3, 2, 1)                   # (n, m, row)
    else:
        out = out.transpose(order)
    return out.reshape(cells, -1)[:, keep]


def _grid_column(base: NQM, alphas: np.ndarray, K: int, ema: np.ndarray, sema: np.ndarray,
                 where: np.ndarray) -> None:
    """Fill ema[where[r]] and sema[where[r]] (steps + 1) for cells of one column: K fixed, α = alphas[r]."""
    dim, steps = base.dim, base.steps
    x0 = np.array([base.start, 0.0, base.start])
    start = np.r_[x0[_PAIRS[:, 0]] * x0[_PAIRS[:, 1]], 1.0]
    # The switch in moment space only copies entries (θθ ← φφ, θv ← vφ, θφ ← φφ): S·M is M[switch].
    switch = np.argmax(_homogeneous(_moment_map(SWITCH[None]), np.zeros((1, 6)))[0], axis=1)
    plain_A, plain_b = step_matrices(replace(base, alpha=0.0))
    per_chunk = max(1, MAP_BLOCK // (dim * 7 * 4 * max(1, math.isqrt(steps))))
    for first in range(0, len(alphas), per_chunk):
        chunk = alphas[first:first + per_chunk]
        n = len(chunk)
        A, b = np.repeat(plain_A[None], n, axis=0), np.repeat(plain_b[None], n, axis=0)
        A[:, :, 2] = (1 - chunk[:, None, None]) * A[:, :, 0]
        A[:, :, 2, 2] = chunk[:, None]
        b[:, :, 2] = -(1 - chunk[:, None]) * base.lr
        A, b = A.reshape(n * dim, 3, 3), b.reshape(n * dim, 3)
        noise = np.tile(base.noise, n)[:, None] * b[:, _PAIRS[:, 0]] * b[:, _PAIRS[:, 1]]
        step = _Squares(_homogeneous(_moment_map(A), noise).astype(MAP_DTYPE))  # Ĝ per coordinate
        read = np.zeros((n * dim, 1, 7), dtype=MAP_DTYPE)
        read[:, 0, _PHI2] = np.tile(0.5 * base.curvatures, n)
        x_start = np.broadcast_to(start.astype(MAP_DTYPE)[:, None], (n * dim, 7, 1))
        rows = where[first:first + n]
        ema[rows, 0] = sema[rows, 0] = base.start_loss
        shared: dict = {}
        ema[rows, 1:] = np.maximum(_phi_loss(step, None, K, steps, read, x_start, n, shared), 0.0)
        sema[rows, 1:] = ema[rows, 1:] if K > steps else \
            np.maximum(_phi_loss(step, switch, K, steps, read, x_start, n, shared), 0.0)


def switch_intervals(count: int, largest: int, smallest: int = 1) -> np.ndarray:
    """`count` log-spaced integers from `smallest` to `largest`, each at least one above the last."""
    values = np.geomspace(smallest, largest, count).round().astype(int)
    for i in range(1, count):
        values[i] = max(values[i], values[i - 1] + 1)
    return values


def reach_steps(curves: np.ndarray, level: np.ndarray) -> np.ndarray:
    """First step at or below `level` along the last axis, as a float (inf: never)."""
    hit = curves <= level[..., None]
    return np.where(hit.any(axis=-1), hit.argmax(axis=-1), np.inf).astype(float)


@dataclass
class RatioMap:
    """When does SEMA help?  SEMA φ against EMA φ and SGD θ over (horizon ÷ K, K).

    A ratio below 1 means SEMA is better there: a lower final loss, or fewer steps to reach
    the cell's level (2 × the best final loss of SGD, EMA and SEMA, as on the curves).
    Cells whose horizon r·K is below one step (no average is that short) are NaN.
    """

    horizon_ratios: np.ndarray          # (rows,) EMA horizon 1/(1 − α) ÷ K
    switch_every: np.ndarray            # (cols,) K
    curves: GridCurves                  # the exact curves of every cell
    final: dict[str, np.ndarray]        # series -> (rows, cols) expected loss at the last step
    level: np.ndarray                   # (rows, cols) the threshold of the steps-to-reach ratios
    reach: dict[str, np.ndarray]        # series -> (rows, cols) first step at or below level (inf: never)
    valid: np.ndarray                   # (rows, cols) bool: horizon ≥ 1 step

    @property
    def alpha(self) -> np.ndarray:
        return self.curves.alpha

    def ratio(self, other: str, kind: str = "final") -> np.ndarray:
        """SEMA ÷ `other` ("ema" or "sgd") of the final loss (kind "final") or of the steps to
        reach the level (kind "steps"; 0 when only SEMA gets there, inf when only `other` does)."""
        values = self.final if kind == "final" else self.reach
        with np.errstate(divide="ignore", invalid="ignore"):
            out = values["sema"] / values[other]
        return np.where(self.valid, out, np.nan)

    def frame(self) -> pd.DataFrame:
        """One row per cell: settings, final losses, steps to the level and the four ratios."""
        r, k = np.meshgrid(self.horizon_ratios, self.switch_every, indexing="ij")
        data = {"horizon_ratio": r.ravel(), "switch_every": k.ravel(), "alpha": self.alpha.ravel(),
                "horizon_steps": (r * k).ravel(), "level": self.level.ravel()}
        for s in ("sgd", "ema", "sema"):
            data[f"final_{s}"] = self.final[s].ravel()
            data[f"steps_{s}"] = self.reach[s].ravel()
        for other in ("ema", "sgd"):
            for kind in ("final", "steps"):
                data[f"{kind}_sema_over_{other}"] = self.ratio(other, kind).ravel()
        return pd.DataFrame(data)


def ratio_map(base: NQM, horizon_ratios, switch_every) -> RatioMap:
    """The exact map over EMA horizon ÷ K (rows) and K (columns); everything else from ``base``."""
    ratios = np.asarray(horizon_ratios, dtype=float)
    ks = np.asarray(switch_every, dtype=int)
    horizon = ratios[:, None] * ks[None, :]
    valid = horizon >= 1
    alpha = np.where(valid, 1 - 1 / np.where(valid, horizon, 1.0), 0.0)
    curves = grid_curves(base, alpha, ks)
    final = {s: curves.final(s) for s in MAP_SERIES}
    level = 2 * np.fmin(np.fmin(final["sgd"], final["ema"]), final["sema"])
    reach = {s: reach_steps(curves.loss[s], level) for s in MAP_SERIES}
    return RatioMap(ratios, ks, curves, final, level, reach, valid)


def default_map(base: NQM, size: int = 30) -> RatioMap:
    """The page's map: horizon ÷ K from 1/30 to 30 and K from 1 to half the run, `size` of each."""
    return ratio_map(base, np.geomspace(1 / 30, 30, size), switch_intervals(size, max(size, base.steps // 2)))


def ratio_at(horizon_steps: float, switch_every: int, batch_size: float | None = None,
             base: NQM = NQM()) -> dict[str, float]:
    """One cell, for a single (horizon, K, noise) setting: the four ratios and what they are made of.

    `horizon_steps` is 1/(1 − α); the noise is set by `batch_size` (variance hᵢ / batch size).
    """
    cfg = base if batch_size is None else replace(base, batch_size=float(batch_size))
    cell = ratio_map(cfg, [horizon_steps / switch_every], [switch_every])
    out = {f"{kind}_sema_over_{other}": float(cell.ratio(other, kind)[0, 0])
           for other in ("ema", "sgd") for kind in ("final", "steps")}
    out |= {f"final_{s}": float(cell.final[s][0, 0]) for s in ("sgd", "ema", "sema")}
    out |= {f"steps_{s}": float(cell.reach[s][0, 0]) for s in ("sgd", "ema", "sema")}
    return out | {"alpha": float(cell.alpha[0, 0]), "level": float(cell.level[0, 0])}


# --------------------------------------------------------------- where does a setting sit?

REGIME_TIE = 0.05   # SEMA within 5 % of EMA's final loss counts as a tie (as on the map's notice)


@dataclass(frozen=True)
class Regime:
    """Does SEMA help at one (horizon, K, noise) setting of the noisy quadratic, and why?

    Computed from the exact curves of that setting, so it agrees with the map's cell there
    (tests/test_theory.py); the reasons are the numbers the map's story is told with: how
    much of the loss is lag (bias) rather than noise, and K against the EMA horizon.
    """

    verdict: str          # "helps" | "hurts" | "ties" | "diverges"
    over_ema: float       # SEMA φ ÷ EMA φ, final expected loss
    over_sgd: float       # SEMA φ ÷ SGD θ
    lag_share: float      # share of SEMA φ's final loss that is bias (what is left of the start)
    cfg: NQM

    @property
    def horizon(self) -> float:
        return 1 / (1 - self.cfg.alpha)

    def reason(self) -> str:
        """Why, in one clause computed from the numbers."""
        cfg = self.cfg
        if cfg.alpha == 0:
            return "with α = 0 the average is the live weights, so all three are the same run"
        if cfg.switch_every > cfg.steps:
            return f"K = {cfg.switch_every:,} is longer than the {cfg.steps:,}-step run: SEMA never switches"
        if self.verdict == "diverges":
            return "the learning rate is beyond the stability bound"
        lag = f"{100 * self.lag_share:.0f} % of SEMA's final loss is lag (bias), {100 * (1 - self.lag_share):.0f} % noise"
        rel = self.horizon / cfg.switch_every
        k, times = f"K = {cfg.switch_every:,}", lambda x: f"{x:,.0f}" if x >= 10 else f"{x:.2g}"  # noqa: E731
        pace = (f"{k} is about the horizon" if 0.8 <= rel <= 1.25 else
                f"{k} is {times(rel)}× shorter than the horizon" if rel > 1 else f"{k} is {times(1 / rel)}× the horizon")
        return f"{lag}; {pace}"

    def lag_warning(self) -> str:
        """The long-horizon warning, only where the numbers bear it out: the horizon is more than
        3 × K *and* here SEMA hurts or its loss is still mostly lag ("" otherwise)."""
        cfg = self.cfg
        if cfg.alpha == 0 or self.horizon <= 3 * cfg.switch_every or self.verdict == "diverges":
            return ""
        if self.verdict != "hurts" and not self.lag_share > 0.5:
            return ""
        return (f"The EMA horizon (≈ {self.horizon:,.0f} steps) is much longer than the switch interval "
                f"({cfg.switch_every:,} steps): each switch copies back an average that still lags.")

    def sentence(self) -> str:
        cfg = self.cfg
        where = (f"a {self.horizon:,.0f}-step EMA horizon with a switch every {cfg.switch_every:,} steps"
                 if cfg.alpha > 0 else "α = 0")
        if self.verdict == "diverges":
            return f"At {where} the run diverges ({self.reason()})."
        if self.verdict == "ties":
            how = f"SEMA φ ends within {100 * REGIME_TIE:.0f} % of EMA φ ({self.over_ema:.2f}×)"
        else:
            pct = 100 * abs(1 - self.over_ema)
            how = f"SEMA φ ends {pct:.0f} % {'below' if self.verdict == 'helps' else 'above'} EMA φ"
        return (f"At {where}, SEMA **{self.verdict}**: {how} and at {self.over_sgd:.2g}× SGD's loss "
                f"after {cfg.steps:,} steps; {self.reason()}.")


def _classify(over_ema: float) -> str:
    if not math.isfinite(over_ema):
        return "diverges"
    return "helps" if over_ema < 1 - REGIME_TIE else "hurts" if over_ema > 1 + REGIME_TIE else "ties"


@lru_cache(maxsize=256)
def regime(cfg: NQM) -> Regime:
    """Where ``cfg`` (its α, K, noise, schedule …) sits: SEMA helps, hurts or ties EMA, from its exact curves."""
    curves = exact_curves(cfg)
    final = {s: float(curves.total(s)[-1]) for s in ("sgd", "ema", "sema")}
    with np.errstate(divide="ignore", invalid="ignore"):
        over_ema = final["sema"] / final["ema"] if final["ema"] > 0 else math.nan
        over_sgd = final["sema"] / final["sgd"] if final["sgd"] > 0 else math.nan
    same = cfg.alpha == 0 or cfg.switch_every > cfg.steps
    verdict = "ties" if same and math.isfinite(over_ema) else _classify(over_ema)
    lag = float(curves.bias["sema"][-1] / final["sema"]) if final["sema"] > 0 else math.nan
    return Regime(verdict, over_ema, over_sgd, lag, cfg)


def regime_at(alpha: float, switch_every: int, batch_size: float | None = None, steps: int | None = None,
              base: NQM = NQM()) -> Regime:
    """:func:`regime` of ``base`` with this α and K (and batch size, run length when given).

    Without ``steps`` the run is ``base.steps`` long but at least five switch intervals, so that
    a long interval still switches a few times."""
    steps = max(base.steps, 5 * int(switch_every)) if steps is None else int(steps)
    cfg = replace(base, alpha=float(alpha), switch_every=int(switch_every), steps=steps,
                  batch_size=base.batch_size if batch_size is None else float(batch_size))
    return regime(cfg)
