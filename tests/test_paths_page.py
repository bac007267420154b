"""The "Paths on the loss surface" panel under AppTest, on the three pages that show it."""
import json

import numpy as np
from streamlit.testing.v1 import AppTest

from conftest import PAGES_DIR

from sema_demo.ui import landscape as landscape_ui

TOY = {"size": 100, "epochs": 10, "seeds": 1, "width": 8, "batch": 16}
IMAGES = {"per_class": "3", "test_size": "20", "epochs": "2", "width": "8", "batch": "16", "seeds": "1"}


def texts(at: AppTest) -> str:
    return " ".join(str(e.value) for kind in ("markdown", "caption", "info", "warning", "error")
                    for e in getattr(at, kind))


def finished_toy(settings: dict | None = None, **query) -> AppTest:
    at = AppTest.from_file(str(PAGES_DIR / "toy_datasets.py"), default_timeout=240)
    for key, value in {**TOY, **(settings or {})}.items():
        at.session_state[key] = value
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception
    assert "Paths on the loss surface" in [h.value for h in at.subheader]
    assert "appear here after the first epoch" in texts(at)        # drawn before the first epoch trains
    assert at.session_state["toy::live"].trainer.epoch <= 3          # a tick trains at most 3 × its pace
    at.run()
    assert "redrawn every epoch" in texts(at)                       # while training: the growing paths,
    live_charts = [c for c in at.get("vega_lite_chart") if '"landings"' in c.proto.spec]
    assert live_charts and not at.get("image")                         # as a chart the browser draws
    for _ in range(10):
        if at.session_state["toy::live"].trainer.done:
            break
        at.run()
    return at


def cache(at: AppTest, key: str) -> dict:
    return at.session_state[f"{key}::paths_cache"]


def player(at: AppTest, key: str) -> dict:
    """What the panel hands the browser's path player (the playground's component)."""
    element = next(e for e in at.get("bidi_component") if e.proto.id.endswith(f"{key}::paths_player"))
    return json.loads(element.proto.json)


def test_toy_panel_draws_the_surface_and_redraws_on_a_plane_or_resolution_change():
    at = finished_toy(paths_grid="11")
    assert not at.exception
    drawn = list(cache(at, "toy").values())
    assert len(drawn) == 1 and drawn[0].grid.loss.shape == (11, 11)
    notice = texts(at)
    assert "**Lowest end.**" in notice and "**EMA vs SGD.**" in notice and "**Switches.**" in notice
    assert "plane through the three solutions" in notice
    labels = [b.label for b in at.get("download_button")]
    assert "⬇ Projected paths (CSV)" in labels and labels.count("⬇ PNG") >= 2
    assert player(at, "toy")["step_values"][-1] == drawn[0].study.frame.step.max()   # it opens on the end
    assert not [b for b in at.button if b.key and "paths_play" in b.key], "no server-side Play any more"

    at.selectbox(key="paths_plane").set_value("pca").run()
    assert not at.exception
    assert at.query_params["paths_plane"] == "pca"
    assert len(cache(at, "toy")) == 2 and "principal directions of the paths" in texts(at)
    assert "principal directions explain" in texts(at)
    at.select_slider(key="paths_grid").set_value(15).run()
    assert not at.exception
    assert at.query_params["paths_grid"] == "15"
    assert [d.grid.loss.shape for d in cache(at, "toy").values()][-1] == (15, 15)
    assert at.session_state["toy::live"].trainer.done and at.session_state["toy::live"].trainer.epoch == 10


def test_toy_panel_plays_in_the_browser_player_with_every_snapshot_and_switch():
    at = finished_toy(paths_grid="11")
    drawn = list(cache(at, "toy").values())[0]
    data, frame = player(at, "toy"), drawn.study.frame
    sema = frame[(frame.method == "sema") & (frame.weights == "live")]
    assert data["step_values"] == sema.step.tolist() and data["steps"] == len(sema) - 1
    paths = {p["name"]: p for p in data["paths"]}
    assert list(paths) == ["SGD θ", "EMA φ", "SEMA φ"] and paths["SGD θ"]["style"] == "live"
    average = frame[(frame.method == "sema") & (frame.weights == "average")]
    np.testing.assert_allclose(np.column_stack([paths["SEMA φ"]["x"], paths["SEMA φ"]["y"]]), average[["x", "y"]],
                               atol=1e-4 * np.ptp(drawn.grid.x))
    switches = paths["SEMA φ"]["switches"]
    assert switches == np.flatnonzero(sema.kind.to_numpy() == "switch").tolist() and len(switches) == 10
    live = np.column_stack([paths["SEMA φ"]["live"]["x"], paths["SEMA φ"]["live"]["y"]])
    np.testing.assert_allclose(live[switches], np.column_stack([paths["SEMA φ"]["x"], paths["SEMA φ"]["y"]])[switches],
                               atol=1e-3 * np.ptp(drawn.grid.x))     # at each ◆ θ has jumped onto φ
    assert data["image"]["extent"] == [drawn.grid.x[0], drawn.grid.x[-1], drawn.grid.y[0], drawn.grid.y[-1]]
    assert not data["clickable"] and data["speed"] in data["speeds"]
    assert not at.exception and data["scale"] == 1.0

    at.session_state["projector"] = True          # what app.py's sidebar toggle sets
    at.run()
    assert not at.exception
    larger = player(at, "toy")
    assert larger["scale"] == 1.45                 # display.font_scale(): the player's text and the picture's
    assert larger["image"]["src"] != data["image"]["src"] and larger["paths"] == data["paths"]
    assert list(cache(at, "toy").values()) == [drawn] and set(drawn.pictures) == {1.0, 1.45}   # same surface


def test_a_link_to_a_seed_the_run_does_not_have_says_which_seed_it_shows():
    """?paths_seed=7 on a run of seeds 0–1: a notice, not a silent fall back to seed 0 (nor a traceback)."""
    at = finished_toy({"seeds": 2}, paths_grid="11", paths_seed="7")
    notice = "Seed 7 is not in this run (seeds 0–1): showing seed 0."
    assert [i.value for i in at.info].count(notice) == 1
    assert at.session_state["paths_seed"] == 0 and "Seed 0." in texts(at)
    assert at.get("button_group")[0].value == 0
    at.get("button_group")[0].set_value(1).run()          # another seed picked: the notice has done its job
    assert not at.exception
    assert not [i for i in at.info if "is not in this run" in i.value]
    assert at.query_params["paths_seed"] == "1" and "Seed 1." in texts(at)


def test_landscape_panel_has_a_seed_picker_that_redraws_in_that_seeds_plane(monkeypatch):
    monkeypatch.setattr(landscape_ui, "AUTO_SECONDS", 1e9)    # measured at once, however loaded the machine
    at = AppTest.from_file(str(PAGES_DIR / "landscape.py"), default_timeout=300)
    for key, value in {"steps": "11", "points": "200", "hutchinson": "8", "paths_grid": "11"}.items():
        at.query_params[key] = value
    at.run()
    picker = at.get("button_group")[0]
    assert picker.proto.label == "Seed" and at.session_state["paths_seed"] == 0
    first = player(at, "landscape")
    picker.set_value(2).run()
    assert not at.exception
    assert at.query_params["paths_seed"] == "2" and "Seed 2." in texts(at)
    second = player(at, "landscape")
    assert second["paths"][2]["x"] != first["paths"][2]["x"]
    assert [d.study.seed for d in cache(at, "landscape").values()] == [0, 2]


def test_image_panel_renders_for_a_batchnorm_cnn(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMA_DEMO_DATA", str(tmp_path))
    at = AppTest.from_file(str(PAGES_DIR / "images.py"), default_timeout=240)
    for key, value in {**IMAGES, "paths_grid": "11"}.items():
        at.query_params[key] = value
    at.run()
    for _ in range(6):
        if "finished" in at.get("progress")[0].proto.text:
            break
        at.run()
    assert not at.exception
    assert "Paths on the loss surface" in [h.value for h in at.subheader]
    assert "BatchNorm: evaluated in eval mode" in texts(at) and "**Lowest end.**" in texts(at)
    assert list(cache(at, "images").values())[0].grid.loss.shape == (11, 11)
    at.radio(key="paths_loss").set_value("test").run()
    assert not at.exception and "test loss on 20 examples" in texts(at)


def test_landscape_panel_studies_the_quick_default_at_a_finer_default(monkeypatch):
    monkeypatch.setattr(landscape_ui, "AUTO_SECONDS", 1e9)
    at = AppTest.from_file(str(PAGES_DIR / "landscape.py"), default_timeout=300)
    for key, value in {"steps": "11", "points": "200", "hutchinson": "8"}.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception
    assert at.select_slider(key="paths_grid").value == 41             # finer than the training pages' 31
    assert "Paths on the loss surface" in [h.value for h in at.subheader]
    assert list(cache(at, "landscape").values())[0].grid.loss.shape == (41, 41)
    at.select_slider(key="paths_grid").set_value(11).run()
    assert not at.exception and len(cache(at, "landscape")) == 2


def test_a_live_tick_draws_the_paths_without_copying_the_networks():
    """While training, the panel's picture is computed where the run lives (``trainer.apply``): the
    page reads neither the recording nor the networks (out of a Dask worker, in the classroom mode);
    the picture itself takes the ends from the recording, and the networks only for SWA."""
    from functools import partial

    from sema_demo.charts.live import live_paths_picture
    from sema_demo.datasets.toy import toy_data
    from sema_demo.models import mlp
    from sema_demo.training import Trainer, TrainConfig
    from sema_demo.ui.paths import source_from_trainer

    def trained(methods):
        config = TrainConfig(methods=methods, seeds=(0,), epochs=2, batch_size=16, lr=0.1, record_paths=True)
        trainer = Trainer(toy_data("moons", 200, 0.3), partial(mlp, 2, (8,), 2, "tanh"), config)
        trainer.run_epoch()
        fetched, asked = [], []
        real_models, real_apply = trainer.models, trainer.apply
        trainer.models = lambda: fetched.append(1) or real_models()
        trainer.apply = lambda fn, *args, **kwargs: asked.append(fn) or real_apply(fn, *args, **kwargs)
        return trainer, source_from_trainer(trainer, playing=True), fetched, asked

    trainer, source, fetched, asked = trained(("sgd", "ema", "sema"))
    spec = source.live_picture(0, "solutions", 420, None)
    assert asked == [live_paths_picture] and fetched == [] and callable(source.recording)   # nothing copied
    assert {"lines", "averages", "ends"} <= set(spec["datasets"]) and isinstance(spec["datasets"]["lines"], bytes)
    assert source.recorder is trainer.recorder and not callable(source.recording)          # read only when asked
    assert set(source.models) == {("sgd", 0), ("ema", 0), ("sema", 0)} and fetched == [1]
    source.models                                                    # fetched once, then kept
    assert fetched == [1]
    trainer, source, fetched, asked = trained(("sgd", "swa"))
    assert isinstance(source.live_picture(0, "solutions", 420, None), dict) and fetched == [1]
