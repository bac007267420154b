"""Flatness vs sharpness: loss-landscape slices and sharpness measures of networks trained here."""
import streamlit as st

from sema_demo.averaging import METHODS
from sema_demo.charts.landscape import colour_range, contour_figure, interpolation_chart, slice_chart
from sema_demo.charts.style import METHOD_NAMES
from sema_demo.sharpness import MEASURE_COLUMNS, SharpnessSettings, summary_table
from sema_demo.ui import display
from sema_demo.ui import landscape as ui
from sema_demo.ui.common import (Param, bind_url, csv_download, figure_downloads, preset_buttons, sync_url,
                                 what_to_notice)
from sema_demo.ui.paths import paths_panel, paths_params, source_from_run
from sema_demo.ui.runs import trained_runs

SPANS, STEPS, RISES = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0), (11, 15, 21, 31, 41), (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
RHOS, POINTS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5), (200, 400, 800, 1600, 3200)
CLIPS = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 50.0)          # 0: auto, at most 5 % of any panel's points saturate
PARAMS = {
    "quick": Param("default", choices=tuple(ui.QUICK_RUNS)),
    "span": Param(1.0, choices=SPANS), "steps": Param(21, choices=STEPS), "rise": Param(0.1, choices=RISES),
    "rho": Param(0.05, choices=RHOS), "clip": Param(0.0, choices=CLIPS), "points": Param(400, choices=POINTS),
    "dir_seed": Param(0, lo=0, hi=10_000), "hutchinson": Param(16, choices=(8, 16, 32, 64)),
    "start": Param("sgd", choices=METHODS), "end": Param("sema", choices=METHODS),
    **paths_params(grid=41),
}
RUN_PRESETS = {
    "🧪 Quick default run": {"quick": "default"},
    "📄 Paper's regime run": {"quick": "paper"},
}
RUN_HELP = {
    "🧪 Quick default run": "30 epochs, α = 0.95, 3 seeds: a few seconds.",
    "📄 Paper's regime run": "As in the SEMA paper: longer training (100 epochs), an EMA horizon of about one "
                            "epoch (α = 0.96 = 25 steps), a linear α warm-up, 5 seeds. About 3× the quick default.",
}

bind_url(PARAMS)
s = st.session_state
PRESETS = {
    "Default view (±1)": {"span": 1.0, "steps": 21, "rise": 0.1, "rho": 0.05, "clip": 0.0, "dir_seed": 0},
    "Close-up (±0.25)": {"span": 0.25, "steps": 21, "rise": 0.02, "rho": 0.02, "clip": 0.0},
    "Wide view (±3)": {"span": 3.0, "steps": 31, "rise": 0.5, "rho": 0.2, "clip": 0.0},
    "Other directions": {"dir_seed": (s.dir_seed + 1) % 10_001},     # the next seed at every click
}
PRESET_HELP = {
    "Default view (±1)": "Every filter moved by up to its own norm; rise Δ = 0.1; direction seed 0.",
    "Close-up (±0.25)": "Zoom into the bottom of each minimum, with a small Δ and ρ.",
    "Wide view (±3)": "Far from the solutions: where the basins end.",
    "Other directions": f"The next seed for the random directions ({(s.dir_seed + 1) % 10_001}) — does the "
                        "picture hold?",
}
st.title("⛰️ Flatness vs sharpness")
st.markdown(
    "A minimum can be **deep** (low training loss) and **sharp** (the loss shoots up when the weights move a "
    "little), or **shallow** and **flat**. The SEMA paper claims that SEMA reaches a *better trade-off between "
    "flatness and sharpness*. This page *measures* it for networks trained in this session: it moves each "
    "network's weights along the **same random directions** and reads off the loss, and it measures the "
    "curvature (the Hessian) at each solution.")

runs = trained_runs()
with st.sidebar:
    st.subheader("Trained networks")
    if not runs:
        runs = {ui.QUICK_RUNS[s.quick][0]: ui.train_quick(s.quick)}   # the page opens with content
    label = st.selectbox("Run to study", list(runs)[::-1], key="landscape_run",
                         help="Runs trained on the Decision-boundaries or Image pages of this session, "
                              "or one of the quick runs trained here (the presets above the charts).")
    st.button("🔁 Train the quick run again", on_click=ui.retrain_quick_default, key="landscape_retrain",
              help="The quick run of the last run preset, trained afresh: two moons, MLP 2-32-32-2, SGD/EMA/SEMA.")
    st.subheader("Slices")
    st.select_slider("Reach ± (filter-normalised)", SPANS, key="span",
                     help="How far the slices go. 1 moves every filter of the network by its own norm.")
    st.select_slider("2-D grid points per axis", STEPS, key="steps", help="More points: finer contours, slower.")
    st.number_input("Direction seed", 0, 10_000, key="dir_seed",
                    help="Seeds the random directions; every method is probed along the same ones.")
    st.select_slider("Colour/axis clip (loss)", CLIPS, key="clip", format_func=lambda v: "auto" if v == 0 else f"{v:g}",
                     help="Losses above this (or not finite) are drawn at the top colour, and cut from the curves. "
                          "Auto: the top that leaves at most 5 % of any panel's points above it.")
    st.subheader("Sharpness")
    st.select_slider("Rise Δ for the width", RISES, key="rise",
                     help="Width = how far along the slices the loss rises by Δ above the solution's loss.")
    st.select_slider("Perturbation radius ρ", RHOS, key="rho",
                     help="Random weight perturbations moving every filter by ρ × its norm.")
    st.select_slider("Hutchinson samples (trace)", (8, 16, 32, 64), key="hutchinson",
                     help="Random ±1 vectors averaged to estimate the Hessian trace; more = less noise.")
    st.select_slider("Training points used", POINTS, key="points",
                     help="The loss is measured on this many training points (fewer = faster).")
    st.subheader("Straight path")
    for key, text in (("start", "From (t = 0)"), ("end", "To (t = 1)")):
        st.selectbox(text, METHODS, key=key, format_func=METHOD_NAMES.get,
                     help="Interpolates weights and BatchNorm statistics between two methods' solutions "
                          "of the same seed.")
sync_url(PARAMS)
preset_buttons(RUN_PRESETS, RUN_HELP, on_apply=ui.use_quick_run)
preset_buttons(PRESETS, PRESET_HELP)

settings = SharpnessSettings(seed=s.dir_seed, span=s.span, steps_2d=s.steps, rise=s.rise, rho=s.rho,
                             hutchinson_samples=s.hutchinson)
run = runs[label]
cached = ui.is_cached(run, settings, s.points, s.start, s.end)
seconds = 0.0 if cached else ui.estimate_seconds(run, settings, s.points)
if seconds > ui.AUTO_SECONDS:
    st.info(f"Measuring this run ({len(run.models)} networks) takes **{ui.format_seconds(seconds)}** here: "
            f"{ui.network_passes(run, settings):,} passes over {s.points} training examples. Lower the grid points "
            "or training points in the sidebar to make it quicker.", icon="⏱️")
    if not st.button(f"📐 Measure this run ({ui.format_seconds(seconds)})", type="primary", key="landscape_measure",
                     help="Compute the slices and Hessian measures of every network of this run."):
        st.stop()
result = ui.measured(run, settings, s.points, s.start, s.end)
comp = result.comparison
if comp.skipped:
    st.warning("Left out because their weights are not finite (the run diverged): "
               + ", ".join(f"{METHOD_NAMES.get(m, m)} seed {seed}" for m, seed in comp.skipped) + ".")
if comp.rows.empty:
    st.error("Every network of this run diverged, so there is no landscape to measure. Train the quick default.")
    st.stop()
path = result.path
ui.claim_box(comp.rows)

_, top, clipped = colour_range(comp.grids, s.clip)
left, right = st.columns(2)
display.altair(slice_chart(comp.curves, top, height=display.height(320)), left)
if path.empty:
    methods = ", ".join(METHOD_NAMES[m] for m in METHODS if m in set(comp.rows["method"]))
    right.info(f"For the straight path, pick two different methods of this run that did not diverge: {methods}.")
else:
    display.altair(interpolation_chart(path, s.start, s.end, top, height=display.height(320)), right)

st.subheader("2-D slices around each solution, one colour scale")
fig = contour_figure(comp.grids, comp.offsets_2d, s.clip, font_scale=display.font_scale())
st.pyplot(fig, width="stretch")
size = next(iter(comp.grids.values())).size
scale = "auto: at most 5 % of any panel's points above it" if not s.clip else f"clip {s.clip:g}"
st.caption(f"Colour scale top {top:.3g} ({scale}). "
           + ("Drawn in the top colour (above it or not finite): "
              + ", ".join(f"{n} of {size} points of {METHOD_NAMES.get(m, m)}" for m, n in clipped.items() if n)
              + ". " if any(clipped.values()) else "No point lies above it. ")
           + f"Each panel: the method's first seed, ±{s.span:g} along directions 1 and 2 (direction seed "
             f"{s.dir_seed}); ★ = the solution. Same directions for every method, each filter-normalised to its "
             "own network.")
figure_downloads(fig, "landscape_2d_slices")

st.subheader("Sharpness measures")
st.caption(f"Mean ± std over seeds, on {result.n_points} training points; ρ = {s.rho:g}, Δ = {s.rise:g}.")
st.dataframe(ui.measures_table(summary_table(comp.rows, METHOD_NAMES)), hide_index=True, width="stretch")
csv_download(comp.rows, "landscape_measures", label="⬇ CSV (every method and seed)")
what_to_notice(ui.notice_text(comp.rows, path, s.start, s.end, s.rise, s.rho))
with st.expander("How these are measured"):
    st.markdown("\n".join(f"- **{name}**: {meaning}." for name, meaning in MEASURE_COLUMNS.values()) + f"""
- **Directions** are filter-normalised (Li et al., 2018): Gaussian, then each filter (row of a weight matrix,
  output channel of a convolution) rescaled to the norm of the same filter of the weights; biases and
  BatchNorm parameters are not moved. Offset 1 moves every filter by its own norm.
- **λ_max** by power iteration on Hessian-vector products (at most 50; stops at a relative change of 10⁻⁴);
  **trace** by Hutchinson's estimator with {s.hutchinson} random ±1 vectors.
- **BatchNorm**: networks are evaluated in eval mode; slices keep each solution's running statistics
  (not recomputed); the straight path interpolates the running statistics together with the weights.
- A width marked "≥" did not rise by Δ within the reach on some slice; widen the reach to measure it.""")
paths_panel("landscape", source_from_run(run, compute_now=seconds <= ui.AUTO_SECONDS), grid=41)
