"""Live training on a page: a ``Trainer`` kept in session state, play / pause / step / reset /
stop, and a fragment that trains a little and redraws on every tick.

    def build():                        # called only when the settings change, or on Reset
        return data, model_fn, config
    def draw(trainer):                  # the live view, redrawn on every tick
        st.pyplot(...)
    trainer = live_training("toy", build, draw, settings=(dataset, lr, ...), on_done=remember)

Only the fragment reruns while training plays.  Its pace is the sidebar's live speed
(``display.epochs_per_second()``): at s epochs per second it ticks every 1/s seconds (at most
every ``MIN_TICK``) and trains what the clock says is due since Play, at least one epoch, so
a run of E epochs lasts about E/s seconds whatever the drawing costs and a collapse late in
training can be pointed at.  At "as fast as it trains" (None) it ticks every ``tick_seconds``
and trains ``epochs / frames`` epochs per tick (at least one), so a run animates in about
``frames`` pictures; where drawing is slow, a tick goes on training for as long as the
drawing took, up to three times that pace: a slow machine shows fewer pictures rather than
spending most of its time drawing.  ``budget_seconds`` bounds the training of one tick.  Every run of the fragment advances training, a tick or a
full rerun alike, so ``AppTest`` (where nothing ticks) drives it with plain reruns.  When
``settings`` change mid-run the old run is dropped and a new one starts from epoch 0 in the
same play state: a slider moved during a lecture restarts cleanly.

One run is touched by one thread at a time.  Streamlit's fast reruns (``runner.fastReruns``,
on by default) start the run a click asks for at once, in a new thread, while the old one
goes on until its next Streamlit call: a tick in the middle of an epoch keeps training.  So
each run has a lock, held by a tick, by ⏭ Step and by ⏹ Stop; a tick trains no further
epoch and gives its place in the queue up once the run is paused or replaced, or a newer
run of the page wants it; the new run waits for the epoch in flight and shows the epoch the
run holds.  A paused run stays where it was, and two epochs never train the same weights
at once.
"""
from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import streamlit as st

from ..engine import EngineError, WorkerLost, new_trainer
from ..training import Data, Trainer, TrainConfig
from . import display
from .jobs import Cancelled, heavy_job

MIN_TICK = 0.2          # seconds: the fastest a paced run redraws (faster speeds train more per tick)

Build = Callable[[], tuple[Data, Callable, TrainConfig]]


@dataclass
class LiveRun:
    """What one live-training widget keeps between reruns."""

    settings: Hashable
    trainer: Trainer | None = None
    error: str | None = None          # why ``build`` failed, in plain words
    playing: bool = False
    reported: bool = False            # on_done already called for this trainer
    lost: str | None = None           # why the run ended early: its worker process stopped
    clock: tuple[float, int, float] | None = None   # (time, epoch, speed) the paced run counts from
    # held while a thread trains or draws the run (see the module's docstring)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)
    turn: int = 0                     # the newest page run (or tick) that asked to train or draw it
    _turns: Iterator[int] = field(default_factory=lambda: itertools.count(1), repr=False, compare=False)

    def take_turn(self) -> int:
        """A new number for this thread's run; an older thread's ``wanted(turn)`` turns False."""
        self.turn = next(self._turns)           # next() on a count is atomic under the GIL
        return self.turn

    def wanted(self, turn: int) -> bool:
        """Whether the tick of ``turn`` should go on training: playing and not overtaken."""
        return self.playing and self.turn == turn


def tick_every(speed: float | None, tick_seconds: float) -> float:
    """Seconds between two ticks of a playing run at ``speed`` epochs/s (None: as fast as it trains)."""
    return tick_seconds if speed is None else max(1 / speed, MIN_TICK)


def epochs_due(live: LiveRun, speed: float, now: float) -> int:
    """How many epochs a paced tick trains: what the clock since Play (or the last speed change)
    says is due, and at least one, so that every run of the fragment (AppTest's too) advances."""
    if live.clock is None or live.clock[2] != speed:
        live.clock = (now - 1 / speed, live.trainer.epoch, speed)     # the first tick trains one epoch
    start, epoch0, _ = live.clock
    return max(1, epoch0 + math.floor((now - start) * speed + 1e-9) - live.trainer.epoch)


def _train_tick(live: LiveRun, speed: float | None, drawing: float, frames: int, budget_seconds: float,
                turn: int) -> None:
    """One tick's training: paced by ``speed``, or (None) by ``frames`` and the drawing time.

    It trains no further epoch once ``live.wanted(turn)`` is False: the run was paused or
    replaced, or a newer run of the page (a click's, in another thread) waits for it."""
    trainer, epochs = live.trainer, live.trainer.config.epochs
    if not live.wanted(turn):                   # overtaken before it began: not one epoch more
        return
    start = time.perf_counter()
    if speed is not None:
        goal = trainer.epoch + epochs_due(live, speed, time.monotonic())
        trainer.run_epoch()
        while not trainer.done and live.wanted(turn) and trainer.epoch < goal and \
                time.perf_counter() - start < budget_seconds:
            trainer.run_epoch()
        return
    pace = math.ceil(epochs / frames)
    goal, cap = trainer.epoch + pace, trainer.epoch + 3 * pace
    trainer.run_epoch()
    while not trainer.done and live.wanted(turn) and trainer.epoch < cap:
        elapsed = time.perf_counter() - start
        if elapsed >= budget_seconds or (trainer.epoch >= goal and elapsed >= drawing):
            break
        trainer.run_epoch()


def _start(build: Build, settings: Hashable, playing: bool) -> LiveRun:
    try:
        data, model_fn, config = build()
        # A Trainer here, or its mirror when the classroom engine trains on Dask workers (sema_demo.engine).
        return LiveRun(settings, new_trainer(data, model_fn, config), playing=playing)
    except ValueError as err:          # bad data or settings: a message, never a traceback
        return LiveRun(settings, error=str(err))
    except EngineError as err:
        return LiveRun(settings, error=f"the training engine is not available: {err}")
    except WorkerLost as err:
        return LiveRun(settings, error=str(err))


@contextmanager
def _worker_guard(live: LiveRun) -> Iterator[None]:
    """A worker that dies mid-epoch ends the run at its last complete epoch, with a message and
    no report to ``on_done``; ↻ Replay starts a fresh run (on a restarted or another worker)."""
    try:
        yield
    except WorkerLost as err:
        live.playing, live.reported, live.lost = False, True, str(err)


def _draw(live: LiveRun, draw: Callable[[Trainer], None]) -> None:
    """``draw(trainer)``; its figures are computed where the run lives (``trainer.apply``), so a
    worker that died since the last epoch ends the run here too, and the page reruns to say so."""
    try:
        draw(live.trainer)
    except WorkerLost as err:
        live.playing, live.reported, live.lost = False, True, str(err)
        st.rerun()


def live_training(key: str, build: Build, draw: Callable[[Trainer], None], *, settings: Hashable,
                  autoplay: bool = True, tick_seconds: float = 0.4, budget_seconds: float = 2.0, frames: int = 30,
                  on_done: Callable[[Trainer], None] | None = None) -> Trainer | None:
    """Controls and the live view of one training run; returns the trainer (None if ``build`` failed).

    ``settings`` must change whenever anything ``build`` depends on changes.  ``on_done``
    is called once per run when it finishes (all epochs, every run diverged, or Stop).
    """
    slot = f"{key}::live"
    old: LiveRun | None = st.session_state.get(slot)
    if old is None or old.settings != settings:
        restarted = old is not None and old.trainer is not None and 0 < old.trainer.epoch and not old.trainer.done
        # Keep playing, and play on after a finished run; stay paused if the user paused or stopped.
        finished = old is not None and old.trainer is not None and old.trainer.done and not old.trainer.stopped
        play = autoplay if old is None or old.trainer is None else old.playing or finished
        if old is not None:
            old.playing = False                     # a tick of it still training elsewhere stops
        st.session_state[slot] = _start(build, settings, play)
        if restarted:
            st.toast("Settings changed: training restarted from epoch 0.", icon="🔁")
    live: LiveRun = st.session_state[slot]
    if live.error is not None:
        st.error(f"Cannot train with these settings: {live.error}", icon="🚫")
        return None
    trainer = live.trainer
    config = trainer.config
    if "sema" in config.methods and config.switch_epochs > config.epochs:
        st.info(f"SEMA switches every {config.switch_epochs} epochs but this run has {config.epochs}: "
                "no switch happens, so SEMA is exactly EMA here.", icon="ℹ️")
    if trainer.done:                                # finished (also when trained to the end elsewhere)
        live.playing = False
    _controls(key, live, build)
    if live.lost is not None:
        st.error(f"{live.lost} Press ↻ Replay to restart it from epoch 0.", icon="🔌")
    playing = live.playing and not trainer.done
    if not playing:
        live.clock = None                           # a paced run counts from the next Play
    speed = display.epochs_per_second()
    page_run = [True]                               # the fragment's next run is the page's own (not a tick)

    @st.fragment(run_every=tick_every(speed, tick_seconds) if playing else None)
    def view() -> None:
        if live.playing != playing:                 # play / pause changes the ticking: rerun the page
            st.rerun()
        turn = live.take_turn()                     # an older thread's tick stops after its epoch
        with live.lock:                             # waits for the epoch in flight there
            try:
                tick(turn)
            except Cancelled:                       # paused or replaced while it waited in the queue
                pass

    def tick(turn: int) -> None:
        epochs = trainer.config.epochs
        state = "training…" if playing else "finished" if trainer.done else "paused"
        st.progress(trainer.epoch / epochs, text=f"Epoch {trainer.epoch} of {epochs} · {state}")
        if not playing:
            _draw(live, draw)
            return
        # While playing, a tick's drawing is heavy work too (a classroom of live figures would
        # starve a newcomer's page), so it takes the job slot together with the training after
        # it.  The page's own run draws at once: opening or changing a page never queues for its
        # picture.  Train AFTER drawing: the picture just sent stays crisp while the next frame
        # trains (Streamlit fades elements that a running script has not redrawn yet).
        def drawing_seconds() -> float:
            start = time.perf_counter()
            _draw(live, draw)
            return time.perf_counter() - start

        first, page_run[0] = page_run[0], False
        drawing = drawing_seconds() if first else 0.0
        with heavy_job("training", cancelled=lambda: not live.wanted(turn)), _worker_guard(live):   # shared fairly
            if not first:
                drawing = drawing_seconds()
            _train_tick(live, speed, drawing, frames, budget_seconds, turn)
        if trainer.done:                            # finished: stop ticking, show the final results
            live.playing = False
            st.rerun()

    view()
    if trainer.done and not live.reported and on_done is not None:
        live.reported = True
        on_done(trainer)
    return trainer


def _controls(key: str, live: LiveRun, build: Build) -> None:
    trainer = live.trainer

    def play_pause() -> None:
        if trainer.done:                            # finished: play again from epoch 0
            fresh = _start(build, live.settings, playing=True)
            st.session_state[f"{key}::live"] = fresh
        else:
            live.playing = not live.playing

    def step() -> None:
        live.playing = False
        live.take_turn()
        with live.lock, _worker_guard(live):
            trainer.run_epoch()

    def reset() -> None:
        live.playing = False
        st.session_state[f"{key}::live"] = _start(build, live.settings, playing=False)

    def stop() -> None:
        live.playing = False
        with live.lock:
            trainer.stop()

    cols = st.columns(4)
    label = "↻ Replay" if trainer.done else "⏸ Pause" if live.playing else "▶ Play"
    cols[0].button(label, on_click=play_pause, key=f"{key}::play", width="stretch",
                   type="secondary" if live.playing else "primary",
                   help="Train epoch after epoch and watch it live; press again to pause.")
    cols[1].button("⏭ Step", on_click=step, key=f"{key}::step", width="stretch", disabled=trainer.done,
                   help="Pause and train exactly one more epoch.")
    cols[2].button("⏮ Reset", on_click=reset, key=f"{key}::reset", width="stretch",
                   help="Back to epoch 0 (the same initial weights), paused.")
    cols[3].button("⏹ Stop", on_click=stop, key=f"{key}::stop", width="stretch", disabled=trainer.done,
                   help="End the run here and keep what was trained so far.")


def restart(key: str) -> None:
    """Forget the current run: the next rerun builds a fresh one that plays (for presets)."""
    old: LiveRun | None = st.session_state.pop(f"{key}::live", None)
    if old is not None:
        old.playing = False


def current_trainer(key: str) -> Trainer | None:
    """The trainer of the live run ``key`` (None before its first build, or when the build failed)."""
    live: LiveRun | None = st.session_state.get(f"{key}::live")
    return live.trainer if live is not None else None


def is_playing(key: str) -> bool:
    live: LiveRun | None = st.session_state.get(f"{key}::live")
    return bool(live and live.playing and live.trainer is not None and not live.trainer.done)
