"""The Home page's figures: θ and φ of a one-parameter noisy walk, and its loss over seeds.

matplotlib, drawn on the server: Home is the page a whole class opens at once, and as pictures
its figures need no chart library in a newcomer's browser (``load_classroom.py``: Vega's chunks,
compile and draw were about a second of a new visitor's Home)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from ..walk import Walk, Walks
from .style import METHOD_COLORS

NAMES = {"sgd": "SGD θ", "ema": "EMA φ", "sema_theta": "SEMA θ", "sema_phi": "SEMA φ"}
COLORS = {"sgd": METHOD_COLORS["sgd"], "ema": METHOD_COLORS["ema"], "sema_theta": "#F0A36B",
          "sema_phi": METHOD_COLORS["sema"]}
LOSS_SERIES = ("sgd", "ema", "sema_phi")      # what each method evaluates


def walk_frame(walk: Walk) -> pd.DataFrame:
    frames = [pd.DataFrame({"step": walk.step, "weight": getattr(walk, s), "series": NAMES[s]}) for s in NAMES]
    return pd.concat(frames, ignore_index=True)


def _rules(ax, steps: np.ndarray) -> None:
    """SEMA's switches as faint dashed vertical rules (one collection: an artist each was a third of the draw)."""
    ax.vlines(steps, 0, 1, transform=ax.get_xaxis_transform(), colors=METHOD_COLORS["sema"], alpha=0.35,
              linewidth=0.9, linestyles=(0, (4, 4)), zorder=1)


def _frame(width: float, height: float, font_scale: float) -> tuple[Figure, Axes]:
    """One axes with room for its labels and the legend above, margins in inches (a layout engine
    measuring every label was half the drawing time of a figure the class waits for)."""
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=0.8 * font_scale / width, right=1 - 0.15 / width,
                        bottom=0.48 * font_scale / height, top=1 - 0.3 * font_scale / height)
    ax = fig.add_subplot()
    ax.tick_params(labelsize=8.5 * font_scale)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(True, color="#e6e6e6", linewidth=0.6, zorder=0)
    ax.set_axisbelow(True)
    return fig, ax


def _legend(ax, font_scale: float, columns: int) -> None:
    """The legend above the plot, one row, in line strokes (not the band's pale fill)."""
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncols=columns, frameon=False, columnspacing=1.2,
              fontsize=9 * font_scale, handlelength=1.8, handletextpad=0.5, borderaxespad=0.2)


# how each series of the walk is drawn: SEMA's θ light and dashed (it jumps at every switch)
LINE_STYLE = {"sgd": dict(linewidth=1.2), "ema": dict(linewidth=2.6), "sema_theta": dict(linewidth=1.6, dashes=(5, 3)),
              "sema_phi": dict(linewidth=2.6)}


def walk_figure(walk: Walk, width: float = 6.8, height: float = 2.6, font_scale: float = 1.0) -> Figure:
    """SGD's θ, EMA's φ, SEMA's θ (light, dashed: it jumps at every switch) and SEMA's φ (what
    SEMA evaluates), with the switches as dashed rules and the minimum as a grey line."""
    fig, ax = _frame(width, height, font_scale)
    ax.axhline(0.0, color="black", alpha=0.3, linewidth=1.0, zorder=1)
    _rules(ax, walk.switch_steps)
    for s, name in NAMES.items():
        ax.plot(walk.step, getattr(walk, s), color=COLORS[s], label=name, zorder=3, **LINE_STYLE[s])
    ax.set_xlim(walk.step[0], walk.step[-1])
    ax.set_xlabel("optimizer step", fontsize=9.5 * font_scale)
    ax.set_ylabel("weight (the minimum is at 0)", fontsize=9.5 * font_scale)
    _legend(ax, font_scale, len(NAMES))
    return fig


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


def loss_band_figure(walks: Walks, width: float = 6.8, height: float = 2.3, font_scale: float = 1.0) -> Figure:
    """Loss ½·h·w² of SGD θ, EMA φ and SEMA φ over seeds: the mean (line) and its 95 % interval
    (band; drawn down to a fifth of the mean at most, the log axis cannot show zero; no band for
    one seed)."""
    frame = loss_frame(walks)
    fig, ax = _frame(width, height, font_scale)
    _rules(ax, walks.switch_steps)
    for s in LOSS_SERIES:
        rows = frame[frame["series"] == NAMES[s]]
        mean, low, high = (rows[c].to_numpy() for c in ("mean", "low", "high"))
        if np.isfinite(low).any():
            ax.fill_between(rows["step"], np.maximum(low, 0.2 * mean), high, color=COLORS[s], alpha=0.2,
                            linewidth=0, zorder=2)
        ax.plot(rows["step"], mean, color=COLORS[s], linewidth=2.4, label=NAMES[s], zorder=3)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))   # 0.01, 0.1, 1: no mathtext
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(walks.step[0], walks.step[-1])
    ax.set_xlabel("optimizer step", fontsize=9.5 * font_scale)
    ax.set_ylabel("mean loss ½θ² (log)", fontsize=9.5 * font_scale)
    _legend(ax, font_scale, len(LOSS_SERIES))
    return fig
