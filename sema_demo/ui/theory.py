"""The theory page's state, presets, cached computation and its numbers put into words."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import streamlit as st

from ..theory import (DIVERGENCE_FACTOR, NQM, SCHEDULES, SERIES_NAMES, Curves, MonteCarlo, RatioMap, Summary,
                      default_map, exact_curves, growth_per_step, monte_carlo, steady_state)
from .common import Param
from .jobs import heavy_job

LR_CHOICES = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0)
SWITCH_CHOICES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000)
BATCH_CHOICES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
CONDITION_CHOICES = (1, 3, 10, 30, 100, 300, 1000, 10_000)
DIM_CHOICES = (1, 2, 5, 10, 20, 50, 100, 200, 500)
STEP_CHOICES = (100, 200, 500, 1000, 2000, 5000, 10_000)
SAMPLE_CHOICES = (0, 20, 50, 100, 200, 500)
SCHEDULE_NAMES = {"constant": "constant", "step": "step ÷10, ÷100", "cosine": "cosine to 0"}
MC_BUDGET = 3e7   # samples × dimensions × steps simulated per rerun (about half a second on one core)

# Presets: every one sets the whole model, so a click reproduces the case exactly.  The
# verdicts in their help texts were read off exact_curves at these settings (1000 steps)
# and are checked by tests/test_theory_page.py.
_BASE = {"nqm_batch": 16, "nqm_cond": 100, "nqm_dim": 100, "nqm_steps": 1000, "nqm_schedule": "constant"}
PRESETS = {
    "✅ SEMA helps": {**_BASE, "nqm_lr": 0.5, "nqm_beta": 0.9, "nqm_alpha": 0.95, "nqm_switch": 10},
    "🟰 SEMA = EMA": {**_BASE, "nqm_lr": 0.5, "nqm_beta": 0.9, "nqm_alpha": 0.95, "nqm_switch": 500},
    "❌ SEMA hurts": {**_BASE, "nqm_lr": 0.1, "nqm_beta": 0.0, "nqm_alpha": 0.99, "nqm_switch": 100},
    "📉 Cosine decay": {**_BASE, "nqm_lr": 0.5, "nqm_beta": 0.9, "nqm_alpha": 0.95, "nqm_switch": 10,
                       "nqm_schedule": "cosine"},
    "💥 Unstable lr": {**_BASE, "nqm_lr": 4.0, "nqm_beta": 0.9, "nqm_alpha": 0.95, "nqm_switch": 10},
}
PRESET_HELP = {
    "✅ SEMA helps": "Noisy heavy ball at a constant rate, a switch every 10 steps, EMA horizon 20 steps: SEMA "
                    "ends about 1.8× below EMA and 10× below constant-rate SGD (which sits at its noise floor).",
    "🟰 SEMA = EMA": "A switch every 500 steps with a 20-step EMA horizon: the φ curves coincide.",
    "❌ SEMA hurts": "Slow plain SGD (small η, no momentum): φ lags θ, so each switch pulls θ back and SEMA "
                    "ends about 5× above EMA and SGD.",
    "📉 Cosine decay": "The same run with the rate decayed to 0 (cosine): SGD anneals its own noise, so its 10× "
                      "gap closes to about 2×, and EMA ends level with SGD; SEMA still ends lowest.",
    "💥 Unstable lr": "η = 4 is beyond the heavy-ball stability bound 2(1 + β)/h_max = 3.8: the loss grows.",
}
_DEFAULT = PRESETS["✅ SEMA helps"]
PARAMS = {
    "nqm_lr": Param(_DEFAULT["nqm_lr"], choices=LR_CHOICES),
    "nqm_beta": Param(_DEFAULT["nqm_beta"], lo=0.0, hi=0.99),
    "nqm_alpha": Param(_DEFAULT["nqm_alpha"], lo=0.0, hi=0.99999),      # any α: a map cell may set it
    "nqm_switch": Param(_DEFAULT["nqm_switch"], lo=1, hi=SWITCH_CHOICES[-1]),
    "nqm_batch": Param(_DEFAULT["nqm_batch"], choices=BATCH_CHOICES),
    "nqm_cond": Param(_DEFAULT["nqm_cond"], choices=CONDITION_CHOICES),
    "nqm_dim": Param(_DEFAULT["nqm_dim"], choices=DIM_CHOICES),
    "nqm_steps": Param(_DEFAULT["nqm_steps"], choices=STEP_CHOICES),
    "nqm_samples": Param(100, choices=SAMPLE_CHOICES),
    "nqm_seed": Param(0, lo=0, hi=10_000),
    "nqm_logx": Param(False),
    "nqm_schedule": Param("constant", choices=SCHEDULES),
}


def model_from_values(values) -> NQM:
    """The model a set of control values (session state or a preset) describes."""
    return NQM(dim=values["nqm_dim"], condition=float(values["nqm_cond"]), batch_size=float(values["nqm_batch"]),
               lr=values["nqm_lr"], beta=float(values["nqm_beta"]), alpha=values["nqm_alpha"],
               switch_every=values["nqm_switch"], steps=values["nqm_steps"],
               schedule=values.get("nqm_schedule", "constant"))


def affordable_samples(cfg: NQM, requested: int) -> int:
    """Fewer Monte-Carlo runs for big models, so that a rerun stays well under a second."""
    if requested == 0:
        return 0
    return int(min(requested, max(10, MC_BUDGET // (cfg.dim * cfg.steps))))


@st.cache_data(max_entries=64, show_spinner="Computing the moments and simulating …")
def compute(cfg: NQM, samples: int, seed: int) -> tuple[Curves, MonteCarlo | None, dict[str, float]]:
    """Exact curves, Monte-Carlo runs (None when samples = 0) and steady states, cached per setting.

    The work takes a slot of the server-wide job queue; inside the cached function, so that only
    a cache miss can wait behind other students' work.
    """
    with heavy_job("computations"):
        return exact_curves(cfg), monte_carlo(cfg, samples, seed) if samples else None, steady_state(cfg)


def _loss(value: float) -> str:
    return f"{value:.3g}"


def _when(step: int | None) -> str:
    return "never" if step is None else f"at step {step:,}"


def unstable_text(cfg: NQM, curves: Curves) -> str:
    """The bold "unstable: loss grows" message, with the numbers behind it."""
    growth = growth_per_step(cfg)["sgd"]
    blown = ", ".join(f"{SERIES_NAMES[s]} at step {k:,}" for s, k in curves.diverged.items()) or "none yet"
    return (f"**unstable: loss grows.** η = {cfg.lr:g} is beyond the heavy-ball stability bound "
            f"2(1 + β)/h_max = {cfg.max_stable_lr:.3g}: along the steepest direction the mean is multiplied by "
            f"{growth:.2f} per step. Passed {DIVERGENCE_FACTOR:,.0f} × the starting loss: {blown}. "
            "The chart shows the growth up to there; lower η to get a converging run.")


def sgd_name(cfg: NQM) -> str:
    """SGD as the page must name it: at a constant rate SGD stays at its noise floor."""
    return "constant-rate SGD" if cfg.schedule == "constant" else f"SGD (same {cfg.schedule} schedule)"


def final_step_text(cfg: NQM) -> str:
    """Which step the "final" numbers are taken at, and whether SEMA has just switched there."""
    if cfg.switch_every > cfg.steps:
        return f"step {cfg.steps:,}; SEMA never switches in this run"
    since = cfg.steps % cfg.switch_every
    return (f"step {cfg.steps:,}, a switch step (SEMA θ = φ there)" if since == 0 else
            f"step {cfg.steps:,}, {since:,} steps after SEMA's last switch")


def schedule_note(cfg: NQM, final: dict[str, float]) -> str:
    """The confound of comparing with SGD: at a constant rate SGD ends at its noise floor."""
    if cfg.schedule == "constant":
        return ("SGD keeps its constant rate, so it ends at its **noise floor**: part of any gap to SGD is the "
                "missing rate decay, not averaging. Pick a step or cosine schedule to see how much is left.")
    rate = cfg.learning_rates()[-1]
    gap = final["sgd"] / final["sema"]
    how = f"{gap:.2g}× below" if gap >= 1 else f"{1 / gap:.2g}× above"
    return (f"With the {cfg.schedule} schedule (last step at η = {rate:.2g}) SGD anneals its own noise; SEMA ends "
            f"{how} it: what averaging adds on top of the decay.")


def notice_text(cfg: NQM, summary: Summary) -> str:
    """What to notice, worded from the computed numbers (and honest when SEMA does not help)."""
    f, reach = summary.final, summary.reach
    if not all(math.isfinite(f[s]) for s in ("sgd", "ema", "sema")):
        return ("Nothing converges: the run is unstable, so every curve grows until it is cut off. "
                "Averaging a diverging θ cannot save it; EMA and SEMA only blow up a little later.")
    sgd = sgd_name(cfg)
    lines = [f"After {cfg.steps:,} steps the expected loss is **SGD {_loss(f['sgd'])}**, "
             f"**EMA {_loss(f['ema'])}**, **SEMA {_loss(f['sema'])}** (the averaged weights φ), taken at "
             f"{final_step_text(cfg)}."]
    if cfg.alpha == 0:
        lines.append("With α = 0 the average *is* the live weights, so EMA and SEMA are SGD.")
    elif cfg.switch_every > cfg.steps:
        lines.append(f"K = {cfg.switch_every:,} is longer than the run: SEMA never switches, so it is EMA.")
    ratio = f["sema"] / f["ema"]
    if ratio < 0.95:
        lines.append(f"SEMA ends **{1 / ratio:.2g}× lower than EMA**" + (
            f" and {f['sgd'] / f['sema']:.2g}× lower than {sgd}." if f["sema"] < f["sgd"] else
            f", but {sgd} ends lower still ({f['sema'] / f['sgd']:.2g}× below SEMA)."))
    elif ratio > 1.05:
        why = (" Its loss is still mostly bias: each switch copies the lagging average back into θ and undoes "
               "progress." if summary.bias_share["sema"] > 0.5 else "")
        steady = summary.steady
        if "sema" in steady and steady["sema"] < steady["ema"]:
            why += (f" Its long-run floor is lower ({_loss(steady['sema'])} vs EMA's {_loss(steady['ema'])}), "
                    "but it needs far more steps to get there.")
        lines.append(f"Here **SEMA does not help**: it ends {ratio:.2g}× *higher* than EMA." + why)
    elif cfg.alpha > 0 and cfg.switch_every <= cfg.steps:
        lines.append("SEMA and EMA end within 5 % of each other: switching changes almost nothing here.")
    speed = f"Time to reach {_loss(summary.level)} (2× the best final loss): SGD {_when(reach['sgd'])}, " \
            f"EMA {_when(reach['ema'])}, SEMA {_when(reach['sema'])}"
    if reach["ema"] is not None and reach["sema"] is not None and reach["ema"] != reach["sema"]:
        gap = reach["sema"] - reach["ema"]
        speed += f": SEMA is {abs(gap):,} steps {'behind' if gap > 0 else 'ahead of'} EMA"
    lines.append(speed + ".")
    if cfg.alpha > 0:
        lines.append(schedule_note(cfg, f))
    share = summary.bias_share
    parts = [f"{SERIES_NAMES[s]} {100 * (1 - share[s]):.0f} %" for s in ("sgd", "ema", "sema")
             if math.isfinite(share[s])]
    lines.append("Share of the final loss that is *variance* (noise rather than lag): " + ", ".join(parts) + ".")
    steady = summary.steady
    if steady:
        lines.append("In the long run (dashed lines): SGD " + _loss(steady["sgd"]) + ", EMA " + _loss(steady["ema"])
                     + ((", SEMA " + _loss(steady["sema"]) + " (averaged over a switch period)") if "sema" in steady
                        else "") + ".")
    return "\n".join(f"- {line}" for line in lines)


# ------------------------------------------------------------------------------ the map tab

MAP_SIZE = 30                 # cells per axis at the default model size
MAP_BUDGET = 30 * 30 * 100 * 1000   # cells × dimensions × steps of the default map (about a second)
MAP_VIEWS = {"SEMA ÷ EMA, final loss": ("ema", "final"), "SEMA ÷ SGD, final loss": ("sgd", "final"),
             "SEMA ÷ EMA, steps to the level": ("ema", "steps"), "SEMA ÷ SGD, steps to the level": ("sgd", "steps")}
# The lower tabs; the open one is kept in the link as ?nqm_tab= (common.follow_tab).
TABS = {"parts": "Bias and variance", "map": "🗺️ Map: when does SEMA help?"}
MAP_PARAMS = {"nqm_map_view": Param(next(iter(MAP_VIEWS)), choices=tuple(MAP_VIEWS)),
              "nqm_tab": Param("parts", choices=tuple(TABS))}


def map_size(cfg: NQM) -> int:
    """Fewer cells for bigger models, so that the map stays about as fast as the default one."""
    return int(max(8, min(MAP_SIZE, math.sqrt(MAP_BUDGET / (cfg.dim * cfg.steps)))))


def map_base(cfg: NQM) -> NQM:
    """The model with α and K left out of the cache key (the map sweeps them), at a constant rate:
    the map's fast algebra needs one step map for the whole run."""
    return replace(cfg, alpha=0.0, switch_every=1, schedule="constant")


@st.cache_data(max_entries=16, show_spinner="Computing the map: every cell exactly …")
def compute_map(base: NQM, size: int) -> RatioMap:
    """The exact ratio map of this model, cached per setting; a slot of the job queue."""
    with heavy_job("computations"):
        return default_map(base, size)


def load_cell(horizon_ratio: float, switch_every: int) -> None:
    """Put one cell's α and K into the controls of the curves (a callback, before the widgets)."""
    st.session_state.nqm_alpha = float(1 - 1 / (horizon_ratio * switch_every))
    st.session_state.nqm_switch = int(switch_every)


def load_selected_cell(chart_key: str) -> None:
    """on_select callback of the map chart: load the clicked cell."""
    picked = (st.session_state.get(chart_key) or {}).get("selection", {}).get("cell") or []
    if picked and "horizon_ratio" in picked[0] and "switch_every" in picked[0]:
        cell = picked[0]
        if cell["horizon_ratio"] * cell["switch_every"] >= 1:
            load_cell(float(cell["horizon_ratio"]), int(cell["switch_every"]))


def load_picked_cell() -> None:
    """Button callback: load the cell chosen with the two pickers."""
    load_cell(float(st.session_state.nqm_map_ratio), int(st.session_state.nqm_map_k))


def option_list(choices, current) -> list:
    """A slider's standard choices plus the current value (which a map cell may have set)."""
    return sorted(set(choices) | {current})


def map_notice(ratio_map: RatioMap, other: str, kind: str) -> str:
    """Where SEMA helps on this map, in words, from the computed ratios."""
    ratio = ratio_map.ratio(other, kind)
    valid = np.isfinite(ratio) | np.isinf(ratio)
    helps, hurts = np.sum(ratio < 0.95), np.sum(ratio > 1.05)
    name = "EMA" if other == "ema" else "SGD"
    what = "ends lower" if kind == "final" else "gets to the level sooner"
    lines = [f"Of {int(valid.sum())} cells, SEMA {what} than {name} by more than 5 % in **{int(helps)}** "
             f"and is worse by more than 5 % in **{int(hurts)}**."]
    finite = np.where(np.isfinite(ratio), ratio, np.nan)
    if np.isfinite(finite).any():
        i, j = np.unravel_index(np.nanargmin(finite), finite.shape)
        lines.append(f"Best cell: K = {ratio_map.switch_every[j]:,}, horizon {ratio_map.horizon_ratios[i]:.2g} × K "
                     f"(α = {ratio_map.alpha[i, j]:.4g}): ratio {finite[i, j]:.2g}.")
    lines.append("Blue: SEMA better; red: worse; the black line is ratio 1. Click a cell (or pick one below) to "
                 "load its α and K into the curves above.")
    return "\n".join(f"- {line}" for line in lines)
