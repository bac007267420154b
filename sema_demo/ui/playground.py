"""Streamlit helpers of the optimizer playground: cached work, the animation, messages.

The whole run is simulated once per setting change (cached); the animation then only
moves a frame index inside a ``st.fragment`` that re-runs itself every 1/FPS seconds
while playing, so the rest of the page does not rerun per frame.
"""
from __future__ import annotations

import io
from collections.abc import Mapping
from functools import partial
from typing import Any

import numpy as np
import streamlit as st

from ..averaging import METHODS
from ..charts.playground import Background, animation_gif, render_frame, surface_background
from ..charts.style import METHOD_NAMES
from ..landscapes import get_landscape
from ..stats import format_mean_std
from ..trajectories import BasinMap, SimConfig, Simulation, many_starts, simulate
from .common import inline_image
from .jobs import heavy_job


FPS = 12.5                      # animation frames per second while playing
SPEEDS = (25, 50, 100, 200, 400, 1000)   # optimizer steps per second
N_SEEDS = 8                     # noise seeds behind every "mean ± std"
# session-state keys: the step shown, whether it plays, the run's last step, the scrubber widget
FRAME, PLAYING, LAST, SCRUB = "pg_frame", "pg_playing", "pg_last_step", "pg_scrub"


# The simulations take a slot of the server-wide job queue inside the cached functions, so
# only a cache miss waits behind other students' work; a cache hit never queues.
@st.cache_data(max_entries=64, show_spinner=False)
def simulation(config: SimConfig) -> Simulation:
    """The run, and the same run over N_SEEDS noise seeds for mean ± std (one vectorised pass)."""
    with heavy_job("simulations"):
        return simulate(config, N_SEEDS)


@st.cache_data(max_entries=16, show_spinner="Running many starts…")
def basin_map(config: SimConfig, n_starts: int) -> BasinMap:
    with heavy_job("simulations"):
        return many_starts(config, n_starts)


@st.cache_resource(max_entries=16, show_spinner=False)
def background(landscape: str, methods: tuple[str, ...]) -> Background:
    """The rendered surface; a shared resource because frames only ever copy it."""
    return surface_background(get_landscape(landscape), methods)


def config_from_state(state: Mapping[str, Any]) -> SimConfig:
    """The run the page's controls describe (``st.session_state`` or a test's copy of it)."""
    return SimConfig(landscape=state["landscape"], methods=tuple(m for m in METHODS if m in state["methods"]),
                     steps=state["steps"], lr=state["lr"], optimizer=state["optimizer"], beta=state["beta"],
                     ema_momentum=state["alpha"], steps_per_epoch=state["steps_per_epoch"],
                     switch_every=state["switch_every"], noise=state["noise"], seed=state["seed"],
                     start=(state["x0"], state["y0"]), swa_start=state["swa_start"],
                     lookahead_k=state["lookahead_k"])


def _frame_url(image) -> str:
    """A frame (a Pillow image) as a JPEG ``data:`` URL (see :func:`inline_image`)."""
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return inline_image(out.getvalue())


def start_playing() -> None:
    """Rewind and play (presets call this so a story starts moving at once)."""
    st.session_state[FRAME] = 0
    st.session_state[PLAYING] = True


def _stride() -> int:
    """Optimizer steps per animation frame at the chosen speed."""
    return max(1, round(st.session_state.get("speed", 100) / FPS))


def _play_or_pause(steps: int) -> None:
    state = st.session_state
    if not state[PLAYING] and state[FRAME] >= steps:
        state[FRAME] = 0                     # at the end: play again from the start
    state[PLAYING] = not state[PLAYING]


def _step(steps: int) -> None:
    st.session_state[PLAYING] = False
    st.session_state[FRAME] = min(st.session_state[FRAME] + _stride(), steps)


def _reset() -> None:
    st.session_state[PLAYING] = False
    st.session_state[FRAME] = 0


def _scrub() -> None:
    # While playing the scrubber is not shown; a "change" then is the browser's stale copy of it.
    if not st.session_state[PLAYING]:
        st.session_state[FRAME] = st.session_state[SCRUB]


def animation(sim: Simulation, bg: Background) -> None:
    """The animated picture with play / pause / step / reset, speed and a scrubber.

    Only a fragment holding the picture and the scrubber reruns per frame.  While playing
    it ticks every 1/FPS seconds, and every run of it (a tick or any full rerun) advances
    the frame, so tests can drive it with plain reruns.  The buttons sit outside it: they
    change whether it ticks, which takes one full rerun anyway.
    """
    steps = sim.config.steps
    state = st.session_state
    state.setdefault(PLAYING, False)
    if FRAME not in state or state[FRAME] == state.get(LAST):
        state[FRAME] = steps                  # open on (and stay at) the finished run: the whole story
    state[FRAME], state[LAST] = min(int(state[FRAME]), steps), steps
    playing = state[PLAYING]

    @st.fragment(run_every=1 / FPS if playing else None)
    def frame() -> None:
        if state[PLAYING] != playing:         # the ticking must change: rerun the page once
            st.rerun()
        if playing:
            state[FRAME] = min(state[FRAME] + _stride(), steps)
            if state[FRAME] >= steps:         # the end: stop ticking
                state[PLAYING] = False
                st.rerun()
        st.image(_frame_url(render_frame(bg, sim, state[FRAME])), width="stretch")
        if playing:   # a widget the script moves on every tick would race with the browser's copy of it
            st.progress(state[FRAME] / steps, text=f"Step {state[FRAME]:,} of {steps:,}")
        else:
            state[SCRUB] = state[FRAME]
            st.slider("Step shown", 0, steps, key=SCRUB, on_change=_scrub,
                      help="Scrub through the run: every path is drawn up to this optimizer step.")

    frame()
    play, step, reset = st.columns(3)
    play.button("⏸ Pause" if playing else "▶ Play", on_click=_play_or_pause, args=(steps,),
                type="secondary" if playing else "primary", width="stretch",
                help="Animate the run (from the start if it is at the end), or stop it here.")
    step.button("⏭ Step", on_click=_step, args=(steps,), width="stretch",
                help=f"Advance {_stride()} steps (one frame).")
    reset.button("⏮ Reset", on_click=_reset, width="stretch", help="Back to step 0.")
    st.select_slider("Speed (optimizer steps per second)", SPEEDS, key="speed",
                     help=f"How many optimizer steps the animation shows per second ({FPS:g} frames per second).")


def downloads(sim: Simulation, bg: Background) -> None:
    """CSV of every path and a GIF of the animation, both produced only when clicked."""
    left, right = st.columns(2)
    left.download_button("⬇ CSV of the paths", lambda: sim.to_frame().to_csv(index=False),
                         file_name=f"sema_playground_{sim.config.landscape}.csv", mime="text/csv",
                         key="dl::playground.csv", width="stretch",
                         help="One row per method and step: θ, φ, their losses, and whether SEMA switched.")
    right.download_button("⬇ GIF of the animation", partial(animation_gif, bg, sim),
                          file_name=f"sema_playground_{sim.config.landscape}.gif", mime="image/gif",
                          key="dl::playground.gif", width="stretch",
                          help="The animation as a looping GIF (rendered when clicked: a few seconds).")


def basin_table(basins: BasinMap) -> None:
    """Share of runs per minimum (as percentages) and their final loss, one row per method."""
    summary = basins.summary()
    summary["method"] = summary["method"].map(METHOD_NAMES)
    shares = [c for c in summary.columns if c not in ("method", "final loss mean", "final loss std")]
    st.dataframe(summary, hide_index=True,
                 column_config={c: st.column_config.NumberColumn(format="percent") for c in shares})


def input_messages(sim: Simulation) -> None:
    """Plain-words notices for clamped starts, diverged runs, α = 0 and runs without a switch."""
    config = sim.config
    for notice in sim.notices:
        st.warning(notice, icon="📍")
    diverged = {m: p.diverged_at for m, p in sim.paths.items() if p.diverged_at is not None}
    for method, step in diverged.items():
        others = "" if len(diverged) == len(sim.paths) else " The other methods continue."
        st.error(f"**{METHOD_NAMES[method]} diverged at step {step}**: with learning rate {config.lr:g} its "
                 f"weights blew up, so its path ends at the ✕.{others}", icon="💥")
    if len(diverged) == len(sim.paths):
        st.caption("Every method diverged: lower the learning rate (or the momentum β).")
    averaged = [m for m in ("ema", "sema") if m in config.methods]
    if config.ema_momentum == 0 and averaged:
        st.info("α = 0: the average forgets everything at once, φ = θ after every step, so EMA is SGD "
                "and SEMA's switches change nothing.", icon="ℹ️")
    elif "sema" in config.methods and config.switch_interval > config.steps:
        st.info(f"SEMA switches every {config.switch_interval:,} steps, but the run has only "
                f"{config.steps:,}: no switch happens, so SEMA is exactly EMA.", icon="ℹ️")


def measured_notes(sim: Simulation) -> str:
    """What the measurements over noise seeds say, in one sentence (markdown)."""
    land, seeds = sim.landscape, sim.spread
    named = [(i, m) for i, m in enumerate(land.minima) if m.labelled]
    if 1 < len(named) <= 4:     # say where the runs end
        parts = [f"**{m.name}** " + ", ".join(f"{METHOD_NAMES[k]} {int((seeds.basin[k] == i).sum())}"
                                                for k in sim.paths) for i, m in named]
        return f"Of {len(seeds.seeds)} noise seeds, runs ending in the " + "; in the ".join(parts) + "."
    best = min(sim.paths, key=lambda m: np.mean(seeds.final_loss[m]))   # else: who ends lowest
    loss = format_mean_std(seeds.final_loss[best][seeds.diverged_at[best] < 0], digits=3)
    return f"Over {len(seeds.seeds)} noise seeds **{METHOD_NAMES[best]}** ends lowest (loss {loss})."
