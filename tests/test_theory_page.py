"""The theory page through Streamlit's AppTest: renders, presets, bad input, URL state."""

import pytest
from streamlit.testing.v1 import AppTest

from conftest import PAGES_DIR

from sema_demo.theory import exact_curves
from sema_demo.ui.theory import PRESETS, TABS, model_from_values

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


# ------------------------------------------------------------------ every preset's text against its numbers

def metrics(at: AppTest) -> dict[str, float]:
    return {m.label.split(",")[0]: float(m.value) if m.value != "diverged" else float("nan") for m in at.metric}


def theory_caption(at: AppTest) -> str:
    return " ".join(c.value for c in at.caption if "Theory map at this setting" in c.value)


@pytest.mark.parametrize("preset", [p for p in PRESETS if p != "💥 Unstable lr"])
def test_every_preset_states_what_its_metrics_say(preset):
    import re

    at = run_page(nqm_samples="20")
    at.button(key=f"preset::{preset}").click().run()
    assert not at.exception
    f = metrics(at)
    text = notice(at)
    ratio = f["SEMA φ"] / f["EMA φ"]
    for name in ("SGD θ", "EMA φ", "SEMA φ"):
        assert f"**{name.split()[0]} {f[name]:.3g}**" in text, name        # the notice quotes the metrics
    if ratio < 0.95:
        stated = float(re.search(r"SEMA ends \*\*([\d.]+)× lower than EMA", text).group(1))
        assert stated == pytest.approx(1 / ratio, rel=0.05)
        verdict = "helps"
    elif ratio > 1.05:
        assert "SEMA does not help" in text
        verdict = "hurts"
    else:
        assert "within 5 %" in text
        verdict = "ties"
    assert f"SEMA **{verdict}**" in theory_caption(at), "the map's verdict agrees with the metrics beside it"
    cfg = model_from_values(at.session_state)
    sgd = "constant-rate SGD" if cfg.schedule == "constant" else "SGD (same cosine schedule)"
    if f["SEMA φ"] < f["SGD θ"] and ratio < 0.95:
        assert f"lower than {sgd}" in text
    assert ("noise floor" in text) == (cfg.schedule == "constant")
    assert f"step {cfg.steps:,}" in text and ("a switch step" in text) == (cfg.steps % cfg.switch_every == 0)


def test_the_old_horizon_rule_no_longer_fires_where_sema_helps():
    at = run_page(nqm_samples="0", nqm_alpha="0.99", nqm_switch="20")
    assert not at.exception
    f = metrics(at)
    assert f["SEMA φ"] < 0.7 * f["EMA φ"]
    assert "SEMA **helps**" in theory_caption(at) and "much longer than the switch interval" not in theory_caption(at)


def test_schedule_is_in_the_link_and_the_map_says_it_is_constant_rate():
    at = run_page(**FAST, nqm_schedule="cosine")
    assert not at.exception
    assert at.selectbox(key="nqm_schedule").value == "cosine"
    assert "SGD (same cosine schedule)" in notice(at) or "SGD anneals" in notice(at)
    assert any("constant learning rate" in c.value for c in at.caption)
    assert any("No steady state" in c.value for c in at.caption)
    bad = run_page(**FAST, nqm_schedule="<b>linear</b>")
    assert not bad.exception and bad.selectbox(key="nqm_schedule").value == "constant"
    assert "could not be used" in bad.warning[0].value


def test_a_log_step_axis_keeps_the_first_steps_of_a_long_run():
    import numpy as np

    from sema_demo.charts.theory import FIRST_STEPS, loss_chart, series_frame
    from sema_demo.theory import NQM, SERIES

    values = {s: np.linspace(1.0, 0.1, 10_001) for s in SERIES}
    shown = set(series_frame(values, log_steps=True)["step"])
    assert set(range(1, FIRST_STEPS + 1)) <= shown and 10_000 in shown
    assert 1 not in set(series_frame(values)["step"]), "even thinning alone would lose the first steps"
    chart = loss_chart(exact_curves(NQM(steps=10_000, dim=5)), log_steps=True).to_dict()
    data = next(iter(chart["datasets"].values()))
    assert min(row["step"] for row in data) == 1


def test_the_open_tab_round_trips_through_the_link():
    at = run_page(**FAST)
    assert at.session_state["nqm_tab_open"] == TABS["parts"] and "nqm_tab" not in at.query_params
    at.session_state["nqm_tab_open"] = TABS["map"]                  # a click on the map tab
    at.run()
    assert not at.exception and at.query_params["nqm_tab"] == "map"
    again = run_page(**dict(at.query_params))                         # the shared link opens the map tab
    assert not again.exception and again.session_state["nqm_tab_open"] == TABS["map"]
