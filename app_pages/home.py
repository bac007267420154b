"""Home: what SEMA is, in plain words, with a one-parameter picture and its loss over seeds."""
import streamlit as st

from sema_demo.ui import display
from sema_demo.ui.common import active_preset, alpha_slider, bind_url, horizon_warning, preset_buttons, sync_url, \
    what_to_notice
from sema_demo.ui.home import (PARAMS, PRESETS, SEED_CHOICES, answer, chart_pictures, model_of, notice, preset_help,
                               walks_of)

bind_url(PARAMS)

st.title("🔀 SEMA Lab: why switching the EMA back works")
st.markdown(
    """
Training keeps **live weights θ** that the optimizer moves every step. An **exponential moving
average (EMA)** keeps a second copy **φ** that follows θ slowly: after every step
φ ← α·φ + (1 − α)·θ. The average is less noisy, but it lags behind. **Switch EMA (SEMA)** adds one
line: at the end of every epoch it copies the average back into the model, **θ ← φ**, and training
continues from there; SEMA evaluates its φ. The switch is one in-place copy per epoch, on top of the
EMA's update ([Li et al., 2024](https://arxiv.org/abs/2402.09240) call it a free lunch; the scoreboard page
times it). Whether it *helps* depends on the setting:
below, one weight with noisy gradients, run over many seeds.
"""
)
preset_buttons(PRESETS, {name: preset_help(name) for name in PRESETS})

left, right = st.columns([1, 3], gap="large")
with left:
    st.subheader("One weight, noisy gradients")
    alpha_slider("home_alpha", choices=PARAMS["home_alpha"].choices)
    st.slider("Steps per epoch (SEMA switches at each epoch end)", 5, 300, key="home_epoch", step=5,
              help="How many optimizer steps pass between two switches θ ← φ.")
    st.slider("Gradient noise σ", 0.0, 5.0, key="home_noise", step=0.5,
              help="Standard deviation of the noise added to every gradient (the same draws for all methods).")
    st.select_slider("Seeds", SEED_CHOICES, key="home_seeds",
                     help="How many independent runs the loss panel averages (seed, seed + 1, …). Below 5 the "
                          "page does not call a winner.")
    st.number_input("Seed (the path drawn)", 0, 10_000, key="home_seed",
                    help="The first seed: its path is drawn on the top chart; the loss panel uses it and the next ones.")
sync_url(PARAMS)

s = st.session_state
setting = (s.home_alpha, s.home_epoch, s.home_noise, s.home_seeds, s.home_seed)
walks, summary = walks_of(*setting)
walk_picture, band_picture = chart_pictures(*setting, projector=display.projector())
with right:
    st.image(walk_picture, width="stretch")
    st.caption(f"Seed {s.home_seed}: SEMA's θ (light, dashed) jumps to its φ (solid orange) at every dashed line; "
               "SEMA evaluates φ.")
    st.image(band_picture, width="stretch")
    st.caption(f"Loss ½θ² of the weights each method evaluates, over {s.home_seeds} seeds: line = mean, band = "
               "its 95 % interval (mean ± 1.96 standard errors).")
    horizon_warning(s.home_alpha, s.home_epoch, model=model_of(s))
    st.markdown(answer(active_preset(PRESETS), summary, s.home_alpha, s.home_epoch))
    what_to_notice(notice(summary, walks, s.home_alpha, s.home_epoch))

st.subheader("Explore")
cols = [c for _ in range(2) for c in st.columns(3)]
links = [
    ("app_pages/theory.py", "Theory", "Where SEMA helps: the noisy quadratic, exact, and its map."),
    ("app_pages/playground.py", "Optimizer playground", "Trajectories of SGD, EMA and SEMA on 2D loss surfaces."),
    ("app_pages/toy_datasets.py", "Decision boundaries", "Train three networks side by side on toy 2D data."),
    ("app_pages/images.py", "Image classification", "CIFAR-10/100 subsets or the bundled digits, live."),
    ("app_pages/landscape.py", "Flatness vs sharpness", "Loss-landscape slices and sharpness measures."),
    ("app_pages/claims.py", "Does SEMA deliver?", "The paper's claims, measured with error bars."),
]
for col, (page, title, blurb) in zip(cols, links):
    with col.container(border=True):
        st.page_link(page, label=f"**{title}**")
        st.caption(blurb)

st.caption("Use SEMA in your own training loop: `pip install -e .` then `from sema_demo import SwitchEMA` "
           "(see the README). Companion notebooks live in `notebooks/`.")
