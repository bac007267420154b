"""Home: what SEMA is, in plain words, with a live one-parameter picture."""
import streamlit as st

from sema_demo import charts
from sema_demo.ui.common import Param, alpha_slider, bind_url, preset_buttons, sync_url, what_to_notice
from sema_demo.walk import noisy_walk

PARAMS = {
    "home_alpha": Param(0.98, choices=(0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995)),
    "home_epoch": Param(75, lo=5, hi=300),
    "home_noise": Param(2.0, lo=0.0, hi=5.0),
    "home_seed": Param(0, lo=0, hi=10_000),
}
bind_url(PARAMS)

st.title("🔀 SEMA Lab: why switching the EMA back works")
st.markdown(
    """
Training keeps **live weights θ** that the optimizer moves every step. An **exponential moving
average (EMA)** keeps a second copy **φ** that follows θ slowly: after every step
φ ← α·φ + (1 − α)·θ. The average is smoother and usually lands in a *flatter* place, but it lags
behind. **Switch EMA (SEMA)** adds one line: at the end of every epoch it copies the average back
into the model, **θ ← φ**, and training continues from there. The optimizer keeps its sharpness,
the average brings flatness, and it costs nothing extra
([Li et al., 2024](https://arxiv.org/abs/2402.09240)).
"""
)

left, right = st.columns([1, 3], gap="large")
with left:
    st.subheader("One weight, noisy gradients")
    alpha_slider("home_alpha", choices=PARAMS["home_alpha"].choices)
    st.slider("Steps per epoch (SEMA switches at each epoch end)", 5, 300, key="home_epoch", step=5,
              help="How many optimizer steps pass between two switches θ ← φ.")
    st.slider("Gradient noise σ", 0.0, 5.0, key="home_noise", step=0.5,
              help="Standard deviation of the noise added to every gradient (the same draws for all methods).")
    st.number_input("Seed", 0, 10_000, key="home_seed", help="Changes the noise draws.")
sync_url(PARAMS)

walk = noisy_walk(steps=300, momentum=st.session_state.home_alpha, steps_per_epoch=st.session_state.home_epoch,
                  noise=st.session_state.home_noise, seed=st.session_state.home_seed)
with right:
    st.altair_chart(charts.walk_chart(walk), width="stretch")
    preset_buttons({
        "EMA lags": {"home_alpha": 0.995, "home_epoch": 300, "home_noise": 1.0},
        "SEMA follows, smoothed": {"home_alpha": 0.95, "home_epoch": 50, "home_noise": 2.0},
        "α = 0: no averaging": {"home_alpha": 0.0, "home_epoch": 50, "home_noise": 2.0},
    })
    what_to_notice(
        "The grey SGD path jitters around the minimum at 0. The blue EMA φ is smooth but, with a long "
        "horizon, trails behind while θ is still descending. SEMA's θ (orange) follows SGD within an "
        "epoch, then **jumps to the average** at each dashed line and continues from that smoother point."
    )

st.subheader("Explore")
cols = st.columns(5)
links = [
    ("app_pages/playground.py", "Optimizer playground", "Trajectories of SGD, EMA and SEMA on 2D loss surfaces."),
    ("app_pages/toy_datasets.py", "Decision boundaries", "Train three networks side by side on toy 2D data."),
    ("app_pages/images.py", "Image classification", "CIFAR-10/100 subsets or the bundled digits, live."),
    ("app_pages/landscape.py", "Flatness vs sharpness", "Loss-landscape slices and sharpness measures."),
    ("app_pages/theory.py", "Theory", "The noisy quadratic model, exact and simulated."),
]
for col, (page, title, blurb) in zip(cols, links):
    with col.container(border=True):
        st.page_link(page, label=f"**{title}**")
        st.caption(blurb)

st.caption("Use SEMA in your own training loop: `pip install -e .` then `from sema_demo import SwitchEMA` "
           "(see the README). Companion notebooks live in `notebooks/`.")
