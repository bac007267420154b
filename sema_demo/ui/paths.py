"""The "Paths on the loss surface" panel: the recorded weight paths of a run, drawn in a plane of
weight space over the network's own loss surface (``sema_demo.paths``).

    PARAMS = {..., **paths_params()}           # the page binds the panel's controls to the URL too
    paths_panel("toy", source_from_trainer(trainer, "toy"))     # inside the live view's draw()

While the run trains, the panel redraws the paths, epoch by epoch, in the plane through the
current solutions (no surface: that would cost a grid of forward passes per tick).  Once the
run has finished (or on request when paused) it computes the surface under the job queue,
once per (run, plane, resolution, reach, loss), and animates the paths on the contours in the
browser with the playground's path player (:mod:`sema_demo.ui.path_player`): play, pause, a
scrubber and a speed menu, with no server message per frame.  A seed picker shows any seed
(each seed has its own plane: the one through its own three solutions).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import streamlit as st
import torch

from ..charts.live import live_paths_picture, paths_picture, recording_note
from ..charts.paths import DRAW_ORDER, _draws_live, paths_background, paths_figure
from ..charts.style import METHOD_COLORS, METHOD_NAMES
from ..paths import (PATH_COLUMNS, PLANES, PathRecorder, measured_study, path_notes, probe_subset,
                     switch_rows)
from . import display, path_player
from .common import Param, csv_download, figure_downloads, what_to_notice
from .jobs import offloaded

GRIDS = (11, 15, 21, 31, 41, 61)
REACHES = (0.05, 0.1, 0.25, 0.5, 1.0)
LOSSES = {"train": "training loss", "test": "test loss"}
SPEEDS = (5, 10, 20, 40, 80, 160)   # snapshots per second in the player
MAX_CACHED = 4
SEED_NOTICE = "paths_seed_notice"   # session key: (the seed asked for, the seed shown instead)


def paths_params(grid: int = 31) -> dict[str, Param]:
    """The panel's URL-bound controls (the page merges them into its own PARAMS); ``grid`` is the
    default resolution (the image page's CNN costs a forward pass per point: 21; the Flatness page: 41)."""
    return {"paths_plane": Param("solutions", choices=tuple(PLANES)),
            "paths_grid": Param(grid, choices=GRIDS),
            "paths_reach": Param(0.25, choices=REACHES),
            "paths_loss": Param("train", choices=tuple(LOSSES)),
            "paths_seed": Param(-1, lo=-1, hi=2 ** 62)}    # -1: the run's first seed


@dataclass
class PathSource:
    """What the panel draws from: a trainer of this page, or a run remembered by another."""

    recording: PathRecorder | None | Callable[[], PathRecorder | None]   # or how to get it
    networks: dict | Callable[[], dict]   # (method, seed) -> evaluated network, or how to get them
    data: Any                    # x_train, y_train, x_test, y_test (tensors)
    steps_per_epoch: int
    seed: int                    # the first seed (the panel's default)
    training: bool               # still playing: draw the growing paths only
    finished: bool               # all epochs done (or stopped): compute the surface at once
    seeds: tuple = ()            # every seed of the run (the seed picker)
    live_picture: Callable | None = None   # (seed, plane, size, fonts) -> the live spec, computed where the run lives

    @property
    def recorder(self) -> PathRecorder | None:
        """The recording, fetched on first use: a live tick draws its paths where the run lives
        (``live_picture``) and never copies it (in the classroom mode, out of a Dask worker)."""
        if callable(self.recording):
            self.recording = self.recording()
        return self.recording

    @property
    def models(self) -> dict:
        """The evaluated networks, fetched on first use: a live tick that draws only the growing
        paths never copies them (in the classroom mode, out of a Dask worker)."""
        if callable(self.networks):
            self.networks = self.networks()
        return self.networks


def source_from_trainer(trainer, playing: bool) -> PathSource:
    """A live trainer's paths.  While it plays, its recording is not read here: each tick's picture
    is computed where the run lives (``trainer.apply``; in a classroom, by its Dask worker)."""
    return PathSource(lambda: trainer.recorder, trainer.models, trainer, trainer.steps_per_epoch, trainer.config.seeds[0],
                      training=playing, finished=trainer.done, seeds=tuple(trainer.config.seeds),
                      live_picture=partial(trainer.apply, live_paths_picture))


def source_from_run(run, compute_now: bool = True) -> PathSource:
    """A remembered run; ``compute_now=False`` makes the panel wait for a click before the surface."""
    recorder = getattr(run, "paths", None)
    steps = recorder.steps_per_epoch if recorder is not None else 1
    return PathSource(recorder, run.models, run.data, steps, run.config.seeds[0], training=False,
                      finished=compute_now, seeds=tuple(run.config.seeds))


def _has_batchnorm(models: dict) -> bool:
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for net in models.values() for m in net.modules())


def _to_url(key: str, default: Any) -> None:
    """The panel reruns alone (a fragment), so it writes its own controls into the URL."""
    value = st.session_state[key]
    if value is None or value == default:
        st.query_params.pop(key, None)
    else:
        st.query_params[key] = str(value)


def _seed(source: PathSource) -> int:
    """The seed the picker shows: the URL's or the user's, when the run has it; else the first."""
    chosen = st.session_state.get("paths_seed", -1)
    return chosen if chosen is not None and chosen in source.seeds else source.seed


def seeds_text(seeds) -> str:
    """'seeds 0–4' for a range, 'seeds 0, 2 and 5' otherwise, 'seed 3' for one."""
    seeds = sorted(int(v) for v in seeds)
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    if seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"seeds {seeds[0]}–{seeds[-1]}"
    return "seeds " + ", ".join(map(str, seeds[:-1])) + f" and {seeds[-1]}"


def _check_seed(source: PathSource) -> None:
    """A seed the run does not have (a link's ``paths_seed``, or a run retrained with fewer seeds)
    becomes the run's first seed, and the panel says so (:func:`_seed_notice`) while it shows that one."""
    chosen = st.session_state.get("paths_seed", -1)
    if chosen is None or chosen == -1 or chosen in source.seeds:
        return
    st.session_state[SEED_NOTICE] = (int(chosen), source.seed)
    st.session_state["paths_seed"] = source.seed


def _seed_notice(source: PathSource, seed: int) -> None:
    notice = st.session_state.get(SEED_NOTICE)
    if notice is None:
        return
    asked, shown = notice
    if shown != seed or asked in source.seeds:        # another seed picked since, or a run that has it
        st.session_state.pop(SEED_NOTICE, None)
        return
    st.info(f"Seed {asked} is not in this run ({seeds_text(source.seeds)}): showing seed {shown}.", icon="🎲")


def _controls(grid: int, source: PathSource) -> None:
    params = paths_params(grid)
    _check_seed(source)
    if len(source.seeds) > 1:
        seeds = list(source.seeds)
        if st.session_state.get("paths_seed") not in seeds:
            st.session_state["paths_seed"] = source.seed
        st.segmented_control("Seed", seeds, key="paths_seed", format_func=lambda v: f"seed {v}",
                             on_change=_to_url, args=("paths_seed", params["paths_seed"].default),
                             help="Each seed trained its own SGD, EMA and SEMA from its own initial weights; "
                                  "its picture uses the plane through its own three solutions.")
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
    s = st.session_state
    live = None
    if source.training and source.live_picture is not None:       # a tick: the picture comes finished
        live = source.live_picture(_seed(source), s.paths_plane, *_live_size())
        if isinstance(live, str):
            st.info(live, icon="📏")
            return
    elif (note := recording_note(source.recorder)) is not None:
        st.info(note, icon="📏")
        return
    _controls(grid, source)
    seed = _seed(source)
    _seed_notice(source, seed)
    if source.training:
        _live(source, s.paths_plane, seed, live)
        return
    if not source.finished and not st.button(f"🗺️ Compute the surface now ({s.paths_grid}×{s.paths_grid} grid)",
                                              key=f"{key}::paths_go",
                                              help="Measure the loss on the grid for the run as it is now."):
        _live(source, s.paths_plane, seed)
        return
    try:
        drawn = _drawn(key, source, s.paths_plane, s.paths_grid, s.paths_reach, s.paths_loss, seed)
    except ValueError as err:
        st.info(f"Nothing to draw yet: {err}.", icon="ℹ️")
        return
    _animation(key, drawn, source.steps_per_epoch)
    _caption(drawn, source, seed)
    what_to_notice("\n\n".join(path_notes(drawn.study, drawn.points, METHOD_NAMES)))
    left, right = st.columns([2, 1], vertical_alignment="bottom")
    figure_downloads(drawn.figure(display.font_scale()), f"sema_paths_{key}", container=left)
    csv_download(drawn.study.frame[PATH_COLUMNS], f"sema_paths_{key}", "⬇ Projected paths (CSV)", container=right)


def _live_size() -> tuple[int, dict | None]:
    return display.height(420), display.PROJECTOR_FONT if display.projector() else None


def _live(source: PathSource, plane: str, seed: int, spec: dict | None = None) -> None:
    """The paths so far in the plane of the current solutions (no surface while training): ``spec``
    as a tick brings it, else computed here (a paused or remembered run)."""
    if spec is None and not source.training:
        if source.live_picture is not None:           # a paused trainer: where the run lives
            spec = source.live_picture(seed, plane, *_live_size())
        else:                                         # a remembered run
            spec = paths_picture(source.recorder, lambda: source.models, seed, plane, *_live_size())
    if not isinstance(spec, dict):
        st.caption("The paths appear here after the first epoch.")
        return
    # Drawn by the browser: a matplotlib picture per tick cost the server ≈ 0.5 s per student.
    st.vega_lite_chart(spec=spec, width="content")
    st.caption(f"Seed {seed}, plane {PLANES[plane]} of the current weights, redrawn every epoch; the loss "
               "surface under them is measured when training ends.")


@dataclass
class _Drawn:
    study: Any
    grid: Any
    points: list
    n_points: int
    pictures: dict = field(default_factory=dict)   # font scale -> the background, encoded for the player

    def picture(self, font_scale: float) -> dict:
        """The background at this font scale (``display.font_scale()``), rendered once per scale:
        projector mode redraws the picture, never the measured surface."""
        if font_scale not in self.pictures:
            background = offloaded("pictures", paths_background, self.study, self.grid, self.points,
                                   font_scale=font_scale)
            self.pictures[font_scale] = _picture(background, self.grid)
        return self.pictures[font_scale]

    def figure(self, font_scale: float = 1.0):
        return paths_figure(self.study, self.grid, self.points, font_scale=font_scale)


def _drawn(key: str, source: PathSource, plane: str, resolution: int, reach: float, split: str, seed: int) -> _Drawn:
    """Study, surface and background, computed once per settings under the job queue."""
    cache: dict = st.session_state.setdefault(f"{key}::paths_cache", {})
    ident = (id(source.recorder), len(source.recorder.steps), seed, plane, resolution, reach, split)
    if ident not in cache:
        d = source.data
        x, y = probe_subset(d.x_train, d.y_train) if split == "train" else probe_subset(d.x_test, d.y_test)
        if len(x) == 0:
            raise ValueError("there are no test examples")
        xt, yt = probe_subset(d.x_train, d.y_train)
        measuring = f"Measuring the {LOSSES[split]} on a {resolution}×{resolution} grid…"
        with st.spinner(measuring):
            study, points, grid = offloaded("measurements", measured_study, source.recorder, source.models, seed,
                                            plane, x, y, xt, yt, resolution, reach, split)
        cache[ident] = _Drawn(study, grid, points, len(x))
        while len(cache) > MAX_CACHED:
            cache.pop(next(iter(cache)))
    return cache[ident]


def _picture(bg, grid) -> dict:
    """The background as the player's picture: plot box and axis extent from its exact pixel map."""
    a, b, c, d = bg.to_pixels
    x0, x1, y0, y1 = float(grid.x[0]), float(grid.x[-1]), float(grid.y[0]), float(grid.y[-1])
    return path_player.surface(bg.image, (a * x0 + b, c * y1 + d, a * x1 + b, c * y0 + d), (x0, x1, y0, y1))


def player_data(drawn: _Drawn, steps_per_epoch: int) -> dict:
    """The recorded paths in the player's data shape; one frame per snapshot.

    Every run of a seed is recorded at the same snapshots, so snapshot i is frame i for every
    path; ``step_values`` maps frames back to optimizer steps (the badge and scrubber show those).
    θ is faint (SGD's θ, its evaluated weights, as a thin full path), φ bold; SEMA's θ jumps onto
    φ at its switch snapshots (◆)."""
    frame, grid = drawn.study.frame, drawn.grid
    extent = (float(grid.x[0]), float(grid.x[-1]), float(grid.y[0]), float(grid.y[-1]))
    methods = list(dict.fromkeys(frame.method))
    paths, steps = [], None
    for m in (m for m in DRAW_ORDER if m in methods):
        live = frame[(frame.method == m) & (frame.weights == "live")]
        average = frame[(frame.method == m) & (frame.weights == "average")]
        steps = live.step.to_numpy() if steps is None else steps
        xy = lambda rows: rows[["x", "y"]].to_numpy(float)  # noqa: E731
        switches = switch_rows(live.kind.to_numpy()) if m == "sema" else ()
        if len(average):
            paths.append(path_player.path(f"{METHOD_NAMES[m]} φ", METHOD_COLORS[m], xy(average), extent=extent,
                                          live=xy(live) if _draws_live(m, methods) else None, switches=switches))
        elif _draws_live(m, methods):
            paths.append(path_player.path(f"{METHOD_NAMES[m]} θ", METHOD_COLORS[m], xy(live), extent=extent,
                                          style="live", switches=switches))
    frames_per_epoch = len(steps) / max(float(steps[-1]) / steps_per_epoch, 1e-9)
    per_second = display.epochs_per_second()
    speed = SPEEDS[-1] if per_second is None else min(SPEEDS, key=lambda v: abs(np.log(v / (per_second * frames_per_epoch))))
    start = frame[frame.step == 0]
    scale = display.font_scale()
    return {"image": drawn.picture(scale), "paths": paths, "steps": len(steps) - 1, "steps_per_epoch": steps_per_epoch,
            "step_values": [int(v) for v in steps], "step_name": "optimizer step", "trail": None,
            "start": [float(start.x.iloc[0]), float(start.y.iloc[0])] if len(start) else None, "clickable": False,
            "speeds": list(SPEEDS), "speed": speed, "speed_unit": "snapshots/s", "frame": None, "play_token": 0,
            "loss_scale": "linear", "hint": "", "scale": scale}


def _animation(key: str, drawn: _Drawn, steps_per_epoch: int) -> None:
    """The paths growing on the contours, played in the browser: play, pause, scrubber, speed."""
    path_player.path_player(player_data(drawn, steps_per_epoch), key=f"{key}::paths_player")


def _caption(drawn: _Drawn, source: PathSource, seed: int) -> None:
    plane = drawn.study.plane
    split = LOSSES[drawn.grid.split]
    text = (f"Seed {seed}. The {split} on {drawn.n_points:,} examples over the plane {PLANES[plane.kind]} "
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
