"""The decision panels as data for the browser (charts.boundaries.boundary_view_data): what a
live toy run sends each tick instead of a picture."""
import base64
import json

import numpy as np
import torch

from sema_demo.charts.boundaries import CLASS_COLORS, MAX_POINTS, boundary_view_data
from sema_demo.datasets.toy import toy_data
from sema_demo.training import Data

EXTENT = (-2.0, 3.0, -1.5, 2.0)


def probabilities(rows=60, cols=50, classes=3, seed=0):
    raw = np.random.default_rng(seed).random((rows, cols, classes))
    return raw / raw.sum(-1, keepdims=True)


def decoded(grid):
    values = np.frombuffer(base64.b64decode(grid["bytes"]), dtype=np.uint8)
    return values.reshape(grid["rows"], grid["cols"], grid["classes"]) / 255


def test_the_grids_travel_as_bytes_within_half_a_level_rows_from_the_lowest_y():
    data = toy_data("blobs", 200, 0.3, 0.2)
    probs = probabilities(classes=data.n_classes)
    view = boundary_view_data({"sgd": probs, "sema": None}, data, EXTENT, titles={"sgd": "test accuracy 91.0%"},
                              notes={"sema": "diverged at epoch 4"})
    sgd, sema = view["panels"]
    assert (sgd["method"], sema["method"]) == ("sgd", "sema")
    assert np.abs(decoded(sgd["grid"]) - probs).max() <= 0.5 / 255 + 1e-12
    assert list(decoded(sgd["grid"])[0, 0]) == list(np.round(probs[0, 0] * 255) / 255)   # row 0: the grid's first
    assert sema["grid"] is None and sema["note"] == "diverged at epoch 4" and sgd["note"] is None
    assert sgd["title"] == "test accuracy 91.0%" and sema["title"] == ""
    assert view["class_colors"] == list(CLASS_COLORS[:data.n_classes])
    assert view["class_names"] == [f"class {k}" for k in range(data.n_classes)]
    assert view["extent"] == list(EXTENT)


def test_non_finite_probabilities_are_sent_as_zero_not_garbage():
    data = toy_data("moons", 100, 0.2, 0.2)
    probs = probabilities(classes=2)
    probs[3, 4] = [np.nan, np.inf]
    grid = decoded(boundary_view_data({"ema": probs}, data, EXTENT)["panels"][0]["grid"])
    assert list(grid[3, 4]) == [0.0, 1.0]             # nan -> 0, inf clipped to 1


def test_points_are_every_point_to_a_thousandth_of_the_axis_and_a_fixed_subset_beyond_the_limit():
    data = toy_data("moons", 500, 0.2, 0.2)
    view = boundary_view_data({"sgd": None}, data, EXTENT)
    train = view["points"]["train"]
    assert len(train["c"]) == len(data.y_train)
    assert np.abs(np.array(train["x"]) - data.x_train[:, 0].numpy()).max() <= 5e-3 * (EXTENT[1] - EXTENT[0])
    assert train["c"] == data.y_train.tolist()
    n = MAX_POINTS + 500
    big = Data(torch.randn(n, 2), torch.randint(0, 2, (n,)), torch.randn(10, 2), torch.randint(0, 2, (10,)),
               n_classes=2, name="big")
    first = boundary_view_data({"sgd": None}, big, EXTENT)["points"]["train"]
    assert len(first["c"]) == MAX_POINTS
    assert first == boundary_view_data({"sgd": None}, big, EXTENT)["points"]["train"]   # the same subset each tick


def test_a_tick_of_three_panels_is_tens_of_kilobytes_of_json():
    data = toy_data("moons", 800, 0.3, 0.2)
    probs = probabilities(classes=2)
    view = boundary_view_data({m: probs for m in ("sgd", "ema", "sema")}, data, EXTENT, font_scale=1.4)
    assert view["scale"] == 1.4
    assert len(json.dumps(view)) < 80_000                  # numbers, not a picture: JSON as the element sends it
