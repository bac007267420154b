"""The "Paths on the loss surface" panel: the recorded weight paths of a run, drawn in a plane of
weight space over the network's own loss surface (``sema_demo.paths``).

    PARAMS = {..., **paths_params()}           # the page binds the panel's controls to the URL too
    paths_panel("toy", source_from_trainer(trainer, "toy"))     # inside the live view's draw()

While the run trains, the panel redraws the paths, epoch by epoch, in the plane through the
current solutions (no surface: that would cost a grid of forward passes per tick).  Once the
run has finished (or on request when paused) it computes the surface under the job queue,
once per (run, plane, resolution, reach, loss), and animates the paths on the contours with
play, pause and a scrubber, as the playground does.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st
import torch
from PIL import Image

from ..charts.paths import frame_steps, paths_background, paths_figure, render_paths_frame
from ..charts.style import METHOD_NAMES
from ..paths import (PATH_COLUMNS, PLANES, PathRecorder, path_notes, point_losses, probe_subset, study_paths,
                     surface_grid)
from .common import Param, csv_download, figure_downloads, inline_image, what_to_notice
from .jobs import heavy_job

GRIDS = (11, 15, 21, 31, 41, 61)
REACHES = (0.05, 0.1, 0.25, 0.5, 1.0)
LOSSES = {"train": "training loss", "test": "test loss"}
FPS = 8                   # animation frames per second while playing
FRAMES = 120              # an animation shows about this many frames, whatever the snapshot count
MAX_CACHED = 4


def paths_params(grid: int = 31) -> dict[str, Param]:
    """The panel's URL-bound controls (the page merges them into its own PARAMS); ``grid`` is the
    default resolution (the image page's CNN costs a forward pass per point: 21; the Flatness page: 41)."""
    return {"paths_plane": Param("solutions", choices=tuple(PLANES)),
            "paths_grid": Param(grid, choices=GRIDS),
            "paths_reach": Param(0.25, choices=REACHES),
            "paths_loss": Param("train", choices=tuple(LOSSES))}


@dataclass
class PathSource:
    """What the panel draws from: a trainer of this page, or a run remembered by another."""

    recorder: PathRecorder | None
    models: dict                 # (method, seed) -> evaluated network
    data: Any                    # x_train, y_train, x_test, y_test (tensors)
    steps_per_epoch: int
    seed: int
    training: bool               # still playing: draw the growing paths only
    finished: bool               # all epochs done (or stopped): compute the surface at once


def source_from_trainer(trainer, playing: bool) -> PathSource:
    return PathSource(trainer.recorder, trainer.models(), trainer, trainer.steps_per_epoch, trainer.config.seeds[0],
                      training=playing, finished=trainer.done)


def source_from_run(run, compute_now: bool = True) -> PathSource:
    """A remembered run; ``compute_now=False`` makes the panel wait for a click before the surface."""
    recorder = getattr(run, "paths", None)
    steps = recorder.steps_per_epoch if recorder is not None else 1
    return PathSource(recorder, run.models, run.data, steps, run.config.seeds[0], training=False,
                      finished=compute_now)


def _has_batchnorm(models: dict) -> bool:
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for net in models.values() for m in net.modules())


def _to_url(key: str, default: Any) -> None:
    """The panel reruns alone (a fragment), so it writes its own controls into the URL."""
    value = st.session_state[key]
    if value == default:
        st.query_params.pop(key, None)
    else:
        st.query_params[key] = str(value)


def _controls(grid: int) -> None:
    params = paths_params(grid)
    plane, grid, reach, loss = st.columns([1.3, 1, 1, 1])
    common = {"on_change": _to_url}
    plane.selectbox("Plane", tuple(PLANES), key="paths_plane", format_func=lambda p: PLANES[p].capitalize(),
                    args=("paths_plane", params["paths_plane"].default), **common,
                    help="Through the three solutions: SGD's θ, EMA's φ and SEMA's φ at the end all lie in it. "
                         "Principal directions: the two directions along which the recorded paths vary most.")
    grid.select_slider("Grid points per axis", GRIDS, key="paths_grid", args=("paths_grid",
                       params["paths_grid"].default), **common,
                       help="Resolution of the loss surface: more points, finer contours, slower.")
    reach.select_slider("Margin around the paths", REACHES, key="paths_reach", format_func=lambda r: f"{r:.0%}",
                        args=("paths_reach", params["paths_reach"].default), **common,
                        help="How far the surface reaches beyond the paths, as a share of their extent.")
    loss.radio("Surface", tuple(LOSSES), key="paths_loss", format_func=LOSSES.get, horizontal=True,
               args=("paths_loss", params["paths_loss"].default), **common,
               help="The loss drawn under the paths: on the training examples or the held-out test examples.")


def paths_panel(key: str, source: PathSource, grid: int = 31) -> None:
    """The whole panel: heading, controls, live paths or the animated surface, notes and exports."""
    st.subheader("Paths on the loss surface")
    if source.recorder is None:
        st.info("This run did not record its weight paths. Train it again on its page to draw them here.")
        return
    if source.recorder.skipped:
        st.info(f"Paths were not recorded: {source.recorder.skipped}.", icon="📏")
        return
    _controls(grid)
    s = st.session_state
    if source.training:
        _live(source, s.paths_plane)
        return
    if not source.finished and not st.button("🗺️ Compute the surface now", key=f"{key}::paths_go",
                                              help="Measure the loss on the grid for the run as it is now."):
        _live(source, s.paths_plane)
        return
    try:
        drawn = _drawn(key, source, s.paths_plane, s.paths_grid, s.paths_reach, s.paths_loss)
    except ValueError as err:
        st.info(f"Nothing to draw yet: {err}.", icon="ℹ️")
        return
    _animation(key, drawn, source.steps_per_epoch)
    _caption(drawn, source)
    what_to_notice("\n\n".join(path_notes(drawn.study, drawn.points, METHOD_NAMES)))
    left, right = st.columns([2, 1], vertical_alignment="bottom")
    figure_downloads(drawn.figure(), f"sema_paths_{key}", container=left)
    csv_download(drawn.study.frame[PATH_COLUMNS], f"sema_paths_{key}", "⬇ Projected paths (CSV)", container=right)


def _live(source: PathSource, plane: str) -> None:
    """The paths so far in the plane of the current solutions (no surface while training)."""
    try:
        study = study_paths(source.recorder, source.models, source.seed, plane)
    except ValueError:
        st.caption("The paths appear here after the first epoch.")
        return
    png = io.BytesIO()
    paths_figure(study, size=(7.5, 5.2)).savefig(png, format="png", dpi=90)
    st.image(inline_image(png.getvalue(), "image/png"), width="stretch")
    st.caption(f"Seed {source.seed}, plane {PLANES[plane]} of the current weights, redrawn every epoch; the loss "
               "surface under them is measured when training ends.")


@dataclass
class _Drawn:
    study: Any
    grid: Any
    points: list
    background: Any
    n_points: int

    def figure(self):
        return paths_figure(self.study, self.grid, self.points)


def _drawn(key: str, source: PathSource, plane: str, resolution: int, reach: float, split: str) -> _Drawn:
    """Study, surface and background, computed once per settings under the job queue."""
    cache: dict = st.session_state.setdefault(f"{key}::paths_cache", {})
    ident = (id(source.recorder), len(source.recorder.steps), source.seed, plane, resolution, reach, split)
    if ident not in cache:
        d = source.data
        x, y = probe_subset(d.x_train, d.y_train) if split == "train" else probe_subset(d.x_test, d.y_test)
        if len(x) == 0:
            raise ValueError("there are no test examples")
        xt, yt = probe_subset(d.x_train, d.y_train)
        measuring = f"Measuring the {LOSSES[split]} on a {resolution}×{resolution} grid…"
        with st.spinner(measuring), heavy_job("measurements"):
            study = study_paths(source.recorder, source.models, source.seed, plane)
            points = point_losses(study, source.models, xt, yt)
            model = source.models[(points[0]["method"], source.seed)]
            grid = surface_grid(study, model, x, y, resolution, reach, split)
            background = paths_background(study, grid, points)
        cache[ident] = _Drawn(study, grid, points, background, len(x))
        while len(cache) > MAX_CACHED:
            cache.pop(next(iter(cache)))
    return cache[ident]


def _frame_url(image: Image.Image) -> str:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return inline_image(out.getvalue())


def _animation(key: str, drawn: _Drawn, steps_per_epoch: int) -> None:
    """The paths growing on the contours: play, pause, step back to the start, and a scrubber."""
    steps = frame_steps(drawn.study)
    stride = max(1, len(steps) // FRAMES)
    state = st.session_state
    at, playing_key, scrub = f"{key}::paths_at", f"{key}::paths_playing", f"{key}::paths_scrub"
    state.setdefault(playing_key, False)
    if at not in state or state[at] >= len(steps):
        state[at] = len(steps) - 1                 # open on the finished run: the whole story
    playing = state[playing_key]

    def play_pause() -> None:
        if not state[playing_key] and state[at] >= len(steps) - 1:
            state[at] = 0                          # at the end: play again from the start
        state[playing_key] = not state[playing_key]

    def rewind() -> None:
        state[playing_key], state[at] = False, 0

    def scrubbed() -> None:
        if not state[playing_key]:
            state[at] = int(np.searchsorted(steps, state[scrub]))

    @st.fragment(run_every=1 / FPS if playing else None)
    def frame() -> None:
        if state[playing_key] != playing:          # the ticking must change: rerun the panel once
            st.rerun()
        if playing:
            state[at] = min(state[at] + stride, len(steps) - 1)
            if state[at] >= len(steps) - 1:
                state[playing_key] = False
                st.rerun()
        step = int(steps[state[at]])
        st.image(_frame_url(render_paths_frame(drawn.background, drawn.study, step, steps_per_epoch)),
                 width="stretch")
        if playing:
            st.progress(state[at] / max(len(steps) - 1, 1), text=f"Step {step:,} of {int(steps[-1]):,}")
        else:
            state[scrub] = step
            st.select_slider("Step shown", options=[int(v) for v in steps], key=scrub, on_change=scrubbed,
                             help="Scrub through the run: every path is drawn up to this optimizer step.")

    frame()
    play, back = st.columns(2)
    play.button("⏸ Pause" if playing else "▶ Play", on_click=play_pause, key=f"{key}::paths_play",
                type="secondary" if playing else "primary", width="stretch",
                help="Animate the paths on the surface (from the start if at the end), or stop here.")
    back.button("⏮ Back to the start", on_click=rewind, key=f"{key}::paths_rewind", width="stretch",
                help="Show the paths at step 0.")


def _caption(drawn: _Drawn, source: PathSource) -> None:
    plane = drawn.study.plane
    split = LOSSES[drawn.grid.split]
    text = (f"Seed {source.seed}. The {split} on {drawn.n_points:,} examples over the plane {PLANES[plane.kind]} "
            f"((0, 0) = {plane.centre}; axes in weight-space units, equal scales). Faint: live weights θ; bold: "
            "averages φ (what EMA and SEMA are evaluated with); dashed ◆: SEMA's switch θ ← φ; "
            "★: each method's "
            "end with its true training loss.")
    if plane.note:
        text += " " + plane.note
    if _has_batchnorm(source.models):
        text += (" BatchNorm: evaluated in eval mode; parameters and running statistics move together in the "
                 "plane, as on the Flatness page's straight path, so each end is evaluated exactly as trained.")
    st.caption(text)
