"""A fair queue for heavy work when one server process serves a whole classroom.

Every Streamlit session runs in a thread of the same process, so 30 students pressing
"Train" at once would share the CPU thirty ways and every page would freeze.  Heavy
steps (one training epoch, one simulation) therefore take a slot from a global pool
first; sessions beyond the pool wait in arrival order and can show their place in
the queue.  Light work (drawing a page) never waits.

    queue = JobQueue(slots=1)
    with queue.slot(on_wait=lambda position: print("waiting, position", position)):
        train_one_epoch()
"""
from __future__ import annotations

import itertools
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def default_slots() -> int:
    """Concurrent heavy jobs: ``$SEMA_MAX_JOBS``, else one per core but one core kept for page renders."""
    configured = os.environ.get("SEMA_MAX_JOBS", "")
    if configured.isdigit() and int(configured) >= 1:
        return int(configured)
    return max(1, (os.cpu_count() or 2) - 1)


class JobQueue:
    """At most ``slots`` jobs run at once; the others wait first-come, first-served."""

    def __init__(self, slots: int):
        if slots < 1:
            raise ValueError(f"slots must be >= 1, got {slots}")
        self.slots = slots
        self._cond = threading.Condition()
        self._running = 0
        self._waiting: list[int] = []
        self._tickets = itertools.count()
        self._held = threading.local()         # per thread: how deep inside slot() blocks it is

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @contextmanager
    def slot(self, on_wait: Callable[[int], None] | None = None, poll: float = 0.25,
             check: Callable[[], None] | None = None, min_interval: float = 0.0) -> Iterator[None]:
        """Hold a slot for the duration of the block.

        ``on_wait(position)`` is called (outside the lock) whenever the caller's place in
        the queue changes while it waits, at most once per ``min_interval`` seconds (a later
        change is shown at the next look after that); position 1 means "next".  ``check()`` is called
        at least every ``poll`` seconds while waiting: whatever it raises (the user paused,
        the tab was closed) ends the wait and gives the place in the queue up.  A block
        nested inside another ``slot()`` of the same thread runs at once in the outer slot
        (a cached simulation called while training must not wait for itself).
        """
        if getattr(self._held, "depth", 0):       # nested in a block that holds a slot: it is ours
            self._held.depth += 1
            try:
                yield
            finally:
                self._held.depth -= 1
            return
        ticket = next(self._tickets)
        last_position, last_shown = None, -math.inf
        with self._cond:
            self._waiting.append(ticket)
        try:
            while True:
                with self._cond:
                    position = self._waiting.index(ticket) + 1
                    if position == 1 and self._running < self.slots:
                        self._waiting.pop(0)
                        self._running += 1
                        break
                if on_wait is not None and position != last_position and \
                        time.monotonic() - last_shown >= min_interval:
                    on_wait(position)  # outside the lock: it may draw on a page
                    last_position, last_shown = position, time.monotonic()
                if check is not None:
                    check()
                with self._cond:
                    self._cond.wait(poll)  # woken by a release; the timeout covers a missed wake-up
        except BaseException:
            with self._cond:
                if ticket in self._waiting:
                    self._waiting.remove(ticket)
                self._cond.notify_all()
            raise
        self._held.depth = 1
        try:
            yield
        finally:
            self._held.depth = 0
            with self._cond:
                self._running -= 1
                self._cond.notify_all()
