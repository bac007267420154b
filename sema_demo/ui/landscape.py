"""Streamlit helpers of the landscape page: the one-click default run and cached measurements.

Measuring is the slow part (slices, Hessian products), so results are kept in session
state per (run, settings); moving a display-only control (the colour clip) reuses them.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import pandas as pd
import streamlit as st
import torch

from ..charts.style import METHOD_NAMES
from ..datasets.toy import toy_data
from ..models import mlp
from ..sharpness import Comparison, SharpnessSettings, compare_methods, flatness_summary, interpolation_frame
from ..training import Trainer, TrainConfig
from .jobs import heavy_job
from .runs import TrainedRun, remember_run

# The quick default: noisy two moons (a real loss floor, not a separable zero-loss fit), a small
# tanh MLP and 3 seeds, trained by the shared engine in a few seconds.  α = 0.95 keeps the EMA
# horizon (≈ 20 steps) within one epoch (25 steps), so SEMA's switch does not throw progress away.
QUICK_LABEL = "Quick default · Two moons (noise 0.5) · MLP 2-32-32-2 tanh · 3 seeds"
QUICK_CONFIG = TrainConfig(methods=("sgd", "ema", "sema"), seeds=(0, 1, 2), epochs=30, lr=0.05,
                           ema_momentum=0.95, record_paths=True)
_CACHE = "landscape::measured"
MAX_CACHED = 8
LARGE_NETWORK = 50_000   # parameters; larger networks are measured on request, not on every change


def train_quick_default() -> TrainedRun:
    """Train the quick default with the shared engine and keep it among the session's runs."""
    with st.spinner("Training SGD, EMA and SEMA on two moons (3 seeds)…"):
        data = toy_data("moons", n=1000, noise=0.5, seed=0)
        model_fn = partial(mlp, 2, (32, 32), 2, "tanh")
        trainer = Trainer(data, model_fn, QUICK_CONFIG)
        with heavy_job("training"):
            trainer.run()
    run = TrainedRun(QUICK_LABEL, "landscape", data, model_fn, QUICK_CONFIG, trainer.models(), trainer.recorder)
    remember_run(run)
    return run


def retrain_quick_default() -> None:
    """Button callback: train the quick default afresh and select it."""
    train_quick_default()
    st.session_state.landscape_run = QUICK_LABEL


def probe_data(run: TrainedRun, n_points: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed, seeded subset of the run's training data (no augmentation)."""
    x, y = run.data.x_train, run.data.y_train
    keep = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:n_points]
    return x[keep], y[keep]


def network_passes(run: TrainedRun, settings: SharpnessSettings) -> int:
    """About how many forward (+ backward) passes over the data measuring ``run`` takes."""
    seeds_per_method = {}
    for method, _ in run.models:
        seeds_per_method[method] = seeds_per_method.get(method, 0) + 1
    per_network = (settings.n_directions * settings.steps_1d + settings.n_perturbations
                   + 3 * (settings.max_hvps + settings.hutchinson_samples))   # an HVP ≈ 3 passes
    return len(run.models) * per_network + len(seeds_per_method) * settings.steps_2d ** 2


def is_cached(run: TrainedRun, settings: SharpnessSettings, n_points: int, start: str, end: str) -> bool:
    return _key(run, settings, n_points, start, end) in st.session_state.get(_CACHE, {})


def _key(run: TrainedRun, settings: SharpnessSettings, n_points: int, start: str, end: str) -> tuple:
    return run.label, id(run.models), settings, n_points, start, end


@dataclass
class Measured:
    comparison: Comparison
    path: pd.DataFrame          # interpolation frame (seed, t, loss)
    n_points: int


def measured(run: TrainedRun, settings: SharpnessSettings, n_points: int, start: str, end: str) -> Measured:
    """Every measure of every network of ``run``, computed once per settings (with a progress bar)."""
    cache: dict = st.session_state.setdefault(_CACHE, {})
    key = _key(run, settings, n_points, start, end)
    if key not in cache:
        x, y = probe_data(run, n_points)
        bar = st.progress(0.0, text="Measuring…")

        def progress(done: int, total: int, label: str) -> None:
            method, _, seed = label.partition(" · ")
            bar.progress(done / (total + 1), text=f"Measuring {METHOD_NAMES.get(method, method)} · {seed} "
                                                  f"({done + 1} of {total})…")

        with heavy_job("measurements"):
            comparison = compare_methods(run.models, x, y, settings, progress=progress)
            bar.progress(1.0, text="Interpolating between solutions…")
            path = (interpolation_frame(run.models, start, end, x, y, torch.linspace(-0.5, 1.5, 41))
                    if start != end else pd.DataFrame(columns=["seed", "t", "loss"]))
        bar.empty()
        cache[key] = Measured(comparison, path, len(x))
        while len(cache) > MAX_CACHED:
            cache.pop(next(iter(cache)))
    return cache[key]


def notice_text(rows: pd.DataFrame, path: pd.DataFrame, start: str, end: str, rise: float, rho: float) -> str:
    """The "What to notice" text, worded from the measured numbers of this run."""
    name = lambda m: METHOD_NAMES.get(m, m)  # noqa: E731
    methods = list(dict.fromkeys(rows["method"]))
    means = rows.groupby("method")[["depth", "width", "perturb_mean"]].mean()
    paragraphs = [
        f"**Depth vs width.** The deepest solution (lowest training loss) is **{name(means['depth'].idxmin())}**; "
        f"the widest (largest radius before the loss rises by Δ = {rise:g}) is **{name(means['width'].idxmax())}**. "
        "The paper's claim: the optimizer is deep but sharp, EMA flat but shallow, SEMA gets both. "
        "Here is what *this* run measured:",
        "\n".join(f"- {line}" for line in flatness_summary(rows, "sgd" if "sgd" in methods else methods[0],
                                                             METHOD_NAMES)),
        f"**Random perturbations** of radius ρ = {rho:g} (every filter moved by {rho:.0%} of its norm) raise the "
        f"loss least for {name(means['perturb_mean'].idxmin())} (+{means['perturb_mean'].min():.3g} on average) "
        f"and most for {name(means['perturb_mean'].idxmax())} (+{means['perturb_mean'].max():.3g}).",
    ]
    if not path.empty:
        curve = path.groupby("t")["loss"].mean()
        inside = curve[(curve.index >= 0) & (curve.index <= 1)]
        barrier = max(float(inside.max() - max(inside.iloc[0], inside.iloc[-1])), 0.0)
        rises = f"rises at most {barrier:.3g} above" if barrier > 0 else "never rises above"
        paragraphs.append(
            f"**Path.** On the straight line from {name(start)} to {name(end)} the loss {rises} the higher end: " +
            (f"less than Δ = {rise:g}, so the two solutions share one basin." if barrier < rise else
             f"more than Δ = {rise:g}: a barrier separates them."))
    return "\n\n".join(p for p in paragraphs if p)
