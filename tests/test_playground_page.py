"""The optimizer playground page, driven headless with Streamlit's AppTest."""

import pytest
from streamlit.testing.v1 import AppTest

from conftest import PAGES_DIR

from sema_demo.trajectories import simulate
from sema_demo.ui.playground import FRAME, PLAYING, config_from_state

PAGE = str(PAGES_DIR / "playground.py")
PRESETS = ["① Sharp vs flat", "② Hot noise", "③ EMA lags in a valley", "④ α = 0: no averaging"]


@pytest.fixture
def page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    assert not at.exception
    return at


def _button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def _frame_url(at: AppTest) -> str:
    """The animated picture's media URL: it names the image's content, so new paths give a new URL."""
    return at.get("image")[0].proto.imgs[0].url


def test_page_renders_the_default_comparison(page):
    assert page.title[0].value.startswith("🎯 Optimizer playground")
    assert page.session_state[FRAME] == 1000 and not page.session_state[PLAYING]   # the whole run
    table = page.dataframe[0].value
    assert list(table.method) == ["SGD", "EMA", "SEMA"]
    assert (table.status == "ok").all() and table["8 seeds"].str.contains("±").all()
    notice = next(i.value for i in page.info if "What to notice" in i.value)
    assert "Of 8 noise seeds, runs ending in the **sharp** SGD" in notice
    assert page.get("image") and page.get("vega_lite_chart")
    assert not page.error and not page.warning


@pytest.mark.parametrize("preset", PRESETS)
def test_each_preset_sets_its_controls_and_starts_playing(page, preset):
    _button(page, preset).click().run()
    assert not page.exception
    expected = {"① Sharp vs flat": {"landscape": "two_basins", "alpha": 0.99, "lr": 0.02},
                "② Hot noise": {"landscape": "two_basins", "alpha": 0.98, "lr": 0.05},
                "③ EMA lags in a valley": {"landscape": "valley", "alpha": 0.995, "steps": 2000},
                "④ α = 0: no averaging": {"landscape": "two_basins", "alpha": 0.0}}[preset]
    assert {k: page.session_state[k] for k in expected} == expected
    assert page.session_state[PLAYING] and 0 < page.session_state[FRAME] < page.session_state["steps"]
    assert page.sidebar.select_slider(key="alpha").value == expected["alpha"]


def test_the_page_runs_what_its_controls_say(page):
    """The figure, table and notes come from config_from_state(session state)."""
    sim = simulate(config_from_state(page.session_state))
    final = page.dataframe[0].value.set_index("method")["final loss"]
    assert final["SEMA"] == pytest.approx(sim.paths["sema"].final_loss, rel=1e-9)


@pytest.mark.parametrize("key, widget, value", [("alpha", "select_slider", 0.95),
                                                ("switch_every", "number_input", 3)])
def test_changing_alpha_or_the_switch_interval_changes_the_paths(page, key, widget, value):
    before, sema_before = _frame_url(page), page.dataframe[0].value.set_index("method").loc["SEMA"]
    getattr(page.sidebar, widget)(key=key).set_value(value).run()
    assert not page.exception
    sema_after = page.dataframe[0].value.set_index("method").loc["SEMA"]
    assert _frame_url(page) != before
    assert sema_after["final loss"] != sema_before["final loss"]
    assert page.query_params[key] == str(value)                 # the link reproduces the demo


def test_play_advances_frames_and_pause_holds_them(page):
    _button(page, "⏮ Reset").click().run()
    assert page.session_state[FRAME] == 0
    first = _frame_url(page)
    _button(page, "▶ Play").click().run()
    step = page.session_state[FRAME]
    assert page.session_state[PLAYING] and step > 0
    page.run()                                   # each run of the fragment is one more frame
    assert page.session_state[FRAME] > step and _frame_url(page) != first
    _button(page, "⏸ Pause").click().run()
    held = page.session_state[FRAME]
    page.run()
    assert page.session_state[FRAME] == held and not page.session_state[PLAYING]
    _button(page, "⏭ Step").click().run()
    assert page.session_state[FRAME] > held


def test_a_diverging_learning_rate_says_where_and_keeps_the_page(page):
    page.sidebar.selectbox(key="landscape").set_value("valley").run()
    page.sidebar.select_slider(key="lr").set_value(0.5).run()
    assert not page.exception
    errors = [e.value for e in page.error]
    assert any("SGD diverged at step" in e for e in errors) and any("SEMA diverged at step" in e for e in errors)
    assert "diverged at step" in page.dataframe[0].value.status.iloc[0]


def test_bad_inputs_are_explained(page):
    page.sidebar.number_input(key="x0").set_value(50.0).run()
    assert "outside the domain" in page.warning[0].value and "moved to (3, 2.6)" in page.warning[0].value
    page.sidebar.select_slider(key="alpha").set_value(0.0).run()
    assert any("α = 0" in i.value and "EMA is SGD" in i.value for i in page.info)
    page.sidebar.select_slider(key="alpha").set_value(0.99)
    page.sidebar.number_input(key="switch_every").set_value(50).run()
    assert any("no switch happens" in i.value for i in page.info)
    assert not page.exception


def test_a_shared_link_restores_the_demo_and_survives_bad_values():
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params.update({"landscape": "himmelblau", "alpha": "0.95", "lr": "banana", "steps": "99999"})
    at.run()
    assert not at.exception
    assert at.session_state["landscape"] == "himmelblau" and at.session_state["alpha"] == 0.95
    assert at.session_state["steps"] == 5000
    assert "could not be used" in at.warning[0].value


def test_the_basin_map_tab_runs_many_starts_only_when_open(page):
    assert len(page.get("vega_lite_chart")) == 1              # closed: only the loss chart
    page.session_state["pg_tab"] = "🗺️ Many starts: where does each method end?"
    page.run()
    assert not page.exception and len(page.get("vega_lite_chart")) == 2
    summary = page.dataframe[1].value
    assert list(summary.method) == ["SGD", "EMA", "SEMA"]
    shares = summary[["sharp", "flat", "no minimum", "diverged"]].sum(axis=1)
    assert shares.round(9).eq(1.0).all()


def test_exports_gif_frames_and_csv_of_the_paths():
    import io

    from PIL import Image

    from sema_demo.charts.playground import animation_gif, render_frame, surface_background
    from sema_demo.trajectories import SimConfig

    sim = simulate(SimConfig(steps=200))
    bg = surface_background(sim.landscape, sim.config.methods)
    first, last = render_frame(bg, sim, 0), render_frame(bg, sim, 200)
    assert first.size == last.size == (bg.image.width // 2, bg.image.height // 2)
    assert first.tobytes() != last.tobytes()
    gif = Image.open(io.BytesIO(animation_gif(bg, sim, n_frames=12, width_px=400)))
    assert gif.format == "GIF" and gif.n_frames == 12 and gif.width == 400
    csv = sim.to_frame().to_csv(index=False)
    assert csv.splitlines()[0].startswith("method,step,theta_x,theta_y") and len(csv.splitlines()) == 1 + 3 * 201


@pytest.mark.parametrize("landscape", ["valley", "rosenbrock", "himmelblau", "rastrigin"])
def test_every_landscape_opens_with_its_own_defaults(page, landscape):
    from sema_demo.landscapes import get_landscape

    page.sidebar.selectbox(key="landscape").set_value(landscape).run()
    land = get_landscape(landscape)
    assert not page.exception and not page.error
    assert page.session_state["lr"] == land.lr and (page.session_state["x0"], page.session_state["y0"]) == land.start
    assert page.get("image") and list(page.dataframe[0].value.method) == ["SGD", "EMA", "SEMA"]
    notice = next(i.value for i in page.info if "What to notice" in i.value)
    measured = "runs ending in the" if landscape == "himmelblau" else "ends lowest"
    assert measured in notice
