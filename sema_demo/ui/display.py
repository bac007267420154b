"""The shared frame's two settings every page reads: projector mode and the live speed.

Both live in the URL (``?projector=true&live_speed=2``) so a lecturer's prepared link opens in
the same mode.  ``app.py`` calls :func:`frame_controls` once in the sidebar; pages then ask

    display.projector()            # True in projector mode
    display.height(260)            # a chart height, larger on a projector
    display.altair(chart)          # st.altair_chart with projector fonts applied
    display.epochs_per_second()    # the live-training speed (None: as fast as it trains)

A page run on its own (AppTest of one page file) sees the defaults: projector off and the
default speed, exactly as before this module existed.
"""
from __future__ import annotations

from typing import Any

import streamlit as st
from streamlit.components.v2 import component

from sema_demo.ui.common import FRAME_PARAMS, Param, bind_url

# Live-training speed in epochs per second; 0 means "as fast as the machine trains".
SPEED_CHOICES = (0.5, 1.0, 2.0, 5.0, 10.0, 0.0)
FRAME_PARAMS.update({
    "projector": Param(False),
    "live_speed": Param(2.0, choices=SPEED_CHOICES),
})

PROJECTOR_SCALE = 1.6        # chart heights on a projector
PROJECTOR_FONT = {"label": 17, "title": 19, "legend": 17, "header": 20}
PROJECTOR_FONT_SCALE = 1.45  # matplotlib font sizes on a projector


def projector() -> bool:
    """Whether projector mode is on (larger fonts and charts for the back row)."""
    return bool(st.session_state.get("projector", False))


def height(base: int) -> int:
    """A chart height in pixels: ``base`` normally, larger in projector mode."""
    return round(base * PROJECTOR_SCALE) if projector() else base


def font_scale() -> float:
    """A factor for matplotlib font sizes and figure text (1 normally)."""
    return PROJECTOR_FONT_SCALE if projector() else 1.0


def epochs_per_second() -> float | None:
    """The live-training speed the user chose; None means as fast as training goes."""
    speed = float(st.session_state.get("live_speed", FRAME_PARAMS["live_speed"].default))
    return speed if speed > 0 else None


def format_speed(speed: float) -> str:
    return "as fast as it trains" if speed == 0 else f"{speed:g} epochs/s"


def styled(chart: Any, on: bool | None = None) -> Any:
    """An Altair chart with projector-sized fonts (unchanged when projector mode is off).

    ``on`` overrides the session's projector mode (for a cached chart, whose cache key holds it)."""
    if not (projector() if on is None else on):
        return chart
    f = PROJECTOR_FONT
    return (chart.configure_axis(labelFontSize=f["label"], titleFontSize=f["title"])
            .configure_legend(labelFontSize=f["legend"], titleFontSize=f["title"], symbolSize=160)
            .configure_title(fontSize=f["header"])
            .configure_header(labelFontSize=f["label"], titleFontSize=f["title"])
            .configure_text(fontSize=f["label"]))


def altair(chart: Any, container=st, **kwargs) -> Any:
    """``st.altair_chart(chart, width="stretch")`` with projector fonts applied."""
    kwargs.setdefault("width", "stretch")
    return container.altair_chart(styled(chart), **kwargs)


_CSS = """
/* projector mode: everything a student reads from the back row is larger */
html, body, [data-testid="stAppViewContainer"] { font-size: 20px; }
[data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li,
[data-testid="stCaptionContainer"], [data-testid="stWidgetLabel"] p,
[data-testid="stMetricLabel"] p { font-size: 1.15rem !important; }
[data-testid="stMetricValue"] { font-size: 2.4rem !important; }
[data-testid="stTable"] td, [data-testid="stTable"] th { font-size: 1.1rem !important; }
/* button and navigation labels wrap instead of ending in "…" */
[data-testid^="stBaseButton"] p {
  white-space: normal !important; overflow: visible !important; text-overflow: clip !important; }
"""
# A components-v2 element with only a fixed stylesheet, not isolated in a shadow root, so its
# rules reach the page: no raw HTML, nothing fetched, no user text in it.
_projector_style = component("sema_demo.projector_style", css=_CSS, isolate_styles=False)


def frame_controls() -> None:
    """The sidebar's shared settings: projector mode and the live speed (called by app.py)."""
    bind_url(FRAME_PARAMS)
    with st.sidebar:
        st.toggle("📽 Projector mode", key="projector",
                  help="Larger fonts and charts, for a lecture hall. Kept in the page's link.")
        st.select_slider("Live speed", options=list(SPEED_CHOICES), key="live_speed", format_func=format_speed,
                         help="How many epochs a live training run shows per second, and how fast the "
                              "playground's animation starts. Slower: time to point at what happens.")
    if projector():
        _projector_style(key="sema_projector_style")
