"""Trained runs kept in the session, so the landscape page can study what other pages trained."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import streamlit as st

_KEY = "trained_runs"
MAX_RUNS = 6  # oldest runs are dropped first, to bound a session's memory


@dataclass
class TrainedRun:
    label: str                 # shown in pickers, e.g. "Moons · MLP 2-64-64-2 · 3 seeds"
    source: str                # the page that trained it ("toy", "images", "landscape")
    data: Any                  # the sema_demo.training data object it was trained on
    model_fn: Any              # a callable building a fresh network of the same shape
    config: Any                # the sema_demo.training config
    models: dict = field(default_factory=dict)   # (method, seed) -> trained nn.Module (evaluated weights)
    paths: Any = None          # its sema_demo.paths.PathRecorder, when it recorded its weight paths


def remember_run(run: TrainedRun) -> None:
    runs: dict[str, TrainedRun] = st.session_state.setdefault(_KEY, {})
    runs.pop(run.label, None)
    runs[run.label] = run
    while len(runs) > MAX_RUNS:
        runs.pop(next(iter(runs)))


def trained_runs() -> dict[str, TrainedRun]:
    return dict(st.session_state.get(_KEY, {}))
