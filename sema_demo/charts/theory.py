"""The theory page's figures: expected loss of SGD, EMA and SEMA on the noisy quadratic model."""
from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from ..theory import SERIES, SERIES_NAMES, Curves, MonteCarlo
from .style import METHOD_COLORS

DOMAIN = [SERIES_NAMES[s] for s in SERIES]
COLORS = [METHOD_COLORS["sgd"], METHOD_COLORS["ema"], METHOD_COLORS["sema"], "#F0A36B"]  # SEMA θ: lighter
DASHES = [[1, 0], [1, 0], [1, 0], [6, 3]]
MAX_POINTS = 1200   # per line; the CSV keeps every step
MC_MARKERS = 30     # Monte-Carlo means drawn as dots at this many steps
LOSS_TITLE = "expected loss  E[½ Σ h·θ²]  (log scale)"


def _color(legend: bool = True) -> alt.Color:
    # Layers of one chart all repeat the legend: one layer without it would hide the shared legend.
    return alt.Color("series:N", scale=alt.Scale(domain=DOMAIN, range=COLORS), title=None,
                     legend=alt.Legend(orient="top", symbolType="stroke", symbolStrokeWidth=3,
                                       symbolOpacity=1) if legend else None)


def _line_style() -> dict:
    """SEMA θ saw-tooths between φ and the SGD level at every switch: thin, light and dashed, so
    it does not hide the averaged weights that SEMA evaluates."""
    theta = alt.datum.series == SERIES_NAMES["sema_theta"]
    return {"strokeDash": alt.StrokeDash("series:N", scale=alt.Scale(domain=DOMAIN, range=DASHES), legend=None),
            "strokeWidth": alt.condition(theta, alt.value(1.2), alt.value(2.6)),
            "opacity": alt.condition(theta, alt.value(0.5), alt.value(1.0))}


FIRST_STEPS = 20    # a log step axis always shows every one of the first steps


def _every(n: int, count: int, log_steps: bool = False) -> np.ndarray:
    """About `count` indices of range(n), always with the last one: evenly spaced, or log-spaced
    (with every one of the first steps) for a log step axis, so that thinning keeps the early steps."""
    if log_steps and n > 1:
        spaced = np.geomspace(1, n - 1, min(n, count)).round().astype(int)
        return np.unique(np.r_[np.arange(min(n, FIRST_STEPS + 1)), spaced, n - 1])
    return np.unique(np.r_[np.linspace(0, n - 1, min(n, count)).round().astype(int), n - 1])


def _shown_steps(curves: Curves) -> int:
    """The last step on the axis: the whole run, or a little past the point where every series diverged."""
    last = len(curves.steps) - 1
    if len(curves.diverged) == len(SERIES):
        return min(last, int(1.2 * max(curves.diverged.values())) + 2)
    return last


def _x(log_steps: bool, steps: int) -> alt.X:
    """The step axis, the same range on every chart so that they line up."""
    return alt.X("step:Q", title="optimizer step" + (" (log scale)" if log_steps else ""),
                 scale=alt.Scale(type="log" if log_steps else "linear", domain=[1 if log_steps else 0, steps],
                                 nice=False))


def _y(title: str, axis_format: str | None = None) -> alt.Y:
    axis = alt.Axis(format=axis_format) if axis_format else alt.Axis()
    return alt.Y("value:Q", title=title, scale=alt.Scale(type="log"), axis=axis)


def _positive(frame: pd.DataFrame, log_steps: bool, columns=("value",)) -> pd.DataFrame:
    """Rows a log-scale chart can draw: positive, finite values (and step ≥ 1 on a log step axis)."""
    keep = np.ones(len(frame), dtype=bool)
    for c in columns:
        keep &= np.isfinite(frame[c]) & (frame[c] > 0)
    if log_steps:
        keep &= frame["step"] >= 1
    return frame[keep]


def series_frame(values: dict[str, np.ndarray], points: int = MAX_POINTS, log_steps: bool = False) -> pd.DataFrame:
    """Long frame (step, series, value) from one array per series, thinned to `points` steps
    (log-spaced for a log step axis)."""
    steps = _every(len(next(iter(values.values()))), points, log_steps)
    return pd.concat([pd.DataFrame({"step": steps, "series": SERIES_NAMES[s], "value": values[s][steps]})
                      for s in SERIES], ignore_index=True)


def loss_chart(curves: Curves, mc: MonteCarlo | None = None, steady: dict[str, float] | None = None,
               log_steps: bool = False, height: int = 380) -> alt.LayerChart:
    """Exact expected loss per series (lines), Monte-Carlo means (dots) and spread (bands),
    and the long-run steady state (dashed rules), on a log loss axis."""
    totals = {s: curves.total(s) for s in SERIES}
    x = _x(log_steps, _shown_steps(curves))
    lines = alt.Chart(_positive(series_frame(totals, log_steps=log_steps), log_steps)).mark_line().encode(
        x=x, y=_y(LOSS_TITLE), color=_color(), **_line_style(),
        tooltip=["series", "step", alt.Tooltip("value:Q", title="expected loss", format=".4g")],
    )
    layers = [lines]
    if mc is not None:
        steps = _every(len(mc.mean["sgd"]), MAX_POINTS, log_steps)
        band = pd.concat([pd.DataFrame({"step": steps, "series": SERIES_NAMES[s], "low": mc.low[s][steps],
                                        "high": mc.high[s][steps]}) for s in SERIES[:3]], ignore_index=True)
        q_low, q_high = (f"{100 * q:g} %" for q in mc.quantiles)
        layers.insert(0, alt.Chart(_positive(band, log_steps, ("low", "high"))).mark_area(opacity=0.13).encode(
            x=x, y=alt.Y("low:Q", title=LOSS_TITLE, scale=alt.Scale(type="log")), y2="high:Q",
            color=_color(),
            tooltip=["series", "step", alt.Tooltip("low:Q", title=f"single runs, {q_low}", format=".4g"),
                     alt.Tooltip("high:Q", title=f"single runs, {q_high}", format=".4g")]))
        dots = _positive(series_frame(mc.mean, MC_MARKERS, log_steps), log_steps)
        dots = dots[dots["series"] != SERIES_NAMES["sema_theta"]]
        layers.append(alt.Chart(dots).mark_point(size=40, filled=True, opacity=0.9, stroke="white",
                                                 strokeWidth=0.8).encode(
            x=x, y=_y(LOSS_TITLE), color=_color(),
            tooltip=["series", "step", alt.Tooltip("value:Q", title=f"Monte-Carlo mean ({mc.samples} runs)",
                                                   format=".4g")]))
    if steady:
        rules = pd.DataFrame({"series": [SERIES_NAMES[s] for s in ("sgd", "ema", "sema") if s in steady],
                              "value": [steady[s] for s in ("sgd", "ema", "sema") if s in steady]})
        layers.append(alt.Chart(rules[rules["value"] > 0]).mark_rule(strokeDash=[2, 4], strokeWidth=1.6).encode(
            y=_y(LOSS_TITLE), color=_color(),
            tooltip=["series", alt.Tooltip("value:Q", title="steady state", format=".4g")]))
    return alt.layer(*layers).properties(height=height)


def part_chart(curves: Curves, part: str, log_steps: bool = False, height: int = 240) -> alt.Chart:
    """One part of the expected loss, "bias" (from the mean) or "variance" (from the noise).

    Values below 10⁻⁴ × the smallest expected loss are left out: next to the total they are
    invisible, and a bias decaying to 10⁻⁴⁰ would squash the part that matters."""
    values = curves.bias if part == "bias" else curves.variance
    title = "bias part  ½ Σ h·E[θ]²" if part == "bias" else "variance part  ½ Σ h·Var θ"
    totals = np.concatenate([curves.total(s) for s in SERIES])
    totals = totals[np.isfinite(totals) & (totals > 0)]
    frame = _positive(series_frame(values, log_steps=log_steps), log_steps)
    if totals.size:
        frame = frame[frame["value"] >= 1e-4 * totals.min()]
    return alt.Chart(frame).mark_line().encode(
        x=_x(log_steps, _shown_steps(curves)), y=_y(title + "  (log)", ".0e"), color=_color(legend=False),
        **_line_style(),
        tooltip=["series", "step", alt.Tooltip("value:Q", title=part, format=".4g")],
    ).properties(height=height)


# ------------------------------------------------------------------------------ the map

MAP_LABELS = {("ema", "final"): "SEMA ÷ EMA, final loss", ("sgd", "final"): "SEMA ÷ SGD, final loss",
              ("ema", "steps"): "SEMA ÷ EMA, steps to the level", ("sgd", "steps"): "SEMA ÷ SGD, steps to the level"}
MAP_CLIP = 10.0   # ratios beyond ×/÷ 10 share the end colours


def _edges(values: np.ndarray) -> np.ndarray:
    """Cell edges of log-spaced centres: geometric midpoints, extended half a step at both ends."""
    logs = np.log(np.asarray(values, dtype=float))
    mids = (logs[1:] + logs[:-1]) / 2
    return np.exp(np.r_[2 * logs[0] - mids[0], mids, 2 * logs[-1] - mids[-1]]) if len(logs) > 1 else \
        np.exp(logs[0] + np.array([-0.5, 0.5]))


def map_frame(ratio_map, other: str = "ema", kind: str = "final") -> pd.DataFrame:
    """One row per cell: its edges, settings and the SEMA ÷ other ratio (clipped for colour)."""
    ratio = ratio_map.ratio(other, kind)
    x_edges, y_edges = _edges(ratio_map.switch_every), _edges(ratio_map.horizon_ratios)
    rows = []
    for i, r in enumerate(ratio_map.horizon_ratios):
        for j, k in enumerate(ratio_map.switch_every):
            value = float(ratio[i, j])
            rows.append({"switch_every": int(k), "horizon_ratio": float(r), "alpha": float(ratio_map.alpha[i, j]),
                         "horizon_steps": float(r * k), "x": x_edges[j], "x2": x_edges[j + 1], "y": y_edges[i],
                         "y2": y_edges[i + 1], "ratio": value,
                         "colour": float(np.clip(value, 1 / MAP_CLIP, MAP_CLIP)) if np.isfinite(value) or value == np.inf
                         else np.nan,
                         "verdict": "SEMA helps" if value < 1 else "SEMA hurts" if value > 1 else
                         "no difference" if value == 1 else "n/a"})
    return pd.DataFrame(rows)


def ratio_one_contour(ratio_map, other: str = "ema", kind: str = "final") -> pd.DataFrame:
    """The ratio-1 line (pieces, points in order) between the cell centres, traced in log–log space."""
    import contourpy

    ratio = ratio_map.ratio(other, kind)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.log(np.clip(ratio, 1 / MAP_CLIP, MAP_CLIP))
    if not np.isfinite(z).any() or np.nanmin(z) >= 0 or np.nanmax(z) <= 0:
        return pd.DataFrame(columns=["piece", "order", "switch_every", "horizon_ratio"])
    lines = contourpy.contour_generator(np.log(ratio_map.switch_every.astype(float)), np.log(ratio_map.horizon_ratios),
                                        np.ma.masked_invalid(z)).lines(0.0)
    frames = [pd.DataFrame({"piece": n, "order": np.arange(len(line)), "switch_every": np.exp(line[:, 0]),
                            "horizon_ratio": np.exp(line[:, 1])}) for n, line in enumerate(lines) if len(line) > 1]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["piece", "order", "switch_every", "horizon_ratio"])


def ratio_map_chart(ratio_map, other: str = "ema", kind: str = "final", current: tuple[float, int] | None = None,
                    height: int = 420) -> alt.LayerChart:
    """Heatmap of SEMA ÷ other over (K, horizon ÷ K), log colour centred on 1, the ratio-1 contour
    drawn, a point selection on the cells (name "cell") and the current setting marked."""
    frame = map_frame(ratio_map, other, kind)
    x = alt.X("x:Q", scale=alt.Scale(type="log", nice=False), title="switch interval K (steps, log scale)")
    y = alt.Y("y:Q", scale=alt.Scale(type="log", nice=False), title="EMA horizon 1/(1 − α) ÷ K (log scale)")
    pick = alt.selection_point(name="cell", fields=["horizon_ratio", "switch_every"], on="click")
    colour = alt.Color("colour:Q", title=MAP_LABELS[(other, kind)],
                       scale=alt.Scale(type="log", scheme="redblue", reverse=True, domain=[1 / MAP_CLIP, MAP_CLIP],
                                       domainMid=1),
                       legend=alt.Legend(orient="right", format="~g", values=[0.1, 0.3, 1, 3, 10], gradientLength=260))
    cells = alt.Chart(frame).mark_rect(stroke="white", strokeWidth=0.3).encode(
        x=x, x2="x2:Q", y=y, y2="y2:Q", color=colour,
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.75)),
        tooltip=[alt.Tooltip("switch_every:Q", title="K (steps)"),
                 alt.Tooltip("horizon_ratio:Q", title="horizon ÷ K", format=".3g"),
                 alt.Tooltip("horizon_steps:Q", title="horizon (steps)", format=",.3g"),
                 alt.Tooltip("alpha:Q", title="α", format=".5g"),
                 alt.Tooltip("ratio:Q", title=MAP_LABELS[(other, kind)], format=".3g"), "verdict:N"],
    ).add_params(pick)
    layers = [cells]
    contour = ratio_one_contour(ratio_map, other, kind)
    if len(contour):
        layers.append(alt.Chart(contour).mark_line(color="black", strokeWidth=2.4).encode(
            x=alt.X("switch_every:Q", scale=alt.Scale(type="log")), y=alt.Y("horizon_ratio:Q", scale=alt.Scale(type="log")),
            detail="piece:N", order="order:Q"))
    if current is not None:
        ratio, k = current
        layers.append(alt.Chart(pd.DataFrame({"switch_every": [k], "horizon_ratio": [ratio]})).mark_point(
            shape="diamond", size=160, filled=True, color="#FFD400", stroke="black", strokeWidth=1.2).encode(
            x="switch_every:Q", y="horizon_ratio:Q", tooltip=[alt.Tooltip("switch_every:Q", title="current K")]))
    return alt.layer(*layers).properties(height=height)
