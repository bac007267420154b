"""The image page through Streamlit's AppTest: Digits, a fabricated CIFAR folder, the fallback, the download."""
from __future__ import annotations

import dataclasses
import hashlib

import pytest
from streamlit.testing.v1 import AppTest

from conftest import PAGES_DIR
from page_claims import check

from fake_cifar import write_cifar_archive, write_cifar_folder
from sema_demo.datasets import images as image_data

TINY = {"per_class": "5", "test_size": "20", "epochs": "2", "width": "8", "batch": "16", "seeds": "1"}


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """An empty data folder as $SEMA_DEMO_DATA: nothing has been fetched."""
    monkeypatch.setenv(image_data.DATA_ENV, str(tmp_path))
    return tmp_path


def open_page(root, **query) -> AppTest:
    at = AppTest.from_file(str(PAGES_DIR / "images.py"), default_timeout=120)
    for key, value in {**TINY, **query}.items():
        at.query_params[key] = value
    return at.run()


def train_to_the_end(at: AppTest, reruns: int = 6) -> AppTest:
    """Every rerun advances the live training (nothing ticks in AppTest)."""
    for _ in range(reruns):
        if "finished" in at.get("progress")[0].proto.text:
            break
        at.run()
    return at


def captions(at: AppTest) -> str:
    return " ".join(c.value for c in at.caption)


def test_digits_by_default_trains_live_and_shows_results(root, data_dir):
    at = train_to_the_end(open_page(root, seeds="2"))
    assert not at.exception
    assert at.get("progress")[0].proto.text == "Epoch 2 of 2 · finished"
    assert "Digits (8×8, bundled) · Small CNN (width 8) · 5/class · 2 seeds" in captions(at)
    assert not at.warning, "Digits needs no download"
    table = at.dataframe[0].value
    assert table["Method"].tolist() == ["SGD", "EMA", "SEMA"]
    assert table["Final test accuracy (%)"].str.contains("±").all()
    assert any("final test accuracy" in m.value for m in at.markdown)
    assert at.get("image"), "the grid of test images with each method's prediction is drawn"
    assert len(at.get("vega_lite_chart")) == 2
    runs = at.session_state["trained_runs"]
    (run,) = runs.values()
    assert run.source == "images" and set(run.models) == {("sgd", 0), ("ema", 0), ("sema", 0),
                                                          ("sgd", 1), ("ema", 1), ("sema", 1)}


def test_alpha_zero_makes_every_method_the_same(root, data_dir):
    # φ = θ after every step: EMA and SEMA must reproduce SGD exactly (same init, batches, augmentation).
    at = train_to_the_end(open_page(root, alpha="0.0", epochs="1"))
    assert not at.exception
    accuracies = at.dataframe[0].value["Final test accuracy (%)"]
    assert accuracies.nunique() == 1


def test_fabricated_cifar10_folder_is_used(root, data_dir):
    write_cifar_folder(data_dir, "cifar10", train_per_class=6, test_per_class=2)
    at = train_to_the_end(open_page(root, dataset="cifar10", epochs="1"))
    assert not at.exception and not at.warning
    assert "CIFAR-10 · Small CNN (width 8) · 5/class · 1 seed" in captions(at)
    assert at.get("progress")[0].proto.text == "Epoch 1 of 1 · finished"
    assert next(iter(at.session_state["trained_runs"].values())).data.x_train.shape == (50, 3, 32, 32)


def trains_nothing(at: AppTest) -> bool:
    epochs = [p for p in at.get("progress") if "Epoch" in p.proto.text]
    return not epochs and "images::live" not in at.session_state and not at.dataframe


def test_missing_cifar_trains_nothing_and_shows_the_fetch_command(root, data_dir):
    at = open_page(root, dataset="cifar100", epochs="1")
    assert not at.exception
    (warning,) = at.warning
    assert "CIFAR-100 is not on this computer yet: nothing is trained." in warning.value
    assert "sema-demo fetch cifar100" in warning.value
    assert at.button(key="img_fetch").label == "⬇ Download CIFAR-100 now"
    assert trains_nothing(at) and "Digits (8×8, bundled) ·" not in captions(at)
    assert at.selectbox(key="dataset").value == "cifar100", "the choice is kept for when the data arrives"
    at.button(key="img_use_digits").click().run()                 # the way on without a download
    assert not at.exception and not at.warning
    assert at.session_state["dataset"] == "digits" and at.session_state["target"] == 90
    assert "Digits (8×8, bundled) ·" in captions(at) and at.session_state["images::live"].trainer.epoch == 1


def test_the_cifar_preset_without_data_does_not_train_digits_under_its_name(root, data_dir):
    at = open_page(root)
    at.button(key="preset::③ CIFAR-10").click().run()
    assert not at.exception
    assert "CIFAR-10 is not on this computer yet: nothing is trained." in at.warning[0].value
    assert trains_nothing(at), "no run, no table with a 40 % target"


def test_download_button_fetches_and_switches_to_cifar(root, data_dir, tmp_path_factory, monkeypatch):
    served = write_cifar_archive(tmp_path_factory.mktemp("server") / "cifar-10-python.tar.gz", "cifar10",
                                 train_per_class=6, test_per_class=2)
    spec = dataclasses.replace(image_data.CIFAR["cifar10"], url=served.as_uri(),
                               md5=hashlib.md5(served.read_bytes()).hexdigest())
    monkeypatch.setitem(image_data.CIFAR, "cifar10", spec)
    at = open_page(root, dataset="cifar10", epochs="1")
    assert trains_nothing(at)
    at.button(key="img_fetch").click().run()
    assert not at.exception and not at.warning
    assert "CIFAR-10 · Small CNN" in captions(at)
    assert (data_dir / "cifar-10-batches-py" / "data_batch_5").is_file()


def test_damaged_cifar_falls_back_and_names_the_file(root, data_dir):
    folder = write_cifar_folder(data_dir, "cifar10")
    (folder / "test_batch").write_bytes((folder / "test_batch").read_bytes()[:100])
    at = open_page(root, dataset="cifar10", epochs="1")
    assert not at.exception
    assert not at.warning and "test_batch is truncated or damaged" in at.error[0].value
    assert "CIFAR-10 could not be read: nothing is trained." in at.error[0].value
    assert not [b for b in at.button if b.key == "img_fetch"], "re-fetching would keep the damaged files"
    assert trains_nothing(at) and at.button(key="img_use_digits")


def test_reset_stays_paused_and_a_preset_starts_playing_as_on_the_toy_page(root, data_dir):
    at = open_page(root, epochs="200")                    # far more than one run of the page trains
    assert at.button(key="images::play").label == "⏸ Pause"
    at.button(key="images::reset").click().run()
    assert at.get("progress")[0].proto.text == "Epoch 0 of 200 · paused"
    at.run()
    assert at.get("progress")[0].proto.text == "Epoch 0 of 200 · paused"
    at.button(key="preset::② α = 0.95").click()
    for key, value in {"per_class": 5, "test_size": 20, "width": 8, "epochs": 2}.items():   # keep it tiny
        at.session_state[key] = value
    at.run()
    assert not at.exception
    assert at.select_slider(key="alpha").value == 0.95
    assert at.session_state["images::live"].playing and at.session_state["images::live"].trainer.epoch >= 1


def test_unavailable_device_and_hostile_links_give_messages_not_tracebacks(root, data_dir):
    at = open_page(root, device="mps")
    assert not at.exception
    assert any("'mps' was requested but is not available" in e.value for e in at.error)
    at = open_page(root, dataset="<script>", lr="1e9", per_class="-3", methods="sgd,evil", alpha="2")
    assert not at.exception
    state = at.session_state
    assert (state["dataset"], state["lr"], state["per_class"], state["methods"], state["alpha"]) == \
        ("digits", 0.05, 1, ["sgd", "ema", "sema"], 0.9)


def test_failed_download_keeps_digits_and_says_why(root, data_dir, tmp_path_factory, monkeypatch):
    absent = tmp_path_factory.mktemp("server") / "cifar-100-python.tar.gz"
    monkeypatch.setitem(image_data.CIFAR, "cifar100",
                        dataclasses.replace(image_data.CIFAR["cifar100"], url=absent.as_uri()))
    at = open_page(root, dataset="cifar100", epochs="1")
    at.button(key="img_fetch").click().run()
    assert not at.exception
    assert any(e.value.startswith("The download did not work: ` could not download") for e in at.error)
    assert trains_nothing(at)


# ------------------------------------------------------- every preset: its words agree with its numbers

# The page with each preset's own controls (so the preset is active and its question asked), but the
# network trained on a tiny subset: the words are checked against the numbers of that run.
TINY_BUILD = """
import dataclasses
import sema_demo.ui.images as ui

real = ui.build
ui.build = lambda choice, s: real(choice, dataclasses.replace(s, per_class=5, test_size=20, epochs=2, width=8))
try:
    exec(compile(open(PAGE).read(), PAGE, "exec"), {"__name__": "__main__"})
finally:
    ui.build = real
"""
QUESTIONS = {"① Digits, quick": "accuracy", "② α = 0.95": "speed", "③ CIFAR-10": "accuracy",
             "④ α = 0": "identity"}


@pytest.mark.parametrize("preset", list(QUESTIONS))
def test_each_presets_sentences_answer_its_question_and_agree_with_the_table(preset, data_dir):
    if preset.startswith("③"):
        write_cifar_folder(data_dir, "cifar10", train_per_class=6, test_per_class=2)
    at = AppTest.from_string(f"PAGE = {str(PAGES_DIR / 'images.py')!r}\n" + TINY_BUILD, default_timeout=180)
    at.session_state["live_speed"] = 0.0
    at.run()
    at.button(key=f"preset::{preset}").click().run()
    for _ in range(6):
        if at.session_state["images::live"].trainer.done:
            break
        at.run()
    assert not at.exception and at.session_state["images::live"].trainer.done
    text = next(m.value for m in at.markdown if m.value.startswith("**The question here"))
    table = at.dataframe[0].value
    check(text, table, at.session_state["seeds"], QUESTIONS[preset], at.session_state["target"])
    words = next(i.value for i in at.info if i.value.startswith("**What to notice**") and "α =" in i.value)
    if QUESTIONS[preset] == "identity":
        assert "0.0 points: they are the same run" in text and table["Final test accuracy (%)"].nunique() == 1
        assert "lag" not in words and "trail" not in words
    else:
        alpha = at.session_state["alpha"]
        assert f"α = {alpha:g} averages over ≈ {1 / (1 - alpha):,.0f} steps" in words
        assert "too few seeds to tell" in text and " is better" not in text    # 2 seeds: never a winner


def test_the_seed_picker_shows_one_seeds_predictions(root, data_dir):
    at = train_to_the_end(open_page(root, seeds="2"))
    at.selectbox(key="seed_view").set_value(1).run()
    assert not at.exception
    assert any(h.value == "Test images and each method's guess (seed 1)" for h in at.subheader)
    assert at.query_params["seed_view"] == "1"
