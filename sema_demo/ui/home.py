"""Home's state, presets and its numbers put into words (computed, never typed).

The presets were chosen on the walk's own exact model (``walk.walk_model``, the theory
module's noisy quadratic in one dimension): "helps" is a noise-dominated cell with K below the
horizon, "hurts" a lag-dominated one (the average still far behind θ when it is copied back),
"rare switches" a K far beyond the horizon.  tests/test_app.py checks every preset's claim
against that model and against the seeds.
"""
from __future__ import annotations

import math

import streamlit as st

from ..charts.walk import loss_band_figure, walk_figure
from ..stats import verdict
from ..theory import NQM, Regime, regime
from ..walk import Walks, WalkSummary, noisy_walks, summarize_walks, walk_model
from . import display
from .common import Param, figure_webp, inline_image

STEPS = 300
SEED_CHOICES = (1, 3, 5, 10, 20, 50, 100, 200)
ALPHA_CHOICES = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995)

PRESETS = {
    "✅ SEMA helps": {"home_alpha": 0.95, "home_epoch": 10, "home_noise": 2.0},
    "⚠️ EMA lags": {"home_alpha": 0.99, "home_epoch": 50, "home_noise": 1.0},
    "🟰 Rare switches": {"home_alpha": 0.95, "home_epoch": 150, "home_noise": 2.0},
    "α = 0": {"home_alpha": 0.0, "home_epoch": 10, "home_noise": 2.0},
}
# What each preset asks; the page answers it from the numbers.
QUESTIONS = {
    "✅ SEMA helps": "Does SEMA's average end lower than EMA's and than SGD?",
    "⚠️ EMA lags": "What does a switch do while the average still lags behind θ?",
    "🟰 Rare switches": "Does switching matter when it happens rarely?",
    "α = 0": "Is anything different without averaging?",
}
_DEFAULT = PRESETS["✅ SEMA helps"]
PARAMS = {
    "home_alpha": Param(_DEFAULT["home_alpha"], choices=ALPHA_CHOICES),
    "home_epoch": Param(_DEFAULT["home_epoch"], lo=5, hi=300),
    "home_noise": Param(_DEFAULT["home_noise"], lo=0.0, hi=5.0),
    "home_seeds": Param(50, choices=SEED_CHOICES),
    "home_seed": Param(0, lo=0, hi=10_000),
}


def model_of(values) -> NQM:
    """The exact model of the walk the controls describe."""
    return walk_model(values["home_alpha"], values["home_epoch"], values["home_noise"], steps=STEPS)


def preset_regime(name: str) -> Regime:
    """The exact regime of a preset on the walk's own model."""
    return regime(model_of(PRESETS[name]))


def preset_help(name: str) -> str:
    """A preset button's tooltip: its question and the exact model's answer."""
    return f"{QUESTIONS[name]} {preset_regime(name).sentence()}".replace("**", "")


def _f(value: float) -> str:
    return f"{value:.3g}"


def comparisons(summary: WalkSummary) -> dict[str, object]:
    """Paired verdicts over seeds (lower loss is better): SEMA φ vs EMA φ and vs SGD θ, EMA φ vs SGD θ."""
    p = summary.per_seed
    return {"sema_ema": verdict(p["sema_phi"], p["ema"], higher_is_better=False),
            "sema_sgd": verdict(p["sema_phi"], p["sgd"], higher_is_better=False),
            "ema_sgd": verdict(p["ema"], p["sgd"], higher_is_better=False)}


def window_text(summary: WalkSummary) -> str:
    return f"mean loss over steps {summary.window[0]}–{summary.window[1]}"


def answer(preset: str | None, summary: WalkSummary, alpha: float, switch_every: int) -> str:
    """The active preset's question answered from the seeds (or the general comparison)."""
    v = comparisons(summary)
    what = window_text(summary)
    sema_ema = v["sema_ema"].sentence("SEMA φ", "EMA φ", what, digits=3)
    sema_sgd = v["sema_sgd"].sentence("SEMA φ", "SGD θ", what, digits=3)
    if preset == "⚠️ EMA lags":
        return f"**{QUESTIONS[preset]}** {switch_text(summary, alpha, switch_every)} {sema_ema}"
    if preset is not None:
        return f"**{QUESTIONS[preset]}** {sema_ema} {sema_sgd}"
    return f"{sema_ema} {sema_sgd}"


def switch_text(summary: WalkSummary, alpha: float, switch_every: int) -> str:
    """What the first switch and the late switches do to SEMA's θ."""
    if alpha == 0:
        return "With α = 0 a switch copies θ onto itself: nothing moves."
    if switch_every >= STEPS + 1 or math.isnan(summary.first_jump[0]):
        return f"SEMA does not switch in {STEPS} steps."
    before, after = summary.first_jump
    toward = "towards 0" if abs(after) < abs(before) else "away from 0, back to the lagging average"
    text = (f"At the first switch (step {switch_every}) the drawn seed's θ jumps from {before:.2f} to {after:.2f}: "
            f"{toward}.")
    if math.isfinite(summary.jump):
        how = "lowers" if summary.jump < 1 else "raises"
        text += (f" In steps {summary.window[0]}–{summary.window[1]} a switch {how} SEMA θ's mean loss "
                 f"(× {summary.jump:.2g} over the seeds): there the average sits "
                 f"{'closer to' if summary.jump < 1 else 'further from'} the minimum than θ.")
    return text


def notice(summary: WalkSummary, walks: Walks, alpha: float, switch_every: int) -> str:
    """What to notice, from the current numbers."""
    horizon = 1 / (1 - alpha)
    lines = []
    if alpha == 0:
        lines.append("With α = 0 the average *is* θ: EMA φ and SEMA φ lie on the SGD path, the lines coincide.")
    elif summary.lag_ratio > 2:
        lines.append(f"The blue EMA φ **trails** θ: at step {summary.lag_step}, when SGD's mean loss is within 2× of "
                     f"its final level, EMA's is {summary.lag_ratio:.2g}× higher (horizon ≈ {horizon:,.0f} steps).")
    else:
        lines.append(f"The blue EMA φ keeps up with θ: at step {summary.lag_step}, when SGD's mean loss is within 2× of "
                     f"its final level, EMA's is {summary.lag_ratio:.2g}× SGD's (horizon ≈ {horizon:,.0f} steps, short "
                     "next to the descent).")
    lines.append(switch_text(summary, alpha, switch_every))
    means = {s: float(summary.per_seed[s].mean()) for s in ("sgd", "ema", "sema_phi")}
    order = sorted(means, key=means.get)
    names = {"sgd": "SGD θ", "ema": "EMA φ", "sema_phi": "SEMA φ"}
    lines.append(f"Over {walks.sgd.shape[1]} seeds ({window_text(summary)}): " +
                 ", ".join(f"{names[s]} {_f(means[s])}" for s in order) + " (lowest first).")
    return "\n".join(f"- {line}" for line in lines)


# A class opens Home at once, with the same defaults, and moves the same sliders: every result
# below is a pure function of the controls (the walks are seeded), so it is computed once per
# setting and server process and then served from the cache to every student.
@st.cache_data(max_entries=256, show_spinner=False)
def walks_of(alpha: float, steps_per_epoch: int, noise: float, seeds: int, seed: int) -> tuple[Walks, WalkSummary]:
    """The seeds' walks and their summary for one setting of the controls."""
    walks = noisy_walks(seeds, steps=STEPS, momentum=alpha, steps_per_epoch=steps_per_epoch, noise=noise, seed=seed)
    return walks, summarize_walks(walks)


@st.cache_data(max_entries=256, show_spinner=False)
def chart_pictures(alpha: float, steps_per_epoch: int, noise: float, seeds: int, seed: int,
                   projector: bool) -> tuple[str, str]:
    """Home's two figures (the walk of the first seed; the loss band over seeds) as ``data:`` URLs
    of lossless WebP pictures at twice their drawn size (sharp on a high-density screen).

    Pictures, not Vega-Lite charts: a newcomer's browser then loads no chart library for Home
    (issue 16: on this 2-core machine Vega's chunks, compile and draw were about a second of a new
    visitor's Home, idle, and more under a class's load), and the class shares one drawing per setting."""
    walks, _ = walks_of(alpha, steps_per_epoch, noise, seeds, seed)
    scale, tall = (display.PROJECTOR_FONT_SCALE, display.PROJECTOR_SCALE) if projector else (1.0, 1.0)
    figures = (walk_figure(walks.run(0), height=2.6 * tall, font_scale=scale),
               loss_band_figure(walks, height=2.3 * tall, font_scale=scale))
    return tuple(inline_image(figure_webp(figure), "image/webp") for figure in figures)
