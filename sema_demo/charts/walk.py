"""The Home page's figures: θ and φ of a one-parameter noisy walk, and its loss over seeds."""
from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from ..walk import Walk, Walks
from .style import METHOD_COLORS

NAMES = {"sgd": "SGD θ", "ema": "EMA φ", "sema_theta": "SEMA θ", "sema_phi": "SEMA φ"}
COLORS = {"sgd": METHOD_COLORS["sgd"], "ema": METHOD_COLORS["ema"], "sema_theta": "#F0A36B",
          "sema_phi": METHOD_COLORS["sema"]}
LOSS_SERIES = ("sgd", "ema", "sema_phi")      # what each method evaluates


def walk_frame(walk: Walk) -> pd.DataFrame:
    frames = [pd.DataFrame({"step": walk.step, "weight": getattr(walk, s), "series": NAMES[s]}) for s in NAMES]
    return pd.concat(frames, ignore_index=True)


def _color(series) -> alt.Color:
    return alt.Color("series:N", scale=alt.Scale(domain=[NAMES[s] for s in series], range=[COLORS[s] for s in series]),
                     title=None, legend=alt.Legend(orient="top", symbolType="stroke", symbolStrokeWidth=3,
                                                 symbolOpacity=1))   # not the band's pale fill


def _switch_rules(steps: np.ndarray) -> alt.Chart:
    return alt.Chart(pd.DataFrame({"step": steps})).mark_rule(
        strokeDash=[4, 4], color=METHOD_COLORS["sema"], opacity=0.35).encode(x="step:Q")


def walk_chart(walk: Walk, height: int = 300) -> alt.LayerChart:
    """SGD's θ, EMA's φ, SEMA's θ (light, dashed: it jumps at every switch) and SEMA's φ (what
    SEMA evaluates), with the switches as dashed rules."""
    domain = [NAMES[s] for s in NAMES]
    lines = alt.Chart(walk_frame(walk)).mark_line().encode(
        x=alt.X("step:Q", title="optimizer step"),
        y=alt.Y("weight:Q", title="weight (the minimum is at 0)"),
        color=_color(NAMES),
        strokeDash=alt.StrokeDash("series:N", scale=alt.Scale(domain=domain, range=[[1, 0], [1, 0], [5, 3], [1, 0]]),
                                  legend=None),
        strokeWidth=alt.StrokeWidth("series:N", scale=alt.Scale(domain=domain, range=[1.2, 2.6, 1.6, 2.6]),
                                    legend=None),
        tooltip=["series", "step", alt.Tooltip("weight:Q", format=".3f")],
    )
    zero = alt.Chart(pd.DataFrame({"y": [0.0]})).mark_rule(color="black", opacity=0.3).encode(y="y:Q")
    return (zero + _switch_rules(walk.switch_steps) + lines).properties(height=height)


def loss_frame(walks: Walks) -> pd.DataFrame:
    """Per step and series: the mean loss over seeds and its 95 % interval (mean ± 1.96 standard errors)."""
    frames = []
    seeds = walks.sgd.shape[1]
    for s in LOSS_SERIES:
        loss = walks.loss(s)
        mean = loss.mean(axis=1)
        half = 1.96 * loss.std(axis=1, ddof=1) / np.sqrt(seeds) if seeds > 1 else np.full_like(mean, np.nan)
        frames.append(pd.DataFrame({"step": walks.step, "series": NAMES[s], "mean": mean,
                                    "low": mean - half, "high": mean + half}))
    return pd.concat(frames, ignore_index=True)


def loss_band_chart(walks: Walks, height: int = 260) -> alt.LayerChart:
    """Loss ½·h·w² of SGD θ, EMA φ and SEMA φ over seeds: the mean (line) and its 95 % interval
    (band; drawn down to a fifth of the mean at most, the log axis cannot show zero)."""
    frame = loss_frame(walks)
    frame["low"] = np.maximum(frame["low"], 0.2 * frame["mean"])
    title = f"loss ½θ², mean of {walks.sgd.shape[1]} seeds (log)"
    y = alt.Scale(type="log")
    base = alt.Chart(frame)               # one dataset for the band and the line: the browser parses it once
    band = base.mark_area(opacity=0.2).encode(
        x="step:Q", y=alt.Y("low:Q", scale=y, title=title), y2="high:Q", color=_color(LOSS_SERIES)
    ).transform_filter("isValid(datum.low) && isValid(datum.high)")
    line = base.mark_line(strokeWidth=2.4).encode(
        x=alt.X("step:Q", title="optimizer step"), y=alt.Y("mean:Q", scale=y, title=title), color=_color(LOSS_SERIES),
        tooltip=["series", "step", alt.Tooltip("mean:Q", title="mean over seeds", format=".3g"),
                 alt.Tooltip("low:Q", title="95 % interval, low", format=".3g"),
                 alt.Tooltip("high:Q", title="95 % interval, high", format=".3g")])
    return (_switch_rules(walks.switch_steps) + band + line).properties(height=height)
