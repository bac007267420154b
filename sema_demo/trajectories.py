"""SGD, EMA, SEMA, SWA and Lookahead as trajectories on a 2D landscape.

Every method starts at the same point, sees the same gradient-noise draws
(g = ∇f(θ) + σ·ξ_t, with ξ_t seeded) and uses the same base optimizer (SGD with
heavy-ball momentum β, or Adam).  An *epoch* is ``steps_per_epoch`` steps; SEMA
copies φ back into θ every ``switch_every`` epochs.

Two implementations compute the same numbers:

* :func:`reference_path` is the obvious loop: a 2-parameter ``nn.Module``, a real
  ``torch.optim`` optimizer, autograd, and the real averager from
  :func:`sema_demo.averaging.make_averager`.  Read it to see what is simulated.
* :func:`simulate` / :func:`many_starts` run all methods and many starts at once in
  numpy (about 30× faster for one start, see ``benchmarks/bench_playground.py``), which
  is what lets the page redraw at once.  The tests prove it equals
  :func:`reference_path` to 1e-9.

The vectorised form rests on one observation: every averager is
φ ← φ + w_t·(θ − φ) after each step, with a per-method weight schedule w_t, plus an
occasional θ ← φ.  EMA and SEMA use w = 1 − α; SGD uses w = 1 (φ = θ); SWA uses
1/(n + 1) at the end of averaged epochs and 0 otherwise; Lookahead uses its α every
k steps and then resets θ ← φ, as SEMA does at its switches.  EMA and SWA never
write θ, so they share SGD's θ path ("track") and only SEMA and Lookahead need
their own.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from .averaging import METHODS, make_averager
from .landscapes import Landscape, get_landscape

__all__ = ["OPTIMIZERS", "SimConfig", "Path", "Simulation", "BasinMap", "simulate", "many_starts",
           "reference_path", "draw_noise"]

OPTIMIZERS = ("momentum", "adam")
ADAM_BETA2, ADAM_EPS = 0.999, 1e-8
DIVERGENCE_FACTOR = 100.0   # a point this many domain sizes from the centre has diverged
WRITES_THETA = ("sema", "lookahead")   # methods that move θ themselves and need their own track


@dataclass(frozen=True)
class SimConfig:
    """All settings of one playground run (defaults: the Two-basins demo)."""

    landscape: str = "two_basins"
    methods: tuple[str, ...] = ("sgd", "ema", "sema")
    steps: int = 1000
    lr: float = 0.02
    optimizer: str = "momentum"        # "momentum": SGD with heavy-ball β (β = 0 is plain SGD); "adam"
    beta: float = 0.9                  # optimizer momentum β (Adam's β1), NOT the EMA momentum
    ema_momentum: float = 0.99         # α, the EMA decay for EMA and SEMA; horizon ≈ 1/(1 − α) steps
    steps_per_epoch: int = 50          # K: optimizer steps per epoch
    switch_every: int = 1              # SEMA switches θ ← φ every this many epochs
    noise: float = 1.2                 # σ of the Gaussian noise added to every gradient
    seed: int = 0                      # seeds the noise draws
    start: tuple[float, float] | None = None   # None: the landscape's default start
    swa_start: int = 0                 # SWA: first epoch whose end weights are averaged
    lookahead_k: int = 5               # Lookahead: fast steps per slow step
    lookahead_alpha: float = 0.5       # Lookahead: slow step toward the fast weights

    @classmethod
    def for_landscape(cls, key: str, **overrides) -> SimConfig:
        """A config with the landscape's own learning rate, noise and start."""
        land = get_landscape(key)
        return cls(**{"landscape": key, "lr": land.lr, "noise": land.noise, "start": land.start,
                      **overrides})

    @property
    def switch_interval(self) -> int:
        """Optimizer steps between two SEMA switches."""
        return self.steps_per_epoch * self.switch_every

    def validate(self) -> None:
        """Raise ValueError with a plain message for settings that cannot run."""
        get_landscape(self.landscape)
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods or len(set(self.methods)) != len(self.methods):
            raise ValueError(f"methods must be distinct names from {METHODS}, got {self.methods!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        for name in ("steps", "steps_per_epoch", "switch_every", "lookahead_k"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"the learning rate must be positive, got {self.lr}")
        if not 0 <= self.beta < 1:
            raise ValueError(f"the optimizer momentum β must be in [0, 1), got {self.beta}")
        if not 0 <= self.ema_momentum < 1:
            raise ValueError(f"the EMA momentum α must be in [0, 1), got {self.ema_momentum}")
        if not self.noise >= 0:
            raise ValueError(f"the gradient noise σ must be >= 0, got {self.noise}")
        if self.swa_start < 0:
            raise ValueError(f"swa_start must be >= 0, got {self.swa_start}")
        if not 0 < self.lookahead_alpha <= 1:
            raise ValueError(f"lookahead_alpha must be in (0, 1], got {self.lookahead_alpha}")


@dataclass
class Path:
    """One method's run.  Arrays stop at the last finite step when the run diverged."""

    method: str
    theta: np.ndarray            # (n, 2) live weights θ_t, t = 0 … n − 1
    phi: np.ndarray              # (n, 2) evaluated weights φ_t (θ itself for SGD)
    theta_loss: np.ndarray       # (n,)
    phi_loss: np.ndarray         # (n,)
    switch_steps: np.ndarray     # steps t after which θ ← φ happened (SEMA switches, Lookahead syncs)
    diverged_at: int | None      # the step whose update blew up, or None

    @property
    def final_loss(self) -> float:
        """Loss of the evaluated weights at the end (inf when the run diverged)."""
        return float("inf") if self.diverged_at is not None else float(self.phi_loss[-1])


@dataclass
class Simulation:
    """One playground run: every method's path from the same start, with the same noise."""

    config: SimConfig
    start: tuple[float, float]                   # after clamping into the domain
    paths: dict[str, Path]                       # the run with noise seed ``config.seed``
    spread: BasinMap                             # where the runs over all simulated noise seeds end
    notices: list[str] = field(default_factory=list)   # plain-words remarks about the inputs

    @property
    def landscape(self) -> Landscape:
        return get_landscape(self.config.landscape)

    def to_frame(self) -> pd.DataFrame:
        """Long table of every path (the CSV export): one row per method and step."""
        frames = []
        for p in self.paths.values():
            steps = np.arange(len(p.theta))
            frames.append(pd.DataFrame({
                "method": p.method, "step": steps,
                "theta_x": p.theta[:, 0], "theta_y": p.theta[:, 1], "theta_loss": p.theta_loss,
                "phi_x": p.phi[:, 0], "phi_y": p.phi[:, 1], "phi_loss": p.phi_loss,
                "switched": np.isin(steps, p.switch_steps),
            }))
        return pd.concat(frames, ignore_index=True)


@dataclass
class BasinMap:
    """Where each method ends from many starts (or many noise seeds) at once."""

    landscape: str
    starts: np.ndarray                  # (N, 2)
    seeds: np.ndarray                   # (N,) noise seed of each run
    ends: dict[str, np.ndarray]         # method -> (N, 2) final evaluated weights φ
    final_loss: dict[str, np.ndarray]   # method -> (N,) loss of φ at the end; inf where diverged
    basin: dict[str, np.ndarray]        # method -> (N,) index into landscape.minima; -1 none
    diverged_at: dict[str, np.ndarray]  # method -> (N,) step of divergence; -1 where it did not

    def summary(self) -> pd.DataFrame:
        """Per method: share of runs ending in each minimum, diverged share, final-loss mean ± std."""
        land = get_landscape(self.landscape)
        rows = []
        for method, basin in self.basin.items():
            ok = self.diverged_at[method] < 0
            losses = self.final_loss[method][ok]
            row = {"method": method}
            for i, m in enumerate(land.minima):
                share = float(np.mean(ok & (basin == i)))
                if m.labelled or share > 0:
                    row[m.name] = share
            row["no minimum"] = float(np.mean(ok & (basin < 0)))
            row["diverged"] = float(np.mean(~ok))
            row["final loss mean"] = float(losses.mean()) if losses.size else float("nan")
            row["final loss std"] = float(losses.std(ddof=1)) if losses.size > 1 else 0.0
            rows.append(row)
        return pd.DataFrame(rows).fillna(0.0)


def draw_noise(seeds, steps: int) -> np.ndarray:
    """Standard normal draws ξ of shape (steps, 2, N), one independent stream per seed.

    A run with seed s sees the same draws whether it runs alone or among many, and the
    first steps do not change when the run is made longer.
    """
    return np.stack([np.random.default_rng(int(s)).standard_normal((steps, 2)) for s in seeds], axis=-1)


# --- The reference: the real averagers on a 2-parameter module ---------------------------------

class _Point(nn.Module):
    """A model whose only weights are the 2D point: θ = (x, y)."""

    def __init__(self, start):
        super().__init__()
        self.point = nn.Parameter(torch.tensor(start, dtype=torch.float64))


def _optimizer(config: SimConfig, params):
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, betas=(config.beta, ADAM_BETA2), eps=ADAM_EPS)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.beta)


def _escaped(points: np.ndarray, centre: np.ndarray, limit: float) -> np.ndarray:
    """True where a point (first axis: x, y) is non-finite or more than ``limit`` from ``centre``."""
    return ~(np.abs(points - centre).max(axis=0) <= limit)   # NaN compares False: caught too


def _divergence_box(land: Landscape, ndim: int) -> tuple[np.ndarray, float]:
    xmin, xmax, ymin, ymax = land.domain
    centre = np.array([(xmin + xmax) / 2, (ymin + ymax) / 2]).reshape((2,) + (1,) * (ndim - 1))
    return centre, DIVERGENCE_FACTOR * land.span


def reference_path(config: SimConfig, method: str) -> Path:
    """One method, written the obvious way: ``torch.optim`` + autograd + the real averager."""
    config.validate()
    land = get_landscape(config.landscape)
    start, _ = land.clamp(config.start or land.start)
    noise = torch.from_numpy(draw_noise([config.seed], config.steps)[..., 0])
    model = _Point(start)
    optimizer = _optimizer(config, model.parameters())
    averager = make_averager(method, model, momentum=config.ema_momentum,
                             switch_every=config.switch_interval, swa_start=config.swa_start,
                             lookahead_k=config.lookahead_k, lookahead_alpha=config.lookahead_alpha)
    centre, limit = _divergence_box(land, 1)
    thetas, phis, switches, diverged_at = [start], [start], [], None
    for t in range(config.steps):
        optimizer.zero_grad()
        land.loss(model.point).backward()
        model.point.grad += config.noise * noise[t]
        optimizer.step()
        before = getattr(averager, "num_switches", 0)
        averager.update()
        if (t + 1) % config.steps_per_epoch == 0:
            averager.on_epoch_end()
        theta = model.point.detach().numpy().copy()
        if _escaped(theta, centre, limit):
            diverged_at = t + 1
            break
        synced = method == "lookahead" and (t + 1) % config.lookahead_k == 0
        if getattr(averager, "num_switches", 0) > before or synced:
            switches.append(t + 1)
        thetas.append(tuple(theta))
        phis.append(tuple(averager.module.point.detach().numpy()))
    return _path(land, method, np.array(thetas), np.array(phis), np.array(switches, dtype=int), diverged_at)


def _path(land, method, theta, phi, switches, diverged_at) -> Path:
    return Path(method, theta, phi, land.loss_numpy(theta[:, 0], theta[:, 1]),
                land.loss_numpy(phi[:, 0], phi[:, 1]), switches, diverged_at)


# --- The vectorised fast path ---------------------------------------------------------------

@dataclass
class _Schedule:
    """Per step and method: the averaging weight w_t and whether θ ← φ follows."""

    tracks: np.ndarray        # (M,) θ track of each method
    n_tracks: int
    weight: np.ndarray        # (steps, M): φ ← φ + w·(θ − φ)
    switch: np.ndarray        # (steps, M) bool: θ[track] ← φ after the update


def _schedule(config: SimConfig) -> _Schedule:
    methods, steps, K = config.methods, config.steps, config.steps_per_epoch
    t = np.arange(1, steps + 1)                       # step numbers after the update
    epoch_end = t % K == 0
    weight = np.zeros((steps, len(methods)))
    switch = np.zeros((steps, len(methods)), dtype=bool)
    tracks, n_tracks = np.zeros(len(methods), dtype=int), 1
    for i, method in enumerate(methods):
        if method in WRITES_THETA:
            tracks[i], n_tracks = n_tracks, n_tracks + 1
        if method == "sgd":
            weight[:, i] = 1.0
        elif method in ("ema", "sema"):
            weight[:, i] = 1.0 - config.ema_momentum
            if method == "sema":
                switch[:, i] = t % config.switch_interval == 0
        elif method == "swa":
            averaged = epoch_end & (t // K - 1 >= config.swa_start)
            n_before = np.cumsum(averaged) - averaged     # averages taken before this step
            weight[:, i] = np.where(averaged, 1.0 / (n_before + 1), 0.0)
            weight[n_before == 0, i] = 1.0                # until the first average φ is θ itself
        elif method == "lookahead":
            sync = t % config.lookahead_k == 0
            weight[:, i] = np.where(sync, config.lookahead_alpha, 0.0)
            switch[:, i] = sync
    return _Schedule(tracks, n_tracks, weight, switch)


def _run(land: Landscape, config: SimConfig, starts: np.ndarray, noise: np.ndarray, record: bool):
    """Simulate every method from every start at once.

    starts (N, 2), noise (steps, 2, N).  Returns θ and φ histories (steps + 1, 2, M, N)
    when ``record`` (else only the final states, (1, 2, M, N)) and the divergence
    step per (method, start), 0 where none.
    """
    sched = _schedule(config)
    steps, M, N, T = config.steps, len(config.methods), len(starts), sched.n_tracks
    theta = np.repeat(starts.T[:, None, :], T, axis=1)          # (2, T, N)
    phi = np.repeat(starts.T[:, None, :], M, axis=1)            # (2, M, N)
    buf = np.zeros_like(theta)                                   # momentum / Adam first moment
    second = np.zeros_like(theta)                                # Adam second moment
    track_diverged = np.zeros((T, N), dtype=int)
    lr, beta, sigma = config.lr, config.beta, config.noise
    adam = config.optimizer == "adam"
    centre, limit = _divergence_box(land, theta.ndim)
    theta_hist = np.empty((steps + 1 if record else 1, 2, M, N))
    phi_hist = np.empty_like(theta_hist)
    theta_hist[0], phi_hist[0] = theta[:, sched.tracks], phi
    weight = sched.weight[:, None, :, None]                      # broadcast over (2, ·, M, N)
    switch_rows = sched.switch.any(axis=1)
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps):
            grad = land.grad_numpy(theta[0], theta[1]) + sigma * noise[t][:, None, :]
            if adam:   # torch.optim.Adam, step for step
                buf += (1 - beta) * (grad - buf)
                second *= ADAM_BETA2
                second += (1 - ADAM_BETA2) * grad * grad
                denom = np.sqrt(second) / np.sqrt(1 - ADAM_BETA2 ** (t + 1)) + ADAM_EPS
                theta -= lr / (1 - beta ** (t + 1)) * buf / denom
            else:      # torch.optim.SGD(momentum=β): buf ← β·buf + g; θ ← θ − lr·buf
                buf *= beta
                buf += grad
                theta -= lr * buf
            phi += weight[t] * (theta[:, sched.tracks] - phi)
            if switch_rows[t]:
                switching = sched.switch[t]
                theta[:, sched.tracks[switching]] = phi[:, switching]
            escaped = _escaped(theta, centre, limit)
            if escaped.any():
                _stop(escaped, t + 1, track_diverged, starts, theta, buf, second, phi, sched.tracks)
            if record:
                theta_hist[t + 1], phi_hist[t + 1] = theta[:, sched.tracks], phi
    if not record:
        theta_hist[0], phi_hist[0] = theta[:, sched.tracks], phi
    return theta_hist, phi_hist, track_diverged[sched.tracks]


def _stop(escaped, step, track_diverged, starts, theta, buf, second, phi, tracks) -> None:
    """Record newly diverged runs and park them at their start so no inf/NaN spreads."""
    new = escaped & (track_diverged == 0)
    track_diverged[new] = step
    for track, n in zip(*np.nonzero(escaped)):
        theta[:, track, n] = starts[n]
        buf[:, track, n] = second[:, track, n] = 0.0
        phi[:, tracks == track, n] = starts[n][:, None]


def simulate(config: SimConfig, n_seeds: int = 1) -> Simulation:
    """All methods of ``config`` from one start: paths, losses, switches, divergence.

    With ``n_seeds`` > 1 the same run is repeated, in the same vectorised pass, with noise
    seeds ``seed … seed + n_seeds − 1``; ``Simulation.spread`` then summarises them all
    (the paths shown are those of ``seed``).
    """
    config.validate()
    land = get_landscape(config.landscape)
    requested = config.start or land.start
    start, clamped = land.clamp(requested)
    notices = []
    if clamped:
        notices.append(f"The start ({requested[0]:g}, {requested[1]:g}) lies outside the domain of "
                       f"{land.name}; it was moved to ({start[0]:g}, {start[1]:g}).")
    starts, seeds = np.repeat([start], n_seeds, axis=0), np.arange(config.seed, config.seed + n_seeds)
    theta, phi, diverged = _run(land, config, starts, draw_noise(seeds, config.steps), record=True)
    sched = _schedule(config)
    paths = {}
    for i, method in enumerate(config.methods):
        k = int(diverged[i, 0])
        n = k if k else config.steps + 1                          # keep steps 0 … k − 1
        switch_steps = np.nonzero(sched.switch[:, i])[0] + 1
        paths[method] = _path(land, method, theta[:n, :, i, 0], phi[:n, :, i, 0],
                              switch_steps[switch_steps < n], k or None)
    spread = _basin_map(land, config, starts, seeds, phi[-1], diverged)
    return Simulation(config, start, paths, spread, notices)


def many_starts(config: SimConfig, n_starts: int = 128) -> BasinMap:
    """The same simulation from ``n_starts`` random starts at once: where does each method end?

    The starts are uniform over the domain (seeded by ``config.seed``); run i uses noise
    seed ``config.seed + i``.
    """
    config.validate()
    land = get_landscape(config.landscape)
    xmin, xmax, ymin, ymax = land.domain
    starts = np.random.default_rng([config.seed, n_starts]).uniform((xmin, ymin), (xmax, ymax), (n_starts, 2))
    seeds = np.arange(config.seed, config.seed + n_starts)
    _, phi, diverged = _run(land, config, starts, draw_noise(seeds, config.steps), record=False)
    return _basin_map(land, config, starts, seeds, phi[0], diverged)


def _basin_map(land, config, starts, seeds, phi_final, diverged) -> BasinMap:
    """Summarise final states ``phi_final`` (2, M, N) and divergence steps (M, N) per method."""
    ends, losses, basins, div = {}, {}, {}, {}
    for i, method in enumerate(config.methods):
        end = phi_final[:, i, :].T
        ok = diverged[i] == 0
        ends[method] = end
        losses[method] = np.where(ok, land.loss_numpy(end[:, 0], end[:, 1]), np.inf)
        basins[method] = np.where(ok, land.nearest_minimum(end), -1)
        div[method] = np.where(ok, -1, diverged[i])
    return BasinMap(config.landscape, starts, seeds, ends, losses, basins, div)
