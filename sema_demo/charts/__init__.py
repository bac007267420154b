"""Figure builders (altair and matplotlib) shared by the app's pages and the notebooks.

One module per topic keeps parallel work on different pages apart; everything is
re-exported here so callers write ``from sema_demo import charts; charts.walk_chart(...)``.
"""
from .style import METHOD_COLORS, METHOD_NAMES, method_scale
from .walk import walk_chart, walk_frame

__all__ = ["METHOD_COLORS", "METHOD_NAMES", "method_scale", "walk_chart", "walk_frame"]
