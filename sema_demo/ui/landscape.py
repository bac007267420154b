"""Streamlit helpers of the landscape page: the one-click runs and cached measurements.

Measuring is the slow part (slices, Hessian products), so results are kept in session
state per (run, settings); moving a display-only control (the colour clip) reuses them.
A measurement expected to take longer than ``AUTO_SECONDS`` waits for a click, with the
estimate on the button's notice (:func:`estimate_seconds`).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import time

import pandas as pd
import streamlit as st
import torch
import torch.nn.functional as F

from ..charts.style import METHOD_NAMES
from ..datasets.toy import toy_data
from ..flatness import claim_holds, claim_lines
from ..models import mlp
from ..stats import MIN_SEEDS_TO_TELL
from ..sharpness import Comparison, SharpnessSettings, compare_methods, flatness_summary, interpolation_frame
from ..training import TrainConfig
from ..engine import train_to_end
from .jobs import offloaded
from .runs import TrainedRun, remember_run

# The quick runs this page trains itself, on noisy two moons (a real loss floor, not a separable
# zero-loss fit) with a small tanh MLP: 800 training points, batches of 32, so 25 steps per epoch.
# - "default": 30 epochs, 3 seeds, α = 0.95 (horizon ≈ 20 steps, within one epoch): a few seconds.
# - "paper": the SEMA paper's regime: longer training (100 epochs), a horizon of about one epoch
#   (α = 0.96: 1/(1 − α) = 25 steps = 1 epoch), the linear α warm-up of the official configs
#   (2 epochs), and 5 seeds, the fewest with which a paired interval may call a difference.
QUICK_RUNS = {
    "default": ("Quick default · Two moons (noise 0.5) · MLP 2-32-32-2 tanh · 30 epochs · 3 seeds",
                TrainConfig(methods=("sgd", "ema", "sema"), seeds=(0, 1, 2), epochs=30, lr=0.05,
                            ema_momentum=0.95, record_paths=True)),
    "paper": ("Paper's regime · Two moons (noise 0.5) · MLP 2-32-32-2 tanh · 100 epochs, α = 0.96 "
              "(horizon ≈ 1 epoch), warm-up · 5 seeds",
              TrainConfig(methods=("sgd", "ema", "sema"), seeds=(0, 1, 2, 3, 4), epochs=100, lr=0.05,
                          ema_momentum=0.96, ema_warmup="linear", ema_warmup_epochs=2.0, record_paths=True)),
}
QUICK_LABEL, QUICK_CONFIG = QUICK_RUNS["default"]
QUICK_LABELS = {label for label, _ in QUICK_RUNS.values()}
_CACHE = "landscape::measured"
MAX_CACHED = 8
AUTO_SECONDS = 8.0   # a measurement estimated to take longer waits for a click


def train_quick(kind: str = "default") -> TrainedRun:
    """Train one of QUICK_RUNS with the shared engine and keep it among the session's runs."""
    label, config = QUICK_RUNS[kind]
    with st.spinner(f"Training SGD, EMA and SEMA on two moons ({len(config.seeds)} seeds, "
                    f"{config.epochs} epochs)…"):
        data = toy_data("moons", n=1000, noise=0.5, seed=0)
        model_fn = partial(mlp, 2, (32, 32), 2, "tanh")
        models, recorder = offloaded("training", train_to_end, data, model_fn, config)
    run = TrainedRun(label, "landscape", data, model_fn, config, models, recorder)
    remember_run(run)
    return run


def train_quick_default() -> TrainedRun:
    return train_quick("default")


def use_quick_run() -> None:
    """Preset callback: select the quick run named by ``st.session_state.quick``, training it if needed."""
    kind = st.session_state.get("quick", "default")
    label = QUICK_RUNS[kind][0]
    if label not in st.session_state.get("trained_runs", {}):
        train_quick(kind)
    st.session_state.landscape_run = label


def retrain_quick_default() -> None:
    """Button callback: train the chosen quick run afresh and select it."""
    kind = st.session_state.get("quick", "default")
    train_quick(kind)
    st.session_state.landscape_run = QUICK_RUNS[kind][0]


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


def seconds_per_pass(run: TrainedRun, n_points: int) -> float:
    """The time of one forward and backward pass of the run's network over ``n_points`` examples (timed now)."""
    model = next(iter(run.models.values()))
    x, y = probe_data(run, n_points)
    device = next(model.parameters()).device
    x, y = x.to(device), y.to(device)
    was_training = model.training
    model.eval()
    try:
        times = []
        for _ in range(3):                      # the first pass warms up; keep the fastest
            start = time.perf_counter()
            loss = F.cross_entropy(model(x), y)
            torch.autograd.grad(loss, [p for p in model.parameters() if p.requires_grad])
            times.append(time.perf_counter() - start)
    finally:
        model.train(was_training)
    return min(times)


def estimate_seconds(run: TrainedRun, settings: SharpnessSettings, n_points: int) -> float:
    """About how long measuring ``run`` takes: its passes × one timed pass (batching makes it faster)."""
    return network_passes(run, settings) * seconds_per_pass(run, n_points)


def format_seconds(seconds: float) -> str:
    if seconds < 90:
        return f"about {max(1, round(seconds)):,} s"
    return f"about {seconds / 60:.0f} min"


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

        comparison = offloaded("measurements", compare_methods, run.models, x, y, settings, progress=progress)
        bar.progress(1.0, text="Interpolating between solutions…")
        path = (offloaded("measurements", interpolation_frame, run.models, start, end, x, y,
                          torch.linspace(-0.5, 1.5, 41))
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
        "Each method against SGD (a difference smaller than the seed-to-seed spread is called so):",
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


CLAIM = ("**The paper's claim** (Li et al., 2024, abstract): SEMA helps networks reach optima with "
         "*a better trade-off between flatness and sharpness* than the plain optimizer and EMA. It does not "
         "claim that SEMA is both the deepest and the flattest.")
RULE = ("Rule: per rival, two paired comparisons over the seeds both methods trained (95 % paired t): depth = "
        "training loss, flatness = λ_max (both lower is better). *Better trade-off*: better on one, not worse on "
        "the other; *worse*: worse on one, not better on the other; *different*: better on one, worse on the "
        f"other. Fewer than {MIN_SEEDS_TO_TELL} seeds: too few to tell.")
VERDICTS = {"yes": "✅ **This run agrees with the claim**: SEMA has a better trade-off than every rival.",
            "no": "❌ **This run does not show the claim**: SEMA's trade-off is worse than a rival's.",
            "partly": "➖ **This run shows the claim only in part**: SEMA is not better than every rival "
                      "(a tie, or a different trade-off).",
            "too few": "❔ **Too few seeds to tell** whether this run shows the claim."}


def claim_text(rows: pd.DataFrame) -> tuple[str, str]:
    """(markdown of the claim box, its verdict key), computed from this run's per-seed numbers."""
    if not {"sema"} <= set(rows["method"]) or len(set(rows["method"])) < 2:
        return (CLAIM + "\n\nThis run has no SEMA and a rival to compare, so it cannot test the claim.", "too few")
    seeds = ", ".join(str(s) for s in sorted(set(rows.loc[rows["method"] == "sema", "seed"])))
    holds = claim_holds(rows)
    body = [CLAIM, f"**What this run measured** (seeds {seeds}):",
            "\n".join(f"- {line}" for line in claim_lines(rows, METHOD_NAMES)), VERDICTS[holds], RULE]
    return "\n\n".join(body), holds


def claim_box(rows: pd.DataFrame) -> str:
    """The claim and what this run measured, in a box coloured by the computed verdict; returns the verdict."""
    text, holds = claim_text(rows)
    box = {"yes": st.success, "no": st.warning, "partly": st.warning, "too few": st.info}[holds]
    box(text, icon="📄")
    return holds


def measures_table(table: pd.DataFrame) -> pd.DataFrame:
    """summary_table turned on its side: one row per measure, one column per method (fits a projector)."""
    side = table.set_index("Method").T
    side.columns.name = None
    return side.astype(str).rename_axis("Measure").reset_index()
