"""Streamlit helpers of the optimizer playground: cached work, the animation, messages.

The whole run is simulated once per setting change (cached) and handed to the path player
(:mod:`sema_demo.ui.path_player`) as data: the browser animates it, so playing costs the
server nothing per frame.  A click on the surface comes back as a new start, which sets
the start controls and replays the freshly simulated paths.
"""
from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import numpy as np
import streamlit as st

from ..averaging import METHODS
from ..charts.playground import (DRAW_ORDER, THETA_TRAIL, Background, animation_gif, basin_summary, draws_theta,
                                 mean_std_text, named_surface_background)
from . import common
from ..charts.style import METHOD_COLORS, METHOD_NAMES
from ..landscapes import get_landscape
from ..trajectories import BasinMap, SimConfig, Simulation, many_starts, simulate
from . import display, path_player
from .jobs import heavy_job


SPEEDS = (25, 50, 100, 200, 400, 1000)   # optimizer steps per second
FOLLOW_LIVE = 0                 # pg_speed 0: the player starts at the shared live speed (epochs/s)
N_SEEDS = 8                     # noise seeds behind every "mean ± std"
PLAY_TOKEN = "pg_play_token"    # session-state key: a new value makes the player play from step 0
PLAYER = "pg_player"            # the player's key
HINT = "Click anywhere on the surface to start every method there."
TABS = {"run": "🎬 This run: paths and loss", "starts": "🗺️ Many starts: where does each method end?"}


def follow_tab() -> None:
    """The playground's open tab (``pg_tab``) and its link's ``tab`` in step (common.follow_tab)."""
    common.follow_tab("tab", "pg_tab", TABS)


# The simulations take a slot of the server-wide job queue inside the cached functions, so
# only a cache miss waits behind other students' work; a cache hit never queues.  They stay in
# the server process in the classroom mode too: they are light and cached per setting, and sent
# to a Dask worker busy with the class's epochs they made the playground's first picture slower
# (measured: docs/ARCHITECTURE.md, "Where heavy work runs").
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
def background(landscape: str, methods: tuple[str, ...], font_scale: float = 1.0) -> Background:
    """The rendered surface, its texts ``font_scale`` times larger (``display.font_scale()``); a
    shared resource because frames only ever copy it."""
    return named_surface_background(landscape, methods, font_scale=font_scale)


def config_from_state(state: Mapping[str, Any]) -> SimConfig:
    """The run the page's controls describe (``st.session_state`` or a test's copy of it)."""
    return SimConfig(landscape=state["landscape"], methods=tuple(m for m in METHODS if m in state["methods"]),
                     steps=state["steps"], lr=state["lr"], optimizer=state["optimizer"], beta=state["beta"],
                     ema_momentum=state["alpha"], steps_per_epoch=state["steps_per_epoch"],
                     switch_every=state["switch_every"], noise=state["noise"], seed=state["seed"],
                     start=(state["x0"], state["y0"]), swa_start=state["swa_start"],
                     lookahead_k=state["lookahead_k"])


def start_playing() -> None:
    """Make the player replay from step 0 (presets and a new start call this)."""
    st.session_state[PLAY_TOKEN] = st.session_state.get(PLAY_TOKEN, 0) + 1


def _start_here(x: float, y: float) -> None:
    """A click on the surface: it becomes the start (rounded like the start inputs) and plays."""
    st.session_state["x0"], st.session_state["y0"] = round(x, 2), round(y, 2)
    start_playing()


def _set_speed(speed: float) -> None:
    st.session_state["pg_speed"] = min(SPEEDS, key=lambda s: abs(s - speed))   # one of the URL's choices


def player_speed(chosen: int, steps_per_epoch: int) -> int:
    """The player's speed in steps/s: the one chosen in it (kept in the link as ``pg_speed``), or,
    until one is chosen, the shared live speed (epochs/s, the sidebar's) turned into steps."""
    if chosen in SPEEDS:
        return chosen
    per_second = display.epochs_per_second()
    if per_second is None:                      # "as fast as it trains": the fastest
        return SPEEDS[-1]
    return min(SPEEDS, key=lambda s: abs(np.log(s / (per_second * steps_per_epoch))))


@st.cache_resource(max_entries=16, show_spinner=False)
def surface_picture(landscape: str, methods: tuple[str, ...], font_scale: float = 1.0) -> dict[str, Any]:
    """The surface as the player's picture entry, encoded once per font scale and shared by every session."""
    bg = background(landscape, methods, font_scale)
    x0, x1, y0, y1 = domain = get_landscape(landscape).domain
    a, b, c, d = bg.to_pixels                     # exact, where bg.plot_box is rounded to pixels
    return path_player.surface(bg.image, (a * x0 + b, c * y1 + d, a * x1 + b, c * y0 + d), domain)


@st.cache_data(max_entries=64, show_spinner=False)
def player_paths(config: SimConfig) -> list[dict[str, Any]]:
    """The run's paths in the player's data shape: the same layers the GIF frames draw.

    Averages φ are bold full paths; SGD, whose φ is θ, is a thin trail of its recent steps;
    SEMA and Lookahead also show their own live θ as a thin trail with ◆ at their switches.
    Cached: a rerun that only changed something else sends the same lists without rebuilding them.
    """
    sim = simulation(config)
    domain, paths = sim.landscape.domain, []
    for m in (m for m in DRAW_ORDER if m in config.methods):
        p = sim.paths[m]
        own_theta = m != "sgd" and draws_theta(m, config.methods)
        paths.append(path_player.path(
            METHOD_NAMES[m], METHOD_COLORS[m], p.theta if m == "sgd" else p.phi, extent=domain,
            loss=p.phi_loss, style="live" if m == "sgd" else "average", live=p.theta if own_theta else None,
            live_loss=p.theta_loss if own_theta else None,
            switches=p.switch_steps if m in ("sema", "lookahead") else (), diverged=p.diverged_at is not None))
    return paths


def player_data(sim: Simulation, speed: float, play_token: int) -> dict[str, Any]:
    """Everything the player gets for this run (see :mod:`sema_demo.ui.path_player`)."""
    config, scale = sim.config, display.font_scale()
    return {"image": surface_picture(config.landscape, config.methods, scale), "paths": player_paths(config),
            "steps": config.steps, "steps_per_epoch": config.steps_per_epoch, "step_name": "optimizer step",
            "trail": THETA_TRAIL, "start": list(sim.start), "clickable": True, "speeds": list(SPEEDS),
            "speed": speed, "frame": None, "play_token": play_token,
            "loss_scale": "log" if sim.landscape.log_scale else "linear", "hint": HINT,
            "scale": scale}              # the player's own text and loss chart grow with the picture's


def animation(sim: Simulation) -> None:
    """The animated picture, played in the browser, with the start point set by a click."""
    speed = player_speed(st.session_state.get("pg_speed", FOLLOW_LIVE), sim.config.steps_per_epoch)
    data = player_data(sim, speed, st.session_state.get(PLAY_TOKEN, 0))
    path_player.path_player(data, key=PLAYER, on_start=_start_here, on_speed=_set_speed)


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
    """Runs per minimum ("34 of 128 (27 %)") and their final loss, one row per method."""
    st.dataframe(basin_summary(basins), hide_index=True)


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


def notice(sim: Simulation) -> str:
    """The "What to notice" text, written from this run's settings and numbers (markdown)."""
    config, paths = sim.config, sim.paths
    alpha, lines = config.ema_momentum, []
    if "sgd" in paths:
        lines.append("**SGD** (grey) jitters with the noise.")
    if "ema" in paths:
        if alpha == 0:
            lines.append("α = 0: **EMA** φ equals θ after every step, so its path *is* SGD's.")
        else:
            lag = float(np.mean(np.linalg.norm(paths["ema"].phi - paths["ema"].theta, axis=1)))
            lines.append(f"**EMA** φ (blue) is smooth but remembers ≈ {1 / (1 - alpha):,.0f} steps, so it trails θ: "
                         f"{lag:.2g} apart on average over this run.")
    if "sema" in paths:
        n = len(paths["sema"].switch_steps)
        if n == 0:
            lines.append("**SEMA** never switches in this run (the switch interval is longer), so it is EMA.")
        elif alpha == 0:
            lines.append(f"**SEMA** switches {n} times, but φ = θ already: its switches change nothing.")
        else:
            lines.append(f"**SEMA** θ (faint orange) jumps onto its average φ at each of its {n} switches (◆), "
                         "then runs on with its momentum.")
    lines.append(measured_notes(sim))
    return "\n".join(f"- {line}" for line in lines)


def lowest(sim: Simulation) -> tuple[str, str]:
    """(method, "mean ± std") of the method with the lowest mean final loss over the noise seeds."""
    seeds = sim.spread
    finite = {m: seeds.final_loss[m][seeds.diverged_at[m] < 0] for m in sim.paths}
    best = min((m for m in finite if finite[m].size), key=lambda m: float(np.mean(finite[m])),
               default=next(iter(sim.paths)))
    return best, mean_std_text(finite[best])


def measured_notes(sim: Simulation) -> str:
    """What the measurements over noise seeds say, in one sentence (markdown)."""
    land, seeds = sim.landscape, sim.spread
    named = [(i, m) for i, m in enumerate(land.minima) if m.labelled]
    if 1 < len(named) <= 4:     # say where the runs end
        parts = [f"**{m.name}** " + ", ".join(f"{METHOD_NAMES[k]} {int(((seeds.basin[k] == i) & (seeds.diverged_at[k] < 0)).sum())}"
                                                for k in sim.paths) for i, m in named]
        where = f"Of {len(seeds.seeds)} noise seeds, runs ending in the " + "; in the ".join(parts) + ". "
    else:
        where = ""
    best, loss = lowest(sim)
    return where + f"Lowest mean final loss over {len(seeds.seeds)} noise seeds: **{METHOD_NAMES[best]}** ({loss})."
