"""Figures of the landscape page: 1-D slices, the interpolation path and 2-D contours per method."""
from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from ..flatness import auto_clip
from .style import METHOD_COLORS, METHOD_NAMES, method_scale


def _mean_band(frame: pd.DataFrame, x: str, by: list[str]) -> pd.DataFrame:
    """Mean and mean ± std of the loss over seeds at every x (non-finite losses dropped)."""
    finite = frame[np.isfinite(frame["loss"].astype(float))]
    stats = finite.groupby([*by, x])["loss"].agg(["mean", "std"]).reset_index()
    stats["std"] = stats["std"].fillna(0.0)
    return stats.assign(lo=stats["mean"] - stats["std"], hi=stats["mean"] + stats["std"])


def _top(stats: pd.DataFrame, clip: float | None) -> float:
    """The y-axis top: the highest mean + std, but no higher than ``clip`` (curves above it are cut)."""
    highest = float(stats["hi"].max()) if len(stats) else 1.0
    return min(clip, highest) if clip else highest


def slice_chart(curves: pd.DataFrame, clip: float, direction: int = 0, height: int = 320) -> alt.Chart:
    """Loss along one filter-normalised direction, one line per method (mean ± std band over seeds)."""
    stats = _mean_band(curves[curves["direction"] == direction], "offset", ["method"])
    stats["Method"] = stats["method"].map(METHOD_NAMES)
    methods = [m for m in METHOD_COLORS if m in set(stats["method"])]
    y = alt.Y("mean:Q", title="training loss", scale=alt.Scale(domain=[0, _top(stats, clip)]))
    x = alt.X("offset:Q", title="offset along the direction (× each filter's norm)")
    color = alt.Color("Method:N", scale=method_scale(methods), legend=alt.Legend(orient="top", title=None))
    band = alt.Chart(stats).mark_area(opacity=0.18, clip=True).encode(   # fill, so the legend shows the lines
        x=x, y="lo:Q", y2="hi:Q", fill=alt.Fill("Method:N", scale=method_scale(methods), legend=None))
    line = alt.Chart(stats).mark_line(strokeWidth=2.5, clip=True).encode(
        x=x, y=y, color=color,
        tooltip=["Method", alt.Tooltip("offset:Q", format=".2f"), alt.Tooltip("mean:Q", title="loss", format=".4f")])
    return (band + line).resolve_legend(fill="independent", color="independent").properties(
        height=height, title="1-D slice through each solution")


def interpolation_chart(frame: pd.DataFrame, start: str, end: str, clip: float, height: int = 320) -> alt.Chart:
    """Loss on the straight line from ``start``'s solution (t = 0) to ``end``'s (t = 1), mean ± std over seeds."""
    stats = _mean_band(frame.assign(path="path"), "t", ["path"])
    x = alt.X("t:Q", title=f"t  (0 = {METHOD_NAMES[start]}, 1 = {METHOD_NAMES[end]})")
    y = alt.Y("mean:Q", title="training loss", scale=alt.Scale(domain=[0, _top(stats, clip)]))
    band = alt.Chart(stats).mark_area(opacity=0.18, color="#444", clip=True).encode(x=x, y="lo:Q", y2="hi:Q")
    line = alt.Chart(stats).mark_line(strokeWidth=2.5, color="#444", clip=True).encode(
        x=x, y=y, tooltip=[alt.Tooltip("t:Q", format=".2f"), alt.Tooltip("mean:Q", title="loss", format=".4f")])
    ends = pd.DataFrame({"t": [0.0, 1.0], "Method": [METHOD_NAMES[start], METHOD_NAMES[end]]})
    legend = alt.Legend(orient="top", title=None)
    rules = alt.Chart(ends).mark_rule(strokeWidth=2, strokeDash=[4, 3]).encode(
        x="t:Q", color=alt.Color("Method:N", scale=method_scale([start, end]), legend=legend))
    title = f"Straight path {METHOD_NAMES[start]} → {METHOD_NAMES[end]}"
    return (band + line + rules).properties(height=height, title=title)


def colour_range(grids: dict[str, np.ndarray], clip: float | None) -> tuple[float, float, dict[str, int]]:
    """(lowest, top, clipped) for one colour scale shared by all grids.

    The top is the highest finite loss, lowered to ``clip``; ``clip`` None (or 0) is "auto":
    ``flatness.auto_clip``, so that at most 5 % of any panel's points saturate.  ``clipped``
    counts, per method, the points drawn at the top colour because they are above it or not finite.
    """
    finite = np.concatenate([g[np.isfinite(g)] for g in grids.values()] or [np.zeros(0)])
    lowest = float(finite.min()) if finite.size else 1e-3
    if not clip:
        clip = auto_clip(grids)
    top = min(float(finite.max()) if finite.size else clip, clip)
    top = max(top, lowest * 1.01 + 1e-9)
    clipped = {m: int((~np.isfinite(g) | (g > top)).sum()) for m, g in grids.items()}
    return lowest, top, clipped


def contour_figure(grids: dict[str, np.ndarray], offsets: np.ndarray, clip: float | None, panel: float = 3.6,
                   font_scale: float = 1.0) -> Figure:
    """Filled contours of every method's 2-D slice, side by side on one (log-spaced) colour scale.

    ``font_scale`` enlarges every text (projector mode)."""
    lowest, top, _ = colour_range(grids, clip)
    low = max(lowest, top * 1e-4)   # log levels need a positive floor
    levels = np.geomspace(low, top, 16)
    norm = LogNorm(vmin=low, vmax=top)
    fig = Figure(figsize=(panel * len(grids) + 0.9, panel + 0.3), layout="constrained")
    axes = fig.subplots(1, len(grids), sharey=True, squeeze=False)[0]
    filled = None
    for ax, (method, grid) in zip(axes, grids.items()):
        shown = np.clip(np.nan_to_num(grid, nan=top, posinf=top, neginf=low), low, top)
        # Row i of a grid is the first direction's offset: draw it along x.
        filled = ax.contourf(offsets, offsets, shown.T, levels=levels, norm=norm, cmap="viridis", extend="neither")
        ax.contour(offsets, offsets, shown.T, levels=levels[::3], colors="white", linewidths=0.5, alpha=0.6)
        ax.plot([0], [0], marker="*", markersize=13, color=METHOD_COLORS.get(method, "black"),
                markeredgecolor="white")
        ax.set_title(f"{METHOD_NAMES.get(method, method)}\nloss at ★ {grid[len(grid) // 2, len(grid) // 2]:.3g}",
                     color=METHOD_COLORS.get(method, "black"), fontsize=12 * font_scale, fontweight="bold")
        ax.set_xlabel("direction 1", fontsize=10 * font_scale)
        ax.tick_params(labelsize=9 * font_scale)
        ax.set_aspect("equal")
    axes[0].set_ylabel("direction 2", fontsize=10 * font_scale)
    bar = fig.colorbar(filled, ax=list(axes), shrink=0.9, ticks=np.geomspace(low, top, 5))
    bar.ax.set_yticklabels([f"{v:.3g}" for v in np.geomspace(low, top, 5)], fontsize=9 * font_scale)
    bar.set_label("training loss (log scale)", fontsize=10 * font_scale)
    return fig
