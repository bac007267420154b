"""The boundary view: decision-boundary panels painted by the browser from numbers.

A Streamlit components-v2 element (inline HTML, CSS and JavaScript from the files beside
this module: no iframe, no build step, nothing fetched from the network).  Each rerun, and
each tick of a live run, sends the probability grids (one byte per class and grid point) and
the points, built by :func:`sema_demo.charts.boundaries.boundary_view_data`; the browser
paints the same picture ``boundary_panels`` draws with matplotlib for the downloads.  A live
run's server then draws no picture at all: a tick costs it about a millisecond of encoding
instead of a matplotlib figure (``benchmarks/load_classroom.py`` measures what a classroom
gains).

    boundary_view(boundary_view_data(grids, data, extent, titles=..., notes=...), key="toy::boundaries")
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from streamlit.components.v2 import component

HERE = Path(__file__).parent
NAME = "sema_demo.boundary_view"

_mount = component(
    NAME,
    html=(HERE / "view.html").read_text(encoding="utf-8"),
    css=(HERE / "view.css").read_text(encoding="utf-8"),
    js=(HERE / "view.js").read_text(encoding="utf-8"),
)


def boundary_view(data: Mapping[str, Any], *, key: str, height: int | str = "content"):
    """Mount the view with ``data`` under a fixed ``key`` (it then repaints in place each rerun)."""
    return _mount(key=key, data=dict(data), height=height)
