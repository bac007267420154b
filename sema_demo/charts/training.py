"""Learning curves and results tables from a training history (``Trainer.history`` rows).

Generic over any history with the engine's columns (epoch, method, seed, train/test
loss and accuracy, switched, diverged), so the toy and image pages share them:

    learning_curves(frame, "accuracy", switch_epochs=trainer.switch_epochs(), epochs=config.epochs)
    results_table(frame, threshold=0.9); results_text(frame, threshold=0.9)

Everything that varies with the seed is shown as mean ± std over seeds; diverged runs
are left out of the statistics and counted separately.
"""
from __future__ import annotations

import copy
from functools import lru_cache

import altair as alt
import numpy as np
import pandas as pd

from ..stats import format_mean_std
from . import summaries
from .style import METHOD_COLORS, METHOD_NAMES, method_scale

CURVES = "curves"   # the name of the curves' dataset in a learning_curves_spec
KINDS = {"accuracy": ("acc", "accuracy (%)", 100.0), "loss": ("loss", "cross-entropy loss", 1.0)}


def _methods(frame: pd.DataFrame) -> list[str]:
    return summaries.methods_of(frame)


def curve_bands(history: pd.DataFrame, kind: str = "accuracy") -> pd.DataFrame:
    """Mean and mean ± std over seeds per (method, split, epoch), in display units.

    Rows in order of first appearance: every train row, then every test row (a live page
    computes this twice per tick, so numpy, not a melt and a groupby)."""
    suffix, _, scale = KINDS[kind]
    ok = ~history["diverged"].to_numpy().astype(bool)
    method, epoch = history["method"].to_numpy(object)[ok], history["epoch"].to_numpy()[ok]
    columns: dict[str, list] = {c: [] for c in ("method", "split", "epoch", "mean", "std", "count")}
    for split in ("train", "test"):
        value = history[f"{split}_{suffix}"].to_numpy(dtype=float)[ok]
        keep = ~np.isnan(value)
        groups: dict[tuple, int] = {}           # (method, epoch) -> its group, in order of appearance
        code = np.array([groups.setdefault(key, len(groups)) for key in zip(method[keep], epoch[keep])], dtype=int)
        v = value[keep]
        count = np.bincount(code, minlength=len(groups))
        mean = np.bincount(code, v, minlength=len(groups)) / np.maximum(count, 1)
        squares = np.bincount(code, (v - mean[code]) ** 2, minlength=len(groups))
        columns["method"] += [m for m, _ in groups]
        columns["split"] += [split] * len(groups)
        columns["epoch"] += [e for _, e in groups]
        columns["mean"].append(mean * scale)
        columns["std"].append(np.where(count > 1, np.sqrt(squares / np.maximum(count - 1, 1)), 0.0) * scale)
        columns["count"].append(count)
    mean, std = np.concatenate(columns["mean"]), np.concatenate(columns["std"])
    names = [METHOD_NAMES.get(m) for m in columns["method"]]
    text = (lambda v: v) if names else (lambda v: np.array(v, dtype=object))    # an empty frame's columns
    return pd.DataFrame({
        "method": text(columns["method"]), "split": text(columns["split"]),
        "epoch": np.array(columns["epoch"], dtype=history["epoch"].dtype if len(history) else "int64"),
        "mean": mean, "std": std, "count": np.concatenate(columns["count"]).astype("int64"),
        # the band, kept inside what the quantity can be (accuracy 0–100 %, loss ≥ 0)
        "lo": np.maximum(mean - std, 0.0), "hi": np.minimum(mean + std, 100.0) if kind == "accuracy" else mean + std,
        "Method": text(names)})


def learning_curves(history: pd.DataFrame, kind: str = "accuracy", *, switch_epochs=(), epochs: int | None = None,
                    height: int = 260, title: str | None = None) -> alt.LayerChart:
    """Train (dashed) and test (solid) curves per method, mean ± std bands over seeds, and
    SEMA's switch epochs as faint vertical rules.  ``epochs`` fixes the x axis (live runs)."""
    bands, layout = _curve_layout(history, kind, switch_epochs, epochs, height, title)
    return _curves_chart(bands, *layout)


def learning_curves_spec(history: pd.DataFrame, kind: str = "accuracy", *, switch_epochs=(),
                         epochs: int | None = None, height: int = 260,
                         title: str | None = None, fonts: dict[str, int] | None = None) -> dict:
    """The figure of :func:`learning_curves` as a Vega-Lite spec for ``st.vega_lite_chart(spec=…)``.

    For pages that redraw it many times a second (live training): the spec depends only on
    the layout (methods, axes, switches), so it is built and validated once per layout and
    each redraw only puts in new data (the ``datasets`` entry named ``CURVES``).  Building an
    Altair chart costs ≈ 60 ms of Python, most of it schema validation; on a server shared by
    a classroom that is CPU taken from others.

    ``fonts`` (``{"label", "title", "legend", "header"}`` in px, e.g. the projector's) sizes the text.
    """
    bands, layout = _curve_layout(history, kind, switch_epochs, epochs, height, title)
    spec = copy.deepcopy(_curves_spec(*layout))             # Streamlit edits the spec it is given
    spec.setdefault("datasets", {})[CURVES] = bands
    if fonts:
        config = spec.setdefault("config", {})
        config.setdefault("axis", {}).update(labelFontSize=fonts["label"], titleFontSize=fonts["title"])
        config.setdefault("legend", {}).update(labelFontSize=fonts["legend"], symbolSize=160)
        config.setdefault("title", {}).update(fontSize=fonts["header"])
    return spec


def _curve_layout(history, kind, switch_epochs, epochs, height, title) -> tuple[pd.DataFrame, tuple]:
    bands = curve_bands(history, kind)
    methods = tuple(_methods(history)) if len(history) else ()
    x_max = epochs or (int(history["epoch"].max()) if len(history) else 1)
    shown = tuple(e for e in switch_epochs if e <= x_max) if "sema" in methods else ()
    return bands, (kind, methods, x_max, shown, height, title, bool(len(bands)))


@lru_cache(maxsize=256)
def _curves_spec(*layout) -> dict:
    return _curves_chart(None, *layout).to_dict()


def _curves_chart(bands: pd.DataFrame | None, kind: str, methods: tuple[str, ...], x_max: int,
                  shown: tuple[int, ...], height: int, title: str | None, filled: bool) -> alt.LayerChart:
    """The chart; ``bands=None`` names the curves' data ``CURVES`` instead (filled in at draw time)."""
    _, label, _ = KINDS[kind]
    x = alt.X("epoch:Q", title="epoch", scale=alt.Scale(domain=[0, x_max], nice=False),
              axis=alt.Axis(tickMinStep=1, format="d"))          # whole epochs, even on a short run
    # Before the first epoch there is nothing to scale the y axis by: give it a range, or Vega
    # warns "Infinite extent" in the browser's console.
    y_scale = alt.Scale(zero=False) if filled else alt.Scale(domain=[0, 100 if kind == "accuracy" else 1])
    color = alt.Color("Method:N", scale=method_scale(list(methods) or None),
                      legend=alt.Legend(orient="top", title=None, symbolType="stroke", symbolOpacity=1,
                                        symbolStrokeWidth=3))
    dash = alt.StrokeDash("split:N", scale=alt.Scale(domain=["test", "train"], range=[[1, 0], [5, 3]]),
                          legend=alt.Legend(orient="top", title=None))
    base = alt.Chart(alt.NamedData(CURVES) if bands is None else bands)
    band = base.mark_area(opacity=0.18).encode(x, alt.Y("lo:Q"), alt.Y2("hi:Q"), color,
                                               detail="split:N").transform_filter(alt.datum.split == "test")
    line = base.mark_line(strokeWidth=2.2).encode(
        x, alt.Y("mean:Q", title=label, scale=y_scale), color, dash,
        tooltip=["Method:N", "split:N", "epoch:Q", alt.Tooltip("mean:Q", format=".3f", title="mean"),
                 alt.Tooltip("std:Q", format=".3f", title="std over seeds"), alt.Tooltip("count:Q", title="seeds")])
    layers = [band, line]
    if shown:
        rules = alt.Chart(pd.DataFrame({"epoch": list(shown), "event": "SEMA switch θ ← φ"})).mark_rule(
            color=METHOD_COLORS["sema"], strokeDash=[2, 3], opacity=0.35 if len(shown) < 40 else 0.15
        ).encode(x, tooltip=["event:N", "epoch:Q"])
        layers.insert(0, rules)
    chart = alt.layer(*layers).properties(height=height)
    return chart.properties(title=title) if title else chart


# ---------------------------------------------------------------------------------- summaries


def final_rows(history: pd.DataFrame) -> pd.DataFrame:
    """The last row of every (method, seed) run that did not diverge."""
    last = history.sort_values("epoch").groupby(["method", "seed"], sort=False).tail(1)
    return last[~last["diverged"].astype(bool)]


def epochs_to_reach(history: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """First epoch at which each (method, seed) reached ``threshold`` test accuracy (NaN: never)."""
    runs = history[["method", "seed"]].drop_duplicates()
    hit = history[history["test_acc"] >= threshold].groupby(["method", "seed"], sort=False)["epoch"].min()
    return runs.join(hit, on=["method", "seed"]).reset_index(drop=True)


def results_table(history: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Per method: final test accuracy and epochs to ``threshold`` as mean ± std over seeds
    (from ``summaries.final_accuracy`` and ``summaries.epochs_to_target``, which read each run
    as arrays: a live page draws this on every tick)."""
    finals = summaries.final_accuracy(history)            # points; a diverged run is NaN, left out
    epochs, hit, _ = summaries.epochs_to_target(history, threshold)
    diverged = history.loc[history["diverged"].astype(bool), ["method", "seed", "epoch"]].to_numpy(object)
    rows = []
    for m in _methods(history):
        ran = hit.loc[m].notna()
        runs = int(ran.sum())
        reached = epochs.loc[m][ran & hit.loc[m].fillna(False).astype(bool)]
        speed = format_mean_std(reached, digits=1) if len(reached) else f"never ({runs} seeds)"
        if 0 < len(reached) < runs:           # the mean is over the seeds that got there: say how many
            speed += f" ({len(reached)} of {runs} seeds; {runs - len(reached)} never)"
        rows.append({
            "Method": METHOD_NAMES[m],
            "Final test accuracy (%)": format_mean_std(finals.loc[m], 1),
            f"Epochs to {threshold:.0%} test accuracy": speed,
            "Diverged": ", ".join(f"seed {sd} at epoch {e}" for dm, sd, e in diverged if dm == m) or "—",
        })
    return pd.DataFrame(rows)


def results_text(history: pd.DataFrame, threshold: float, question: str = "accuracy",
                 chance: float | None = None) -> str:
    """What the measurements say, worded from the numbers (markdown): ``summaries.results_text``,
    paired intervals and the one verdict rule of ``stats.verdict``, whoever wins."""
    return summaries.results_text(history, threshold, question, chance)


def diverged_notes(history: pd.DataFrame) -> list[str]:
    """'SEMA (seed 1) diverged at epoch 4', one per diverged run."""
    bad = history[history["diverged"].astype(bool)]
    return [f"{METHOD_NAMES[m]} (seed {s}) diverged at epoch {e}"
            for m, s, e in zip(bad["method"], bad["seed"], bad["epoch"])]
