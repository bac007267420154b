"""The Flatness-vs-sharpness page through Streamlit's AppTest, with tiny settings."""

import numpy as np
import torch
from streamlit.testing.v1 import AppTest

from conftest import PAGES_DIR

from sema_demo.charts.landscape import colour_range, contour_figure

from sema_demo.datasets.toy import toy_data
from sema_demo.models import count_parameters, mlp, small_cnn
from sema_demo.training import Data, TrainConfig
from sema_demo.ui.runs import TrainedRun

PAGE = str(PAGES_DIR / "landscape.py")
TINY = {"steps": "11", "points": "200", "hutchinson": "8"}   # small but real measurements


def run_page(session=None, **query):
    at = AppTest.from_file(PAGE, default_timeout=240)
    for key, value in {**TINY, **query}.items():
        at.query_params[key] = value
    for key, value in (session or {}).items():
        at.session_state[key] = value
    return at.run()


def test_page_opens_with_the_quick_default_trained_and_measured():
    at = run_page()
    assert not at.exception
    assert "Flatness vs sharpness" in at.title[0].value
    assert at.selectbox(key="landscape_run").value.startswith("Quick default")
    table = at.dataframe[0].value
    assert list(table["Method"]) == ["SGD", "EMA", "SEMA"] and (table["Seeds"] == 3).all()
    assert all("±" in cell for cell in table["λ_max (top Hessian eigenvalue)"])
    notice = next(i.value for i in at.info if "What to notice" in i.value)
    assert "**EMA** vs SGD" in notice and "**SEMA** vs SGD" in notice and "Path." in notice
    assert len(at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")) == 2   # 1-D slices and the path
    assert at.get("image"), "the 2-D contours are drawn"
    labels = [b.label for b in at.get("download_button")]
    assert "⬇ PNG" in labels and "⬇ SVG" in labels and any("CSV" in label for label in labels)

    at.button(key="preset::Close-up (±0.25)").click().run()
    assert not at.exception
    assert at.select_slider(key="span").value == 0.25 and at.select_slider(key="rise").value == 0.02
    assert any("±0.25" in c.value for c in at.caption)


def test_diverged_and_overflowing_networks_give_notices_not_a_crash():
    torch.manual_seed(0)
    fine, huge, broken = mlp(2, (8,), 2), mlp(2, (8,), 2), mlp(2, (8,), 2)
    with torch.no_grad():
        for p in huge.parameters():
            p.mul_(1e4)                       # its slices overflow the colour scale
        next(broken.parameters()).fill_(float("nan"))
    run = TrainedRun("Hand-made run", "test", toy_data("moons", n=200, seed=0), lambda: mlp(2, (8,), 2),
                     TrainConfig(methods=("sgd", "ema", "sema")),
                     {("sgd", 0): fine, ("sema", 0): huge, ("ema", 0): broken})
    at = run_page({"trained_runs": {run.label: run}}, start="sgd", end="ema")
    assert not at.exception
    warnings = " ".join(w.value for w in at.warning)
    assert "not finite" in warnings and "EMA seed 0" in warnings
    assert any("Clipped colour scale" in c.value and "SEMA" in c.value for c in at.caption)
    assert list(at.dataframe[0].value["Method"]) == ["SGD", "SEMA"]
    assert any("straight path" in i.value for i in at.info), "EMA is missing, so the path asks for two methods"


def test_a_batchnorm_image_run_from_another_page_is_measured():
    x, y = torch.randn(40, 1, 8, 8), torch.arange(40) % 3
    models = {}
    for method in ("sgd", "sema"):
        for seed in (0, 1):
            torch.manual_seed(seed)
            model = small_cnn(1, 3, width=4)
            model(x * (2 if method == "sema" else 1))       # different BatchNorm running statistics
            models[(method, seed)] = model.eval()
    run = TrainedRun("Digits · CNN", "images", Data(x, y, x[:8], y[:8], 3), lambda: small_cnn(1, 3, width=4),
                     TrainConfig(methods=("sgd", "sema"), seeds=(0, 1)), models)
    at = run_page({"trained_runs": {run.label: run}})
    assert not at.exception
    assert list(at.dataframe[0].value["Method"]) == ["SGD", "SEMA"]
    assert len(at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")) == 2

    at.button(key="landscape_retrain").click().run()       # one click: the quick default, selected
    assert not at.exception
    assert at.selectbox(key="landscape_run").value.startswith("Quick default")
    assert list(at.dataframe[0].value["Method"]) == ["SGD", "EMA", "SEMA"]


def test_a_large_network_waits_for_a_click_before_measuring():
    big = {("sgd", 0): mlp(2, (256, 256), 2), ("ema", 0): mlp(2, (256, 256), 2)}
    run = TrainedRun("Big MLP", "toy", toy_data("moons", n=50, seed=0), lambda: mlp(2, (256, 256), 2),
                     TrainConfig(methods=("sgd", "ema")), big)
    at = run_page({"trained_runs": {run.label: run}}, steps="11")
    assert not at.exception and not at.dataframe
    assert any(f"{count_parameters(big[('sgd', 0)]):,} parameters" in i.value for i in at.info)
    at.button(key="landscape_measure").click().run()
    assert not at.exception
    assert list(at.dataframe[0].value["Method"]) == ["SGD", "EMA"]


def test_hostile_query_values_fall_back_with_a_notice():
    at = run_page(span="1e9", dir_seed="-5", start="<b>x</b>")
    assert not at.exception
    assert at.select_slider(key="span").value == 1.0 and at.number_input(key="dir_seed").value == 0
    assert at.selectbox(key="start").value == "sgd"
    assert "could not be used" in " ".join(w.value for w in at.warning)


def test_one_colour_scale_clips_overflowing_and_non_finite_points():
    calm = np.full((5, 5), 0.2)
    wild = np.full((5, 5), 0.3)
    wild[0, :3] = [np.inf, np.nan, 1e30]
    lowest, top, clipped = colour_range({"sgd": calm, "sema": wild}, clip=5.0)
    assert (lowest, top) == (0.2, 5.0) and clipped == {"sgd": 0, "sema": 3}
    fig = contour_figure({"sgd": calm, "sema": wild}, np.linspace(-1, 1, 5), clip=5.0)
    assert len(fig.axes) == 3          # two panels and one shared colour bar
