"""The app frame and the Home page, through Streamlit's AppTest."""
from pathlib import Path

from statistics import NormalDist

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from sema_demo.theory import exact_curves, regime
from sema_demo.ui.home import PARAMS, PRESETS, QUESTIONS, STEPS, comparisons, model_of
from sema_demo.walk import noisy_walk, noisy_walks, summarize_walks, walk_model

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
    pictures = at.get("image")
    assert len(pictures) == 2, "the walk and the loss band are drawn"
    for picture in pictures:        # pictures drawn on the server: no chart library in the browser
        assert picture.proto.imgs[0].url.startswith("data:image/webp;base64,")
    assert any("What to notice" in i.value for i in at.info)


def test_home_presets_set_the_controls():
    at = run_app()
    at.button(key="preset::⚠️ EMA lags").click().run()
    assert not at.exception
    for key, value in PRESETS["⚠️ EMA lags"].items():
        assert at.session_state[key] == value
    assert at.slider(key="home_epoch").value < STEPS, "the lag preset switches inside the run, not at its last step"


def test_home_reads_valid_and_survives_hostile_query_parameters():
    at = run_app(home_alpha="0.99", home_epoch="100")
    assert at.select_slider(key="home_alpha").value == 0.99
    assert at.slider(key="home_epoch").value == 100
    at = run_app(home_alpha="<script>alert(1)</script>", home_epoch="1e9", home_noise="nan", home_seed="x" * 500)
    assert not at.exception
    assert at.select_slider(key="home_alpha").value == PARAMS["home_alpha"].default     # defaults back
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


# ------------------------------------------------------------------ Home shows the payoff

def walks_of(values, seeds=50, seed=0):
    return noisy_walks(seeds, steps=STEPS, momentum=values["home_alpha"], steps_per_epoch=values["home_epoch"],
                       noise=values["home_noise"], seed=seed)


def test_many_seeds_at_once_are_the_single_seed_walks_and_match_the_exact_model():
    walks = noisy_walks(3, steps=120, momentum=0.9, steps_per_epoch=40, seed=5)
    for i in range(3):
        one = noisy_walk(steps=120, momentum=0.9, steps_per_epoch=40, seed=5 + i)
        for s in ("sgd", "ema", "sema_theta", "sema_phi"):
            np.testing.assert_array_equal(getattr(walks.run(i), s), getattr(one, s))
    # the mean over many seeds is the exact expected loss of the walk's own noisy quadratic
    many = noisy_walks(1500, steps=100, momentum=0.9, steps_per_epoch=20, noise=2.0)
    exact = exact_curves(walk_model(0.9, 20, 2.0, steps=100))
    z = NormalDist().inv_cdf(1 - 0.001 / (2 * 4 * 100))          # Bonferroni over steps and series
    for ours, theirs in (("sgd", "sgd"), ("ema", "ema"), ("sema_phi", "sema"), ("sema_theta", "sema_theta")):
        loss = many.loss(ours)[1:]
        stderr = loss.std(axis=1, ddof=1) / np.sqrt(loss.shape[1])
        assert np.all(np.abs(loss.mean(axis=1) - exact.total(theirs)[1:]) <= z * stderr), ours


def test_the_default_is_where_switching_helps_as_computed():
    defaults = {k: p.default for k, p in PARAMS.items()}
    assert regime(model_of(defaults)).verdict == "helps"            # exact expected loss of this walk
    v = comparisons(summarize_walks(walks_of(defaults, seeds=PARAMS["home_seeds"].default)))
    assert v["sema_ema"].outcome == "a" and v["sema_sgd"].outcome == "a" and v["ema_sgd"].outcome == "a", \
        "over the default seeds: SEMA φ < EMA φ < SGD θ, each interval excluding 0"


@pytest.mark.parametrize("preset, exact, seeds", [
    ("✅ SEMA helps", "helps", "a"),
    ("⚠️ EMA lags", "hurts", "b"),
    ("🟰 Rare switches", "ties", "tie"),
    ("α = 0", "ties", "tie"),
])
def test_presets_sit_where_the_map_says_and_the_seeds_agree(preset, exact, seeds):
    found = regime(model_of(PRESETS[preset]))
    assert found.verdict == exact
    if exact == "hurts":
        assert found.lag_share > 0.5, "it hurts because the loss is still lag: the computed why"
    assert comparisons(summarize_walks(walks_of(PRESETS[preset])))["sema_ema"].outcome == seeds


def _numbers(at):
    """The answer and notice texts and the theory caption of a Home run."""
    answer = " ".join(m.value for m in at.markdown if "SEMA φ − EMA φ" in m.value)
    notice = " ".join(i.value for i in at.info if "What to notice" in i.value)
    caption = " ".join(c.value for c in at.caption if "Theory map" in c.value)
    return answer, notice, caption


@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_preset_states_what_its_numbers_say(preset):
    at = run_app()
    at.button(key=f"preset::{preset}").click().run()
    assert not at.exception
    answer, notice, caption = _numbers(at)
    values = {k: at.session_state[k] for k in PARAMS}
    summary = summarize_walks(walks_of(values, seeds=values["home_seeds"], seed=values["home_seed"]))
    v = comparisons(summary)
    assert QUESTIONS[preset] in answer, "the preset's own question is answered"
    what = f"mean loss over steps {summary.window[0]}–{summary.window[1]}"
    assert v["sema_ema"].sentence("SEMA φ", "EMA φ", what, digits=3) in answer
    assert f"{values['home_seeds']} seeds" in answer
    # the notice lists the three means in the order the numbers put them
    means = {"SGD θ": summary.per_seed["sgd"].mean(), "EMA φ": summary.per_seed["ema"].mean(),
             "SEMA φ": summary.per_seed["sema_phi"].mean()}
    listed = ", ".join(f"{name} {means[name]:.3g}" for name in sorted(means, key=means.get))
    assert listed in notice
    if values["home_alpha"] == 0:
        assert "trails" not in notice and not caption
    else:
        found = regime(model_of(values))
        assert f"SEMA **{found.verdict}**" in caption
        assert ("trails" in notice) == (summary.lag_ratio > 2)


def test_too_few_seeds_never_call_a_winner():
    at = run_app(home_seeds="3")
    assert not at.exception
    answer, _, _ = _numbers(at)
    assert "too few seeds to tell" in answer and "better" not in answer


def test_a_page_does_not_inherit_another_pages_values_of_the_same_name():
    """The playground and the toy page both have `lr`, `alpha`, `noise`, `methods`: after the
    playground, the toy page opens with its own defaults (its link is clean), not the playground's."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("app_pages/playground.py").run()
    assert not at.exception and at.session_state["lr"] == 0.02      # the playground's own default
    at.switch_page("app_pages/toy_datasets.py").run()
    assert not at.exception
    toy = {"lr": 0.3, "alpha": 0.95, "noise": 0.3, "methods": ["sgd", "ema", "sema"]}
    assert {k: at.session_state[k] for k in toy} == toy
    assert not {"lr", "alpha", "noise", "methods"} & set(at.query_params)


def _decoded(url: str):
    import base64
    import io

    from PIL import Image
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


def test_home_pictures_follow_the_controls_and_projector_mode():
    """Home's figures are pictures drawn per setting: a changed control draws new ones, projector
    mode draws them taller (larger text), and one seed draws no band (its interval is undefined)."""
    from sema_demo.charts.walk import loss_band_figure
    from sema_demo.ui.home import chart_pictures

    default = (0.95, 10, 2.0, 50, 0)
    walk, band = chart_pictures(*default, projector=False)
    other_walk, other_band = chart_pictures(0.99, 10, 2.0, 50, 0, projector=False)
    assert walk != other_walk and band != other_band
    tall_walk, _ = chart_pictures(*default, projector=True)
    small, tall = _decoded(walk), _decoded(tall_walk)
    assert small.format == "WEBP" and tall.width == small.width and tall.height > 1.5 * small.height
    assert not loss_band_figure(noisy_walks(1, steps=STEPS, momentum=0.95, steps_per_epoch=10)).axes[0].collections[1:], \
        "one seed: the switch rules only, no band"
    assert len(loss_band_figure(noisy_walks(5, steps=STEPS, momentum=0.95, steps_per_epoch=10)).axes[0].collections) == 4
