"""The shared results view of the live-training pages (toy and images): the seed picker, the
learning curves at projector size, the table with its computed sentences, and the computed
"What to notice".

    question = ask(PRESET_QUESTIONS, PRESETS, alpha)     # what the active preset is about
    seed = seed_picker(KEY, seeds, chance)                # None: every seed (mean ± std)
    figs = figures(trainer, seed, threshold=..., question=question, ...)   # where the run lives
    curves(figs); results(figs); notice(figs)
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import streamlit as st

from ..charts import summaries
from ..charts.live import KINDS, TickFigures, TickView, tick_figures
from . import display
from .common import Param, active_preset, what_to_notice
from .training import current_trainer

ALL_SEEDS = -1
SEED_PARAM = {"seed_view": Param(ALL_SEEDS, lo=ALL_SEEDS, hi=9)}   # URL-bound: which seed the pictures show


def ask(questions: Mapping[str, str], presets: Mapping[str, Mapping[str, Any]], alpha: float) -> str:
    """The question the page's sentences answer: the active preset's, 'identity' at α = 0,
    final accuracy otherwise (also once a control was moved away from every preset)."""
    if alpha == 0:
        return "identity"
    return questions.get(active_preset(presets) or "", "accuracy")


def seed_picker(key: str, seeds: int, chance: float | None = None, container=st) -> int | None:
    """'Seed shown': every seed (curves as mean ± std, pictures of seed 0) or one seed alone.

    A seed whose run fell far below its own best says so in its label, so the collapsed one
    can be found and pointed at.  Returns the seed, or None for every seed."""
    options = [ALL_SEEDS, *range(seeds)] if seeds > 1 else [ALL_SEEDS]     # one seed: nothing to pick
    if st.session_state.get("seed_view") not in options:
        st.session_state["seed_view"] = ALL_SEEDS
    trainer = current_trainer(key)
    frame = trainer.frame() if trainer is not None else pd.DataFrame()

    def label(seed: int) -> str:
        if seed == ALL_SEEDS:
            return f"all {seeds} seeds (mean ± std; pictures of seed 0)" if seeds > 1 else "seed 0 (the only one)"
        return summaries.seed_label(frame, seed, chance) if len(frame) else f"seed {seed}"

    choice = container.selectbox("Seed shown", options, key="seed_view", format_func=label,
                                 help="The curves show the mean ± std over every seed, or this seed alone; the "
                                      "pictures show this seed. The table always sums up every seed.")
    return None if choice == ALL_SEEDS else int(choice)


def figures(trainer, seed: int | None, *, threshold: float, question: str, chance: float | None, alpha: float,
            switch_steps: int | None, height: int = 260, titles: Mapping[str, str] | None = None,
            table: bool = True, grids_seed: int | None = None) -> TickFigures:
    """The figures this tick draws, computed where the run lives (``charts.live.tick_figures``,
    through ``trainer.apply``: in a classroom's Dask worker, not in the server every student shares)."""
    view = TickView(threshold=threshold, question=question, alpha=alpha, epochs=trainer.config.epochs,
                    switch_steps=switch_steps, chance=chance, seed=seed, curve_height=display.height(height),
                    curve_titles=dict(titles or {}), fonts=display.PROJECTOR_FONT if display.projector() else None,
                    table=table, grids_seed=grids_seed)
    return trainer.apply(tick_figures, view)


def curves(figures: TickFigures) -> None:
    """Accuracy and loss side by side, of every seed (mean ± std) or of one seed."""
    for col, kind in zip(st.columns(2), KINDS):
        col.vega_lite_chart(spec=figures.curves[kind], width="stretch")


def results(figures: TickFigures) -> None:
    """The table over every seed and the sentences computed from it."""
    st.dataframe(figures.table, hide_index=True, width="stretch")
    st.markdown(figures.text)


def notice(figures: TickFigures, extra: str = "") -> None:
    """'What to notice', written from the current settings and numbers."""
    what_to_notice(figures.notice + (f"\n\n{extra}" if extra else ""))
