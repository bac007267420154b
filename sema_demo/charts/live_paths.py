"""The weight paths of a run still training, as a Vega-Lite spec the browser draws.

    spec = live_paths_spec(study, size=440)          # study: paths.study_paths(...) of one seed
    st.vega_lite_chart(spec=spec)

While a run trains, its paths panel is redrawn on every tick.  A matplotlib picture of it
(``charts.paths.paths_figure``) costs the server about half a second per tick and per
student; this spec costs it a few milliseconds, and the browser draws it.  It shows what
``paths_figure`` shows without a surface: θ thin (SGD's bold: EMA's θ is SGD's), each
average φ bold on a white casing, SEMA's switch jumps dashed with a ◆ where θ lands, the
start ○ and the current ends ★.  Both axes have the same scale (a plane of weight space:
distances are true), so the plot area is square and the two domains span the same length.
"""
from __future__ import annotations

import numpy as np

from ..paths import PLANES, PathStudy, switch_rows
from .paths import DRAW_ORDER, LABEL_CORNERS, LABEL_OFFSET, _draws_live
from .style import METHOD_COLORS, METHOD_NAMES

STAR = "M0,-1L0.24,-0.33L0.95,-0.31L0.38,0.12L0.59,0.81L0,0.4L-0.59,0.81L-0.38,0.12L-0.95,-0.31L-0.24,-0.33Z"
PAD = 0.08            # of the span, around the paths


def _round(values, span: float) -> list[float]:
    digits = max(0, 4 - int(np.floor(np.log10(span)))) if span > 0 else 4      # ≈ 1/10,000 of the axis
    return np.round(np.asarray(values, dtype=float), digits).tolist()


def _axis_titles(study: PathStudy) -> tuple[str, str]:
    plane = study.plane
    if plane.kind == "pca":
        return (f"principal direction 1 ({plane.explained[0]:.0%} of the paths' variance)",
                f"principal direction 2 ({plane.explained[1]:.0%})")
    return f"direction 1 (weight-space distance from {plane.centre})", "direction 2 (orthonormal)"


def _square_domains(xs: np.ndarray, ys: np.ndarray) -> tuple[list[float], list[float]]:
    """Domains of the same length around the points: equal scales on a square plot."""
    span = max(float(np.ptp(xs)), float(np.ptp(ys)), 1e-9) * (1 + 2 * PAD)
    cx, cy = (xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2
    return [cx - span / 2, cx + span / 2], [cy - span / 2, cy + span / 2]


def live_paths_spec(study: PathStudy, size: int = 440, fonts: dict[str, int] | None = None,
                    title: str | None = None) -> dict:
    """The spec: a square plot ``size`` px wide; ``fonts`` as ``charts.training.learning_curves_spec``'s."""
    frame = study.frame
    methods = [m for m in DRAW_ORDER if m in set(frame.method)]
    ends = [p for p in study.points if p["method"] in methods]
    xs = np.concatenate([frame.x.to_numpy(), [p["x"] for p in ends]])
    ys = np.concatenate([frame.y.to_numpy(), [p["y"] for p in ends]])
    x_domain, y_domain = _square_domains(xs, ys)
    span = x_domain[1] - x_domain[0]

    # Plain arrays, not frame filters: a live page builds this on every tick.
    method, weights = frame.method.to_numpy(object), frame.weights.to_numpy(object)
    step, kind = frame.step.to_numpy(), frame.kind.to_numpy(object)
    x_all, y_all = _round(frame.x, span), _round(frame.y, span)

    def series(m: str, w: str) -> np.ndarray:
        """Row numbers of one path, in step order."""
        at = np.flatnonzero((method == m) & (weights == w))
        return at[np.argsort(step[at], kind="stable")]

    def rows(at, m: str, w: str, **extra) -> list[dict]:
        name, key = METHOD_NAMES[m], f"{m}:{w}"
        return [{"method": name, "series": key, "step": int(step[i]), "x": x_all[i], "y": y_all[i], **extra}
                for i in at]

    lines, averages, jumps, landings = [], [], [], []
    for m in methods:
        live = series(m, "live")
        if _draws_live(m, methods) and len(live):
            bold = m == "sgd"
            lines += rows(live, m, "live", width=2.0 if bold else 1.2, opacity=0.9 if bold else 0.5)
        averages += rows(series(m, "average"), m, "average")
        if m == "sema":
            switches = switch_rows(kind[live])
            before, after = live[switches - 1], live[switches]
            jumps += [{"x": x_all[b], "y": y_all[b], "x2": x_all[a], "y2": y_all[a]} for b, a in zip(before, after)]
            landings += rows(after, m, "live")
    first = np.flatnonzero(step == 0)[:1]
    ends_rows = []
    for i, p in enumerate(ends):              # the export's label places: close ends stay readable
        ends_rows.append({"method": METHOD_NAMES[p["method"]], "x": _round([p["x"]], span)[0],
                          "y": _round([p["y"]], span)[0], "place": i % len(LABEL_CORNERS)})
    names = [METHOD_NAMES[m] for m in methods]
    color = {"field": "method", "type": "nominal", "title": None,
             "scale": {"domain": names, "range": [METHOD_COLORS[m] for m in methods]}}
    x_title, y_title = _axis_titles(study)
    x = {"field": "x", "type": "quantitative", "title": x_title, "scale": {"domain": x_domain, "nice": False}}
    y = {"field": "y", "type": "quantitative", "title": y_title, "scale": {"domain": y_domain, "nice": False}}
    xy = {"x": {"field": "x", "type": "quantitative"}, "y": {"field": "y", "type": "quantitative"}}
    layers = [
        {"data": {"name": "lines"}, "mark": {"type": "line", "strokeCap": "round"},
         "encoding": {"x": x, "y": y, "color": color, "detail": {"field": "series"}, "order": {"field": "step"},
                      "strokeWidth": {"field": "width", "type": "quantitative", "scale": None, "legend": None},
                      "opacity": {"field": "opacity", "type": "quantitative", "scale": None, "legend": None}}},
        {"data": {"name": "averages"}, "mark": {"type": "line", "color": "white", "strokeWidth": 5.5,
                                                "strokeCap": "round"},
         "encoding": {**xy, "detail": {"field": "series"}, "order": {"field": "step"}}},
        {"data": {"name": "averages"}, "mark": {"type": "line", "strokeWidth": 3.2, "strokeCap": "round"},
         "encoding": {**xy, "color": color, "detail": {"field": "series"}, "order": {"field": "step"},
                      "tooltip": [{"field": "method"}, {"field": "step", "title": "optimizer step"}]}},
        {"data": {"name": "jumps"}, "mark": {"type": "rule", "strokeDash": [5, 3], "strokeWidth": 1.2,
                                             "color": METHOD_COLORS["sema"]},
         "encoding": {**xy, "x2": {"field": "x2"}, "y2": {"field": "y2"}}},
        {"data": {"name": "landings"}, "mark": {"type": "point", "shape": "diamond", "filled": True, "size": 50,
                                                "stroke": "white", "strokeWidth": 1, "opacity": 1},
         "encoding": {**xy, "color": color}},
        {"data": {"name": "start"}, "mark": {"type": "point", "shape": "circle", "filled": True, "size": 110,
                                             "color": "white", "stroke": "black", "strokeWidth": 1.5, "opacity": 1},
         "encoding": xy},
        {"data": {"name": "ends"}, "mark": {"type": "point", "shape": STAR, "filled": True, "size": 260,
                                            "color": "gold", "stroke": "black", "strokeWidth": 1, "opacity": 1},
         "encoding": {**xy, "tooltip": [{"field": "method", "title": "current end of"}]}},
    ] + [
        {"data": {"name": "ends"}, "transform": [{"filter": {"field": "place", "equal": place}}],
         "mark": {"type": "text", "align": align, "baseline": vertical, "dx": dx, "dy": -dy, "fontWeight": "bold"},
         "encoding": {**xy, "text": {"field": "method"}, "color": color}}
        for place, (right, up) in enumerate(LABEL_CORNERS)   # the export's corners, in turn, per end
        for dx, dy, align, vertical in [(LABEL_OFFSET[0] if right else -LABEL_OFFSET[0],
                                         LABEL_OFFSET[1] if up else -LABEL_OFFSET[1],
                                         "left" if right else "right", "bottom" if up else "top")]
    ]
    config = {"view": {"stroke": "#bbbbbb"}, "legend": {"orient": "bottom"}}
    if fonts:
        config["axis"] = {"labelFontSize": fonts["label"], "titleFontSize": fonts["title"]}
        config["legend"].update(labelFontSize=fonts["legend"], symbolSize=160)
        config["title"] = {"fontSize": fonts["header"]}
        config["text"] = {"fontSize": fonts["label"]}
    return {
        "title": {"text": title or f"Seed {study.seed}: plane {PLANES[study.plane.kind]}", "anchor": "start"},
        "width": size, "height": size,
        "datasets": {"lines": lines, "averages": averages, "jumps": jumps, "landings": landings,
                     "start": [{"x": x_all[i], "y": y_all[i]} for i in first],
                     "ends": ends_rows},
        "layer": layers, "config": config,
    }
