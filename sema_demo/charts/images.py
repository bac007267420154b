"""Figures of the image page and the CLI: test images with every method's prediction, curves as a PNG."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from .style import METHOD_COLORS, METHOD_NAMES
from .training import KINDS, curve_bands

RIGHT, WRONG = "#1b7f3b", "#c0392b"  # green / red: readable on a projector, and marked ✓/✗ too


def prediction_grid(images: np.ndarray, truth: np.ndarray, predictions: dict[str, np.ndarray],
                    classes: list[str], columns: int = 8, font_scale: float = 1.0) -> Figure:
    """Test images (uint8, N×H×W×C) with the true class on top and one ✓/✗ line per method below.

    ``predictions`` maps a method name ("sgd", "ema", "sema", …) to its predicted class indices;
    ``font_scale`` enlarges the text (a projector), the images grow with it.
    """
    n = len(images)
    columns = max(1, min(columns, n))
    rows = -(-n // columns)
    methods = list(predictions)
    text_h = 0.22 * len(methods)  # one line per method, below each image (in units of an image's height)
    size = 1.45 * font_scale
    fig = Figure(figsize=(size * columns, (size + 0.3 * font_scale + size * text_h) * rows), layout="constrained")
    grid = fig.add_gridspec(2 * rows, columns, height_ratios=[1, text_h] * rows)
    gray = images.shape[-1] == 1
    for i in range(n):
        r, c = divmod(i, columns)
        ax, below = fig.add_subplot(grid[2 * r, c]), fig.add_subplot(grid[2 * r + 1, c])
        ax.imshow(images[i, ..., 0] if gray else images[i], cmap="gray" if gray else None,
                  interpolation="nearest")
        ax.set_title(_short(classes[truth[i]]), fontsize=12 * font_scale, fontweight="bold", pad=3)
        for a in (ax, below):
            a.set_axis_off()
        for j, method in enumerate(methods):
            guess = int(predictions[method][i])
            ok = guess == truth[i]
            label = f"{METHOD_NAMES.get(method, method)} {'✓' if ok else '✗'} {_short(classes[guess])}"
            below.text(0.5, 1 - (j + 0.5) / len(methods), label, ha="center", va="center", fontsize=10 * font_scale,
                       color=RIGHT if ok else WRONG)
    return fig


def _short(name: str, width: int = 11) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


# ---------------------------------------------------------------------------- curves for a file

def curves_figure(history: pd.DataFrame, switch_epochs: list[int] | None = None, title: str = "") -> Figure:
    """Test accuracy and test loss per epoch as a matplotlib figure (the CLI's PNG): the mean over
    seeds with a ± std band, SEMA's switches as faint dashed lines. The page uses the altair
    ``charts.training.learning_curves`` of the same data."""
    fig = Figure(figsize=(11, 4), layout="constrained")
    for ax, kind in zip(fig.subplots(1, 2), ("accuracy", "loss")):
        for epoch in switch_epochs or []:
            ax.axvline(epoch, color=METHOD_COLORS["sema"], alpha=0.2, lw=1, ls="--")
        bands = curve_bands(history, kind)
        for method, band in bands[bands["split"] == "test"].groupby("method", sort=False):
            color = METHOD_COLORS.get(method)
            ax.plot(band["epoch"], band["mean"], color=color, lw=2.2, label=METHOD_NAMES.get(method, method))
            ax.fill_between(band["epoch"], band["lo"], band["hi"], color=color, alpha=0.15, lw=0)
        ax.set(xlabel="epoch", ylabel=f"test {KINDS[kind][1]}")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right" if kind == "accuracy" else "upper right")
    if switch_epochs:
        fig.text(0.995, 0.005, "dashed: SEMA switches θ ← φ", ha="right", va="bottom", fontsize=9,
                 color=METHOD_COLORS["sema"])
    if title:
        fig.suptitle(title)
    return fig


@torch.no_grad()
def predicted_classes(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    """The class a network predicts for each input (evaluation mode, then back as it was)."""
    was_training = model.training
    model.eval()
    out = model(x).argmax(1).cpu().numpy()
    model.train(was_training)
    return out
