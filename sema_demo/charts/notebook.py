"""Charts in a notebook with no network: every altair chart drawn as an inline SVG picture.

Altair's default notebook output is HTML that loads Vega, Vega-Lite and vega-embed from
a CDN, so in a lecture hall without a network every chart is blank.  Its "mimetype"
output does not help either: Altair 6 writes Vega-Lite v6, and JupyterLab 4 draws only
up to v5 itself.  vl-convert (the ``notebooks`` extra) renders the chart inside the
kernel, so JupyterLab, VS Code and a static viewer all show the same picture.  The
charts of ``sema_demo.charts`` have no interactive selections; a picture loses only
their tooltips.
"""
from __future__ import annotations

import altair as alt


def offline_charts() -> None:
    """Draw every altair chart of this kernel as inline SVG (call it once, in a notebook's import cell)."""
    try:
        import vl_convert  # noqa: F401  (altair renders SVG with it)
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError("offline charts need vl-convert: pip install -e '.[notebooks]'") from err
    alt.renderers.enable("svg")
