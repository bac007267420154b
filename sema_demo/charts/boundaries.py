"""Decision-boundary panels: one per method, the class-probability heatmap and the points.

    fig = boundary_panels(trainer.grids for one seed, data, extent, titles=..., notes=...)   # matplotlib
    view = boundary_view_data(the same arguments)     # the same panels as data, painted by the browser

The heatmap mixes the class colours by predicted probability and fades to white where
the network is unsure, so the boundary is where the colour turns pale; a thin line marks
where the predicted class changes.  Training points are filled circles, test points
triangles with a dark edge.
"""
from __future__ import annotations

import base64

import numpy as np
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .style import METHOD_COLORS, METHOD_NAMES

# Class colours: purple, green, gold, … (kept apart from the method colours grey/blue/vermilion).
CLASS_COLORS = ("#762a83", "#1b7837", "#c48f00", "#2166ac", "#c51b7d", "#4d4d4d", "#8c510a", "#01665e",
                "#e08214", "#542788")
MAX_POINTS = 1500               # points drawn per panel (a fixed subset beyond this keeps it readable)


def probability_image(probs: np.ndarray) -> np.ndarray:
    """(res, res, classes) probabilities → (res, res, 3) RGB: class colours mixed by probability,
    faded to white as the top probability nears chance."""
    n_classes = probs.shape[-1]
    colors = np.array([to_rgb(c) for c in CLASS_COLORS[:n_classes]])
    mixed = probs @ colors
    confidence = (probs.max(-1, keepdims=True) - 1 / n_classes) / (1 - 1 / n_classes)
    strength = 0.08 + 0.5 * np.clip(confidence, 0, 1)
    return 1 - strength * (1 - mixed)


def _subset(n: int, limit: int) -> np.ndarray:
    return np.arange(n) if n <= limit else np.random.default_rng(0).choice(n, limit, replace=False)


def boundary_panels(grids: dict[str, np.ndarray | None], data, extent: tuple[float, float, float, float], *,
                    titles: dict[str, str] | None = None, notes: dict[str, str] | None = None,
                    class_names: list[str] | None = None, panel_inches: float = 4.0,
                    font_scale: float = 1.0) -> Figure:
    """One panel per method (keys of ``grids``, in order) on a shared extent.

    ``titles`` adds a second title line per method (e.g. its test accuracy); ``notes`` writes a
    message across a panel (e.g. "diverged at epoch 4").  A grid of None draws the points only.
    ``font_scale`` enlarges every text (a projector's back row).
    """
    methods = list(grids)
    fig = Figure(figsize=(panel_inches * len(methods), panel_inches + 0.9 * font_scale), layout="constrained")
    axes = fig.subplots(1, len(methods), squeeze=False)[0]
    n_classes = data.n_classes
    # Class names may be a user's CSV labels: "\$" keeps a "$" literal instead of starting mathtext.
    names = [n.replace("$", r"\$") for n in class_names] if class_names else [f"class {k}" for k in range(n_classes)]
    points = {split: (getattr(data, f"x_{split}").cpu().numpy(), getattr(data, f"y_{split}").cpu().numpy())
              for split in ("train", "test")}
    xmin, xmax, ymin, ymax = extent
    for ax, method in zip(axes, methods):
        if grids[method] is not None:
            _heatmap(ax, grids[method], extent)
        for split, marker, size, edge in (("train", "o", 13, "white"), ("test", "^", 24, "#111111")):
            x, y = points[split]
            keep = _subset(len(y), MAX_POINTS)
            ax.scatter(x[keep, 0], x[keep, 1], c=[CLASS_COLORS[k] for k in y[keep]], marker=marker, s=size,
                       edgecolors=edge, linewidths=0.5, zorder=3)
        ax.set(xlim=(xmin, xmax), ylim=(ymin, ymax), xticks=[], yticks=[])
        for spine in ax.spines.values():
            spine.set(color=METHOD_COLORS[method], linewidth=2.5)
        ax.set_title(METHOD_NAMES[method] + ("\n" + titles[method] if titles and method in titles else ""),
                     color=METHOD_COLORS[method], fontsize=13 * font_scale, fontweight="bold")
        if notes and method in notes:
            ax.text(0.5, 0.5, notes[method], transform=ax.transAxes, ha="center", va="center", fontsize=13 * font_scale,
                    fontweight="bold", color="#b00020", bbox={"facecolor": "white", "alpha": 0.85,
                                                              "edgecolor": "#b00020"}, zorder=5)
    handles = [Line2D([], [], marker="s", linestyle="", markersize=10, color=CLASS_COLORS[k], label=names[k])
               for k in range(n_classes)]
    handles += [Line2D([], [], marker="o", linestyle="", color="#777777", markeredgecolor="white", label="train"),
                Line2D([], [], marker="^", linestyle="", color="#777777", markeredgecolor="#111111", label="test")]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False,
               fontsize=11 * font_scale)
    return fig


def _heatmap(ax, probs: np.ndarray, extent) -> None:
    ax.imshow(probability_image(probs), extent=extent, origin="lower", interpolation="bilinear", aspect="auto")
    xmin, xmax, ymin, ymax = extent
    xs, ys = np.linspace(xmin, xmax, probs.shape[1]), np.linspace(ymin, ymax, probs.shape[0])
    n_classes = probs.shape[-1]
    for k in range(1 if n_classes == 2 else n_classes):       # where class k stops being the top one
        margin = probs[..., k] - np.delete(probs, k, axis=-1).max(-1)
        if margin.min() < 0 < margin.max():
            ax.contour(xs, ys, margin, levels=[0.0], colors="#222222", linewidths=1.1, alpha=0.75)


# ----------------------------------------------------------------- the same panels, drawn by the browser

GRID_LEVELS = 255               # probabilities are sent as bytes: 1/255 is far below a visible shade


def _encoded_grid(probs: np.ndarray) -> dict:
    """(res, res, classes) probabilities as base64 bytes, row-major from the lowest y (origin lower)."""
    levels = np.rint(np.clip(np.nan_to_num(probs, nan=0.0), 0, 1) * GRID_LEVELS).astype(np.uint8)
    return {"rows": int(probs.shape[0]), "cols": int(probs.shape[1]), "classes": int(probs.shape[2]),
            "bytes": base64.b64encode(levels.tobytes()).decode("ascii")}


def _points(x: np.ndarray, y: np.ndarray, span: float) -> dict:
    keep = _subset(len(y), MAX_POINTS)
    digits = max(0, 3 - int(np.floor(np.log10(span)))) if span > 0 else 3     # ≈ 1/1000 of the axis
    return {"x": np.round(x[keep, 0], digits).tolist(), "y": np.round(x[keep, 1], digits).tolist(),
            "c": y[keep].astype(int).tolist()}


def boundary_view_data(grids: dict[str, np.ndarray | None], data, extent: tuple[float, float, float, float], *,
                       titles: dict[str, str] | None = None, notes: dict[str, str] | None = None,
                       class_names: list[str] | None = None, font_scale: float = 1.0) -> dict:
    """What the browser's boundary view (sema_demo/ui/boundary_view) draws: the panels of
    :func:`boundary_panels` as data (probability grids as bytes, the points as numbers), so a
    live run sends numbers each tick and the browser paints them; the server draws nothing.

    The colours, the faded-when-unsure mixing (:func:`probability_image`), the boundary line
    where the top class changes, the markers and the legend are those of ``boundary_panels``.
    """
    n_classes = data.n_classes
    names = list(class_names) if class_names else [f"class {k}" for k in range(n_classes)]
    span = max(extent[1] - extent[0], extent[3] - extent[2])
    points = {split: _points(getattr(data, f"x_{split}").cpu().numpy(), getattr(data, f"y_{split}").cpu().numpy(),
                             span) for split in ("train", "test")}
    panels = [{"method": m, "name": METHOD_NAMES[m], "color": METHOD_COLORS[m],
               "title": (titles or {}).get(m, ""), "note": (notes or {}).get(m),
               "grid": None if grids[m] is None else _encoded_grid(np.asarray(grids[m]))} for m in grids]
    return {"panels": panels, "extent": [float(v) for v in extent], "points": points,
            "class_colors": list(CLASS_COLORS[:n_classes]), "class_names": names,
            "strength": [0.08, 0.5], "scale": float(font_scale)}
