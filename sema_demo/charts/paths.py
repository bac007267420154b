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

from ..paths import PLANES, PathStudy, SurfaceGrid, switch_rows
from .playground import BADGE_POINTS, SUPERSAMPLE, SURFACE_CMAP, Background, place_labels
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


def _surface(ax, fig, grid: SurfaceGrid, clip: float | None, font_scale: float = 1.0):
    levels, low, high = _levels(grid, clip)
    z = np.clip(np.nan_to_num(grid.loss, nan=high, posinf=high), low, high)
    filled = ax.contourf(grid.x, grid.y, z, levels=levels, cmap=SURFACE_CMAP, norm=LogNorm(low, high))
    ax.contour(grid.x, grid.y, z, levels=levels[::2], colors="#6b7785", linewidths=0.5, alpha=0.5)
    bar = fig.colorbar(filled, ax=ax, fraction=0.035, pad=0.02, aspect=30,
                       ticks=np.geomspace(low, high, 5), format=FuncFormatter(lambda v, _: f"{v:.3g}"))
    bar.minorticks_off()
    bar.ax.tick_params(labelsize=FONT["tick"] * font_scale)
    bar.set_label(f"{grid.split}ing loss (log scale)" if grid.split == "train" else "test loss (log scale)",
                  fontsize=FONT["label"] * font_scale)


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


# The corners (right?, up?) a defining point's label prefers, one per point in turn, so that close ends
# stay readable; a corner that leaves the plot, covers a ★ or another label gives way to the next.
# 14 points clear of the ★ on both axes: the player's head dots (≤ 8 px) sit on the ★, never on a label.
LABEL_CORNERS = ((True, True), (True, False), (False, True), (False, False))
LABEL_OFFSET = (14, 14)
END_POINTS = 16                 # an end's ★, across (points)
FONT = {"title": 11, "label": 10, "tick": 10, "end": 10, "legend": 9, "start": 9}   # at font_scale 1


def _ends(fig, ax, points: list[dict], font_scale: float = 1.0, top_band: float = 0.0) -> None:
    """★ at each defining point, labelled with its method and, when known, its true loss; no label in the
    ``top_band`` points along the plot's top edge."""
    notes = []
    for p in points:
        ax.plot(p["x"], p["y"], marker="*", ms=END_POINTS, color="gold", markeredgecolor="black", zorder=5)
        text = METHOD_NAMES.get(p["method"], p["method"]) + (f" {p['loss']:.3g}" if "loss" in p else "")
        note = ax.annotate(text, (p["x"], p["y"]), xytext=(0, 0), textcoords="offset points", zorder=6,
                           fontsize=FONT["end"] * font_scale, bbox=dict(boxstyle="round,pad=0.2", fc="white",
                                                                        ec=METHOD_COLORS.get(p["method"], "#999"),
                                                                        alpha=0.9))
        note.set_in_layout(False)
        notes.append(note)

    def corners(i: int, _note) -> list[tuple[bool, bool]]:
        k = i % len(LABEL_CORNERS)
        return list(LABEL_CORNERS[k:] + LABEL_CORNERS[:k])

    place_labels(fig, ax, notes, corners, offset=LABEL_OFFSET, star_points=END_POINTS, top_band=top_band)


def _axis_labels(ax, study: PathStudy, font_scale: float = 1.0) -> None:
    plane, size = study.plane, FONT["label"] * font_scale
    if plane.kind == "pca":
        ax.set_xlabel(f"principal direction 1 ({plane.explained[0]:.0%} of the paths' variance)", fontsize=size)
        ax.set_ylabel(f"principal direction 2 ({plane.explained[1]:.0%})", fontsize=size)
    else:
        ax.set_xlabel(f"direction 1 (weight-space distance from {plane.centre})", fontsize=size)
        ax.set_ylabel("direction 2 (orthonormal)", fontsize=size)
    ax.tick_params(labelsize=FONT["tick"] * font_scale)


def _figure(size: tuple[float, float], dpi: int) -> Figure:
    """A figure whose layout makes room for every label, colour bar and legend at any font size."""
    fig = Figure(figsize=size, dpi=dpi, layout="constrained")
    fig.get_layout_engine().set(w_pad=0.06, h_pad=0.06)
    FigureCanvasAgg(fig)                        # a renderer: the end labels are measured to place them
    return fig


def _legend(fig, methods, font_scale: float) -> None:
    handles = legend_handles(methods)
    fig.legend(handles=handles, loc="outside lower center", ncol=4 if font_scale < 1.2 else 3,
               fontsize=FONT["legend"] * font_scale, frameon=False)


def _title(ax, study: PathStudy, title: str | None, font_scale: float) -> None:
    ax.set_title(title or f"Seed {study.seed}: plane {PLANES[study.plane.kind]}", loc="left",
                 fontsize=FONT["title"] * font_scale)


def paths_figure(study: PathStudy, grid: SurfaceGrid | None = None, points: list[dict] | None = None,
                 upto: int | None = None, clip: float | None = None, title: str | None = None,
                 size: tuple[float, float] = (8.0, 6.4), font_scale: float = 1.0) -> Figure:
    """The paths of one seed in its plane, on the loss contours when ``grid`` is given.

    ``points`` are the defining points with their true loss (``paths.point_losses``);
    without them the ends are marked without numbers.  ``upto`` cuts the paths at a step.
    ``font_scale`` enlarges every text (projector mode).
    """
    fig = _figure(size, 100)
    ax = fig.add_subplot()
    if grid is not None:
        _surface(ax, fig, grid, clip, font_scale)
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
            switches = switch_rows(live.kind.to_numpy())
            before, after = live.iloc[switches - 1], live.iloc[switches]
            for (_, b), (_, a) in zip(before.iterrows(), after.iterrows()):
                ax.plot([b.x, a.x], [b.y, a.y], color=color, lw=1.2, ls="--")
            ax.plot(after.x, after.y, ls="", marker="D", ms=5, color=color, markeredgecolor="white")
    start = study.frame[study.frame.step == 0]
    if len(start):
        ax.plot(start.x.iloc[0], start.y.iloc[0], marker="o", ms=9, color="white", markeredgecolor="black")
        ax.annotate("start", (start.x.iloc[0], start.y.iloc[0]), xytext=(6, -12), textcoords="offset points",
                    fontsize=FONT["start"] * font_scale).set_in_layout(False)
    if grid is not None:
        ax.set_xlim(grid.x[0], grid.x[-1])
        ax.set_ylim(grid.y[0], grid.y[-1])
    ax.set_aspect("equal", adjustable="datalim" if grid is None else "box")
    _axis_labels(ax, study, font_scale)
    _title(ax, study, title, font_scale)
    _legend(fig, methods, font_scale)
    if upto is None:
        _ends(fig, ax, points or study.points, font_scale)
    return fig


# ------------------------------------------------------------------------------ the animation


def background_figure(study: PathStudy, grid: SurfaceGrid, points: list[dict], clip: float | None = None,
                      width_px: int = 820, height_px: int = 700, title: str | None = None,
                      font_scale: float = 1.0) -> Figure:
    """The contours, the ends with their true loss and the legend, without the paths (the player
    draws those); ``font_scale`` enlarges every text.  ``fig.axes[0]`` is the surface."""
    fig = _figure((width_px / 100, height_px / 100), 100 * SUPERSAMPLE)
    ax = fig.add_subplot()
    _surface(ax, fig, grid, clip, font_scale)
    ax.set_xlim(grid.x[0], grid.x[-1])
    ax.set_ylim(grid.y[0], grid.y[-1])
    _axis_labels(ax, study, font_scale)
    _title(ax, study, title, font_scale)
    _legend(fig, list(dict.fromkeys(study.frame.method)), font_scale)
    _ends(fig, ax, points, font_scale, top_band=BADGE_POINTS * font_scale)   # the player's step badge goes there
    return fig


def paths_background(study: PathStudy, grid: SurfaceGrid, points: list[dict], clip: float | None = None,
                     width_px: int = 820, height_px: int = 700, title: str | None = None,
                     font_scale: float = 1.0) -> Background:
    """:func:`background_figure` as pixels (rendered once per setting and font scale)."""
    fig = background_figure(study, grid, points, clip, width_px, height_px, title, font_scale)
    ax, canvas = fig.axes[0], fig.canvas
    canvas.draw()
    image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    (x0, y0), (x1, y1) = ax.transData.transform([(grid.x[0], grid.y[0]), (grid.x[-1], grid.y[-1])])
    height = image.height
    a = (x1 - x0) / (grid.x[-1] - grid.x[0])
    c = -(y1 - y0) / (grid.y[-1] - grid.y[0])          # image rows grow downwards
    box = (int(np.floor(x0)), int(np.floor(height - y1)), int(np.ceil(x1)), int(np.ceil(height - y0)))
    return Background(image.convert("RGB"), (a, x0 - a * grid.x[0], c, height - y0 - c * grid.y[0]), box,
                      font_scale=font_scale)
