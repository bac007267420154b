"""The decision-boundary page under AppTest: opens and trains live, controls, presets, URL state,
bad inputs (divergence, clamped batch, invalid CSV, controls changed mid-run), exports."""
import pytest
from streamlit.testing.v1 import AppTest

from conftest import PAGES_DIR
from page_claims import check, table_means
from sema_demo import theory
from sema_demo.charts.style import METHOD_NAMES

PAGE = str(PAGES_DIR / "toy_datasets.py")
TINY = {"size": 100, "epochs": 6, "seeds": 2, "width": 8, "batch": 16}   # seconds, not minutes


def page(query: dict | None = None, **overrides) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120)
    for key, value in {**TINY, **overrides}.items():
        at.session_state[key] = value
    for key, value in (query or {}).items():
        at.query_params[key] = value
    return at.run()


def live(at: AppTest):
    return at.session_state["toy::live"]


def finish(at: AppTest) -> AppTest:
    for _ in range(30):
        if live(at).trainer.done:
            return at
        at.run()
    raise AssertionError("training did not finish")


def texts(at: AppTest) -> str:
    return " ".join(str(e.value) for kind in ("markdown", "caption", "info", "warning", "error", "success")
                    for e in getattr(at, kind))


def test_opens_training_and_every_rerun_advances():
    at = page()
    assert not at.exception
    assert at.title[0].value.startswith("🌗 Decision boundaries")
    assert live(at).playing and live(at).trainer.epoch >= 1          # autoplay: it already trains
    assert [b.label for b in at.button][:3] == ["High learning rate", "Horizon too long", "Spirals with Adam"]
    assert "What to notice" in texts(at)
    epoch = live(at).trainer.epoch
    at.run()
    assert live(at).trainer.epoch > epoch
    table = at.dataframe[0].value
    assert table["Method"].tolist() == ["SGD", "EMA", "SEMA"]
    assert table["Final test accuracy (%)"].str.contains("±").all()


def test_a_finished_run_shows_results_exports_and_is_remembered():
    at = finish(page())
    assert not at.exception
    trainer = live(at).trainer
    assert trainer.epoch == 6 and len(trainer.history) == 6 * 3 * 2
    assert "Epoch 6 of 6 · finished" in str(at.get("progress")[0].proto.text)
    assert "Export" in [h.value for h in at.subheader]
    runs = at.session_state["trained_runs"]
    (run,) = runs.values()
    assert run.source == "toy" and set(run.models) == set(trainer.runs) and "MLP 2-8-8-2" in run.label
    # the sentences under the table are built from the numbers in it, whoever wins
    sentence = next(m.value for m in at.markdown if m.value.startswith("**The question here"))
    check(sentence, at.dataframe[0].value, 2, "accuracy", 95)      # tiny sizes: no preset is active


def test_play_pause_step_reset_and_stop():
    at = page()
    at.button(key="toy::play").click().run()                      # pause
    assert not live(at).playing
    epoch = live(at).trainer.epoch
    at.run()
    assert live(at).trainer.epoch == epoch                         # paused: reruns do not train
    at.button(key="toy::step").click().run()
    assert live(at).trainer.epoch == epoch + 1 and not live(at).playing
    at.button(key="toy::reset").click().run()
    assert live(at).trainer.epoch == 0 and not live(at).playing
    at.button(key="toy::step").click().run()
    at.button(key="toy::stop").click().run()
    assert live(at).trainer.done and live(at).trainer.epoch == 1 and not at.exception
    assert "trained_runs" in at.session_state                      # a stopped run is kept too
    at.button(key="toy::play").click().run()                      # ↻ Replay starts over
    assert live(at).playing and not at.exception


@pytest.mark.parametrize("preset", ["High learning rate", "Horizon too long", "Spirals with Adam"])
def test_presets_set_the_controls_and_restart_playing(preset):
    at = page()
    at.button(key=f"preset::{preset}").click()
    for key, value in TINY.items():                                # keep the test tiny after the preset
        at.session_state[key] = value
    at.run()
    assert not at.exception
    lr = {"High learning rate": 0.3, "Horizon too long": 0.05, "Spirals with Adam": 0.01}[preset]
    assert at.session_state["lr"] == lr and live(at).trainer.config.lr == lr
    assert live(at).playing
    if preset == "Horizon too long":                               # the sidebar says what the theory map says
        captions = " ".join(c.value for c in at.sidebar.caption)
        k = at.session_state["switch"] * live(at).trainer.steps_per_epoch
        found = theory.regime_at(at.session_state["alpha"], k)
        assert "Theory map" in captions and found.sentence() in captions


def test_changing_a_control_mid_run_restarts_cleanly():
    at = page(epochs=60)
    at.run()
    first = live(at).trainer
    assert 2 <= first.epoch < 60
    at.slider(key="noise").set_value(0.5).run()
    assert not at.exception
    second = live(at).trainer
    assert second is not first and second.epoch <= 6 and live(at).playing
    assert second.data.name == "moons" and at.toast and "restarted" in at.toast[0].value
    at.button(key="toy::play").click().run()                      # paused, a change stays paused
    at.slider(key="noise").set_value(0.4).run()
    assert not live(at).playing and live(at).trainer.epoch == 0 and not at.exception


def test_url_state_round_trips_and_bad_links_fall_back():
    at = page(query={"lr": "0.1", "dataset": "circles", "switch": "99", "activation": "<script>"})
    assert not at.exception
    assert at.session_state["lr"] == 0.1 and at.session_state["dataset"] == "circles"
    assert at.session_state["switch"] == 20                        # clamped, with a notice
    assert at.session_state["activation"] == "relu"                # not a choice: the default
    assert "Some settings in the link could not be used" in texts(at)
    at.select_slider(key="lr").set_value(0.03).run()
    assert at.query_params["lr"] == "0.03" and at.query_params["dataset"] == "circles"


def test_a_diverging_run_says_so_and_the_others_continue():
    at = finish(page(lr=10.0, activation="gelu", width=32, epochs=8))
    assert not at.exception
    trainer = live(at).trainer
    assert 0 < len(trainer.diverged) < len(trainer.runs)           # lr 10 blows up some runs, not all
    for (method, seed), epoch in trainer.diverged.items():
        assert f"{METHOD_NAMES[method]} (seed {seed}) diverged at epoch {epoch}" in texts(at)
    assert trainer.epoch == 8                                      # the others went on to the end
    table = at.dataframe[0].value.set_index("Method")
    (method, seed), epoch = next(iter(trainer.diverged.items()))
    assert f"seed {seed} at epoch {epoch}" in table.loc[METHOD_NAMES[method], "Diverged"]


def test_when_every_run_diverges_the_page_still_stands():
    at = finish(page(lr=10.0, activation="relu", layers=3, width=32, epochs=8))
    assert not at.exception
    assert len(live(at).trainer.diverged) == 6 and live(at).trainer.epoch == 2
    assert texts(at).count("diverged at epoch 2") == 6


def test_a_batch_larger_than_the_data_is_clamped_with_a_notice():
    at = page(batch=5000)
    assert not at.exception
    assert live(at).trainer.batch_size == 80                       # 100 points, 20 % held out
    assert "larger than the 80 training points: using 80" in texts(at)


def test_no_method_selected_is_a_message_not_a_traceback():
    at = page(methods=[])
    assert not at.exception
    assert "Cannot train with these settings" in texts(at)


def test_csv_without_a_file_explains_the_format():
    at = page(dataset="csv")
    assert not at.exception
    assert "x1, x2, label" in texts(at)
    assert at.get("download_button")                               # an example CSV to start from


UPLOAD_APP = """
import io
import streamlit as st

class Upload(io.BytesIO):
    name, file_id = "mine.csv", "upload-1"

real = st.file_uploader
st.file_uploader = lambda *args, **kwargs: Upload(CONTENT)
try:
    exec(compile(open(PAGE).read(), PAGE, "exec"), {"__name__": "__main__"})
finally:
    st.file_uploader = real
"""


@pytest.mark.parametrize("content, message", [
    (b"a,b,c\n1,2,3\n", "missing column(s) x1, x2"),
    (b"x1,x2,label\n" + b"1,oops,0\n" * 12, "non-numeric values"),
    (b"x1,x2,label\n" + b"1,2,0\n" * 12, "at least 2 classes"),
])
def test_an_invalid_csv_names_the_problem(content, message):
    script = f"PAGE = {PAGE!r}\nCONTENT = {content!r}\n" + UPLOAD_APP
    at = AppTest.from_string(script, default_timeout=120)
    for key, value in {**TINY, "dataset": "csv"}.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    assert errors.startswith("This CSV cannot be used:") and message in errors


def test_a_valid_csv_trains_with_its_class_names():
    rows = b"".join(b"%.2f,%.2f,%s\n" % (i / 10, (i % 7) / 3, b"cat" if i % 2 else b"dog") for i in range(60))
    script = f"PAGE = {PAGE!r}\nCONTENT = {b'x1,x2,label' + chr(10).encode() + rows!r}\n" + UPLOAD_APP
    at = AppTest.from_string(script, default_timeout=120)
    for key, value in {**TINY, "dataset": "csv"}.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception and not at.error
    trainer = live(at).trainer
    assert trainer.epoch >= 1 and trainer.data.name == "mine.csv" and len(trainer.data.x_train) == 48


def test_opening_the_page_draws_before_it_queues_for_training(monkeypatch):
    """A page's own run shows its picture at once; only the training after it waits for a slot of the
    server-wide queue, so a newcomer never stares at an empty page behind a busy class."""
    import sema_demo.charts.boundaries as boundaries
    from sema_demo.jobs import JobQueue

    events = []
    real_slot, real_view = JobQueue.slot, boundaries.boundary_view_data

    def recording_slot(self, *args, **kwargs):
        events.append("slot")
        return real_slot(self, *args, **kwargs)

    def recording_view(*args, **kwargs):
        events.append("picture")
        return real_view(*args, **kwargs)

    monkeypatch.setattr(JobQueue, "slot", recording_slot)
    monkeypatch.setattr(boundaries, "boundary_view_data", recording_view)
    at = page()
    assert not at.exception and live(at).trainer.epoch >= 1          # it played: it trained in a slot
    assert events[:2] == ["picture", "slot"]


# ------------------------------------------------------- every preset: its words agree with its numbers

QUESTIONS = {"High learning rate": "stability", "Horizon too long": "speed", "Spirals with Adam": "speed"}


def notice(at: AppTest) -> str:
    return next(i.value for i in at.info if i.value.startswith("**What to notice**") and "α =" in i.value)


@pytest.mark.parametrize("preset", list(QUESTIONS))
def test_each_presets_sentences_answer_its_question_and_agree_with_the_table(preset):
    """The real preset (its size and epochs), 5 seeds; trained to the end, then the page drawn once."""
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.session_state["seeds"] = 5
    at.run()
    at.button(key=f"preset::{preset}").click().run()
    trainer = live(at).trainer
    trainer.run()                                                  # to the end (the page's drawing is what is tested)
    at.run()
    assert not at.exception and trainer.done
    text = next(m.value for m in at.markdown if m.value.startswith("**The question here"))
    table = at.dataframe[0].value
    target = at.session_state["target"]
    check(text, table, 5, QUESTIONS[preset], target)
    words = notice(at)
    alpha = at.session_state["alpha"]
    assert f"α = {alpha:g} averages over ≈ {1 / (1 - alpha):,.0f} steps" in words
    assert f"every {trainer.steps_per_epoch} steps" in words          # switch every epoch
    if QUESTIONS[preset] == "speed":
        epochs = table_means(table, f"Epochs to {target}% test accuracy")
        first = next((m for m in epochs if f"{m} was first on average ({epochs[m]:.1f} epochs)" in words), None)
        complete = [m for m, cell in zip(table["Method"], table[f"Epochs to {target}% test accuracy"])
                    if "never" not in str(cell)]
        if complete:
            assert first == min(complete, key=epochs.get), (words, table)
        for m in table["Method"]:
            if m not in complete:
                assert m in words.split("did not reach")[0].split(".")[-1], (m, words)
    else:                                                          # stability: the seed it names fell
        picker = at.selectbox(key="seed_view")
        labels = picker.options                                      # as the page labels them
        if "the deepest fall is" in words:
            seed = int(words.split("Pick seed ")[1].split(" ")[0])
            assert any(label.startswith(f"seed {seed} · ") and "fell" in label for label in labels), labels
        else:
            assert not any("fell" in label for label in labels), labels


def test_the_default_run_with_three_seeds_says_too_few_to_tell():
    at = finish(page(seeds=3))
    text = next(m.value for m in at.markdown if m.value.startswith("**The question here"))
    assert "too few seeds to tell" in text and " is better" not in text and "3 seeds" in text


def test_alpha_zero_says_the_methods_coincide_and_nothing_about_a_lag():
    at = finish(page(alpha=0.0))
    text = next(m.value for m in at.markdown if m.value.startswith("**The question here"))
    assert "0.0 points: they are the same run" in text
    words = " ".join(i.value for i in at.info if i.value.startswith("**What to notice**"))
    assert "α = 0: no averaging" in words and "trail" not in words and "lag" not in words


def test_the_seed_picker_shows_one_seed_and_is_kept_in_the_link():
    at = finish(page())
    at.selectbox(key="seed_view").set_value(1).run()
    assert not at.exception
    assert any(c.value.startswith("Seed 1 of 2") for c in at.caption)
    assert at.query_params["seed_view"] == "1" and live(at).trainer.done     # a view change does not retrain
    specs = [__import__("json").loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    assert [s["title"] for s in specs] == ["Accuracy, seed 1", "Loss, seed 1"]


def test_the_live_speed_paces_the_run():
    at = page(epochs=40, live_speed=0.5)
    start, epoch = __import__("time").monotonic(), live(at).trainer.epoch
    for _ in range(3):
        at.run()
    elapsed = __import__("time").monotonic() - start
    trained = live(at).trainer.epoch - epoch
    assert 3 <= trained <= 3 + int(elapsed * 0.5) + 1                  # one epoch a run, or what the clock allows
    fast = page(epochs=40, live_speed=0.0)                                  # as fast as it trains: several per run
    assert live(fast).trainer.epoch >= 2


def test_a_preset_starts_playing_and_reset_stays_paused():
    at = page()
    at.button(key="toy::reset").click().run()
    assert not live(at).playing and live(at).trainer.epoch == 0
    at.run()
    assert live(at).trainer.epoch == 0                                  # Reset stays paused
    at.button(key="preset::Horizon too long").click()
    for key, value in TINY.items():
        at.session_state[key] = value
    at.run()
    assert live(at).playing and live(at).trainer.epoch >= 1


def test_projector_mode_makes_the_curves_tall_and_their_text_large():
    import json

    from sema_demo.ui import display

    normal = [json.loads(c.proto.spec) for c in page().get("vega_lite_chart")]
    large = [json.loads(c.proto.spec) for c in page(projector=True).get("vega_lite_chart")]
    assert [s["height"] for s in normal] == [260, 260] and [s["height"] for s in large] == [416, 416]
    assert all(s["config"]["axis"]["labelFontSize"] == display.PROJECTOR_FONT["label"] for s in large)
