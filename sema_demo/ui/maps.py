"""The measured map tab of the Decision boundaries page: SEMA against EMA and SGD over α × switch interval."""
from __future__ import annotations

import streamlit as st

from ..charts.claims import MAP_TITLES, measured_map_chart
from ..maps import MeasuredMap, cell_count, measured_map
from ..training import Data, TrainConfig
from . import display
from .common import csv_download, what_to_notice
from .jobs import offloaded

MAP_ALPHAS = (0.8, 0.9, 0.95, 0.98, 0.99)
MAP_SWITCHES = (1, 2, 3, 5, 10)
MAP_SEEDS = 8
REQUESTED = "toy_map_requested"     # session key: the setting whose map was asked for
VIEWS = {"SEMA − EMA, accuracy": "acc_vs_ema", "SEMA − SGD, accuracy": "acc_vs_sgd",
         "Epochs saved vs EMA": "speed_vs_ema", "Epochs saved vs SGD": "speed_vs_sgd"}


@st.cache_resource(show_spinner=False)
def _map_cache() -> dict:
    """Maps computed on this server, per setting (shared by every session: the same numbers)."""
    return {}


def map_text(result: MeasuredMap, comparison: str) -> str:
    """How many cells favour SEMA, how many the other side, from the intervals."""
    grid, sig = result.grid(comparison), result.significant(comparison)
    better, worse = int(((grid > 0) & sig).sum()), int(((grid < 0) & sig).sum())
    total = grid.size
    return (f"{MAP_TITLES[comparison]}: SEMA is better in **{better}** of {total} cells and worse in **{worse}**, "
            f"with a 95 % paired t interval that excludes 0 ({len(result.seeds)} seeds per cell); the other "
            f"{total - better - worse} cells (grey, marked ?) are within the seed noise. Trained in "
            f"{result.seconds:.0f} s: {cell_count(result.alphas, result.switch_epochs, result.seeds)} networks in one "
            "batched run, every method of a seed from the same weights and batches.")


def measured_map_panel(data: Data, model_fn, base: TrainConfig, target: float, settings_key: tuple) -> None:
    """The tab: what the map is, a button that computes it (progress bar, job queue), the heatmap."""
    st.caption(f"Where does switching help on **this** data and network? Every cell of α × switch interval is "
                f"trained on {MAP_SEEDS} seeds (the sidebar's settings otherwise, the sidebar's α and switch "
                "interval aside), and SEMA is compared with EMA (same α) and with SGD seed by seed. A cell is "
                "coloured only where the 95 % paired t interval of the difference excludes 0.")
    key = (settings_key, MAP_ALPHAS, MAP_SWITCHES, MAP_SEEDS)
    cache = _map_cache()
    if key not in cache:
        runs = cell_count(MAP_ALPHAS, MAP_SWITCHES, range(MAP_SEEDS))
        # A flag, not the button's value: a live run may rerun the page before it gets here.
        st.button(f"▶ Compute the map ({runs} networks, {base.epochs} epochs)", key="toy_map_run",
                  on_click=lambda: st.session_state.update({REQUESTED: key}),
                  help="About a minute on a laptop CPU at the default size; the result is kept for this setting.")
        if st.session_state.get(REQUESTED) != key:
            return
        bar = st.progress(0.0, text="waiting for a slot …")
        cache[key] = offloaded("training", measured_map, data, model_fn, base, MAP_ALPHAS, MAP_SWITCHES,
                               range(MAP_SEEDS), target,
                               progress=lambda f: bar.progress(f, text=f"training the map: {f:.0%}"))
        bar.empty()
    result = cache[key]
    view = st.radio("Compare", tuple(VIEWS), horizontal=True, key="toy_map_view",
                    help="Accuracy: final test accuracy in points (a diverged run counts at chance). Epochs saved: "
                         "how much sooner SEMA reaches the target accuracy (never = one epoch after the end).")
    comparison = VIEWS[view]
    display.altair(measured_map_chart(result, comparison))
    what_to_notice(map_text(result, comparison))
    csv_download(result.frame(), "sema_toy_measured_map", "⬇ CSV of the map")
