"""Optimizer playground: SGD, EMA and SEMA trajectories animated on 2D loss surfaces."""
import streamlit as st

from sema_demo.averaging import METHODS
from sema_demo.charts.playground import basin_chart, final_table
from sema_demo.charts.style import METHOD_NAMES
from sema_demo.landscapes import LANDSCAPES
from sema_demo.trajectories import OPTIMIZERS, SimConfig
from sema_demo.ui import display
from sema_demo.ui import playground as ui
from sema_demo.ui.common import (ALPHA_CHOICES, Param, alpha_slider, bind_url, horizon_warning,
                                 preset_buttons, sync_url, what_to_notice)

LR_CHOICES = (1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
D = SimConfig.for_landscape("two_basins")
PARAMS = {
    "landscape": Param(D.landscape, choices=tuple(LANDSCAPES)),
    "methods": Param(list(D.methods), choices=METHODS),
    "optimizer": Param(D.optimizer, choices=OPTIMIZERS),
    "lr": Param(D.lr, choices=LR_CHOICES),
    "beta": Param(D.beta, lo=0.0, hi=0.99),
    "alpha": Param(D.ema_momentum, choices=ALPHA_CHOICES),
    "switch_every": Param(D.switch_every, lo=1, hi=1000),
    "steps_per_epoch": Param(D.steps_per_epoch, lo=1, hi=1000),
    "noise": Param(D.noise, lo=0.0, hi=200.0),
    "steps": Param(D.steps, lo=50, hi=5000),
    "seed": Param(D.seed, lo=0, hi=10_000),
    "x0": Param(D.start[0]), "y0": Param(D.start[1]),
    "swa_start": Param(D.swa_start, lo=0, hi=1000),
    "lookahead_k": Param(D.lookahead_k, lo=1, hi=100),
    "pg_speed": Param(ui.FOLLOW_LIVE, choices=(ui.FOLLOW_LIVE, *ui.SPEEDS)),   # 0: the sidebar's live speed
    "n_starts": Param(128, choices=(32, 64, 128, 256, 512)),
    "tab": Param("run", choices=tuple(ui.TABS)),
}
TWO_BASINS = {"landscape": "two_basins", "x0": -2.4, "y0": 2.6, "optimizer": "momentum", "beta": 0.9,
              "steps_per_epoch": 50, "switch_every": 1, "steps": 1000, "methods": ["sgd", "ema", "sema"]}
PRESETS = {
    "① Sharp vs flat": {**TWO_BASINS, "lr": 0.02, "noise": 1.2, "alpha": 0.99},
    "② Hot noise": {**TWO_BASINS, "lr": 0.05, "noise": 1.0, "alpha": 0.98},
    "③ EMA lags in a valley": {"landscape": "valley", "x0": -3.6, "y0": 2.5, "optimizer": "momentum",
                               "beta": 0.9, "lr": 0.002, "noise": 1.0, "alpha": 0.995, "steps_per_epoch": 250,
                               "switch_every": 1, "steps": 2000, "methods": ["sgd", "ema", "sema"]},
    "④ α = 0: no averaging": {**TWO_BASINS, "lr": 0.02, "noise": 1.2, "alpha": 0.0},
}
PRESET_HELP = {
    "① Sharp vs flat": "The default: moderate noise on the two-basins surface.",
    "② Hot noise": "A larger learning rate: the sharp well can no longer hold the noisy runs.",
    "③ EMA lags in a valley": "A long EMA horizon on a slow valley: the average trails far behind.",
    "④ α = 0: no averaging": "φ = θ after every step, so EMA and SEMA are just SGD.",
}


def use_landscape_defaults() -> None:
    land = LANDSCAPES[st.session_state.landscape]
    st.session_state.update(lr=land.lr, noise=land.noise, x0=land.start[0], y0=land.start[1])


bind_url(PARAMS)
ui.follow_tab()                      # the open tab, kept in the link as ?tab=
st.title("🎯 Optimizer playground")
st.markdown("Every method starts at the same point and sees the **same noisy gradients**: plain **SGD**, "
            "its **EMA** average φ, and **SEMA**, which copies φ back into the live weights θ at the end "
            "of every epoch (◆). Press ▶ to watch, drag the scrubber, or **click the surface** to start "
            "somewhere else.")

with st.sidebar:
    st.subheader("Surface and start")
    st.selectbox("Loss surface", list(LANDSCAPES), key="landscape", format_func=lambda k: LANDSCAPES[k].name,
                 on_change=use_landscape_defaults,
                 help="The 2D loss. Picking one also sets its own learning rate, noise and start.")
    cx, cy = st.columns(2)
    cx.number_input("Start θ₁", key="x0", step=0.1, format="%.2f", help="Where every method starts.")
    cy.number_input("Start θ₂", key="y0", step=0.1, format="%.2f", help="Where every method starts.")
    st.multiselect("Methods", METHODS, key="methods", format_func=METHOD_NAMES.get,
                   help="SGD: the plain optimizer. EMA: its moving average φ. SEMA: EMA switched back into θ. "
                        "SWA: equal average from an epoch on. Lookahead: slow weights every k steps.")
    st.subheader("Optimizer")
    st.radio("Base optimizer", OPTIMIZERS, key="optimizer", horizontal=True,
             format_func={"momentum": "SGD + momentum", "adam": "Adam"}.get,
             help="Every method uses this optimizer on its live weights θ.")
    st.select_slider("Learning rate", LR_CHOICES, key="lr", format_func=lambda v: f"{v:g}",
                     help="Step size (log-spaced). Too large and a run diverges.")
    st.slider("Optimizer momentum β", 0.0, 0.99, key="beta", step=0.01,
              help="Heavy-ball momentum of SGD (Adam's β₁). Not the EMA momentum α.")
    st.number_input("Gradient noise σ", 0.0, 200.0, key="noise", step=0.1,
                    help="Standard deviation of the Gaussian noise added to every gradient; the same draws "
                         "for every method.")
    st.subheader("Averaging")
    alpha = alpha_slider("alpha")
    st.number_input("Steps per epoch", 1, 1000, key="steps_per_epoch",
                    help="How many optimizer steps make one epoch.")
    st.number_input("SEMA switches every … epochs", 1, 1000, key="switch_every",
                    help="θ ← φ happens every this many epochs. Longer than the run: SEMA is EMA.")
    horizon_warning(alpha, st.session_state.steps_per_epoch * st.session_state.switch_every)
    if {"swa", "lookahead"} & set(st.session_state.methods):
        st.number_input("SWA: first averaged epoch", 0, 1000, key="swa_start",
                        help="SWA averages the weights at the end of every epoch from this one on.")
        st.number_input("Lookahead: k", 1, 100, key="lookahead_k",
                        help="Every k steps Lookahead moves its slow weights halfway to θ and restarts θ there.")
    st.subheader("Run")
    st.slider("Steps", 50, 5000, key="steps", step=50, help="Optimizer steps in the run.")
    st.number_input("Seed", 0, 10_000, key="seed", help="Changes the noise draws (the same for every method).")
sync_url(PARAMS)

if not st.session_state.methods:
    st.warning("Pick at least one method in the sidebar.")
    st.stop()
config = ui.config_from_state(st.session_state)
sim = ui.simulation(config)
bg = ui.background(config.landscape, config.methods, display.font_scale())
ui.input_messages(sim)

preset_buttons(PRESETS, PRESET_HELP, on_apply=ui.start_playing)
run_tab, basin_tab = st.tabs(list(ui.TABS.values()), key="pg_tab", on_change="rerun")
with run_tab:
    if run_tab.open:                # only the open tab pays for its work
        left, right = st.columns([4, 3] if display.projector() else [3, 2], gap="medium")
        with left:
            ui.animation(sim)
            st.caption("Loss chart under the player: bold φ, the evaluated weights (θ for SGD); faint: SEMA's live "
                       "θ; dashed: SEMA's switches. Its cursor and the values beside the names follow the frame.")
        with right:
            what_to_notice(ui.notice(sim))
            st.markdown(f"**Final loss** of the evaluated weights: this run, and over {ui.N_SEEDS} noise seeds")
            st.dataframe(final_table(sim), hide_index=True,
                         column_config={"final loss": st.column_config.NumberColumn(format="%.3g")})
            ui.downloads(sim, bg)
with basin_tab:
    if basin_tab.open:
        st.select_slider("Random starts", PARAMS["n_starts"].choices, key="n_starts",
                         help="Runs from this many uniformly random starts (each with its own noise seed), all at once.")
        basins = ui.basin_map(config, st.session_state.n_starts)
        display.altair(basin_chart(basins, sim.landscape, size=185 if display.projector() else 260), width="content")
        ui.basin_table(basins)
        st.caption("Each dot is a start, coloured by the minimum the method's evaluated weights end in; the table "
                   "gives the runs per minimum and the final loss (mean ± std) of the runs that did not diverge.")
