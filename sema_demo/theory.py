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
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

SERIES = ("sgd", "ema", "sema", "sema_theta")
SERIES_NAMES = {"sgd": "SGD θ", "ema": "EMA φ", "sema": "SEMA φ", "sema_theta": "SEMA θ"}
DIVERGENCE_FACTOR = 1e6   # a run counts as diverged once its loss exceeds this × its start
PLAIN_CHUNK = 128         # steps per period for runs without switches (see exact_curves)
BLOCK = 2_000_000         # array elements per block of work: bounds memory for any size

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

    def __post_init__(self):
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


def step_matrices(cfg: NQM) -> tuple[np.ndarray, np.ndarray]:
    """A (dim, 3, 3) and b (dim, 3) of the one-step map x ← A·x + b·ξ, x = (θ, v, φ)."""
    h, eta, beta, alpha = cfg.curvatures, cfg.lr, cfg.beta, cfg.alpha
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


def exact_curves(cfg: NQM) -> Curves:
    """Expected loss of SGD θ, EMA φ, SEMA φ and SEMA θ at every step, from the moment recurrence."""
    A, b = step_matrices(cfg)
    # Without switches any period length is exact: short ones keep the tables small.
    chunk, K = min(PLAIN_CHUNK, cfg.steps), min(cfg.switch_every, cfg.steps)
    with np.errstate(over="ignore", invalid="ignore"):
        plain = _moment_curves(cfg, A, b, chunk, switch=False)
        switches = cfg.switch_every <= cfg.steps
        switched = _moment_curves(cfg, A, b, K, switch=True) if switches else plain
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
    φ and θ averaged over one switch period of its periodic steady state.  Empty if unstable."""
    A, b = step_matrices(cfg)
    if spectral_radius(A) >= 1:
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
    h, eta, beta, alpha, K = cfg.curvatures, cfg.lr, cfg.beta, cfg.alpha, cfg.switch_every
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
            theta -= eta * velocity
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
