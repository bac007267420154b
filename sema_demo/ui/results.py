"""The shared results view of the live-training pages (toy and images): the seed picker, the
learning curves at projector size, the table with its computed sentences, and the computed
"What to notice".

    question = ask(PRESET_QUESTIONS, PRESETS, alpha)     # what the active preset is about
    seed = seed_picker(KEY, seeds, chance)                # None: every seed (mean ± std)
    curves(frame, seed, switch_epochs=..., epochs=...)
    results(frame, threshold, question, chance)
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import streamlit as st

from ..charts import summaries
from ..charts.training import learning_curves_spec, results_table, results_text
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


def curves(frame: pd.DataFrame, seed: int | None, *, switch_epochs, epochs: int, height: int = 260,
           titles: Mapping[str, str] | None = None) -> None:
    """Accuracy and loss side by side, of every seed (mean ± std) or of one seed."""
    shown = frame if seed is None else frame[frame["seed"] == seed]
    over = "mean ± std over seeds" if seed is None else f"seed {seed}"
    fonts = display.PROJECTOR_FONT if display.projector() else None
    for col, kind in zip(st.columns(2), ("accuracy", "loss")):
        title = (titles or {}).get(kind, kind.capitalize()) + f", {over}"
        col.vega_lite_chart(spec=learning_curves_spec(shown, kind, switch_epochs=switch_epochs, epochs=epochs,
                                                      height=display.height(height), title=title, fonts=fonts),
                            width="stretch")


def results(frame: pd.DataFrame, threshold: float, question: str, chance: float | None) -> None:
    """The table over every seed and the sentences computed from it."""
    st.dataframe(results_table(frame, threshold), hide_index=True, width="stretch")
    st.markdown(results_text(frame, threshold, question, chance))


def notice(frame: pd.DataFrame, question: str, threshold: float, *, alpha: float, switch_steps: int | None,
           chance: float | None, so_far: bool = False, extra: str = "") -> None:
    """'What to notice', written from the current settings and numbers (``so_far``: still training)."""
    text = summaries.notice_text(frame, question, threshold, alpha=alpha, switch_steps=switch_steps, chance=chance,
                                 so_far=so_far)
    what_to_notice(text + (f"\n\n{extra}" if extra else ""))
