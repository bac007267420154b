"""Figures of the scoreboard and of the measured map: paired effects with their 95 % intervals."""
from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

VERDICT_COLORS = {"supported": "#009E73", "not supported": "#D55E00", "inconclusive": "#7f7f7f"}


def effects_frame(report: dict) -> pd.DataFrame:
    """One row per claim row: id, claim, measure, effect, low, high, seeds, verdict."""
    return pd.DataFrame([{"id": c["id"], "claim": c["claim"], "measure": c["measure"], "effect": c["effect"],
                          "low": c["ci"][0], "high": c["ci"][1], "seeds": c["seeds"], "verdict": c["verdict"]}
                         for c in report["claims"]])


def effects_chart(report: dict, height_per_row: int = 30) -> alt.LayerChart:
    """Forest plot: each row's effect (dot) and 95 % interval (bar), coloured by its verdict, with 0 marked.

    Effects have different units (epochs, accuracy, relative change), so each row is read against 0
    and its own margin, not against the others; the x axis is symmetric-log to keep them all visible."""
    frame = effects_frame(report)
    frame = frame[np.isfinite(frame["effect"])]
    y = alt.Y("id:N", sort=list(frame["id"]), title=None, axis=alt.Axis(labelFontSize=13, labelOverlap=False))
    x = alt.X("effect:Q", title="paired effect (positive favours the paper), symlog scale",
              scale=alt.Scale(type="symlog", constant=0.05))
    colour = alt.Color("verdict:N", scale=alt.Scale(domain=list(VERDICT_COLORS), range=list(VERDICT_COLORS.values())),
                       legend=alt.Legend(orient="top", title=None, labelFontSize=13))
    tooltip = ["id", "claim", "measure", alt.Tooltip("effect:Q", format="+.3g"), alt.Tooltip("low:Q", format="+.3g"),
               alt.Tooltip("high:Q", format="+.3g"), "seeds", "verdict"]
    bars = alt.Chart(frame).mark_rule(strokeWidth=4, opacity=0.6).encode(
        x=alt.X("low:Q", scale=alt.Scale(type="symlog", constant=0.05)), x2="high:Q", y=y, color=colour, tooltip=tooltip)
    dots = alt.Chart(frame).mark_point(filled=True, size=90).encode(x=x, y=y, color=colour, tooltip=tooltip)
    zero = alt.Chart(pd.DataFrame({"effect": [0.0]})).mark_rule(color="black", strokeDash=[4, 3]).encode(x="effect:Q")
    return alt.layer(bars, dots, zero).properties(height=max(160, height_per_row * len(frame)))


MAP_TITLES = {"acc_vs_ema": "SEMA − EMA, final test accuracy (points)",
              "acc_vs_sgd": "SEMA − SGD, final test accuracy (points)",
              "speed_vs_ema": "epochs saved by SEMA vs EMA (to the target)",
              "speed_vs_sgd": "epochs saved by SEMA vs SGD (to the target)"}


def measured_map_frame(result, comparison: str) -> pd.DataFrame:
    """One row per (α, K) cell: mean, interval, and whether the interval excludes 0."""
    scale = 100.0 if comparison.startswith("acc") else 1.0
    rows = []
    for alpha, row in zip(result.alphas, result.cells[comparison]):
        for k, ci in zip(result.switch_epochs, row):
            rows.append({"alpha": f"{alpha:g}", "switch_epochs": str(k), "mean": ci.mean * scale,
                         "low": ci.low * scale, "high": ci.high * scale, "seeds": ci.n,
                         "significant": bool(ci.excludes_zero),
                         "label": f"{ci.mean * scale:+.1f}" + ("" if ci.excludes_zero else "?")})
    return pd.DataFrame(rows)


def measured_map_chart(result, comparison: str, height: int = 340) -> alt.LayerChart:
    """Heatmap of the mean paired effect per cell; a cell is coloured only where its 95 % interval
    excludes 0 (grey otherwise, its number marked "?")."""
    frame = measured_map_frame(result, comparison)
    bound = float(np.nanmax(np.abs(frame[["low", "high"]].replace([np.inf, -np.inf], np.nan).to_numpy()))) \
        if frame[["low", "high"]].replace([np.inf, -np.inf], np.nan).notna().any().any() else 1.0
    x = alt.X("switch_epochs:O", title="SEMA switches every … epochs", sort=[str(k) for k in result.switch_epochs])
    y = alt.Y("alpha:O", title="EMA momentum α", sort=[f"{a:g}" for a in reversed(result.alphas)])
    tooltip = ["alpha", "switch_epochs", alt.Tooltip("mean:Q", format="+.2f"), alt.Tooltip("low:Q", format="+.2f"),
               alt.Tooltip("high:Q", format="+.2f"), "seeds", "significant"]
    colour = alt.condition(alt.datum.significant,
                           alt.Color("mean:Q", title=MAP_TITLES[comparison],
                                     scale=alt.Scale(scheme="redblue", domain=[-bound, bound], domainMid=0),
                                     legend=alt.Legend(orient="right", gradientLength=220)),
                           alt.value("#e6e6e6"))
    cells = alt.Chart(frame).mark_rect(stroke="white", strokeWidth=1.5).encode(x=x, y=y, color=colour, tooltip=tooltip)
    text = alt.Chart(frame).mark_text(fontSize=15, fontWeight="bold").encode(
        x=x, y=y, text="label:N", color=alt.condition(alt.datum.significant, alt.value("black"), alt.value("#777")),
        tooltip=tooltip)
    return alt.layer(cells, text).properties(height=height)
