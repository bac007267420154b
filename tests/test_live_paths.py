"""The live paths panel's chart (charts.live_paths): what a training run's paths panel sends each
tick, drawn by the browser instead of a matplotlib picture on the server."""
from functools import partial

import numpy as np
import pytest

from sema_demo.charts.live_paths import live_paths_spec
from sema_demo.charts.style import METHOD_NAMES
from sema_demo.datasets.toy import toy_data
from sema_demo.models import mlp
from sema_demo.paths import study_paths
from sema_demo.training import Trainer, TrainConfig


@pytest.fixture(scope="module")
def study():
    config = TrainConfig(methods=("sgd", "ema", "sema"), seeds=(0,), epochs=3, batch_size=20, lr=0.1,
                         ema_momentum=0.9, record_paths=True, device="cpu")
    trainer = Trainer(toy_data("moons", 200, 0.2), partial(mlp, 2, (8,), 2), config)
    for _ in range(2):                                   # still training: 2 of 3 epochs
        trainer.run_epoch()
    return study_paths(trainer.recorder, trainer.models(), 0, "solutions")


def test_every_projected_point_is_drawn_once_per_series_it_belongs_to(study):
    spec = live_paths_spec(study)
    data, frame = spec["datasets"], study.frame
    live = frame[frame.weights == "live"]
    # EMA's θ is SGD's θ: drawn once, as SGD's; SEMA's θ is its own
    assert len(data["lines"]) == len(live[live.method != "ema"])
    assert len(data["averages"]) == len(frame[frame.weights == "average"])
    sema = live[live.method == "sema"]
    assert len(data["jumps"]) == len(data["landings"]) == (sema.kind == "switch").sum() > 0
    assert [e["method"] for e in data["ends"]] == [METHOD_NAMES[p["method"]] for p in study.points]
    assert len(data["start"]) == 1
    span = spec["layer"][0]["encoding"]["x"]["scale"]["domain"]
    row = next(r for r in data["lines"] if r["series"] == "sgd:live" and r["step"] == 0)
    first = frame[(frame.method == "sgd") & (frame.weights == "live") & (frame.step == 0)].iloc[0]
    assert row["x"] == pytest.approx(first.x, abs=1e-3 * (span[1] - span[0]))


def test_the_plot_is_square_with_equal_scales_around_every_point(study):
    spec = live_paths_spec(study, size=300)
    assert spec["width"] == spec["height"] == 300
    x = spec["layer"][0]["encoding"]["x"]["scale"]["domain"]
    y = spec["layer"][0]["encoding"]["y"]["scale"]["domain"]
    assert x[1] - x[0] == pytest.approx(y[1] - y[0])            # equal scales: distances in the plane are true
    xs = np.concatenate([study.frame.x, [p["x"] for p in study.points]])
    ys = np.concatenate([study.frame.y, [p["y"] for p in study.points]])
    assert x[0] < xs.min() and xs.max() < x[1] and y[0] < ys.min() and ys.max() < y[1]


def test_projector_fonts_reach_axes_legend_and_labels(study):
    fonts = {"label": 17, "title": 19, "legend": 17, "header": 20}
    config = live_paths_spec(study, fonts=fonts)["config"]
    assert config["axis"] == {"labelFontSize": 17, "titleFontSize": 19}
    assert config["legend"]["labelFontSize"] == 17 and config["text"]["fontSize"] == 17
    assert "axis" not in live_paths_spec(study)["config"]
