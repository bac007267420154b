"""The theory page through Streamlit's AppTest: renders, presets, bad input, URL state."""

import pytest
from streamlit.testing.v1 import AppTest

from conftest import PAGES_DIR

from sema_demo.theory import exact_curves
from sema_demo.ui.theory import PRESETS, model_from_values

PAGE = str(PAGES_DIR / "theory.py")
FAST = {"nqm_steps": "200", "nqm_samples": "20"}   # small runs keep the suite quick


def run_page(**query) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def notice(at: AppTest) -> str:
    return " ".join(i.value for i in at.info if "What to notice" in i.value)


def test_page_renders_charts_numbers_and_exports():
    at = run_page(**FAST)
    assert not at.exception
    assert "noisy quadratic" in at.title[0].value
    assert len(at.get("vega_lite_chart")) == 4          # loss, bias part, variance part, the map
    assert [m.label for m in at.metric] == ["SGD θ, final", "EMA φ, final", "SEMA φ, final", "SEMA θ, final"]
    assert "After 200 steps the expected loss is" in notice(at)
    assert at.get("download_button"), "the curves can be exported as CSV"
    assert not at.error


@pytest.mark.parametrize("preset, words", [
    ("✅ SEMA helps", "lower than EMA"),
    ("🟰 SEMA = EMA", "within 5 %"),
    ("❌ SEMA hurts", "SEMA does not help"),
])
def test_presets_set_the_controls_and_the_notice_follows_the_numbers(preset, words):
    at = run_page(nqm_samples="20", nqm_lr="2.0")
    at.button(key=f"preset::{preset}").click().run()
    assert not at.exception
    for key, value in PRESETS[preset].items():
        assert at.session_state[key] == value
    assert words in notice(at)


@pytest.mark.parametrize("preset, check", [
    ("✅ SEMA helps", lambda f: f["sema"] < f["ema"] / 1.5 and f["sema"] < f["sgd"] / 5),
    ("🟰 SEMA = EMA", lambda f: abs(f["sema"] / f["ema"] - 1) < 0.01),
    ("❌ SEMA hurts", lambda f: f["sema"] > 3 * max(f["ema"], f["sgd"])),
])
def test_preset_help_texts_tell_the_truth(preset, check):
    curves = exact_curves(model_from_values(PRESETS[preset]))
    assert check({s: curves.total(s)[-1] for s in ("sgd", "ema", "sema")})


def test_unstable_learning_rate_says_so_and_shows_the_growth():
    at = run_page(nqm_samples="20")
    at.button(key="preset::💥 Unstable lr").click().run()
    assert not at.exception
    assert at.error and "unstable: loss grows" in at.error[0].value
    assert "diverged" in [m.value for m in at.metric]
    assert "Nothing converges" in notice(at)
    assert len(at.get("vega_lite_chart")) == 4          # the map of a diverging model draws too (cells n/a)


def test_url_state_is_read_and_hostile_values_fall_back():
    at = run_page(**FAST, nqm_lr="1.0", nqm_switch="50", nqm_alpha="0.99", nqm_logx="true")
    assert not at.exception
    assert at.select_slider(key="nqm_lr").value == 1.0
    assert at.select_slider(key="nqm_switch").value == 50
    assert at.select_slider(key="nqm_alpha").value == 0.99
    assert at.toggle(key="nqm_logx").value is True
    at = run_page(**FAST, nqm_lr="1e308", nqm_dim="<b>", nqm_beta="7")
    assert not at.exception
    assert at.select_slider(key="nqm_lr").value == 0.5 and at.slider(key="nqm_beta").value == 0.99
    assert "could not be used" in at.warning[0].value


def test_alpha_zero_and_no_simulation():
    at = run_page(nqm_steps="200", nqm_samples="0", nqm_alpha="0.0")
    assert not at.exception
    assert "EMA and SEMA are SGD" in notice(at)
    assert "Dots" not in " ".join(c.value for c in at.caption)


def map_notice(at: AppTest) -> str:
    return " ".join(i.value for i in at.info if "cells, SEMA" in i.value)


def test_map_tab_shows_the_ratio_map_and_loads_a_cell_into_the_curves():
    from sema_demo.theory import default_map
    from sema_demo.ui.theory import map_base, map_size
    at = run_page(**FAST)
    assert not at.exception
    assert "SEMA ends lower than EMA" in map_notice(at) and "Best cell" in map_notice(at)
    assert any(b.label == "⬇ CSV of the map" for b in at.get("download_button"))
    cfg = model_from_values(at.session_state)
    grid = default_map(map_base(cfg), map_size(cfg))
    ratio, k = float(grid.horizon_ratios[20]), int(grid.switch_every[5])
    at.select_slider(key="nqm_map_ratio").set_value(ratio)
    at.select_slider(key="nqm_map_k").set_value(k)
    at.button(key="nqm_map_load").click().run()
    assert not at.exception
    assert at.session_state.nqm_switch == k and at.session_state.nqm_alpha == pytest.approx(1 - 1 / (ratio * k))
    # the curves above now show exactly that cell: the metric is the map's SEMA value
    shown = {m.label: m.value for m in at.metric}["SEMA φ, final"]
    assert float(shown) == pytest.approx(float(grid.final["sema"][20, 5]), rel=1e-2)
    assert at.query_params["nqm_switch"] == str(k)
    # the map can show the other comparisons; a link with a cell's α restores it
    at.radio(key="nqm_map_view").set_value("SEMA ÷ SGD, steps to the level").run()
    assert not at.exception and "sooner than SGD" in map_notice(at)
    again = run_page(**FAST, nqm_alpha=str(at.session_state.nqm_alpha), nqm_switch=str(k))
    assert not again.exception and again.select_slider(key="nqm_alpha").value == pytest.approx(at.session_state.nqm_alpha)
