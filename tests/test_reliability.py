"""Bad input gets a clear message, never a traceback: the rows of docs/RELIABILITY.md.

Each test here is one row of that table (the other rows name tests in the page and library
test files).  Pages run under AppTest with tiny settings; library calls are checked for the
exact error they raise.
"""
from __future__ import annotations

import ast
import dataclasses
import gzip
import io
import math
import pickle
import tomllib

import numpy as np
import pytest
import streamlit as st
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from conftest import PAGES_DIR, ROOT
from fake_cifar import py2_pickle, write_cifar_folder
from sema_demo import SwitchEMA, models
from sema_demo.datasets import images as image_data
from sema_demo.datasets.toy import MAX_CSV_ROWS, CSVError, csv_data, read_csv, toy_data
from sema_demo.jobs import JobQueue
from sema_demo.training import Trainer, TrainConfig
from sema_demo.ui.common import MAX_QUERY_LENGTH, Param

TOY_TINY = {"size": "100", "epochs": "6", "seeds": "2", "width": "8", "batch": "16"}
IMAGES_TINY = {"per_class": "5", "test_size": "20", "epochs": "2", "width": "8", "batch": "16", "seeds": "1"}
LANDSCAPE_TINY = {"steps": "11", "points": "200", "hutchinson": "8"}
TINY = {"toy_datasets": TOY_TINY, "images": IMAGES_TINY, "landscape": LANDSCAPE_TINY,
        "playground": {"steps": "200"}, "theory": {"nqm_steps": "200", "nqm_samples": "20"}}


def open_page(name: str, **query) -> AppTest:
    """Run ``app_pages/<name>.py`` once with its tiny settings and ``query`` as the link's parameters."""
    at = AppTest.from_file(str(PAGES_DIR / f"{name}.py"), default_timeout=180)
    for key, value in {**TINY.get(name, {}), **query}.items():
        at.query_params[key] = value
    return at.run()


def texts(at: AppTest) -> str:
    """Every message, caption and text the page shows, sidebar included."""
    kinds = ("markdown", "caption", "info", "warning", "error", "success", "toast")
    return " ".join(str(e.value) for kind in kinds for e in getattr(at, kind))


def rerun_until_finished(at: AppTest, key: str, reruns: int = 12) -> AppTest:
    """Every rerun of a live-training page trains on (nothing ticks under AppTest)."""
    for _ in range(reruns):
        if at.session_state[f"{key}::live"].trainer.done:
            break
        at.run()
    return at


@pytest.fixture
def no_cifar(tmp_path, monkeypatch):
    """An empty $SEMA_DEMO_DATA: CIFAR has not been fetched."""
    monkeypatch.setenv(image_data.DATA_ENV, str(tmp_path))
    return tmp_path


# --------------------------------------------------------------------------- diverging learning rates

def test_images_page_reports_a_diverged_run_and_trains_the_others(no_cifar, monkeypatch):
    # lr ≤ 0.5 (the slider's maximum) never blows up these BatchNorm networks, so seed 1 is made to
    # diverge by non-finite initial weights; the page must say so and train seed 0 to the end.
    real = models.IMAGE_MODELS["cnn"]

    def cnn_nan_for_seed_1(channels, n_classes, width):
        net = real(channels, n_classes, width)
        if torch.initial_seed() == 1:        # the engine seeds torch with the run's seed first
            with torch.no_grad():
                for p in net.parameters():
                    p.fill_(float("nan"))
        return net

    monkeypatch.setitem(models.IMAGE_MODELS, "cnn", cnn_nan_for_seed_1)
    at = rerun_until_finished(open_page("images", seeds="2"), "images")
    assert not at.exception
    trainer = at.session_state["images::live"].trainer
    assert set(trainer.diverged) == {("sgd", 1), ("ema", 1), ("sema", 1)} and trainer.epoch == 2
    for method in ("SGD", "EMA", "SEMA"):
        assert f"{method} (seed 1) diverged at epoch 1; the other runs continue." in texts(at)


def test_engine_refuses_learning_rates_that_are_not_positive_numbers():
    for lr in (float("nan"), float("inf"), 0.0, -0.1):
        with pytest.raises(ValueError, match="lr must be a positive number"):
            TrainConfig(lr=lr)


# -------------------------------------------------------------------------- α = 0, α → 1, switch interval

def test_alpha_one_is_refused_and_alpha_near_one_warns_about_the_horizon():
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\)"):
        SwitchEMA(torch.nn.Linear(2, 2), momentum=1.0)
    with pytest.raises(ValueError, match="ema_momentum α must be in"):
        TrainConfig(ema_momentum=1.0)
    at = open_page("playground", alpha="1.0")                 # not on the slider: the default, with a notice
    assert not at.exception and at.session_state["alpha"] == 0.99
    assert "`alpha` is not one of the choices; using 0.99" in texts(at)
    at = open_page("playground", alpha="0.9999")
    assert not at.exception
    assert "The EMA horizon (≈ 10,000 steps) is much longer than the switch interval (50 steps)" in texts(at)


def test_switch_interval_zero_is_raised_to_one_or_refused():
    at = open_page("playground", switch_every="0")
    assert not at.exception and at.session_state["switch_every"] == 1
    assert "`switch_every` was below 1 and was raised to it" in texts(at)
    at.run()                                                   # the notice stays while 1 is in use …
    assert "`switch_every` was below 1" in texts(at)
    at.sidebar.number_input(key="switch_every").set_value(3).run()
    assert "could not be used" not in texts(at)                # … and goes once the student sets it
    at = open_page("toy_datasets", switch="0")
    assert not at.exception and at.session_state["switch"] == 1
    with pytest.raises(ValueError, match="switch_every must be an integer >= 1"):
        SwitchEMA(torch.nn.Linear(2, 2), switch_every=0)
    with pytest.raises(ValueError, match="switch_epochs must be an integer >= 1"):
        TrainConfig(switch_epochs=0)


@pytest.mark.parametrize("name, query", [
    ("toy_datasets", {"epochs": "5", "switch": "20"}),
    ("images", {"epochs": "1", "switch": "5"}),
])
def test_training_pages_say_when_the_switch_interval_is_longer_than_the_run(name, query, no_cifar):
    at = open_page(name, **query)
    assert not at.exception
    assert "no switch happens" in texts(at), "SEMA never switches here, so it is exactly EMA: the page must say so"


# ------------------------------------------------------------------------------- subsets and batches

def test_empty_subsets_are_raised_to_the_minimum_or_refused(no_cifar):
    at = open_page("images", per_class="0")
    assert not at.exception and at.session_state["per_class"] == 1
    assert "`per_class` was below 1 and was raised to it" in texts(at)
    digits = image_data.load_images("digits")
    with pytest.raises(ValueError, match="need at least 1 training image per class and 10 test images"):
        image_data.make_data(digits, per_class=0, test_size=20)
    with pytest.raises(ValueError, match="need at least 1 training image per class and 10 test images"):
        image_data.make_data(digits, per_class=5, test_size=5)


def test_huge_subsets_use_what_there_is_with_a_notice(no_cifar):
    at = open_page("images", per_class="5000", epochs="1")
    assert not at.exception
    most = int(np.bincount(image_data.load_images("digits").y_train).min())
    assert f"Digits (8×8, bundled) has only {most} per class: all of them are used." in texts(at)
    at = open_page("toy_datasets", size="1000000000")
    assert not at.exception and at.session_state["size"] == 5000
    assert "`size` was above 5000 and was lowered to it" in texts(at)


# ------------------------------------------------------------------------------------------- CIFAR

def test_tampered_cifar_pickle_is_refused_on_the_page_and_runs_nothing(no_cifar, monkeypatch):
    class RunsCode:
        def __reduce__(self):
            import os
            return os.system, ("echo pwned > pwned.txt",)

    monkeypatch.chdir(no_cifar)
    folder = write_cifar_folder(no_cifar, "cifar10")
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": RunsCode()}, protocol=2))
    at = open_page("images", dataset="cifar10", epochs="1")
    assert not at.exception
    error = " ".join(e.value for e in at.error)
    assert "CIFAR-10 could not be read: nothing is trained." in error
    assert "batches.meta was refused: it asks for the unexpected global posix.system, which could run code" in error
    assert not (no_cifar / "pwned.txt").exists()


# --------------------------------------------------------------------------------------- CSV uploads

def test_a_csv_with_values_beyond_float32_is_refused():
    # 1e308 is a finite float64 but overflows to inf in the float32 tensors the network trains on.
    text = b"x1,x2,label\n" + b"1e308,2,0\n-1e308,3,1\n" * 10
    with pytest.raises(CSVError, match="x1"):
        csv_data(text)


def test_a_million_row_csv_is_refused_after_reading_only_the_allowed_rows():
    blob = b"x1,x2,label\n" + b"0.5,1.5,0\n1.5,0.5,1\n" * 500_000       # 10^6 rows, 10 MB
    assert len(blob) > 5 * 2**20, "the browser uploader refuses it first (maxUploadSize = 5 MB)"
    with pytest.raises(CSVError, match=f"more than {MAX_CSV_ROWS:,} rows"):
        read_csv(blob)


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize("blob, message", [
    (_png(), "could not be read as CSV"),
    (gzip.compress(b"x1,x2,label\n" + b"1,2,0\n" * 20), "could not be read as CSV"),
    (np.random.default_rng(0).bytes(4000), "could not be read as CSV"),
    ("x1,x2,label\n".encode("utf-16") + "1,2,0\n".encode("utf-16") * 20, "could not be read as CSV"),
    (b'x1,x2,label\n"1,2,0\n' + b"1,2,1\n" * 20, "could not be read as CSV"),
    (b"<html><script>alert(1)</script></html>", "missing column"),
    (b"\x00" * 1000, "missing column"),
    (b"x1;x2;label\n" + b"1;2;0\n1;3;1\n" * 10, "missing column"),
], ids=["png", "gzip", "random-bytes", "utf-16", "open-quote", "html", "nul-bytes", "semicolons"])
def test_a_file_that_is_not_a_csv_is_named_as_such(blob, message):
    with pytest.raises(CSVError, match=message):
        csv_data(blob)


# ------------------------------------------------------------------------------- hostile links

def test_unknown_link_keys_are_ignored_and_dropped_from_the_url():
    at = open_page("theory", nqm_lr="0.2", bogus="1", __proto__="x")
    assert not at.exception and at.session_state["nqm_lr"] == 0.2
    assert "could not be used" not in texts(at)
    assert dict(at.query_params) == {"nqm_lr": "0.2", "nqm_steps": "200", "nqm_samples": "20"}


def test_very_long_link_values_are_ignored_with_a_notice():
    assert Param(0, lo=0, hi=10).parse("1" * (MAX_QUERY_LENGTH + 1)) == (0, "was too long")
    at = open_page("playground", seed="7" * 5000, landscape="v" * 100_000)
    assert not at.exception
    assert (at.session_state["seed"], at.session_state["landscape"]) == (0, "two_basins")
    assert "`seed` was too long; using 0" in texts(at) and "`landscape` was too long" in texts(at)


def test_script_tags_in_a_link_are_never_echoed_back():
    at = open_page("toy_datasets", dataset="<script>alert(1)</script>", methods="sgd,<img src=x onerror=alert(1)>")
    assert not at.exception
    assert at.session_state["dataset"] == "moons" and at.session_state["methods"] == ["sgd", "ema", "sema"]
    shown = texts(at)
    assert "`dataset` is not one of the choices; using moons" in shown
    assert "<script" not in shown and "onerror" not in shown


# ------------------------------------------------------------------------------------------ devices

def test_cuda_requested_but_absent_is_a_message(no_cifar, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)     # also on a machine with a GPU
    at = open_page("images", device="cuda")
    assert not at.exception
    assert "Cannot train with these settings: device 'cuda' was requested but is not available here; " \
           "available: cpu" in texts(at)
    assert at.selectbox(key="device").format_func("cuda") == "cuda (not available)"


# ------------------------------------------------------------------------------ stopping, two tabs

def test_stop_pressed_mid_epoch_ends_after_a_whole_epoch():
    """Stop arrives while an epoch trains: that epoch completes, nothing half-done is kept."""
    trainer = Trainer(toy_data("moons", n=400, seed=0), lambda: models.mlp(2, (16,), 2),
                      TrainConfig(epochs=50, batch_size=8, seeds=(0, 1)))
    real_step, steps = trainer._engine.step, []

    def step(*args):
        steps.append(trainer.epoch)
        if len(steps) == trainer.steps_per_epoch + 5:    # the 5th step of the 2nd epoch
            trainer.stop()                               # what the ⏹ Stop button calls
        return real_step(*args)

    trainer._engine.step = step
    trainer.run()
    assert trainer.done and trainer.stopped and trainer.epoch == 2
    assert len(steps) == 2 * trainer.steps_per_epoch, "the epoch that was running finished"
    frame = trainer.frame()
    assert len(frame) == 2 * len(trainer.runs) and frame.test_acc.notna().all()
    assert all(torch.isfinite(p).all() for net in trainer.models().values() for p in net.parameters())
    assert trainer.run_epoch() == [] and trainer.epoch == 2


def test_two_tabs_of_one_browser_keep_separate_runs():
    """Every browser tab is its own Streamlit session: pausing or changing one leaves the other alone."""
    first, second = open_page("toy_datasets", epochs="60"), open_page("toy_datasets", epochs="60")
    run_a, run_b = first.session_state["toy::live"], second.session_state["toy::live"]
    assert run_a.trainer is not run_b.trainer and run_a.playing and run_b.playing
    first.button(key="toy::play").click().run()                     # pause the first tab
    first.slider(key="noise").set_value(0.5).run()                  # and change a control there
    epoch_b = second.session_state["toy::live"].trainer.epoch
    second.run()
    assert not first.exception and not second.exception
    assert second.session_state["toy::live"].playing and second.session_state["toy::live"].trainer.epoch > epoch_b
    assert second.session_state["noise"] == 0.3 and first.session_state["noise"] == 0.5
    assert second.session_state["toy::live"].trainer is run_b.trainer


# ------------------------------------------------------------------------- a classroom on one server

@pytest.mark.parametrize("name", ["playground", "theory", "toy_datasets", "images", "landscape"])
def test_heavy_work_of_every_page_waits_for_a_job_slot(name, no_cifar, monkeypatch):
    """Training and simulations take a slot of the server-wide queue (sema_demo.ui.jobs.heavy_job),
    so a classroom shares the cores in turn and a new visitor's page still draws."""
    taken = []
    real_slot = JobQueue.slot

    def counting_slot(self, *args, **kwargs):
        taken.append(name)
        return real_slot(self, *args, **kwargs)

    monkeypatch.setattr(JobQueue, "slot", counting_slot)
    st.cache_data.clear()                            # a cache hit rightly takes no slot
    at = open_page(name)
    assert not at.exception
    assert taken, f"{name}: its heavy work ran without taking a slot of the job queue"


# -------------------------------------------------------------------------------- safe defaults

def test_streamlit_config_has_safe_classroom_defaults():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    server = config["server"]
    assert 1 <= server["maxUploadSize"] <= 10            # MB: enough for a 50,000-row CSV, no more
    assert server["enableXsrfProtection"] is True
    assert server["runOnSave"] is False and server["fileWatcherType"] == "none"
    assert config["client"]["showErrorDetails"] in ("none", "type")   # never a traceback on screen
    assert config["client"]["toolbarMode"] == "viewer"
    assert config["browser"]["gatherUsageStats"] is False
    assert "enableCORS" not in server, "CORS stays on (Streamlit's default)"


def _raw_html_calls(path) -> list[str]:
    """``unsafe_allow_html=True``, ``st.html`` and ``components.html`` calls in one source file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not isinstance(node, ast.Call):
            continue
        if any(k.arg == "unsafe_allow_html" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
               for k in node.keywords):
            found.append(f"{path.name}:{node.lineno} unsafe_allow_html")
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("html", "iframe"):
            found.append(f"{path.name}:{node.lineno} .{node.func.attr}()")
    return found


def test_no_page_renders_raw_html():
    """No raw HTML at all (so none with user text): every text goes through Streamlit's escaping."""
    sources = [ROOT / "app.py", *PAGES_DIR.glob("*.py"), *(ROOT / "sema_demo").rglob("*.py")]
    assert len(sources) > 20
    assert [hit for path in sources for hit in _raw_html_calls(path)] == []


# ------------------------------------------------------------------------------ bad input, round two

def _bn_running_var_inf(channels, n_classes, width):
    """A CNN whose BatchNorm running variance is already infinite: its weights and losses stay
    finite (eval divides by √inf), so only the buffers show that the run is broken."""
    net = models.small_cnn(channels, n_classes, width)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_var.fill_(float("inf"))
    return net


def test_non_finite_buffers_mark_a_run_diverged_in_the_engine_and_on_the_page(no_cifar, monkeypatch):
    digits = image_data.make_data(image_data.load_images("digits"), 5, 20, device="cpu")
    trainer = Trainer(digits, lambda: _bn_running_var_inf(1, 10, 4),
                      TrainConfig(methods=("sgd", "ema", "sema"), seeds=(0,), epochs=2, device="cpu"))
    rows = trainer.run_epoch()
    assert all(p.isfinite().all() for run in trainer._engine.runs.values() for p in run.model.parameters())
    assert [row["diverged"] for row in rows] == [True] * 3 and trainer.done
    monkeypatch.setitem(models.IMAGE_MODELS, "cnn", _bn_running_var_inf)
    at = rerun_until_finished(open_page("images", epochs="1"), "images")
    assert not at.exception
    assert "SEMA (seed 0) diverged at epoch 1; the other runs continue." in texts(at)


@pytest.mark.parametrize("batched", [True, False], ids=["batched-path", "generic-path"])
def test_a_non_finite_test_loss_under_finite_weights_marks_the_run_diverged(batched):
    data = toy_data("moons", n=200, seed=0)
    data.x_test[0] = float("inf")         # training never sees it: only the test loss turns NaN
    trainer = Trainer(data, lambda: models.mlp(2, (16,), 2), TrainConfig(methods=("sgd", "ema"), epochs=3),
                      batched=batched)
    rows = trainer.run_epoch()
    assert trainer.batched is batched and bool(trainer._engine.finite(trainer.runs).all()), "weights are fine"
    assert all(row["diverged"] and math.isnan(row["test_loss"]) for row in rows) and trainer.done


def test_a_cifar_folder_with_bad_contents_trains_nothing_and_names_the_file(no_cifar):
    folder = write_cifar_folder(no_cifar, "cifar10")
    (folder / "data_batch_4").write_bytes(py2_pickle({b"labels": [b"cat"] * 4,
                                                      b"data": np.zeros((4, 3072), np.uint8)}))
    at = open_page("images", dataset="cifar10", epochs="1")
    assert not at.exception
    error = " ".join(e.value for e in at.error)
    assert "CIFAR-10 could not be read: nothing is trained." in error
    assert "data_batch_4 does not look like a cifar10 batch" in error
    assert "images::live" not in at.session_state and at.button(key="img_use_digits")   # Digits only when asked


@dataclasses.dataclass
class FakeUpload:
    """What st.file_uploader returns, for a page under AppTest (which cannot upload)."""
    name: str
    data: bytes

    def getvalue(self) -> bytes:
        return self.data


HOSTILE_CELL = "[x](https://evil.example/a) ![i](http://evil.example/t.png) <b>b</b> $x$ :red[r] `c`"


@pytest.mark.parametrize("csv", [
    f"x1,x2,label\n{HOSTILE_CELL},2,0\n" + "1,2,1\n" * 20,
    f"{HOSTILE_CELL},x2,label\n" + "1,2,1\n" * 20,
], ids=["cell", "header"])
def test_markdown_in_a_csv_is_shown_as_plain_text(monkeypatch, csv):
    monkeypatch.setattr(st, "file_uploader", lambda *a, **k: FakeUpload("evil.csv", csv.encode()))
    at = open_page("toy_datasets", dataset="csv")
    assert not at.exception
    code = at.error[0].value.removeprefix("This CSV cannot be used: ")
    fence = code[:len(code) - len(code.lstrip("`"))]
    assert fence and code.startswith(fence + " ") and code.endswith(" " + fence)
    assert fence not in code[len(fence):-len(fence)], \
        "all of the message, user text included, is one code span: markdown makes nothing of it"
    assert "[x](https://evil.example/a)" in code


def test_plain_text_survives_backticks_and_newlines():
    from sema_demo.ui.common import plain

    assert plain("a `b` ``c``") == "``` a `b` ``c`` ```"
    assert plain("two\nlines") == "` two lines `"


def test_train_config_refuses_non_finite_weight_decay_boolean_counts_and_huge_seeds():
    for decay in (float("nan"), float("inf"), -1.0):
        with pytest.raises(ValueError, match="weight_decay must be a finite number >= 0"):
            TrainConfig(weight_decay=decay)
    with pytest.raises(ValueError, match="epochs must be an integer >= 1, got True"):
        TrainConfig(epochs=True)
    with pytest.raises(ValueError, match=r"seeds must lie in 0..2\*\*63 - 1"):
        TrainConfig(seeds=(99999999999999999999,))
    with pytest.raises(ValueError, match="pick at least one method from sgd, ema, sema"):
        TrainConfig(methods=())


def test_a_model_without_parameters_is_a_clear_error():
    with pytest.raises(ValueError, match="model_fn\\(\\) must return an nn.Module with parameters to train; "
                                         "got Sequential with none"):
        Trainer(toy_data("moons", n=100), lambda: torch.nn.Sequential(), TrainConfig(epochs=1))


def test_an_empty_methods_link_says_to_pick_a_method():
    at = open_page("toy_datasets", methods="")
    assert not at.exception
    assert "pick at least one method" in texts(at) and "got ()" not in texts(at)


def test_dollar_signs_in_csv_labels_are_drawn_literally_not_as_mathtext():
    import io

    from sema_demo.charts.boundaries import boundary_panels, boundary_view_data

    labels = ["$\\frac{$", "$\\undefinedcommand$"]              # mathtext that cannot parse
    rows = "".join(f"{i},{i % 3},{labels[i % 2]}\n" for i in range(20))
    data, classes = csv_data(("x1,x2,label\n" + rows).encode())
    assert classes == sorted(labels)
    out = io.BytesIO()                                          # the download's PNG (matplotlib)
    boundary_panels({"sgd": None, "sema": None}, data, (-3, 3, -3, 3), class_names=classes).savefig(out, format="png")
    assert out.getvalue()[:4] == b"\x89PNG"
    # the live view: the browser writes the names as text (textContent), so they travel unchanged
    view = boundary_view_data({"sgd": None, "sema": None}, data, (-3, 3, -3, 3), class_names=classes)
    assert view["class_names"] == classes
