"""The "Paths on the loss surface" panel under AppTest, on the three pages that show it."""
from streamlit.testing.v1 import AppTest

from conftest import PAGES_DIR

TOY = {"size": 100, "epochs": 10, "seeds": 1, "width": 8, "batch": 16}
IMAGES = {"per_class": "3", "test_size": "20", "epochs": "2", "width": "8", "batch": "16", "seeds": "1"}


def texts(at: AppTest) -> str:
    return " ".join(str(e.value) for kind in ("markdown", "caption", "info", "warning", "error")
                    for e in getattr(at, kind))


def finished_toy(**query) -> AppTest:
    at = AppTest.from_file(str(PAGES_DIR / "toy_datasets.py"), default_timeout=240)
    for key, value in TOY.items():
        at.session_state[key] = value
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception
    assert "Paths on the loss surface" in [h.value for h in at.subheader]
    assert "appear here after the first epoch" in texts(at)        # drawn before the first epoch trains
    assert at.session_state["toy::live"].trainer.epoch <= 3          # a tick trains at most 3 × its pace
    at.run()
    assert "redrawn every epoch" in texts(at)                       # while training: the growing paths
    assert at.get("image")
    for _ in range(10):
        if at.session_state["toy::live"].trainer.done:
            break
        at.run()
    return at


def cache(at: AppTest, key: str) -> dict:
    return at.session_state[f"{key}::paths_cache"]


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
    assert at.select_slider(key="toy::paths_scrub").value == drawn[0].study.frame.step.max()
    assert [b.label for b in at.button if b.key and "paths" in b.key] == ["▶ Play", "⏮ Back to the start"]

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


def test_toy_panel_animates_with_play_pause_and_a_scrubber():
    at = finished_toy(paths_grid="11")
    steps = list(cache(at, "toy").values())[0].study.frame.step
    at.select_slider(key="toy::paths_scrub").set_value(int(steps.iloc[3])).run()
    assert at.session_state["toy::paths_at"] == 3
    at.button(key="toy::paths_rewind").click().run()
    assert at.session_state["toy::paths_at"] == 0
    at.button(key="toy::paths_play").click().run()                  # plays: every rerun advances a frame
    assert at.session_state["toy::paths_playing"]
    assert [b.label for b in at.button if b.key == "toy::paths_play"] == ["⏸ Pause"]
    first = at.session_state["toy::paths_at"]
    at.run()
    assert at.session_state["toy::paths_at"] > first
    at.button(key="toy::paths_play").click().run()
    assert not at.session_state["toy::paths_playing"]
    assert not at.exception


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


def test_landscape_panel_studies_the_quick_default_at_a_finer_default():
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
