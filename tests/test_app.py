"""The app frame and the Home page, through Streamlit's AppTest."""
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from sema_demo.walk import noisy_walk

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def run_app(**query):
    at = AppTest.from_file(APP, default_timeout=60)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def test_app_renders_home_without_exceptions():
    at = run_app()
    assert not at.exception
    assert "SEMA Lab" in at.title[0].value
    assert at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart"), "the walk chart is drawn"
    assert any("What to notice" in i.value for i in at.info)


def test_home_presets_set_the_controls():
    at = run_app()
    at.button(key="preset::EMA lags").click().run()
    assert not at.exception
    assert at.select_slider(key="home_alpha").value == 0.995
    assert at.slider(key="home_epoch").value == 300


def test_home_reads_valid_and_survives_hostile_query_parameters():
    at = run_app(home_alpha="0.99", home_epoch="100")
    assert at.select_slider(key="home_alpha").value == 0.99
    assert at.slider(key="home_epoch").value == 100
    at = run_app(home_alpha="<script>alert(1)</script>", home_epoch="1e9", home_noise="nan", home_seed="x" * 500)
    assert not at.exception
    assert at.select_slider(key="home_alpha").value == 0.98     # defaults back
    assert at.slider(key="home_epoch").value == 300             # clamped to the maximum
    warning = " ".join(w.value for w in at.warning)
    assert "could not be used" in warning and "home_epoch" in warning


def test_noisy_walk_switches_at_epoch_ends_and_sema_jumps_to_its_average():
    walk = noisy_walk(steps=120, momentum=0.9, steps_per_epoch=40, seed=3)
    assert walk.switch_steps.tolist() == [40, 80, 120]
    for s in walk.switch_steps:
        assert walk.sema_theta[s] == walk.sema_phi[s]
    assert walk.sgd[40] != walk.sema_theta[40]                 # the jump
    # before the first switch, SEMA's θ is exactly SGD's θ and its φ is exactly EMA's φ
    assert np.array_equal(walk.sgd[:40], walk.sema_theta[:40])
    assert np.array_equal(walk.ema[:41], walk.sema_phi[:41])
