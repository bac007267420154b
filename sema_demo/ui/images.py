"""Streamlit helpers of the image page: data with a Digits fallback, the download button,
building a run from the controls, the live view, and remembering finished runs.

The whole image set is loaded once per process (``st.cache_resource``: CIFAR-10 is
150 MB of uint8, shared read-only by every session); the subset, its normalisation
and the tensors on the device are rebuilt only when the settings change, by the
live-training helper (``sema_demo.ui.training``).
"""
from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import partial
from typing import Any

import numpy as np
import streamlit as st

from ..charts.images import predicted_classes, prediction_grid
from ..charts.training import diverged_notes
from ..datasets import images as image_data
from ..models import IMAGE_MODEL_NAMES, IMAGE_MODELS
from ..training import Trainer, TrainConfig
from . import display, results
from .common import csv_download, inline_image, plain
from .runs import TrainedRun, remember_run
from .training import is_playing

GRID_IMAGES = 16          # test images in the prediction grid …
GRID_POOL = 1_000         # … chosen among this many (those some method gets wrong first)
TRAIN_EVAL_SIZE = 2_000   # train metrics on at most this many images: keeps big subsets quick per epoch
BUILT = "img_built"       # session key: (settings, data, model_fn) of the current run
GRID = "img_grid"         # session key: the prediction grid's files, drawn once per (run, epoch)
KEY = "images"            # the live-training widget's key


@st.cache_resource(max_entries=3, show_spinner="Loading the images…")
def image_set(name: str, root: str) -> image_data.ImageSet:
    return image_data.load_images(name, root)


@dataclass(frozen=True)
class Choice:
    """The data set the page really uses, and why it is not the one asked for."""

    name: str                       # the set trained on: the wanted one, or "digits"
    wanted: str
    problem: str | None = None      # CIFAR missing or damaged: the page fell back to Digits
    missing: bool = False           # not fetched yet (rather than damaged)

    @property
    def images(self) -> image_data.ImageSet:
        return image_set(self.name, str(image_data.data_root()))


def choose_images(wanted: str) -> Choice:
    """The requested image set, or Digits (always bundled) with the reason when CIFAR cannot be used."""
    try:
        image_set(wanted, str(image_data.data_root()))
        return Choice(wanted, wanted)
    except image_data.DataError as err:
        return Choice("digits", wanted, str(err), missing=isinstance(err, image_data.MissingDataError))


def missing_data_notice(choice: Choice, digits: Mapping[str, Any]) -> None:
    """When the chosen set cannot be used, say so and train nothing (never Digits in its name):
    the fetch command and a download button when it is missing, and a button that switches the
    controls to ``digits`` (the Digits settings, e.g. its own target) for training without it."""
    if choice.problem is None:
        return
    name = image_data.DATASET_NAMES[choice.wanted]
    spec = image_data.CIFAR[choice.wanted]
    st.button("Use the bundled Digits instead", key="img_use_digits", type="primary",
              on_click=lambda: st.session_state.update(digits),
              help="Switch the data set to the 8×8 Digits that ship with the app (and its target accuracy, "
                   f"{digits.get('target', '')} %); nothing needs downloading.")
    if not choice.missing:     # damaged files: fetching again would keep them, so no button
        st.error(f"**{name} could not be read: nothing is trained.** Delete the files and fetch them again, or "
                 f"use the bundled Digits.\n\n{plain(choice.problem)}", icon="🚫")
        return
    st.warning(f"**{name} is not on this computer yet: nothing is trained.** Fetch it once with internet:"
               f"\n```\n{spec.fetch_command}\n```\nor press the download button. Files go to "
               f"`{image_data.data_root()}` (set `${image_data.DATA_ENV}` to use another folder).", icon="📦")
    if not st.button(f"⬇ Download {name} now", key="img_fetch",
                     help=f"Downloads the official {spec.archive} (≈ 170 MB), checks its MD5 and extracts it; "
                          "afterwards the page works offline."):
        return
    bar = st.progress(0.0, text="Downloading…")

    def progress(done: int, total: int) -> None:
        bar.progress(min(done / total, 1.0) if total else 0.0,
                     text=f"Downloading… {done / 1e6:.0f}" + (f" of {total / 1e6:.0f} MB" if total else " MB"))

    try:
        with st.spinner("Downloading, verifying and extracting…"):
            image_data.fetch(spec, progress=progress)
    except image_data.DataError as err:
        st.error(f"The download did not work: {plain(err)}", icon="🚫")
        return
    st.rerun()


@dataclass(frozen=True)
class ImageSettings:
    """Everything a run depends on, from the page's controls (hashable: a change restarts the run)."""

    dataset: str
    per_class: int
    test_size: int
    model: str
    width: int
    augment: bool
    methods: tuple[str, ...]
    seeds: int
    epochs: int
    optimizer: str
    lr: float
    schedule: str
    batch: int
    alpha: float
    switch: int
    device: str

    @classmethod
    def from_state(cls, state: Mapping[str, Any], dataset: str) -> ImageSettings:
        values = {f.name: state[f.name] for f in fields(cls) if f.name != "dataset"}
        return cls(dataset=dataset, **{**values, "methods": tuple(values["methods"])})

    def config(self) -> TrainConfig:
        return TrainConfig(methods=self.methods, seeds=tuple(range(self.seeds)), epochs=self.epochs,
                           batch_size=self.batch, optimizer=self.optimizer, lr=self.lr, schedule=self.schedule,
                           ema_momentum=self.alpha, switch_epochs=self.switch, device=self.device,
                           train_eval_size=TRAIN_EVAL_SIZE, record_paths=True)

    def label(self) -> str:
        return (f"{image_data.DATASET_NAMES[self.dataset]} · {IMAGE_MODEL_NAMES[self.model]} (width {self.width}) · "
                f"{self.per_class}/class · {self.seeds} seed{'s' if self.seeds > 1 else ''}")


def build(choice: Choice, s: ImageSettings):
    """(data, model_fn, config) for ``live_training``; the subset is drawn with seed 0 for every seed."""
    images = choice.images
    data = image_data.make_data(images, s.per_class, s.test_size, seed=0, device=s.device, augment=s.augment)
    model_fn = partial(IMAGE_MODELS[s.model], images.image_shape[0], images.n_classes, s.width)
    st.session_state[BUILT] = (s, data, model_fn)
    return data, model_fn, s.config()


def eta_caption(trainer: Trainer) -> str:
    """'0.42 s per epoch on cpu · about 5 s left', from the epochs measured so far."""
    seconds = {row["epoch"]: row["seconds"] for row in trainer.history}
    if not seconds:
        return f"Press ▶ to train on {trainer.device}."
    per_epoch = sorted(seconds.values())[len(seconds) // 2]
    left = per_epoch * (trainer.config.epochs - trainer.epoch)
    text = f"{per_epoch:.2f} s per epoch on {trainer.device}"
    return text + (f" · about {left:,.0f} s left" if not trainer.done and left >= 0.5 else "")


def draw(trainer: Trainer, choice: Choice, s: ImageSettings, threshold: float, question: str,
         seed: int | None) -> None:
    """Curves every tick; the results, the notice and the prediction grid once paused or finished."""
    frame = trainer.frame()
    playing = is_playing(KEY)
    chance = 1 / choice.images.n_classes
    st.caption(eta_caption(trainer))
    table = not (frame.empty or playing)
    figures = results.figures(trainer, seed, threshold=threshold, question=question, chance=chance, alpha=s.alpha,
                              switch_steps=s.switch * trainer.steps_per_epoch, height=300, table=table)
    results.curves(figures)
    st.caption("Solid: test set; dashed: training set (without augmentation); band: ± std over seeds; faint "
               "vertical lines: SEMA switches θ ← φ. EMA and SEMA are measured on their averaged weights φ.")
    for note in diverged_notes(frame):
        st.error(note + "; the other runs continue.", icon="💥")
    results.notice(figures)
    if not table:
        return
    st.subheader("Results")
    results.results(figures)
    csv_download(frame, "image_metrics", label="⬇ Metrics (CSV)")
    prediction_panel(trainer, choice, s, seed or 0)


def prediction_panel(trainer: Trainer, choice: Choice, s: ImageSettings, seed: int) -> None:
    st.subheader(f"Test images and each method's guess (seed {seed})")
    files = _grid_files(trainer, choice, s, seed)
    if files is None:
        st.caption("Every run of this seed diverged: there are no predictions to show.")
        return
    png, svg, note = files
    st.image(inline_image(png, "image/png"), width="content")
    st.caption(f"Bold: the true class. Below it, each method's guess from its evaluated weights (φ for EMA and "
               f"SEMA): ✓ right, ✗ wrong. {note}")
    left, right = st.columns(2)
    left.download_button("⬇ PNG", png, "image_predictions.png", "image/png", key="dl::grid.png", width="stretch")
    right.download_button("⬇ SVG", svg, "image_predictions.svg", "image/svg+xml", key="dl::grid.svg",
                          width="stretch")


def _grid_files(trainer: Trainer, choice: Choice, s: ImageSettings, seed: int) -> tuple[bytes, bytes, str] | None:
    """PNG, SVG and a note for the prediction grid, drawn once per (run, epoch) and kept in the
    session, so other reruns (a download, the X % slider) cost nothing.  Images that some
    method gets wrong come first: they are the ones worth looking at."""
    scale = display.font_scale()
    key = (id(trainer), trainer.epoch, s, seed, scale)
    cached = st.session_state.get(GRID)
    if cached is not None and cached[0] == key:
        return cached[1]
    _, data, _ = st.session_state[BUILT]
    models = trainer.models()
    pool = min(GRID_POOL, len(data.x_test))
    preds = {m: predicted_classes(models[(m, seed)], data.x_test[:pool]) for m in trainer.config.methods
             if (m, seed) not in trainer.diverged}
    if not preds:
        return None
    truth = data.y_test[:pool].cpu().numpy()
    missed = np.any([p != truth for p in preds.values()], axis=0)
    shown = np.concatenate([np.flatnonzero(missed), np.flatnonzero(~missed)])[:GRID_IMAGES]
    images = choice.images
    _, test = image_data.subset_indices(images, s.per_class, s.test_size, seed=0)   # the rows of data.x_test
    figure = prediction_grid(images.x_test[test[shown]], truth[shown], {m: p[shown] for m, p in preds.items()},
                             images.classes, columns=8 if scale == 1 else 4, font_scale=scale)
    files = []
    for fmt in ("png", "svg"):
        buf = io.BytesIO()
        figure.savefig(buf, format=fmt, dpi=100, bbox_inches="tight")
        files.append(buf.getvalue())
    note = (f"Shown first: the test images that at least one method gets wrong ({missed.sum()} of the first "
            f"{pool})." if missed.any() else f"Every method gets all of the first {pool} test images right.")
    st.session_state[GRID] = (key, (*files, note))
    return (*files, note)


def remember(trainer: Trainer, s: ImageSettings) -> None:
    """Keep the finished run so that the landscape page can study it."""
    built, data, model_fn = st.session_state[BUILT]
    if built == s:
        remember_run(TrainedRun(label=s.label(), source="images", data=data, model_fn=model_fn,
                                config=trainer.config, models=trainer.models(), paths=trainer.recorder))
