"""The optimizer playground page, driven headless with Streamlit's AppTest.

AppTest runs no JavaScript: these tests check what the page hands the path player (the
browser side is tests/e2e/test_playground_player.py) and what the page does with what the
player sends back, which they send as the browser would (a trigger value of the element).
"""
import json

import numpy as np
import pytest
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1 import AppTest

from conftest import PAGES_DIR

from sema_demo.charts.playground import BADGE_POINTS, surface_background, surface_figure
from sema_demo.landscapes import LANDSCAPES, get_landscape
from sema_demo.trajectories import simulate
from sema_demo.ui import playground as ui
from sema_demo.ui.display import FRAME_PARAMS
from sema_demo.ui.playground import PLAY_TOKEN, PLAYER, SPEEDS, TABS, config_from_state

PAGE = str(PAGES_DIR / "playground.py")
PROJECTOR_FONTS = 1.45          # display.font_scale() in projector mode
PRESETS = ["① Sharp vs flat", "② Hot noise", "③ EMA lags in a valley", "④ α = 0: no averaging"]


@pytest.fixture
def page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    assert not at.exception
    return at


def _button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def _player(at: AppTest):
    """The path player element the page mounted."""
    return next(e for e in at.get("bidi_component") if e.proto.id.endswith(PLAYER))


def _player_data(at: AppTest) -> dict:
    return json.loads(_player(at).proto.json)


def _player_sends(at: AppTest, event: str, value) -> AppTest:
    """Run the page as after the browser's player sent ``event`` = ``value``.

    AppTest has no handle for a components-v2 element, so this adds the trigger the browser
    would send (the element's events widget) to the widget states of the next run.
    """
    states = at._tree.get_widget_states()
    states.widgets.append(WidgetState(id=f"$$STREAMLIT_INTERNAL_KEY_{_player(at).proto.id}__events",
                                      json_trigger_value=json.dumps([{"event": event, "value": value}])))
    return at._run(states)


def _player_sets_state(at: AppTest, name: str, value) -> AppTest:
    """Run the page as after the player set its state ``name`` (setStateValue in the browser)."""
    states = at._tree.get_widget_states()
    states.widgets.append(WidgetState(id=_player(at).proto.id, json_value=json.dumps({name: value})))
    return at._run(states)


def test_page_renders_the_default_comparison(page):
    assert page.title[0].value.startswith("🎯 Optimizer playground")
    table = page.dataframe[0].value
    assert list(table.method) == ["SGD", "EMA", "SEMA"]
    assert (table.status == "ok").all() and table["8 seeds"].str.contains("±").all()
    notice = next(i.value for i in page.info if "What to notice" in i.value)
    assert "Of 8 noise seeds, runs ending in the **sharp** SGD" in notice
    assert _player(page)          # the loss chart is the player's own, with its cursor
    assert not page.get("vega_lite_chart"), "no second loss chart without a cursor"
    assert not page.error and not page.warning


def test_the_player_gets_the_picture_and_the_paths_as_data(page):
    """One picture (with its plot box and axis extent) and each method's path, step by step."""
    data, sim = _player_data(page), simulate(config_from_state(page.session_state))
    image = data["image"]
    assert image["src"].startswith("data:image/webp;base64,") and image["extent"] == list(sim.landscape.domain)
    left, top, right, bottom = image["plot_box"]
    assert 0 <= left < right <= image["width"] and 0 <= top < bottom <= image["height"]
    assert [p["name"] for p in data["paths"]] == ["SGD", "EMA", "SEMA"]
    assert data["steps"] == 1000 and data["start"] == [-2.4, 2.6] and data["frame"] is None
    paths = {p["name"]: p for p in data["paths"]}
    sema = sim.paths["sema"]
    np.testing.assert_allclose(np.column_stack([paths["SEMA"]["x"], paths["SEMA"]["y"]]), sema.phi, atol=1e-4)
    np.testing.assert_allclose(np.column_stack([paths["SEMA"]["live"]["x"], paths["SEMA"]["live"]["y"]]),
                               sema.theta, atol=1e-4)
    np.testing.assert_allclose(paths["SEMA"]["loss"], sema.phi_loss, rtol=1e-4)
    assert paths["SEMA"]["switches"] == sema.switch_steps.tolist() and len(sema.switch_steps) == 20
    np.testing.assert_allclose(paths["SGD"]["x"], sim.paths["sgd"].theta[:, 0], atol=1e-4)
    assert paths["SGD"]["style"] == "live" and paths["EMA"]["live"] is None   # EMA's θ is SGD's path
    # the sidebar's default live speed (epochs/s) × 50 steps per epoch, as the nearest of the player's speeds
    per_second = FRAME_PARAMS["live_speed"].default * 50
    assert data["speed"] == min(SPEEDS, key=lambda v: abs(np.log(v / per_second))) and data["clickable"]
    assert paths["SEMA"]["live"]["loss"] is not None and paths["EMA"]["live"] is None


def test_a_click_on_the_surface_sets_the_start_and_recomputes_the_paths(page):
    before = _player_data(page)
    _player_sends(page, "start", {"x": 1.234, "y": -0.5})
    assert not page.exception
    assert (page.session_state["x0"], page.session_state["y0"]) == (1.23, -0.5)   # the start inputs follow
    assert page.sidebar.number_input(key="x0").value == 1.23
    after = _player_data(page)
    assert after["start"] == [1.23, -0.5] and after["play_token"] == before["play_token"] + 1   # it replays
    for path in after["paths"]:
        assert (path["x"][0], path["y"][0]) == (1.23, -0.5)
    assert after["paths"][2]["x"] != before["paths"][2]["x"]
    final = page.dataframe[0].value.set_index("method")["final loss"]
    assert final["SEMA"] == pytest.approx(simulate(config_from_state(page.session_state)).paths["sema"].final_loss)
    assert page.query_params["x0"] == "1.23" and page.query_params["y0"] == "-0.5"   # the link keeps it
    page.run()                                   # a later rerun does not replay it again
    assert _player_data(page)["play_token"] == after["play_token"]


@pytest.mark.parametrize("value", [{"x": "left", "y": 1}, {"x": float("nan"), "y": 0}, [1, 2], None])
def test_a_malformed_start_from_the_browser_is_ignored(page, value):
    _player_sends(page, "start", value)
    assert not page.exception
    assert (page.session_state["x0"], page.session_state["y0"]) == (-2.4, 2.6)


def test_the_player_speed_lands_in_session_state_and_the_url(page):
    _player_sets_state(page, "speed", 400)
    assert not page.exception
    assert page.session_state["pg_speed"] == 400 and page.query_params["pg_speed"] == "400"
    assert _player_data(page)["speed"] == 400
    assert "live_speed" not in page.query_params   # the sidebar's live speed (epochs/s) is another setting


@pytest.mark.parametrize("live, projector, steps_per_second", [(1.0, False, 50), (0.0, True, 1000)])
def test_the_player_starts_at_the_shared_live_speed_and_grows_in_projector_mode(live, projector, steps_per_second):
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["live_speed"], at.session_state["projector"] = live, projector   # what app.py's sidebar sets
    at.run()
    assert not at.exception
    data = _player_data(at)
    scale, other = (PROJECTOR_FONTS, 1.0) if projector else (1.0, PROJECTOR_FONTS)
    assert data["speed"] == steps_per_second and data["scale"] == scale   # 1 epoch/s × 50 steps; 0 = the fastest
    methods = ("sgd", "ema", "sema")         # the picture is the one drawn at the frame's font scale
    assert data["image"] == ui.surface_picture("two_basins", methods, scale)
    assert data["image"]["src"] != ui.surface_picture("two_basins", methods, other)["src"]


def test_the_open_tab_and_the_speed_round_trip_through_the_link(page):
    page.session_state["pg_tab"] = TABS["starts"]
    page.run()
    assert page.query_params["tab"] == "starts"
    link = dict(page.query_params)
    again = AppTest.from_file(PAGE, default_timeout=60)
    again.query_params.update({**link, "pg_speed": "25"})
    again.run()
    assert not again.exception
    assert again.session_state["pg_tab"] == TABS["starts"] and again.session_state["tab"] == "starts"
    assert again.get("vega_lite_chart") and not again.get("bidi_component")   # the basin map, not the player
    again.session_state["pg_tab"] = TABS["run"]
    again.run()
    assert "tab" not in again.query_params and again.query_params["pg_speed"] == "25"
    assert _player_data(again)["speed"] == 25


@pytest.mark.parametrize("preset", PRESETS)
def test_each_preset_sets_its_controls_and_replays_the_animation(page, preset):
    _button(page, preset).click().run()
    assert not page.exception
    expected = {"① Sharp vs flat": {"landscape": "two_basins", "alpha": 0.99, "lr": 0.02},
                "② Hot noise": {"landscape": "two_basins", "alpha": 0.98, "lr": 0.05},
                "③ EMA lags in a valley": {"landscape": "valley", "alpha": 0.995, "steps": 2000},
                "④ α = 0: no averaging": {"landscape": "two_basins", "alpha": 0.0}}[preset]
    assert {k: page.session_state[k] for k in expected} == expected
    assert page.session_state[PLAY_TOKEN] == 1 and _player_data(page)["play_token"] == 1   # it replays
    assert page.sidebar.select_slider(key="alpha").value == expected["alpha"]
    assert _player_data(page)["steps"] == page.session_state["steps"]


def test_the_page_runs_what_its_controls_say(page):
    """The figure, table and notes come from config_from_state(session state)."""
    sim = simulate(config_from_state(page.session_state))
    final = page.dataframe[0].value.set_index("method")["final loss"]
    assert final["SEMA"] == pytest.approx(sim.paths["sema"].final_loss, rel=1e-9)


@pytest.mark.parametrize("key, widget, value", [("alpha", "select_slider", 0.95),
                                                ("switch_every", "number_input", 3)])
def test_changing_alpha_or_the_switch_interval_changes_the_paths(page, key, widget, value):
    before, sema_before = _player_data(page)["paths"], page.dataframe[0].value.set_index("method").loc["SEMA"]
    getattr(page.sidebar, widget)(key=key).set_value(value).run()
    assert not page.exception
    sema_after = page.dataframe[0].value.set_index("method").loc["SEMA"]
    assert _player_data(page)["paths"][2]["x"] != before[2]["x"]       # SEMA's path moved
    assert sema_after["final loss"] != sema_before["final loss"]
    assert page.query_params[key] == str(value)                 # the link reproduces the demo


def test_a_diverging_learning_rate_says_where_and_keeps_the_page(page):
    page.sidebar.selectbox(key="landscape").set_value("valley").run()
    page.sidebar.select_slider(key="lr").set_value(0.5).run()
    assert not page.exception
    errors = [e.value for e in page.error]
    assert any("SGD diverged at step" in e for e in errors) and any("SEMA diverged at step" in e for e in errors)
    assert "diverged at step" in page.dataframe[0].value.status.iloc[0]
    diverged = {p["name"]: p["diverged"] for p in _player_data(page)["paths"]}
    assert diverged["SGD"] and diverged["SEMA"]      # the player marks them with an ✕


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
    assert not page.get("vega_lite_chart")              # closed: no basin map computed
    page.session_state["pg_tab"] = TABS["starts"]
    page.run()
    assert not page.exception and len(page.get("vega_lite_chart")) == 1
    summary = page.dataframe[0].value
    assert list(summary.method) == ["SGD", "EMA", "SEMA"]
    counts = summary[["sharp", "flat", "no minimum", "diverged"]].apply(
        lambda column: column.str.extract(r"^(\d+) of 128")[0].astype(int))
    assert counts.sum(axis=1).eq(128).all()
    for cell in summary["flat"]:                         # "90 of 128 (70 %)": whole percent, no "70.31 %"
        k = int(cell.split()[0])
        assert cell == (f"{k} of 128 ({round(100 * k / 128)} %)" if k else "0 of 128")
    for cell in summary["final loss (mean ± std)"]:      # same decimals on both sides, 2 significant in the spread
        mean, spread = cell.split(" ± ")
        assert len(mean.split(".")[-1]) == len(spread.split(".")[-1])
        assert len(spread.lstrip("0.")) == 2 or spread.startswith("< ")


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
    page.sidebar.selectbox(key="landscape").set_value(landscape).run()
    land = get_landscape(landscape)
    assert not page.exception and not page.error
    assert page.session_state["lr"] == land.lr and (page.session_state["x0"], page.session_state["y0"]) == land.start
    assert list(page.dataframe[0].value.method) == ["SGD", "EMA", "SEMA"]
    data = _player_data(page)
    assert data["image"]["extent"] == list(land.domain) and data["start"] == list(land.start)
    assert data["loss_scale"] == ("log" if land.log_scale else "linear")
    notice = next(i.value for i in page.info if "What to notice" in i.value)
    assert ("runs ending in the" in notice) == (landscape == "himmelblau")     # named basins: where runs end
    assert "Lowest mean final loss over 8 noise seeds" in notice


def _notice(at: AppTest) -> str:
    return next(i.value for i in at.info if "What to notice" in i.value)


def _mean(cell: str) -> float:
    return float(cell.split(" ± ")[0])


@pytest.mark.parametrize("preset", PRESETS)
def test_each_presets_notice_agrees_with_its_table_and_its_runs(page, preset):
    """The computed sentences: the winner named is the table's lowest mean, the counts are the runs'."""
    import re

    _button(page, preset).click().run()
    assert not page.exception
    notice, table = _notice(page), page.dataframe[0].value.set_index("method")
    sim = simulate(config_from_state(page.session_state), 8)
    winner = re.search(r"Lowest mean final loss over 8 noise seeds: \*\*(\w+)\*\* \(([^)]*)\)", notice)
    assert winner, notice
    means = table["8 seeds"].map(_mean)
    assert means[winner.group(1)] == means.min() and table.loc[winner.group(1), "8 seeds"] == winner.group(2)
    for basin_name, counts in re.findall(r"in the \*\*(\w+)\*\* ((?:\w+ \d+, )*\w+ \d+)", notice):
        index = [m.name for m in sim.landscape.minima].index(basin_name)
        for method, count in re.findall(r"(\w+) (\d+)", counts):
            key = {"SGD": "sgd", "EMA": "ema", "SEMA": "sema"}[method]
            ends = (sim.spread.basin[key] == index) & (sim.spread.diverged_at[key] < 0)
            assert int(count) == int(ends.sum())
    alpha = page.session_state["alpha"]
    if alpha == 0:                                      # nothing on the page may say the EMA trails
        assert "EMA** φ equals θ" in notice and "trails" not in notice and "switches change nothing" in notice
    else:
        assert f"remembers ≈ {1 / (1 - alpha):,.0f} steps" in notice
        assert f"each of its {len(sim.paths['sema'].switch_steps)} switches" in notice


@pytest.mark.parametrize("font_scale", [1.0, PROJECTOR_FONTS])
@pytest.mark.parametrize("landscape", list(LANDSCAPES))
def test_minimum_labels_sit_beside_their_star_and_cover_no_star_nor_each_other(landscape, font_scale):
    bg = surface_background(get_landscape(landscape), ("sgd", "ema", "sema"), resolution=60, font_scale=font_scale)
    stars = [star for _, star, _ in bg.labels]
    left, top, right, bottom = bg.plot_box
    star_radius = 10 / 72 * 200          # the ★ (20 points across) at the picture's 200 dpi, in pixels
    for i, (name, (sx, sy), (l, t, r, b)) in enumerate(bg.labels):
        gap = np.hypot(max(l - sx, sx - r, 0), max(t - sy, sy - b, 0))
        assert gap < 2 * star_radius, f"{name}: its label is {gap:.0f} px from its ★"   # it was 1.5 units (≈ 180 px)
        for x, y in stars:
            assert np.hypot(max(l - x, x - r, 0), max(t - y, y - b, 0)) > star_radius, f"{name}'s label covers a ★"
        assert left <= l and r <= right and top <= t and b <= bottom, f"{name}'s label leaves the plot"
        assert t >= top + BADGE_POINTS * font_scale * 200 / 72, f"{name}'s label lies under the player's step badge"
        for other, _, (l2, t2, r2, b2) in bg.labels[i + 1:]:   # projector fonts: Himmelblau's labels once met
            assert min(r, r2) <= max(l, l2) or min(b, b2) <= max(t, t2), f"{name}'s label covers {other}'s"


def text_sizes(fig) -> dict[str, set[float]]:
    """The font sizes of every visible text of a drawn figure, by kind: each axes' labels, title, ticks
    and annotations (axes 1 is the colour bar), and the legend's title and entries."""
    out: dict[str, set[float]] = {}

    def add(kind: str, texts) -> None:
        for t in texts:
            if t.get_visible() and t.get_text():
                out.setdefault(kind, set()).add(t.get_fontsize())

    for i, ax in enumerate(fig.axes):
        add(f"axes {i} labels", [ax.xaxis.label, ax.yaxis.label])
        add(f"axes {i} title", [ax.title, ax._left_title, ax._right_title])
        add(f"axes {i} ticks", [*ax.get_xticklabels(), *ax.get_yticklabels()])
        add(f"axes {i} notes", ax.texts)
    for legend in fig.legends:
        add("legend title", [legend.get_title()])
        add("legend entries", legend.get_texts())
    return out


@pytest.mark.parametrize("landscape", ["two_basins", "himmelblau"])
def test_every_text_of_the_surface_picture_grows_with_the_font_scale(landscape):
    """Projector mode (display.font_scale()) enlarges every label of the picture the player shows."""
    land = get_landscape(landscape)
    usual = surface_figure(land, ("sgd", "ema", "sema"), resolution=40)
    larger = surface_figure(land, ("sgd", "ema", "sema"), resolution=40, font_scale=PROJECTOR_FONTS)
    usual.canvas.draw(), larger.canvas.draw()          # ticks are made when drawn
    a, b = text_sizes(usual), text_sizes(larger)
    assert set(a) == set(b) == {"axes 0 labels", "axes 0 title", "axes 0 ticks", "axes 0 notes", "axes 1 labels",
                                "axes 1 ticks", "legend title", "legend entries"}
    for kind in a:
        assert len(a[kind]) == 1 and b[kind] == {PROJECTOR_FONTS * size for size in a[kind]}, kind
    assert surface_background(land, ("sgd",), resolution=40,
                              font_scale=PROJECTOR_FONTS).font_scale == PROJECTOR_FONTS
