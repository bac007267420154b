"""What a live-training page redraws on every tick, computed in one call where the run lives.

    view = TickView(seed=None, threshold=0.95, question="accuracy", chance=0.5, alpha=0.95,
                    epochs=40, switch_steps=25, grids_seed=0)
    figures = trainer.apply(tick_figures, view)     # a Trainer here, or its Dask worker (engine.py)

A tick of a live page draws the learning curves, the results table with its sentences, the
"What to notice" text and (where a page has them) the decision grids and the live weight paths.
Built on the server, that was ≈ 60 ms of pandas and Python per tick and per student, and a
classroom of 40 shares one server process; built by the worker that trains the run, it costs the
server one round trip and the drawing of finished elements.  The Vega-Lite datasets come back as
Arrow IPC bytes (what ``st.vega_lite_chart`` would otherwise convert them to on the server, through
pandas).  The numbers are the same wherever it runs: the history it reads is the one the server's
mirror holds, row for row.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa

from ..engine import WorkerLost
from ..paths import RECORDED_ENDS, study_paths
from . import summaries
from .live_paths import live_paths_spec
from .training import KINDS as CURVE_KINDS
from .training import learning_curves_spec, results_table, results_text

KINDS = tuple(CURVE_KINDS)          # the two curves a live page draws, in order


@dataclass
class TickView:
    """What the page shows, from its controls: all that the figures depend on besides the run."""

    threshold: float                       # target test accuracy (0–1) of the table's 'epochs to' column
    question: str                          # summaries.QUESTIONS: what the sentences answer
    alpha: float
    epochs: int                            # the curves' x axis
    switch_steps: int | None               # optimizer steps between two SEMA switches
    chance: float | None = None
    seed: int | None = None                # the curves' seed (None: mean ± std over every seed)
    curve_height: int = 260
    curve_titles: dict[str, str] = field(default_factory=dict)   # kind -> title
    fonts: dict[str, int] | None = None    # text sizes in px (the projector's), as learning_curves_spec takes them
    table: bool = True                     # the results table and its sentences
    grids_seed: int | None = None          # the seed whose decision grids come back (None: none)


@dataclass
class TickFigures:
    """A tick's finished figures (plain data: they travel back from a worker)."""

    epoch: int
    curves: dict[str, dict]                # kind -> Vega-Lite spec (datasets as Arrow IPC bytes)
    notice: str                            # markdown
    table: pd.DataFrame | None = None
    text: str | None = None                # the sentences under the table (markdown)
    grids: dict[str, Any] = field(default_factory=dict)   # method -> probability grid of ``grids_seed``


def arrow_datasets(spec: dict) -> dict:
    """``spec`` with its named datasets as Arrow IPC bytes, which ``st.vega_lite_chart`` passes on as
    they are (an empty dataset stays as it is: Streamlit gives it its empty table)."""
    datasets = spec.get("datasets")
    if datasets:
        spec["datasets"] = {name: _ipc(values) for name, values in datasets.items()}
    return spec


def _ipc(values):
    if isinstance(values, pd.DataFrame):
        if values.empty:
            return values
        table = pa.Table.from_pandas(values, preserve_index=False)
    elif isinstance(values, list) and values:
        table = pa.Table.from_pylist(values)
    else:
        return values
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def tick_figures(trainer, view: TickView) -> TickFigures:
    """The figures of ``view`` for ``trainer`` as it is now (a ``Trainer`` or an engine mirror)."""
    frame = trainer.frame()
    shown = frame if view.seed is None else frame[frame["seed"] == view.seed]
    over = "mean ± std over seeds" if view.seed is None else f"seed {view.seed}"
    curves = {kind: arrow_datasets(learning_curves_spec(
        shown, kind, switch_epochs=trainer.switch_epochs(), epochs=view.epochs, height=view.curve_height,
        title=view.curve_titles.get(kind, kind.capitalize()) + f", {over}", fonts=view.fonts)) for kind in KINDS}
    notice = summaries.notice_text(frame, view.question, view.threshold, alpha=view.alpha,
                                   switch_steps=view.switch_steps, chance=view.chance, so_far=not trainer.done)
    figures = TickFigures(trainer.epoch, curves, notice)
    if view.table:
        figures.table = results_table(frame, view.threshold)
        figures.text = results_text(frame, view.threshold, view.question, view.chance)
    if view.grids_seed is not None:
        figures.grids = {m: g for (m, s), g in _grids(trainer).items() if s == view.grids_seed}
    return figures


def _grids(trainer) -> Mapping:
    try:
        return trainer.grids
    except WorkerLost:           # a mirror whose worker ended before it sent any: the numbers still draw
        return {}


def live_paths_picture(trainer, seed: int, plane: str, size: int,
                       fonts: dict[str, int] | None = None) -> dict | str | None:
    """:func:`paths_picture` of a trainer's recording (for ``trainer.apply``: a live tick's paths)."""
    return paths_picture(trainer.recorder, trainer.models, seed, plane, size, fonts)


def recording_note(recorder) -> str | None:
    """Why there are no paths to draw (no recording, or one skipped as too large), else None."""
    if recorder is None:
        return "This run did not record its weight paths. Train it again on its page to draw them here."
    return f"Paths were not recorded: {recorder.skipped}." if recorder.skipped else None


def paths_picture(recorder, models: Callable[[], dict], seed: int, plane: str, size: int,
                  fonts: dict[str, int] | None = None) -> dict | str | None:
    """The spec of ``seed``'s paths so far in ``plane`` (``live_paths_spec``, datasets as Arrow IPC
    bytes); a sentence saying why when nothing is recorded; None when there is nothing to draw yet
    (no epoch yet, or every run of the seed diverged).  The ends are the recording's own when it
    holds every method's evaluated weights; only otherwise are the networks asked for (``models()``:
    out of a worker, a copy)."""
    if (note := recording_note(recorder)) is not None:
        return note
    ends = None if {m for m, _ in recorder.runs} <= set(RECORDED_ENDS) else models()
    try:
        study = study_paths(recorder, ends, seed, plane, measure=False)
    except ValueError:
        return None
    return arrow_datasets(live_paths_spec(study, size=size, fonts=fonts))
