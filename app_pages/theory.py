"""Theory: SGD, EMA and SEMA on the noisy quadratic model, computed exactly and simulated."""
from math import isfinite as finite

import streamlit as st

from sema_demo.charts.theory import loss_chart, part_chart, ratio_map_chart
from sema_demo.ui import display
from sema_demo.theory import SERIES_NAMES, curves_frame, summarize
from sema_demo.ui.common import (alpha_slider, bind_url, csv_download, follow_tab, horizon_warning, preset_buttons,
                                 sync_url, what_to_notice)
from sema_demo.ui.common import ALPHA_CHOICES
from sema_demo.ui.theory import (BATCH_CHOICES, CONDITION_CHOICES, DIM_CHOICES, LR_CHOICES, MAP_PARAMS, MAP_VIEWS,
                                 PARAMS, PRESET_HELP, PRESETS, SAMPLE_CHOICES, SCHEDULE_NAMES, STEP_CHOICES, TABS,
                                 SWITCH_CHOICES, affordable_samples, compute, compute_map, final_step_text,
                                 load_picked_cell, load_selected_cell, map_base, map_notice, map_size,
                                 model_from_values, notice_text, option_list, unstable_text)

bind_url(PARAMS | MAP_PARAMS)
follow_tab("nqm_tab", "nqm_tab_open", TABS)     # the open tab, kept in the link as ?nqm_tab=

st.title("📐 Theory: the noisy quadratic model")
st.markdown(
    """
Does SEMA beat SGD and EMA, and when? On a **noisy quadratic** the answer can be *computed*
instead of sampled: every coordinate θᵢ feels a curvature hᵢ and minibatch noise, and the mean and
covariance of (θ, velocity, φ) follow an exact linear recurrence. The lines are those exact
expected losses; the dots and bands are independent Monte-Carlo runs of the same model.
This model and its map are **the lab's own analysis** of the algorithm, not a theorem of the SEMA paper.
"""
)
preset_buttons(PRESETS, PRESET_HELP)

left, right = st.columns([1.15, 3], gap="large")
with left:
    st.markdown("**Optimizer** (SGD with heavy-ball momentum)")
    st.select_slider("Learning rate η", LR_CHOICES, key="nqm_lr",
                     help="Step size. Heavy ball is stable only while η·h_max < 2(1 + β).")
    st.slider("Momentum β (optimizer)", 0.0, 0.99, key="nqm_beta", step=0.01,
              help="Heavy-ball momentum of the optimizer: v ← β·v + g, θ ← θ − η·v. Not the EMA momentum.")
    st.selectbox("Learning-rate schedule", tuple(SCHEDULE_NAMES), key="nqm_schedule", format_func=SCHEDULE_NAMES.get,
                 help="Constant: SGD ends at its noise floor, so averaging looks strong against it. Step: η ÷ 10 at half the "
                      "run, ÷ 100 at three quarters. Cosine: η·½(1 + cos(π·t/T)), down to 0. Step or cosine "
                      "decay let SGD anneal its own noise, as real training does (exact and simulated alike).")
    st.markdown("**Averaging**")
    alpha_slider("nqm_alpha", choices=option_list(ALPHA_CHOICES, st.session_state.nqm_alpha))
    st.select_slider("Switch every K steps (SEMA)", option_list(SWITCH_CHOICES, st.session_state.nqm_switch),
                     key="nqm_switch",
                     help="SEMA copies the average into the live weights, θ ← φ, after every K-th step. "
                          "The optimizer's velocity is kept, as in the library's SwitchEMA.")
    st.markdown("**Problem**")
    st.select_slider("Batch size", BATCH_CHOICES, key="nqm_batch",
                     help="Gradient noise variance in coordinate i is hᵢ / batch size: bigger batches, less noise.")
    st.select_slider("Condition number h_max / h_min", CONDITION_CHOICES, key="nqm_cond",
                     help="Curvatures hᵢ = i^(−p) run from 1 down to 1/condition; large: some very flat directions.")
    st.select_slider("Dimension", DIM_CHOICES, key="nqm_dim", help="How many independent coordinates θᵢ.")
    st.markdown("**Run**")
    st.select_slider("Steps", STEP_CHOICES, key="nqm_steps", help="Length of the run.")
    st.select_slider("Monte-Carlo runs", SAMPLE_CHOICES, key="nqm_samples",
                     help="Simulated runs with sampled noise: their mean (dots) checks the exact lines, their "
                          "10–90 % band shows how much one run varies. 0 turns the simulation off.")
    st.number_input("Seed", 0, 10_000, key="nqm_seed", help="Changes the Monte-Carlo noise draws.")
    st.toggle("Log steps", key="nqm_logx", help="A log-scale step axis: stretches the early steps, where EMA's lag shows.")
sync_url(PARAMS | MAP_PARAMS)

cfg = model_from_values(st.session_state)
samples = affordable_samples(cfg, st.session_state.nqm_samples)
curves, mc, steady = compute(cfg, samples, st.session_state.nqm_seed)
summary = summarize(curves, steady)
logx = st.session_state.nqm_logx

with right:
    if not cfg.stable:
        st.error(unstable_text(cfg, curves))
    else:
        for s, step in curves.diverged.items():
            st.warning(f"{SERIES_NAMES[s]} diverged at step {step:,}; the other curves continue.")
    horizon_warning(cfg.alpha, cfg.switch_every, model=cfg)
    display.altair(loss_chart(curves, mc, steady, log_steps=logx, height=display.height(380)))
    legend = "Lines: exact expected loss." + (" Dashed rules: long-run steady state." if steady else
                                              " No steady state: the learning rate changes.")
    if mc is not None:
        legend += f" Dots: mean of {mc.samples} simulated runs; shaded: 10–90 % of single runs."
    if samples < st.session_state.nqm_samples:
        legend += f" (Monte Carlo limited to {samples} runs at this size, to stay responsive.)"
    st.caption(legend)
    for col, s in zip(st.columns(4), ("sgd", "ema", "sema", "sema_theta")):
        value = summary.final[s]
        vs_ema = f"{100 * (value / summary.final['ema'] - 1):+.0f} % vs EMA" if s == "sema" and finite(value) else None
        col.metric(f"{SERIES_NAMES[s]}, final", f"{value:.3g}" if finite(value) else "diverged", delta=vs_ema,
                   delta_color="inverse", help=f"Expected loss at the last step ({final_step_text(cfg)}).")
    st.caption(f"Final = expected loss at {final_step_text(cfg)}.")
    what_to_notice(notice_text(cfg, summary))
    csv_download(curves_frame(curves, mc), "sema_nqm_curves", label="⬇ CSV of the curves")
    parts_tab, map_tab = st.tabs(list(TABS.values()), key="nqm_tab_open", on_change="rerun")
    with parts_tab:
        bias_col, var_col = st.columns(2)
        display.altair(part_chart(curves, "bias", log_steps=logx, height=display.height(240)), container=bias_col)
        display.altair(part_chart(curves, "variance", log_steps=logx, height=display.height(240)), container=var_col)
        st.caption("Bias: the loss of the mean path, what is left of the start (EMA's lag lives here). "
                   "Variance: what the gradient noise adds. Their sum is the line above.")
    with map_tab:
        ratio_map = compute_map(map_base(cfg), map_size(cfg))
        st.markdown(f"Every cell is this model run exactly with its own α and K ({len(ratio_map.switch_every)}² "
                    f"cells of {cfg.steps:,} steps; everything else as set on the left). Up: a longer EMA memory "
                    "relative to the switch interval; right: rarer switches.")
        if cfg.schedule != "constant":
            st.caption(f"⚠️ The map is computed at a constant learning rate η = {cfg.lr:g}, not the {cfg.schedule} "
                       "schedule of the curves above.")
        st.radio("Show", tuple(MAP_VIEWS), key="nqm_map_view", horizontal=True,
                 help="Final loss: expected loss after the last step. Steps: first step at or below 2 × the cell's "
                      "best final loss of SGD, EMA and SEMA (0: only SEMA gets there; ∞: only the other).")
        other, kind = MAP_VIEWS[st.session_state.nqm_map_view]
        current = (1 / (1 - cfg.alpha) / cfg.switch_every, cfg.switch_every) if cfg.alpha > 0 else None
        display.altair(ratio_map_chart(ratio_map, other, kind, current, height=display.height(420)),
                       key="nqm_map_chart", on_select=lambda: load_selected_cell("nqm_map_chart"),
                       selection_mode="cell")
        what_to_notice(map_notice(ratio_map, other, kind))
        pick_ratio, pick_k, pick_go = st.columns([2, 2, 1.2], vertical_alignment="bottom")
        pick_ratio.select_slider("Horizon ÷ K", [float(r) for r in ratio_map.horizon_ratios], key="nqm_map_ratio",
                                 format_func=lambda r: f"{r:.3g}", help="The row of the cell to load.")
        pick_k.select_slider("K (steps)", [int(k) for k in ratio_map.switch_every], key="nqm_map_k",
                             help="The column of the cell to load.")
        pick_go.button("Load cell ↑", on_click=load_picked_cell, key="nqm_map_load",
                       help="Set α = 1 − 1/(ratio × K) and K in the controls, so the curves above show this cell.")
        csv_download(ratio_map.frame(), "sema_nqm_map", label="⬇ CSV of the map")

with st.expander("The model and its recurrence, in plain words", expanded=False):
    st.markdown(
        r"""
**The loss.** $L(\theta)=\tfrac12\sum_i h_i\theta_i^2$: independent coordinates, each a valley of
curvature $h_i$. A minibatch gradient is $h_i\theta_i+\xi_i$ with noise $\xi_i\sim\mathcal N(0,c_i)$,
$c_i=h_i/B$ (Zhang et al., 2019).

**One step**, per coordinate, for the state $x=(\theta, v, \varphi)$ — the optimizer step written as
`torch.optim.SGD` does it, then the EMA update:
"""
    )
    st.latex(r"v \leftarrow \beta v + h\theta + \xi,\qquad \theta \leftarrow \theta-\eta v,\qquad "
             r"\varphi \leftarrow \alpha\varphi+(1-\alpha)\theta")
    st.markdown("That is one linear map plus noise, $x \\leftarrow A x + b\\,\\xi$:")
    st.latex(r"A=\begin{pmatrix}1-\eta h & -\eta\beta & 0\\ h & \beta & 0\\ (1-\alpha)(1-\eta h) & "
             r"-(1-\alpha)\eta\beta & \alpha\end{pmatrix},\quad b=\begin{pmatrix}-\eta\\ 1\\ -(1-\alpha)\eta"
             r"\end{pmatrix},\quad S=\begin{pmatrix}0&0&1\\0&1&0\\0&0&1\end{pmatrix}")
    st.markdown(
        r"""
**The switch** is linear too: $x \leftarrow S x$ after every $K$-th step copies $\varphi$ into $\theta$ and
keeps the velocity $v$ (the library's `SwitchEMA` keeps the optimizer state as well).

**Moments.** Because everything is linear, the mean $m=\mathbb E[x]$ and covariance $C$ follow exactly
"""
    )
    st.latex(r"m \leftarrow A m,\qquad C \leftarrow A C A^\top + c\, b b^\top,\qquad "
             r"\text{and at a switch}\quad m\leftarrow Sm,\; C\leftarrow SCS^\top .")
    st.markdown(
        r"""
The expected loss of θ is $\tfrac12\sum_i h_i\,(m_{\theta,i}^2 + C_{\theta\theta,i})$: the first sum is the
**bias** (how much of the start is left, including EMA's lag), the second the **variance** (what the noise
adds). The same for φ. The page evaluates this for every step at once (powers of $A$ by repeated doubling).

**Steady state.** For a stable run the covariance settles where $C = ACA^\top + c\,bb^\top$ (a Lyapunov
equation, solved per coordinate). For SGD it has a closed form,
$\operatorname{Var}\theta=\dfrac{\eta c\,(1+\beta)}{h(1-\beta)\,(2(1+\beta)-\eta h)}$; for EMA with β = 0,
$\operatorname{Var}\varphi=\operatorname{Var}\theta\cdot\dfrac{(1-\alpha)(1+\alpha r)}{(1+\alpha)(1-\alpha r)}$,
$r = 1-\eta h$. SEMA settles into a *periodic* steady state, shown averaged over one switch period.

**Stability.** Heavy ball converges only while $0<\eta h<2(1+\beta)$ for every curvature; beyond that the
loss grows geometrically, and averaging a diverging θ cannot rescue it.
"""
    )
