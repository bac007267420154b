"""One live run, two threads: what Streamlit's fast reruns do when a click comes mid-epoch.

With ``runner.fastReruns`` (Streamlit's default) a click starts the new run at once in a new
thread while the old tick goes on until its next Streamlit call.  These tests play both
threads by hand on a trainer whose epochs are slow and that counts how many train at once.
"""
import threading
import time
from types import SimpleNamespace

import pytest

from sema_demo.ui.jobs import Cancelled, heavy_job, job_queue
from sema_demo.ui.training import LiveRun, _train_tick


class SlowTrainer:
    """Epochs of ``seconds`` each; ``overlap`` is the most epochs that ever ran at once."""

    def __init__(self, epochs: int = 12, seconds: float = 0.15):
        self.config = SimpleNamespace(epochs=epochs)
        self.epoch, self.seconds, self.overlap, self._running = 0, seconds, 0, 0
        self._count = threading.Lock()

    @property
    def done(self) -> bool:
        return self.epoch >= self.config.epochs

    def run_epoch(self) -> None:
        with self._count:
            self._running += 1
            self.overlap = max(self.overlap, self._running)
        time.sleep(self.seconds)
        with self._count:
            self._running -= 1
            self.epoch += 1


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_pause_from_another_thread_stops_the_tick_after_its_epoch_in_flight_and_the_paused_view_stays():
    trainer = SlowTrainer()
    live = LiveRun(settings=None, trainer=trainer, playing=True)

    def old_tick() -> None:                      # the tick that the click's rerun does not interrupt
        turn = live.take_turn()
        with live.lock:
            _train_tick(live, speed=None, drawing=0.0, frames=1, budget_seconds=60.0, turn=turn)   # would train all 12

    ticking = threading.Thread(target=old_tick)
    ticking.start()
    wait_for(lambda: trainer.epoch >= 1)
    live.playing = False                         # ⏸ Pause's callback, in the new run's thread
    with live.lock:                              # the new run's view: it waits for the epoch in flight
        shown = trainer.epoch
    ticking.join(timeout=10)
    assert not ticking.is_alive()
    assert 1 <= shown <= 3 and not trainer.done, "the tick stopped after the epoch it was training"
    time.sleep(3 * trainer.seconds)
    assert trainer.epoch == shown, "the paused run stays at the epoch its page shows"
    assert trainer.overlap == 1


def test_a_newer_run_of_the_page_while_it_plays_waits_only_for_the_epoch_in_flight():
    """A display-only control moved while it trains: the run plays on, and the click's run (in a
    new thread) draws after the old tick's current epoch, not after the rest of its tick."""
    trainer = SlowTrainer()
    live = LiveRun(settings=None, trainer=trainer, playing=True)

    def old_tick() -> None:
        turn = live.take_turn()
        with live.lock:
            _train_tick(live, speed=None, drawing=0.0, frames=1, budget_seconds=60.0, turn=turn)

    ticking = threading.Thread(target=old_tick)
    ticking.start()
    wait_for(lambda: trainer.epoch >= 1)
    start = time.monotonic()
    live.take_turn()                             # the new run's view asks for the run
    with live.lock:
        waited, shown = time.monotonic() - start, trainer.epoch
    ticking.join(timeout=10)
    assert live.playing and not trainer.done and shown <= 3
    assert waited < 2.5 * trainer.seconds, "it waited for one epoch, not for the whole tick"
    assert trainer.overlap == 1


def test_step_waits_for_a_tick_in_flight_so_two_epochs_never_train_the_same_weights_at_once():
    trainer = SlowTrainer()
    live = LiveRun(settings=None, trainer=trainer, playing=True)

    def old_tick() -> None:
        turn = live.take_turn()
        with live.lock:
            _train_tick(live, speed=2.0, drawing=0.0, frames=30, budget_seconds=60.0, turn=turn)

    ticking = threading.Thread(target=old_tick)
    ticking.start()
    wait_for(lambda: trainer._running == 1)
    live.playing = False                         # ⏭ Step pauses, then trains exactly one epoch
    with live.lock:
        before = trainer.epoch
        trainer.run_epoch()
    ticking.join(timeout=10)
    assert trainer.epoch == before + 1 and trainer.overlap == 1


@pytest.mark.timeout(30)
def test_a_tick_waiting_in_the_queue_gives_its_place_up_once_its_run_is_paused():
    queue = job_queue()
    taken = threading.Event()
    release = threading.Event()

    def occupant() -> None:
        with queue.slot():
            taken.set()
            release.wait(10)

    holders = [threading.Thread(target=occupant) for _ in range(queue.slots)]
    for holder in holders:
        holder.start()
    try:
        wait_for(lambda: queue.running == queue.slots)
        live = SimpleNamespace(playing=True)
        outcome: list[str] = []

        def waiting_tick() -> None:
            try:
                with heavy_job("training", cancelled=lambda: not live.playing):
                    outcome.append("ran")
            except Cancelled:
                outcome.append("gave its place up")

        waiter = threading.Thread(target=waiting_tick)
        waiter.start()
        wait_for(lambda: queue.waiting == 1)
        live.playing = False
        waiter.join(timeout=5)
        assert outcome == ["gave its place up"] and queue.waiting == 0
    finally:
        release.set()
        for holder in holders:
            holder.join(timeout=10)


def test_a_tick_overtaken_before_it_trains_trains_nothing_and_one_in_turn_trains_at_least_one_epoch():
    trainer = SlowTrainer(seconds=0.0)
    live = LiveRun(settings=None, trainer=trainer, playing=True)
    old = live.take_turn()
    live.take_turn()                             # a newer run of the page asked for it
    _train_tick(live, speed=2.0, drawing=0.0, frames=30, budget_seconds=1.0, turn=old)
    assert trainer.epoch == 0
    _train_tick(live, speed=2.0, drawing=0.0, frames=30, budget_seconds=1.0, turn=live.turn)
    assert trainer.epoch >= 1
