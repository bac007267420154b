"""The path player: paths on a loss-surface picture, animated in the browser.

A Streamlit components-v2 element (inline HTML, CSS and JavaScript from the files beside
this module: no iframe, no build step, nothing fetched from the network).  Python sends the
picture and the paths as data with each rerun; the browser then plays them at display rate
with ▶/⏸, ⏮, a scrubber, a speed menu and a loss-vs-step chart whose cursor (and the
legend's loss values) follow the frame.  The server sends nothing per frame.  A click on the surface sends the new start
point back (``on_start``), and a new speed (``on_speed``).

The data shape, shared by every panel that shows paths on a surface (build it with
:func:`surface` and :func:`path`; every number must be finite)::

    {
      "image": {                         # the picture, sent once per rerun and decoded once
        "src": "data:image/webp;base64,…",   # the whole figure: axes, colour bar, legend
        "width": 1640, "height": 1560,       # its size in pixels
        "plot_box": [left, top, right, bottom],   # the axes' area, in those pixels (top < bottom)
        "extent": [x_min, x_max, y_min, y_max],   # the data coordinates at the box's edges
      },
      "paths": [                         # drawn in this order (the last on top)
        {"name": "SEMA", "color": "#D55E00",
         "x": [...], "y": [...],         # the evaluated weights at steps 0 … n − 1 (n − 1 ≤ steps)
         "loss": [...] or None,          # the loss there: the loss chart (None: not charted)
         "style": "average",             # "average": a bold full path; "live": a thin recent trail
         "live": {"x": [...], "y": [...],            # live weights drawn as a thin recent trail
                  "loss": [...] or None} or None,    # their loss: a faint line in the loss chart
         "switches": [k, …],             # ascending steps where the live weights jumped (◆)
         "diverged": False},             # True: an ✕ at the path's last point, once reached
        …],
      "steps": 1000,                     # the last step: the scrubber's end
      "steps_per_epoch": 50 or None,     # shows "epoch e" beside the step
      "step_values": [0, 4, 8, …] or None,   # optional: the optimizer step each frame shows
                                         # (recorded snapshots); None: frame k is step k
      "step_name": "optimizer step",     # the loss chart's x label
      "trail": 150,                      # steps of thin trail drawn behind a head
      "start": [x, y] or None,           # a white dot where every path starts
      "clickable": True,                 # a click in the plot box sends a new start
      "speeds": [25, 50, …], "speed": 100,   # frames per second: the menu and its value
      "speed_unit": "steps/s",           # optional: the menu's unit
      "loss_scale": "linear" or "log",
      "frame": None,                     # the step shown when it first opens (None: the end)
      "play_token": 0,                   # a new value plays from step 0 (a preset, a new start)
      "hint": "…",                       # one line of help under the player
      "scale": 1.0,                      # text and loss-chart size factor (projector mode: larger)
    }

Mount it with :func:`path_player` under a fixed ``key``: the element then keeps its frame,
play state and speed across reruns and only takes the new data.
"""
from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
from streamlit.components.v2 import component

HERE = Path(__file__).parent
NAME = "sema_demo.path_player"
DECIMALS = 5        # significant digits sent per coordinate: well below a pixel on any screen

_mount = component(
    NAME,
    html=(HERE / "player.html").read_text(encoding="utf-8"),
    css=(HERE / "player.css").read_text(encoding="utf-8"),
    js=(HERE / "player.js").read_text(encoding="utf-8"),
)


def surface(image, plot_box: Sequence[float], extent: Sequence[float], quality: int = 85) -> dict[str, Any]:
    """The ``"image"`` entry for a Pillow image of the figure (encoded as WebP: a third of a JPEG)."""
    out = io.BytesIO()
    image.save(out, format="WEBP", quality=quality)
    return {"src": "data:image/webp;base64," + base64.b64encode(out.getvalue()).decode("ascii"),
            "width": image.width, "height": image.height,
            "plot_box": [float(v) for v in plot_box], "extent": [float(v) for v in extent]}


def _numbers(values: np.ndarray, scale: float | None = None) -> list[float]:
    """Finite values rounded to DECIMALS significant digits (short JSON).

    With ``scale`` (a coordinate's axis span) every value keeps the same absolute precision;
    without it each keeps its own significant digits (losses spanning decades).  Dividing a
    whole number by a power of ten gives floats whose JSON is as short as the digits kept.
    """
    v = np.nan_to_num(np.asarray(values, dtype=float), posinf=1e300, neginf=-1e300)
    magnitude = np.abs(v) if scale is None else np.full_like(v, scale)
    exponent = np.floor(np.log10(np.where(magnitude > 0, magnitude, 1.0))).astype(int) - (DECIMALS - 1)
    small = exponent < 0
    rounded = np.where(small, np.round(v * 10.0 ** np.where(small, -exponent, 0)) / 10.0 ** np.where(small, -exponent, 0),
                       np.round(v / 10.0 ** np.where(small, 0, exponent)) * 10.0 ** np.where(small, 0, exponent))
    return rounded.tolist()


def path(name: str, color: str, points: np.ndarray, *, extent: Sequence[float], loss: np.ndarray | None = None,
         style: str = "average", live: np.ndarray | None = None, switches: Iterable[int] = (),
         diverged: bool = False, live_loss: np.ndarray | None = None) -> dict[str, Any]:
    """One ``"paths"`` entry; ``points`` and ``live`` are (n, 2) arrays in data coordinates."""
    span = max(extent[1] - extent[0], extent[3] - extent[2])
    entry = {"name": name, "color": color, "x": _numbers(points[:, 0], span), "y": _numbers(points[:, 1], span),
             "loss": None, "style": style, "live": None, "switches": [int(k) for k in switches],
             "diverged": bool(diverged)}
    if loss is not None:
        entry["loss"] = _numbers(loss)
    if live is not None:
        entry["live"] = {"x": _numbers(live[:, 0], span), "y": _numbers(live[:, 1], span),
                         "loss": None if live_loss is None else _numbers(live_loss)}
    return entry


def _finite_point(value: Any) -> tuple[float, float] | None:
    """A clicked point from the browser, or None when it is not two finite numbers."""
    if not isinstance(value, Mapping):
        return None
    try:
        x, y = float(value["x"]), float(value["y"])
    except (KeyError, TypeError, ValueError):
        return None
    return (x, y) if math.isfinite(x) and math.isfinite(y) else None


def path_player(data: Mapping[str, Any], *, key: str, on_start: Callable[[float, float], None] | None = None,
                on_speed: Callable[[float], None] | None = None, height: int | str = "content"):
    """Mount the player with ``data`` (the shape above).

    ``on_start(x, y)`` runs (before the rerun, like a widget callback) when the surface is
    clicked; ``on_speed(steps_per_second)`` when the speed menu changes.  Values from the
    browser that are not finite numbers are ignored.
    """
    def started() -> None:
        point = _finite_point(st.session_state[key].get("start"))
        if point is not None and on_start is not None:
            on_start(*point)

    def sped() -> None:
        try:
            speed = float(st.session_state[key].get("speed"))
        except (TypeError, ValueError):
            return
        if math.isfinite(speed) and speed > 0 and on_speed is not None:
            on_speed(speed)

    return _mount(key=key, data=dict(data), on_start_change=started, on_speed_change=sped, height=height)
