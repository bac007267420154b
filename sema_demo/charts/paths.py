"""Figures of weight paths on a network's own loss surface (see ``sema_demo.paths``).

* :func:`paths_figure`: the whole picture in matplotlib (contours when a surface is
  given, θ faint, φ bold, SEMA's switch jumps dashed with a ◆ where θ lands, the
  defining points ★ with their true loss) — for exports, the CLI, notebooks and the
  live view while training (paths only);
* :func:`paths_background`: the contours, ends and legend rendered once, as pixels, for the
  browser's path player (``sema_demo/ui/path_player``), which draws the paths over it.
"""
from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter
from PIL import Image

from ..paths import PLANES, PathStudy, SurfaceGrid
from .playground import SUPERSAMPLE, SURFACE_CMAP, Background
from .style import METHOD_COLORS, METHOD_NAMES

DRAW_ORDER = ("sgd", "swa", "lookahead", "ema", "sema")   # SEMA last: on top


def _series(study: PathStudy, method: str, weights: str, upto: int | None = None):
    rows = study.frame[(study.frame.method == method) & (study.frame.weights == weights)]
    if upto is not None:
        rows = rows[rows.step <= upto]
    return rows


def _draws_live(method: str, methods) -> bool:
    """EMA's θ is SGD's θ (it never writes back): draw it once, as SGD's path."""
    return not (method in ("ema", "swa") and "sgd" in methods)


def _levels(grid: SurfaceGrid, clip: float | None):
    """Log-spaced contour levels from the lowest loss to ``clip`` (default: the 95th percentile)."""
    finite = grid.loss[np.isfinite(grid.loss)]
    low = max(float(finite.min()), 1e-4)
    high = clip if clip is not None else float(np.percentile(finite, 95))
    high = max(high, low * 1.5)
    return np.geomspace(low, high, 18), low, high


def _surface(ax, fig, grid: SurfaceGrid, clip: float | None, cax=None):
    levels, low, high = _levels(grid, clip)
    z = np.clip(np.nan_to_num(grid.loss, nan=high, posinf=high), low, high)
    filled = ax.contourf(grid.x, grid.y, z, levels=levels, cmap=SURFACE_CMAP, norm=LogNorm(low, high))
    ax.contour(grid.x, grid.y, z, levels=levels[::2], colors="#6b7785", linewidths=0.5, alpha=0.5)
    cax = cax or fig.add_axes((0.84, 0.2, 0.022, 0.73))
    bar = fig.colorbar(filled, cax=cax,
                       ticks=np.geomspace(low, high, 5), format=FuncFormatter(lambda v, _: f"{v:.3g}"))
    bar.minorticks_off()
    bar.set_label(f"{grid.split}ing loss (log scale)" if grid.split == "train" else "test loss (log scale)")


def legend_handles(methods) -> list[Line2D]:
    handles = []
    for m in DRAW_ORDER:
        if m not in methods:
            continue
        if _draws_live(m, methods):
            handles.append(Line2D([], [], color=METHOD_COLORS[m], lw=1.5 if m != "sgd" else 2,
                                  alpha=0.5 if m != "sgd" else 0.9, label=f"{METHOD_NAMES[m]} θ"))
        if m != "sgd":
            handles.append(Line2D([], [], color=METHOD_COLORS[m], lw=3.5, label=f"{METHOD_NAMES[m]} φ"))
    if "sema" in methods:
        handles.append(Line2D([], [], color=METHOD_COLORS["sema"], marker="D", ls="--", lw=1.2, ms=6,
                              markeredgecolor="white", label="switch θ ← φ"))
    handles.append(Line2D([], [], color="black", marker="*", ls="", ms=11, markerfacecolor="gold",
                          label="end (true loss)"))
    return handles


# Label offsets (points) and alignment, one per defining point in turn, so that close ends stay readable.
# 14 points clear of the ★ on both axes: the player's head dots (≤ 8 px) sit on the ★, never on a label.
LABEL_PLACES = (((14, 14), "left", "bottom"), ((14, -14), "left", "top"), ((-14, 14), "right", "bottom"),
                ((-14, -14), "right", "top"))


def _ends(ax, points: list[dict]) -> None:
    """★ at each defining point, labelled with its method and, when known, its true loss."""
    for i, p in enumerate(points):
        ax.plot(p["x"], p["y"], marker="*", ms=16, color="gold", markeredgecolor="black", zorder=5)
        text = METHOD_NAMES.get(p["method"], p["method"]) + (f" {p['loss']:.3g}" if "loss" in p else "")
        offset, align, vertical = LABEL_PLACES[i % len(LABEL_PLACES)]
        ax.annotate(text, (p["x"], p["y"]), xytext=offset, textcoords="offset points", fontsize=10, zorder=6,
                    ha=align, va=vertical, bbox=dict(boxstyle="round,pad=0.2", fc="white",
                                        ec=METHOD_COLORS.get(p["method"], "#999"), alpha=0.9))


def _axis_labels(ax, study: PathStudy) -> None:
    plane = study.plane
    if plane.kind == "pca":
        ax.set_xlabel(f"principal direction 1 ({plane.explained[0]:.0%} of the paths' variance)")
        ax.set_ylabel(f"principal direction 2 ({plane.explained[1]:.0%})")
    else:
        ax.set_xlabel(f"direction 1 (weight-space distance from {plane.centre})")
        ax.set_ylabel("direction 2 (orthonormal)")


def paths_figure(study: PathStudy, grid: SurfaceGrid | None = None, points: list[dict] | None = None,
                 upto: int | None = None, clip: float | None = None, title: str | None = None,
                 size: tuple[float, float] = (8.0, 6.4)) -> Figure:
    """The paths of one seed in its plane, on the loss contours when ``grid`` is given.

    ``points`` are the defining points with their true loss (``paths.point_losses``);
    without them the ends are marked without numbers.  ``upto`` cuts the paths at a step.
    """
    fig = Figure(figsize=size, dpi=100)
    ax = fig.add_axes((0.1, 0.2, 0.72 if grid is not None else 0.86, 0.73))
    if grid is not None:
        _surface(ax, fig, grid, clip)
    methods = list(dict.fromkeys(study.frame.method))
    for m in [m for m in DRAW_ORDER if m in methods]:
        color = METHOD_COLORS[m]
        live = _series(study, m, "live", upto)
        if _draws_live(m, methods) and len(live):
            ax.plot(live.x, live.y, color=color, lw=2 if m == "sgd" else 1.2, alpha=0.9 if m == "sgd" else 0.5)
        average = _series(study, m, "average", upto)
        if len(average):
            ax.plot(average.x, average.y, color="white", lw=5.5, solid_capstyle="round")
            ax.plot(average.x, average.y, color=color, lw=3.2, solid_capstyle="round")
        if m == "sema" and len(live):
            before, after = live[live.kind == "epoch"], live[live.kind == "switch"]
            for (_, b), (_, a) in zip(before.iterrows(), after.iterrows()):
                ax.plot([b.x, a.x], [b.y, a.y], color=color, lw=1.2, ls="--")
            ax.plot(after.x, after.y, ls="", marker="D", ms=5, color=color, markeredgecolor="white")
    start = study.frame[study.frame.step == 0]
    if len(start):
        ax.plot(start.x.iloc[0], start.y.iloc[0], marker="o", ms=9, color="white", markeredgecolor="black")
        ax.annotate("start", (start.x.iloc[0], start.y.iloc[0]), xytext=(6, -12), textcoords="offset points",
                    fontsize=9)
    if upto is None:
        _ends(ax, points or study.points)
    if grid is not None:
        ax.set_xlim(grid.x[0], grid.x[-1])
        ax.set_ylim(grid.y[0], grid.y[-1])
    ax.set_aspect("equal", adjustable="datalim" if grid is None else "box")
    _axis_labels(ax, study)
    ax.set_title(title or f"Seed {study.seed}: plane {PLANES[study.plane.kind]}", loc="left", fontsize=11)
    fig.legend(handles=legend_handles(methods), loc="lower center", ncol=4, fontsize=9, frameon=False)
    return fig


# ------------------------------------------------------------------------------ the animation


def paths_background(study: PathStudy, grid: SurfaceGrid, points: list[dict], clip: float | None = None,
                     width_px: int = 820, height_px: int = 700, title: str | None = None) -> Background:
    """The contours, the ends with their true loss and the legend, as pixels (rendered once)."""
    fig = Figure(figsize=(width_px / 100, height_px / 100), dpi=100 * SUPERSAMPLE)
    ax = fig.add_axes((0.11, 0.2, 0.7, 0.73))
    cax = fig.add_axes((0.83, 0.2, 0.022, 0.73))
    _surface(ax, fig, grid, clip, cax=cax)
    _ends(ax, points)
    ax.set_xlim(grid.x[0], grid.x[-1])
    ax.set_ylim(grid.y[0], grid.y[-1])
    _axis_labels(ax, study)
    ax.set_title(title or f"Seed {study.seed}: plane {PLANES[study.plane.kind]}", loc="left", fontsize=11)
    handles = legend_handles(list(dict.fromkeys(study.frame.method)))
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=9, frameon=False, bbox_to_anchor=(0.47, 0.0))
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    (x0, y0), (x1, y1) = ax.transData.transform([(grid.x[0], grid.y[0]), (grid.x[-1], grid.y[-1])])
    height = image.height
    a = (x1 - x0) / (grid.x[-1] - grid.x[0])
    c = -(y1 - y0) / (grid.y[-1] - grid.y[0])          # image rows grow downwards
    box = (int(np.floor(x0)), int(np.floor(height - y1)), int(np.ceil(x1)), int(np.ceil(height - y0)))
    return Background(image.convert("RGB"), (a, x0 - a * grid.x[0], c, height - y0 - c * grid.y[0]), box)
