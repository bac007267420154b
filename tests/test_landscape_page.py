"""The Flatness-vs-sharpness page through Streamlit's AppTest, with tiny settings."""

import re

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from conftest import PAGES_DIR

from sema_demo.charts.landscape import colour_range, contour_figure
from sema_demo.flatness import claim_holds, saturated_share, tradeoff

from sema_demo.datasets.toy import toy_data
from sema_demo.models import mlp, small_cnn
from sema_demo.training import Data, TrainConfig
from sema_demo.ui import landscape as ui
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


@pytest.fixture(autouse=True)
def measure_at_once(monkeypatch):
    """Tests see the page measure at once, however loaded the machine (the click is tested on its own)."""
    monkeypatch.setattr(ui, "AUTO_SECONDS", 1e9)


def measures(at: AppTest):
    """The measures table: one row per measure, one column per method."""
    return at.dataframe[0].value.set_index("Measure")


def methods(at: AppTest) -> list[str]:
    return list(measures(at))


def test_page_opens_with_the_quick_default_trained_and_measured():
    at = run_page()
    assert not at.exception
    assert "Flatness vs sharpness" in at.title[0].value
    assert at.selectbox(key="landscape_run").value.startswith("Quick default")
    table = measures(at)
    assert list(table) == ["SGD", "EMA", "SEMA"] and (table.loc["Seeds"] == "3").all()
    assert all("±" in cell for cell in table.loc["λ_max (top Hessian eigenvalue)"])
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
    at = run_page({"trained_runs": {run.label: run}}, start="sgd", end="ema", clip="5.0")
    assert not at.exception
    warnings = " ".join(w.value for w in at.warning)
    assert "not finite" in warnings and "EMA seed 0" in warnings
    assert any("Colour scale top 5 (clip 5)" in c.value and "points of SEMA" in c.value for c in at.caption)
    assert methods(at) == ["SGD", "SEMA"]
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
    assert methods(at) == ["SGD", "SEMA"]
    assert len(at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")) == 2

    at.button(key="landscape_retrain").click().run()       # one click: the quick default, selected
    assert not at.exception
    assert at.selectbox(key="landscape_run").value.startswith("Quick default")
    assert methods(at) == ["SGD", "EMA", "SEMA"]


def test_a_measurement_estimated_above_the_limit_waits_for_a_click_with_its_estimate(monkeypatch):
    monkeypatch.setattr(ui, "AUTO_SECONDS", 1e-9)   # every estimate is above it: this machine's speed does not matter
    big = {("sgd", 0): mlp(2, (256, 256), 2), ("ema", 0): mlp(2, (256, 256), 2)}
    run = TrainedRun("Big MLP", "toy", toy_data("moons", n=50, seed=0), lambda: mlp(2, (256, 256), 2),
                     TrainConfig(methods=("sgd", "ema")), big)
    at = run_page({"trained_runs": {run.label: run}}, steps="11")
    assert not at.exception and not at.dataframe
    notice = next(i.value for i in at.info if "takes" in i.value)
    assert re.search(r"takes \*\*about \d+ (s|min)\*\*", notice) and "passes over 200 training examples" in notice
    assert re.fullmatch(r"📐 Measure this run \(about \d+ (s|min)\)", at.button(key="landscape_measure").label)
    assert not at.get("bidi_component"), "the paths panel waits too"
    at.button(key="landscape_measure").click().run()
    assert not at.exception
    assert methods(at) == ["SGD", "EMA"]


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
    lowest, top, clipped = colour_range({"sgd": calm, "sema": wild}, clip=None)    # auto: the 95th percentile
    assert top == pytest.approx(0.3) and clipped == {"sgd": 0, "sema": 3}      # the 1e30 outlier is cut too
    fig = contour_figure({"sgd": calm, "sema": wild}, np.linspace(-1, 1, 5), clip=5.0)
    assert len(fig.axes) == 3          # two panels and one shared colour bar


def claim_box(at: AppTest) -> str:
    return next(e.value for kind in ("success", "warning", "info") for e in getattr(at, kind)
                if "The paper's claim" in e.value)


@pytest.mark.parametrize("preset, seeds", [("🧪 Quick default run", 3), ("📄 Paper's regime run", 5)])
def test_each_run_presets_claim_box_agrees_with_its_numbers_and_few_points_saturate(preset, seeds):
    at = run_page()
    at.button(key=f"preset::{preset}").click().run()
    assert not at.exception
    label = at.selectbox(key="landscape_run").value
    assert label == ui.QUICK_RUNS[at.session_state["quick"]][0]
    run = at.session_state["trained_runs"][label]
    if preset.startswith("📄"):            # the paper's regime: longer, horizon ≈ one epoch, warm-up
        config = run.config
        assert config.epochs >= 100 and config.ema_warmup == "linear"
        assert round(1 / (1 - config.ema_momentum)) == run.paths.steps_per_epoch
    box, table = claim_box(at), measures(at)
    assert "better trade-off between flatness and sharpness" in box and "deepest and the flattest" in box
    assert f"seeds {', '.join(str(s) for s in range(seeds))}" in box and (table.loc["Seeds"] == str(seeds)).all()
    comparison = next(v for k, v in at.session_state["landscape::measured"].items() if k[0] == label).comparison
    rows = comparison.rows
    # every number the box quotes is the table's mean, and each verdict is the paired rule's
    for rival, rival_name in (("sgd", "SGD"), ("ema", "EMA")):
        line = re.search(rf"\*\*SEMA vs {rival_name}\*\* \((\d+) paired seeds\): ([^.]*)\. training loss "
                         rf"([\d.]+) vs ([\d.]+).*?λ_max ([\d.]+) vs ([\d.]+)", box)
        assert line, box
        assert int(line.group(1)) == seeds
        assert float(line.group(3)) == pytest.approx(float(table.loc["Depth (loss)", "SEMA"].split(" ± ")[0]), rel=2e-3)
        assert float(line.group(4)) == pytest.approx(float(table.loc["Depth (loss)", rival_name].split(" ± ")[0]),
                                                     rel=2e-3)
        assert float(line.group(5)) == pytest.approx(
            float(table.loc["λ_max (top Hessian eigenvalue)", "SEMA"].split(" ± ")[0]), rel=2e-3)
        outcome = next(r.outcome for r in tradeoff(rows) if r.rival == rival)
        expected = {"better": "a better trade-off", "worse": "a worse trade-off", "different": "a different trade-off",
                    "same": "no measurable difference", "too few": "too few seeds to tell"}[outcome]
        assert line.group(2).startswith(expected)
    assert ui.VERDICTS[claim_holds(rows)] in box
    if seeds < 5:
        assert claim_holds(rows) == "too few" and "significant" not in box
    # the default colour clip: fewer than 10 % of every 2-D panel's points in the saturated top colour
    grids = comparison.grids
    _, top, _ = colour_range(grids, at.session_state["clip"])
    assert at.session_state["clip"] == 0.0 and max(saturated_share(grids, top).values()) < 0.10
    assert any(f"Colour scale top {top:.3g} (auto" in c.value for c in at.caption)


def test_other_directions_moves_to_the_next_seed_and_default_view_resets_it():
    at = run_page()
    for expected in (1, 2):
        at.button(key="preset::Other directions").click().run()
        assert not at.exception and at.number_input(key="dir_seed").value == expected
    assert at.query_params["dir_seed"] == "2"
    at.button(key="preset::Default view (±1)").click().run()
    assert not at.exception and at.number_input(key="dir_seed").value == 0 and "dir_seed" not in at.query_params


def test_the_time_estimate_counts_every_pass_of_every_network():
    run = TrainedRun("Two MLPs", "toy", toy_data("moons", n=100, seed=0), lambda: mlp(2, (8,), 2),
                     TrainConfig(methods=("sgd", "ema")), {("sgd", 0): mlp(2, (8,), 2), ("ema", 0): mlp(2, (8,), 2)})
    small, large = ui.SharpnessSettings(steps_2d=11), ui.SharpnessSettings(steps_2d=41)
    assert ui.network_passes(run, large) - ui.network_passes(run, small) == 2 * (41 ** 2 - 11 ** 2)
    assert 0 < ui.estimate_seconds(run, small, 80) < 60
    assert ui.format_seconds(0.2) == "about 1 s" and ui.format_seconds(30.4) == "about 30 s"
    assert ui.format_seconds(600) == "about 10 min"
