"""Figures of the optimizer playground: animated paths on a loss surface, losses, basin maps.

The animated picture is built in two layers so a frame costs milliseconds:

* :func:`surface_background` renders the loss surface once with matplotlib (filled
  contours, colour bar, minima, legend) and remembers how data coordinates map to pixels;
* :func:`render_frame` draws the paths up to one step on a copy of it with Pillow, at
  twice the size and then halved, which smooths the lines.

:func:`animation_gif` stitches such frames into a GIF and notebooks show them.  The page
itself sends the background and the paths to the browser (``sema_demo/ui/path_player``),
which draws the same layers, with the same widths and colours, at display rate.
"""
from __future__ import annotations

import io
import itertools
import math
from dataclasses import dataclass

import altair as alt
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator
from PIL import Image, ImageColor, ImageDraw, ImageFont

from ..landscapes import Landscape
from ..stats import mean_std
from ..trajectories import BasinMap, Simulation
from .style import METHOD_COLORS, METHOD_NAMES

SUPERSAMPLE = 2                 # draw at 2× and halve: cheap anti-aliasing for Pillow lines
DRAW_ORDER = ("sgd", "swa", "lookahead", "ema", "sema")   # SEMA last: on top
SHARES_THETA_WITH_SGD = ("ema", "swa")   # these never move θ: their θ is SGD's path
STAR_POINTS = 20                # a minimum's ★, across (points)
UNDER_BAR_SCALE = 1.2          # from this font scale on, the colour bar sits under the plot
# The path player draws its step badge along the plot's top edge, about this high (points of the picture,
# at font scale 1, as the page shows it): minimum labels keep out of that band.
BADGE_POINTS = 34
LABEL_GAP_POINTS = 4            # the least space between two minimum labels (points)
THETA_TRAIL = 150               # steps of θ drawn behind the current point
# A quiet light surface (white = low loss) so the coloured paths stand out on a projector.
SURFACE_CMAP = LinearSegmentedColormap.from_list("surface", ["#ffffff", "#e9eef2", "#c3ced8", "#8e9dab"])


@dataclass(frozen=True)
class Background:
    """The rendered surface and where its plot area lies, at SUPERSAMPLE× the shown size."""

    image: Image.Image                             # RGB
    to_pixels: tuple[float, float, float, float]   # px = a·x + b, py = c·y + d
    plot_box: tuple[int, int, int, int]            # (left, top, right, bottom) of the axes, pixels
    labels: tuple = ()                             # (minimum name, its ★ (x, y), label box l, t, r, b) in pixels
    font_scale: float = 1.0                        # its texts' size factor; frames' step labels follow it


def _surface(land: Landscape, resolution: int):
    """Grid, the values to colour (log₁₀ loss where losses span decades) and the contour levels."""
    xs, ys, z = land.grid(resolution)
    if land.log_scale:
        z = np.log10(np.maximum(z, max(float(np.percentile(z, 0.5)), 1e-3)))
    return xs, ys, z, np.linspace(float(z.min()), float(np.percentile(z, 99)), 24)


def _legend_handles(methods) -> list[Line2D]:
    """Short entries: faint lines are the live weights θ, bold ones the averages φ."""
    handles = []
    for m in DRAW_ORDER:
        if m not in methods:
            continue
        color, name = METHOD_COLORS[m], METHOD_NAMES[m]
        if draws_theta(m, methods):
            handles.append(Line2D([], [], color=color, lw=2 if m == "sgd" else 1.5,
                                  alpha=0.9 if m == "sgd" else 0.6, label=f"{name} θ"))
        if m != "sgd":
            handles.append(Line2D([], [], color=color, lw=4, label=f"{name} φ"))
    if "sema" in methods:
        handles.append(Line2D([], [], color=METHOD_COLORS["sema"], marker="D", ls="--", lw=1.5, ms=7,
                              markeredgecolor="white", label="switch θ ← φ"))
    return handles


def two_figures(value: float) -> str:
    """A value to 2 significant figures without e-notation: 0.019, 6.3, 250, 1,600."""
    rounded = float(f"{value:.2g}")
    return f"{rounded:,.0f}" if abs(rounded) >= 100 else f"{rounded:g}"


def surface_figure(land: Landscape, methods, width_px: int = 820, height_px: int | None = None,
                   resolution: int = 220, font_scale: float = 1.0) -> Figure:
    """The loss surface of ``land`` with its minima, colour bar and a legend for ``methods``.

    ``font_scale`` enlarges every text (projector mode); the layout makes room for it, so labels,
    colour bar and legend never overlap.  ``fig.axes[0]`` is the surface, its ``texts`` the
    minimum labels, one per labelled minimum in ``land.minima`` order.
    """
    f = font_scale
    under = f >= UNDER_BAR_SCALE
    if height_px is None:                       # taller with the colour bar under the plot: it stays square-ish
        height_px = round(width_px * (960 if under else 780) / 820)
    xs, ys, z, levels = _surface(land, resolution)
    fig = Figure(figsize=(width_px / 100, height_px / 100), dpi=100 * SUPERSAMPLE, layout="constrained")
    fig.get_layout_engine().set(w_pad=0.06, h_pad=0.06)
    FigureCanvasAgg(fig)                        # a renderer for measuring the labels
    ax = fig.add_subplot()
    filled = ax.contourf(xs, ys, np.clip(z, levels[0], levels[-1]), levels=levels, cmap=SURFACE_CMAP)
    ax.contour(xs, ys, z, levels=levels[::2], colors="#6b7785", linewidths=0.5, alpha=0.5)
    # Projector fonts: the colour bar goes under the plot, which keeps the picture's whole width (the
    # player's step badge, drawn in the plot's top corner, needs it at a projector's 1280 px).
    bar = fig.colorbar(filled, ax=ax, location="bottom" if under else "right", fraction=0.035,
                       pad=0.02 if not under else 0.01, aspect=30 if not under else 45)
    bar.set_label("loss" + (" (log scale)" if land.log_scale else ""), fontsize=16 * f, labelpad=2 if under else 4)
    if under:
        bar.locator = MaxNLocator(5)
    if land.log_scale:
        bar.formatter = FuncFormatter(lambda v, _: two_figures(10 ** v))
    bar.update_ticks()
    labelled = [m for m in land.minima if m.labelled]
    show_loss = len({round(m.loss, 3) for m in labelled}) > 1      # only when the depths differ
    for m in land.minima:
        if not m.labelled:
            ax.plot(*m.point, marker=".", ms=3, color="#333333", alpha=0.6)
            continue
        ax.plot(*m.point, marker="*", ms=STAR_POINTS, color="gold", markeredgecolor="black", zorder=3)
        details = (f"loss {m.loss:.2f} · " if show_loss else "") + f"sharpness {two_figures(m.sharpness)}"
        note = ax.annotate(f"{m.name} minimum\n{details}", m.point, xytext=(0, 0), textcoords="offset points",
                           fontsize=13 * f, linespacing=1.15, zorder=4,
                           bbox=dict(boxstyle="round,pad=0.25", fc="white", ec="#999999", alpha=0.9))
        note.set_in_layout(False)               # inside the axes: the layout need not make room
    ax.set_xlim(land.domain[0], land.domain[1])
    ax.set_ylim(land.domain[2], land.domain[3])
    ax.set_xlabel("weight θ₁", fontsize=16 * f)
    ax.set_ylabel("weight θ₂", fontsize=16 * f)
    ax.tick_params(labelsize=14 * f)
    bar.ax.tick_params(labelsize=13 * f)
    ax.set_title(land.name, fontsize=18 * f, loc="left")
    handles = _legend_handles(methods)
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4 if f < 1.2 else 3),
               fontsize=14 * f, frameon=False, title="faint θ: live weights (recent steps)    bold φ: averages",
               title_fontsize=12.5 * f)
    _place_labels(fig, ax, land, f)
    return fig


def _place_labels(fig: Figure, ax, land: Landscape, font_scale: float) -> None:
    """Each minimum's label beside its ★: first choice, the corner facing the plot's centre (so it
    stays inside), above a ★ in the upper half and below one in the lower half (away from a
    neighbour across the middle); the other corners where that one is not free."""
    middle_x, middle_y = (land.domain[0] + land.domain[1]) / 2, (land.domain[2] + land.domain[3]) / 2

    def corners(i: int, note) -> list[tuple[bool, bool]]:
        right, up = note.xy[0] <= middle_x, note.xy[1] >= middle_y
        return [(right, up), (right, not up), (not right, up), (not right, not up)]

    notes = list(ax.texts)      # where two lines do not fit (projector fonts), narrower ones on more lines
    wordings = [list(dict.fromkeys([t, t.replace(" · ", "\n"), t.replace(" minimum\n", "\nminimum\n")]))
                for t in (n.get_text() for n in notes)]
    place_labels(fig, ax, notes, corners, offset=(13, 12), star_points=STAR_POINTS, wordings=wordings,
                 top_band=BADGE_POINTS * font_scale)


def place_labels(fig: Figure, ax, notes: list, corners, offset: tuple[float, float], star_points: float,
                 wordings: list[list[str]] | None = None, top_band: float = 0.0, max_tried: int = 50_000) -> None:
    """Put each annotation at one of the four corners around the point it labels (``offset``
    points away), so that every label stays inside the axes, covers none of the labelled points
    (markers ``star_points`` across) and no other label.

    ``corners(i, note)`` lists the corners (right?, up?) in order of preference; ``wordings[i]``,
    when given, the label's texts in order of preference (e.g. on two lines, then on three).
    A label nearer another point than its own is avoided too, and so is a band ``top_band`` points
    high along the top of the axes (where the path player draws its step badge).  Every combination
    is tried (up to ``max_tried`` of them; beyond that each label takes its own best place); ties go
    to the preferred ones.  The figure must have a canvas (FigureCanvasAgg(fig)).
    """
    if not notes:
        return
    fig.draw_without_rendering()                # the layout: where the axes finally sit
    renderer = fig.canvas.get_renderer()
    box = ax.get_window_extent(renderer)
    band = box.y1 - top_band * fig.dpi / 72        # labels stay below this line
    points = ax.transData.transform([note.xy for note in notes])
    radius = star_points / 2 * fig.dpi / 72
    gap = LABEL_GAP_POINTS * fig.dpi / 72

    def put(note, text: str, right: bool, up: bool) -> None:
        note.set_text(text)
        note.set_position((offset[0] if right else -offset[0], offset[1] if up else -offset[1]))
        note.set_ha("left" if right else "right")
        note.set_va("bottom" if up else "top")

    options = []                                # per label: ((text, corner), its extent, its own cost)
    for i, note in enumerate(notes):
        texts = wordings[i] if wordings else [note.get_text()]
        tried = [(t, c) for t in texts for c in corners(i, note)]
        mine = []
        for rank, (text, corner) in enumerate(tried):
            put(note, text, *corner)
            e = label_extent(note, renderer)
            outside = max(box.x0 - e.x0, 0) + max(e.x1 - box.x1, 0) + max(box.y0 - e.y0, 0) + max(e.y1 - band, 0)
            away = [np.hypot(max(e.x0 - x, x - e.x1, 0), max(e.y0 - y, y - e.y1, 0)) for x, y in points]
            covered = sum(max(radius - d, 0) for d in away)
            # nearer another point than its own: a reader would give it to the wrong ★
            nearer = max([away[i] + radius - d for j, d in enumerate(away) if j != i] + [0])
            mine.append(((text, corner), e, 1e6 * (outside + covered) + 10 * nearer + rank))
        options.append(mine)

    def overlap(a, b) -> float:
        w = min(a.x1, b.x1) + gap - max(a.x0, b.x0)
        h = min(a.y1, b.y1) + gap - max(a.y0, b.y0)
        return max(w, 0) * max(h, 0)

    def cost(choice) -> float:
        return (sum(c for _, _, c in choice)
                + 1e3 * sum(overlap(a[1], b[1]) for i, a in enumerate(choice) for b in choice[i + 1:]))

    if math.prod(len(o) for o in options) > max_tried:
        options = [[min(o, key=lambda option: option[2])] for o in options]
    best = min(itertools.product(*options), key=cost)
    for note, ((text, corner), _, _) in zip(notes, best):
        put(note, text, *corner)


def label_extent(note, renderer):
    """The window extent of an annotation's box (its text and padding), in pixels."""
    note.update_positions(renderer)
    note.update_bbox_position_size(renderer)
    return note.get_bbox_patch().get_window_extent(renderer)


def surface_background(land: Landscape, methods, width_px: int = 820, height_px: int | None = None,
                       resolution: int = 220, font_scale: float = 1.0) -> Background:
    """The loss surface of ``land`` with its minima and a legend for ``methods``, as pixels
    (:func:`surface_figure`, with every text ``font_scale`` times larger)."""
    fig = surface_figure(land, methods, width_px, height_px, resolution, font_scale)
    ax, canvas = fig.axes[0], fig.canvas
    canvas.draw()
    image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    (x0, y0), (x1, y1) = ax.transData.transform([(land.domain[0], land.domain[2]),
                                                  (land.domain[1], land.domain[3])])
    height = image.height
    a = (x1 - x0) / (land.domain[1] - land.domain[0])
    c = -(y1 - y0) / (land.domain[3] - land.domain[2])       # image rows grow downwards
    box = (int(np.floor(x0)), int(np.floor(height - y1)), int(np.ceil(x1)), int(np.ceil(height - y0)))
    renderer = canvas.get_renderer()
    labels = []
    for m, note in zip([m for m in land.minima if m.labelled], ax.texts):
        extent = label_extent(note, renderer)
        star = ax.transData.transform([m.point])[0]
        labels.append((m.name, (float(star[0]), float(height - star[1])),
                       (float(extent.x0), float(height - extent.y1), float(extent.x1), float(height - extent.y0))))
    return Background(image.convert("RGB"), (a, x0 - a * land.domain[0], c, height - y0 - c * land.domain[2]), box,
                      tuple(labels), font_scale)


def named_surface_background(landscape: str, methods, font_scale: float = 1.0) -> Background:
    """:func:`surface_background` of the landscape of that name (one picklable call the engine can offload)."""
    from ..landscapes import get_landscape
    return surface_background(get_landscape(landscape), methods, font_scale=font_scale)


def _rgba(color: str, alpha: float) -> tuple[int, int, int, int]:
    r, g, b = ImageColor.getrgb(color)
    return r, g, b, int(round(255 * alpha))


def draws_theta(method: str, methods) -> bool:
    """Draw a faint θ path? Not for EMA and SWA when SGD's path (the same θ) is drawn already."""
    return not (method in SHARES_THETA_WITH_SGD and "sgd" in methods)


def _polyline(draw: ImageDraw.ImageDraw, points: np.ndarray, fill, width: int) -> None:
    """A thick polyline with round joints.

    Vertices closer than a third of the width are dropped first (the picture is the same,
    the vertex count drops ~5×), and each joint is a filled circle: much cheaper than
    Pillow's ``joint="curve"``.
    """
    keep, last = [], None
    for x, y in points.tolist():
        if last is None or abs(x - last[0]) + abs(y - last[1]) >= width / 3:
            keep.append((x, y))
            last = (x, y)
    if len(points) and keep[-1] != tuple(points[-1]):
        keep.append(tuple(points[-1]))
    draw.line(keep, fill=fill, width=width)
    r = width / 2 - 0.5
    if r >= 1.5:
        for x, y in keep:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)


def render_frame(bg: Background, sim: Simulation, step: int, trail: int | None = THETA_TRAIL) -> Image.Image:
    """The surface with the paths up to ``step``: φ in full, θ for its last ``trail`` steps.

    Only the recent θ is drawn because a noisy θ path soon covers everything; the
    switch markers (θ landing on φ) stay for the whole run.
    """
    a, b, c, d = bg.to_pixels
    left, top = bg.plot_box[:2]
    s = SUPERSAMPLE
    methods = [m for m in DRAW_ORDER if m in sim.config.methods]
    plot = bg.image.crop(bg.plot_box)          # drawing on the plot area alone clips every path to it
    draw = ImageDraw.Draw(plot, "RGBA")        # RGBA mode: translucent strokes blend onto the surface

    def pixels(points: np.ndarray) -> np.ndarray:
        return np.column_stack([a * points[:, 0] + b - left, c * points[:, 1] + d - top])

    def dot(xy, radius: float, fill, outline="white"):
        x, y = xy
        r = radius * s
        draw.ellipse((x - r, y - r, x + r, y + r), fill=fill, outline=outline, width=2 * s)

    shown = {}                                  # method -> (θ pixels, φ pixels) up to this step
    for m in methods:
        path = sim.paths[m]
        n = min(step, len(path.theta) - 1) + 1
        shown[m] = pixels(path.theta[:n]), pixels(path.phi[:n])
    first = {m: 0 if trail is None else max(len(shown[m][0]) - 1 - trail, 0) for m in methods}
    for m in methods:                           # faint θ trails underneath
        if draws_theta(m, sim.config.methods):
            opacity, width = (0.9, 2) if m == "sgd" else (0.6, 1.5)   # SGD's θ is its only path
            _polyline(draw, shown[m][0][first[m]:], _rgba(METHOD_COLORS[m], opacity), int(width * s))
    heads = []
    for m in methods:                           # bold φ paths on top, with SEMA's switches
        (theta, phi), color, path = shown[m], METHOD_COLORS[m], sim.paths[m]
        if m != "sgd":                          # SGD evaluates θ itself: it has no average to draw
            _polyline(draw, phi, "white", 7 * s)       # casing: readable on any surface
            _polyline(draw, phi, color, 4 * s)
            heads.append((phi[-1], 8, color))
        if draws_theta(m, sim.config.methods):
            heads.append((theta[-1], 7 if m == "sgd" else 4, color))
        if m == "sema":
            for k in path.switch_steps[path.switch_steps < len(theta)]:
                if k > first[m]:
                    _dashed(draw, theta[k - 1], theta[k], color, width=2 * s)
                x, y = theta[k]
                r = 5 * s
                draw.polygon([(x, y - r), (x + r, y), (x, y + r), (x - r, y)], fill=color, outline="white",
                             width=s)
        if path.diverged_at is not None and step >= len(path.theta) - 1:   # mark it, at the edge if outside
            x, y = np.clip(phi[-1], 12 * s, np.array(plot.size) - 12 * s)
            _cross(draw, (x, y), color, 10 * s)
    dot(pixels(np.array([sim.start]))[0], 6, "white", outline="black")
    for xy, radius, color in heads:
        dot(xy, radius, color)
    label = f"step {step:,} / {sim.config.steps:,}  ·  epoch {step / sim.config.steps_per_epoch:.1f}"
    return finish_frame(bg, plot, label, s, round(18 * bg.font_scale))


def finish_frame(bg, plot: Image.Image, label: str, s: int, font_size: int) -> Image.Image:
    """The background with the drawn plot pasted in and the step label above it, reduced from the
    ``s``-times supersampled size."""
    frame = bg.image.copy()
    frame.paste(plot, bg.plot_box[:2])
    ImageDraw.Draw(frame).text((bg.plot_box[2], bg.plot_box[1] - 6 * s), label, fill="black", anchor="rd",
                               font=ImageFont.load_default(size=font_size * s))
    return frame.reduce(s)


def _dashed(draw: ImageDraw.ImageDraw, p, q, color, width: int, dash: float = 12.0) -> None:
    (x0, y0), (x1, y1) = p, q
    n = max(int(np.hypot(x1 - x0, y1 - y0) / dash), 1)
    for i in range(0, n, 2):
        t0, t1 = i / n, min((i + 1) / n, 1.0)
        draw.line([(x0 + t0 * (x1 - x0), y0 + t0 * (y1 - y0)), (x0 + t1 * (x1 - x0), y0 + t1 * (y1 - y0))],
                  fill=color, width=width)


def _cross(draw: ImageDraw.ImageDraw, xy, color, r: float) -> None:
    """An ✕ where a diverged run left the picture."""
    x, y = xy
    for dx in (-r, r):
        draw.line([(x - dx, y - r), (x + dx, y + r)], fill="black", width=int(r / 2))
        draw.line([(x - dx, y - r), (x + dx, y + r)], fill=color, width=int(r / 4))


def frame_steps(total_steps: int, n_frames: int) -> np.ndarray:
    """``n_frames`` evenly spaced steps from 0 to ``total_steps`` (both included)."""
    return np.unique(np.linspace(0, total_steps, min(n_frames, total_steps + 1)).round().astype(int))


def animation_gif(bg: Background, sim: Simulation, n_frames: int = 60, fps: int = 12,
                  width_px: int | None = None) -> bytes:
    """The animation as a looping GIF (the last frame is held for two seconds).

    ``width_px`` scales the frames down (e.g. for slides).  All frames share one palette,
    taken from the last frame (it holds every colour), so encoding is quick and the file small.
    """
    frames = [render_frame(bg, sim, int(step)) for step in frame_steps(sim.config.steps, n_frames)]
    if width_px:
        size = (width_px, round(frames[0].height * width_px / frames[0].width))
        frames = [f.resize(size, Image.LANCZOS) for f in frames]
    palette = frames[-1].quantize(colors=255)
    frames = [f.quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], loop=0,
                   duration=[round(1000 / fps)] * (len(frames) - 1) + [2000])
    return out.getvalue()


def loss_frame(sim: Simulation, limit: int = 600) -> pd.DataFrame:
    """Long table of the loss along θ and φ per method, thinned to ``limit`` points a series."""
    rows = []
    for method, p in sim.paths.items():
        idx = frame_steps(len(p.phi_loss) - 1, limit)
        series = [("φ (evaluated)", p.phi_loss)]
        if method not in ("sgd", *SHARES_THETA_WITH_SGD):
            series.append(("θ (live)", p.theta_loss))
        for weights, loss in series:
            rows.append(pd.DataFrame({"step": idx, "loss": loss[idx], "method": METHOD_NAMES[method],
                                      "weights": weights}))
    return pd.concat(rows, ignore_index=True)


def loss_chart(sim: Simulation, height: int = 300) -> alt.Chart:
    """Loss of each method's evaluated weights φ (bold) and live weights θ (faint) against the step."""
    data = loss_frame(sim)
    methods = list(sim.config.methods)
    log = sim.landscape.log_scale
    if log:
        data["loss"] = data["loss"].clip(lower=1e-8)
    lines = alt.Chart(data).mark_line().encode(
        x=alt.X("step:Q", title="optimizer step"),
        y=alt.Y("loss:Q", title="loss" + (" (log scale)" if log else ""),
                scale=alt.Scale(type="log") if log else alt.Scale(zero=False)),
        color=alt.Color("method:N", scale=alt.Scale(domain=[METHOD_NAMES[m] for m in methods],
                                                    range=[METHOD_COLORS[m] for m in methods]),
                        legend=alt.Legend(orient="top", title=None)),
        detail="weights:N",
        strokeWidth=alt.condition(alt.datum.weights == "θ (live)", alt.value(1.0), alt.value(2.5)),
        opacity=alt.condition(alt.datum.weights == "θ (live)", alt.value(0.45), alt.value(1.0)),
        tooltip=["method", "weights", "step", alt.Tooltip("loss:Q", format=".4g")],
    )
    layers = [lines]
    if "sema" in sim.paths and len(sim.paths["sema"].switch_steps):
        switches = pd.DataFrame({"step": sim.paths["sema"].switch_steps})
        layers.insert(0, alt.Chart(switches).mark_rule(color=METHOD_COLORS["sema"], opacity=0.2,
                                                        strokeDash=[3, 3]).encode(x="step:Q"))
    return alt.layer(*layers).properties(height=height)


def mean_std_text(values) -> str:
    """"0.00123 ± 0.00081": the spread to 2 significant figures, the mean to the same decimal
    place (at most 4 significant figures); 'n/a' when no value is left."""
    m, s = mean_std(values)
    if math.isnan(m):
        return "n/a"
    if not (math.isfinite(s) and s > 0):
        return f"{m:.3g} ± 0"
    decimals = 1 - math.floor(math.log10(s))
    if m != 0:
        decimals = min(decimals, 3 - math.floor(math.log10(abs(m))))
    decimals = max(decimals, 0)
    spread = f"{s:.{decimals}f}"
    if float(spread) == 0:
        spread = f"< {10.0 ** -decimals:.{decimals}f}"
    return f"{m:.{decimals}f} ± {spread}"


def count_share(count: int, total: int) -> str:
    """"34 of 128 (27 %)": a count of runs with its share, in whole percent (< 1 % when tiny)."""
    if count == 0:
        return f"0 of {total}"
    share = 100 * count / total
    return f"{count} of {total} ({'< 1' if share < 1 else f'{share:.0f}'} %)"


def basin_summary(basin: BasinMap) -> pd.DataFrame:
    """Per method: runs ending in each minimum as "k of N (p %)", and the final loss as mean ± std."""
    summary = basin.summary()
    total = len(basin.starts)
    table = pd.DataFrame({"method": summary["method"].map(METHOD_NAMES)})
    for column in summary.columns:
        if column in ("method", "final loss mean", "final loss std"):
            continue
        table[column] = [count_share(int(round(v * total)), total) for v in summary[column]]
    table["final loss (mean ± std)"] = [mean_std_text(basin.final_loss[m][basin.diverged_at[m] < 0])
                                        for m in summary["method"]]
    return table


def final_table(sim: Simulation) -> pd.DataFrame:
    """Per method: where this run ends, its final loss, and the mean ± std over noise seeds."""
    land, spread = sim.landscape, sim.spread
    n_seeds = len(spread.seeds)
    rows = []
    for method, p in sim.paths.items():
        ok = spread.diverged_at[method] < 0
        ends = land.minimum_names(land.nearest_minimum(p.phi[-1])) if p.diverged_at is None else "—"
        rows.append({
            "method": METHOD_NAMES[method],
            "ends in": ends,
            "final loss": p.final_loss if p.diverged_at is None else None,
            f"{n_seeds} seeds": mean_std_text(spread.final_loss[method][ok])
            + ("" if ok.all() else f" ({(~ok).sum()} diverged)"),
            "status": "ok" if p.diverged_at is None else f"diverged at step {p.diverged_at}",
        })
    return pd.DataFrame(rows)


def _basin_category(land: Landscape, basin: BasinMap, method: str) -> np.ndarray:
    index = basin.basin[method]
    labels = np.array([m.name if m.labelled else "a local minimum" for m in land.minima] + ["no minimum"],
                      dtype=object)[index]
    return np.where(basin.diverged_at[method] >= 0, "diverged", labels)


def basin_chart(basin: BasinMap, land: Landscape, size: int = 260) -> alt.HConcatChart:
    """One panel per method: each start point coloured by the minimum that method ends in."""
    categories = [m.name for m in land.minima if m.labelled]
    categories += ["a local minimum"] * any(not m.labelled for m in land.minima) + ["no minimum", "diverged"]
    palette = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#CC79A7", "#0072B2", "#D55E00"]
    colors = palette[: len(categories) - 2] + ["#bbbbbb", "#000000"]
    minima = pd.DataFrame([{"x": m.point[0], "y": m.point[1], "minimum": m.name}
                           for m in land.minima if m.labelled])
    x_scale = alt.Scale(domain=list(land.domain[:2]), nice=False)
    y_scale = alt.Scale(domain=list(land.domain[2:]), nice=False)
    panels = []
    for i, method in enumerate(basin.basin):
        data = pd.DataFrame({"x": basin.starts[:, 0], "y": basin.starts[:, 1],
                             "ends in": _basin_category(land, basin, method),
                             "final loss": np.where(np.isfinite(basin.final_loss[method]),
                                                    basin.final_loss[method], np.nan)})
        points = alt.Chart(data).mark_circle(size=40, opacity=0.85).encode(
            x=alt.X("x:Q", scale=x_scale, title="start θ₁"),
            y=alt.Y("y:Q", scale=y_scale, title="start θ₂" if i == 0 else None),
            color=alt.Color("ends in:N", scale=alt.Scale(domain=categories, range=colors),
                            legend=alt.Legend(orient="top", title="ends in")),
            tooltip=["ends in", alt.Tooltip("final loss:Q", format=".3g")],
        )
        stars = alt.Chart(minima).mark_point(shape="cross", size=180, color="black", filled=True).encode(
            x="x:Q", y="y:Q", tooltip=["minimum"])
        panels.append(alt.layer(points, stars).properties(width=size, height=size, title=METHOD_NAMES[method]))
    return alt.hconcat(*panels)

