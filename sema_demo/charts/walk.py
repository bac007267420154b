"""The Home page's figure: θ and φ of a one-parameter noisy walk."""
from __future__ import annotations

import altair as alt
import pandas as pd

from ..walk import Walk
from .style import METHOD_COLORS


def walk_frame(walk: Walk) -> pd.DataFrame:
    series = {
        "SGD θ": walk.sgd,
        "EMA φ": walk.ema,
        "SEMA θ": walk.sema_theta,
    }
    frames = [pd.DataFrame({"step": walk.step, "weight": v, "series": k}) for k, v in series.items()]
    return pd.concat(frames, ignore_index=True)


def walk_chart(walk: Walk, height: int = 320) -> alt.Chart:
    """Lines for SGD's θ, EMA's φ and SEMA's θ, with the switches as dashed rules."""
    domain = ["SGD θ", "EMA φ", "SEMA θ"]
    colors = [METHOD_COLORS["sgd"], METHOD_COLORS["ema"], METHOD_COLORS["sema"]]
    lines = alt.Chart(walk_frame(walk)).mark_line(strokeWidth=2).encode(
        x=alt.X("step:Q", title="optimizer step"),
        y=alt.Y("weight:Q", title="weight θ (the minimum is at 0)"),
        color=alt.Color("series:N", scale=alt.Scale(domain=domain, range=colors), title=None,
                        legend=alt.Legend(orient="top")),
        strokeWidth=alt.condition(alt.datum.series == "SGD θ", alt.value(1.2), alt.value(2.5)),
        tooltip=["series", "step", alt.Tooltip("weight:Q", format=".3f")],
    )
    rules = alt.Chart(pd.DataFrame({"step": walk.switch_steps})).mark_rule(
        strokeDash=[4, 4], color=METHOD_COLORS["sema"], opacity=0.5).encode(x="step:Q")
    zero = alt.Chart(pd.DataFrame({"y": [0.0]})).mark_rule(color="black", opacity=0.3).encode(y="y:Q")
    return (zero + rules + lines).properties(height=height)
