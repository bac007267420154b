"""One look for every figure: method colours and labels shared by pages and notebooks."""
from __future__ import annotations

# Colour-blind-safe (Okabe–Ito) colours, the same for a method on every page and notebook.
METHOD_COLORS = {
    "sgd": "#7f7f7f",        # grey: the plain optimizer
    "ema": "#0072B2",        # blue
    "sema": "#D55E00",       # vermilion: the star of the show
    "swa": "#009E73",        # green
    "lookahead": "#CC79A7",  # purple
}
METHOD_NAMES = {"sgd": "SGD", "ema": "EMA", "sema": "SEMA", "swa": "SWA", "lookahead": "Lookahead"}


def method_scale(methods=None):
    """An altair colour scale that maps method display names to their fixed colours."""
    import altair as alt

    keys = list(methods or METHOD_COLORS)
    return alt.Scale(domain=[METHOD_NAMES[m] for m in keys], range=[METHOD_COLORS[m] for m in keys])
