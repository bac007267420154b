"""Figure builders (altair and matplotlib) shared by the app's pages and the notebooks.

One module per topic (several pages were built side by side), all reachable from here::

    from sema_demo import charts
    charts.walk_figure(walk)                 # Home (matplotlib)
    charts.playground.loss_chart(sim)        # the optimizer playground
    charts.training.learning_curves(history) # toy and image pages
    charts.boundaries.boundary_panels(...)   # decision boundaries
    charts.images.prediction_grid(...)       # image predictions
    charts.landscape.contour_figure(...)     # loss-landscape slices
    charts.theory.loss_chart(curves)         # the noisy quadratic model
    charts.claims.effects_chart(report)      # the scoreboard (and the measured map)
    charts.offline_charts()                  # notebooks: altair charts as inline SVG, no network
"""
from . import boundaries, claims, images, landscape, playground, style, theory, training, walk
from .notebook import offline_charts
from .style import METHOD_COLORS, METHOD_NAMES, method_scale
from .walk import loss_band_figure, walk_figure, walk_frame

__all__ = ["boundaries", "claims", "images", "landscape", "playground", "style", "theory", "training", "walk",
           "METHOD_COLORS", "METHOD_NAMES", "method_scale", "offline_charts", "walk_figure", "loss_band_figure",
           "walk_frame"]
